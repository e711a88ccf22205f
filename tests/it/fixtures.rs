//! The order fixtures are what the generator writes, and they are what they claim to be.

use crate::support::order_fixtures;
use keystation::domain::ImageType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The generator itself (`cargo run --example make_fixtures`), compiled into this binary so the
/// committed files can be compared with a fresh run. Its `main` is unused here.
#[path = "../../examples/make_fixtures.rs"]
#[allow(dead_code)]
mod make_fixtures;

fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn committed_order_fixtures_match_the_generator() {
    let fresh = tempfile::tempdir().unwrap();
    let written = make_fixtures::write_fixtures(fresh.path()).unwrap();
    let generated = files_under(fresh.path());
    assert_eq!(
        written.len(),
        generated.len(),
        "the generator wrote a file twice"
    );
    let committed = files_under(&order_fixtures());
    let regenerate = "regenerate with: rm -rf fixtures/orders && cargo run --example make_fixtures";
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&generated),
        "fixtures/orders holds other files than the generator writes; {regenerate}"
    );
    for (rel, bytes) in &generated {
        assert!(
            committed[rel] == *bytes,
            "fixtures/orders/{} differs from the generator's output; {regenerate}",
            rel.display()
        );
    }
}

#[test]
fn documents_and_seal_pictures_are_small_real_images() {
    for bundle in ["valid", "invalid"] {
        for sub in ["docs", "seals"] {
            let dir = order_fixtures().join(bundle).join(sub);
            let mut pictures = 0;
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let ext = path.extension().unwrap().to_str().unwrap().to_string();
                let bytes = std::fs::read(&path).unwrap();
                let (expected, format) = match ext.as_str() {
                    "png" => (ImageType::Png, image::ImageFormat::Png),
                    "jpg" => (ImageType::Jpeg, image::ImageFormat::Jpeg),
                    // The deliberately wrong types of the invalid bundle.
                    "pdf" => {
                        assert!(bytes.starts_with(b"%PDF-"), "{}", path.display());
                        assert_eq!(ImageType::sniff(&bytes), None);
                        continue;
                    }
                    "gif" => {
                        assert_eq!(ImageType::sniff(&bytes), Some(ImageType::Gif));
                        continue;
                    }
                    other => panic!("unexpected fixture type {other}: {}", path.display()),
                };
                assert_eq!(
                    ImageType::sniff(&bytes),
                    Some(expected),
                    "{}",
                    path.display()
                );
                let img = image::load_from_memory_with_format(&bytes, format)
                    .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
                assert!(
                    img.width() >= 200 && img.height() >= 200,
                    "{} is {}x{}",
                    path.display(),
                    img.width(),
                    img.height()
                );
                assert!(
                    bytes.len() < 64 * 1024,
                    "{} is {} bytes",
                    path.display(),
                    bytes.len()
                );
                pictures += 1;
            }
            let want = if sub == "docs" { 5 } else { 2 };
            assert_eq!(pictures, want, "{}", dir.display());
        }
    }
}

#[test]
fn expected_json_names_every_invalid_fixture_and_nothing_else() {
    let dir = order_fixtures().join("invalid");
    let expected: BTreeMap<String, Vec<serde_json::Value>> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && n != "expected.json")
        .collect();
    files.sort();
    assert_eq!(files, expected.keys().cloned().collect::<Vec<_>>());
    for (file, violations) in &expected {
        assert!(!violations.is_empty(), "{file} expects no violation");
        for v in violations {
            assert!(
                v["field"].is_string() && v["code"].is_string(),
                "{file}: {v}"
            );
        }
    }
}
