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

#[test]
fn bad_seal_pictures_are_what_they_claim() {
    use std::io::Read;
    let dir = order_fixtures().join("invalid/bad_seals");

    // huge.png: a complete PNG declaring 20000x20000, whose image data inflates to exactly the
    // declared rows (read through, never held), with red ink: refused for its size alone.
    let huge = std::fs::read(dir.join("huge.png")).unwrap();
    assert!(huge.len() < 64 * 1024, "{} bytes", huge.len());
    let side = make_fixtures::HUGE_SIDE;
    let dims = image::ImageReader::new(std::io::Cursor::new(&huge))
        .with_guessed_format()
        .unwrap()
        .into_dimensions()
        .unwrap();
    assert_eq!(dims, (side, side));
    let mut chunks = Vec::new();
    let mut at = 8;
    while at + 8 <= huge.len() {
        let len = u32::from_be_bytes(huge[at..at + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&huge[at + 4..at + 8]).into_owned();
        chunks.push((kind, huge[at + 8..at + 8 + len].to_vec()));
        at += 12 + len;
    }
    let kinds: Vec<&str> = chunks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["IHDR", "PLTE", "IDAT", "IEND"]);
    assert_eq!(
        &chunks[1].1[3..],
        &[205, 35, 40],
        "the second colour is seal red"
    );
    let mut rows = flate2::read::ZlibDecoder::new(chunks[2].1.as_slice());
    let (mut total, mut inked, mut buf) = (0u64, 0u64, vec![0u8; 1 << 16]);
    loop {
        let n = rows.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        inked += buf[..n].iter().filter(|b| **b != 0).count() as u64;
    }
    assert_eq!(total, u64::from(side) * (u64::from(side.div_ceil(8)) + 1));
    assert!(inked > 0, "no red pixel");

    // blank.png: a small real picture with print on it, and no pixel the seal ink rule keeps.
    let blank = image::open(dir.join("blank.png")).unwrap().into_rgb8();
    assert!(blank.width() >= 200 && blank.height() >= 200);
    assert!(
        blank.pixels().any(|p| p.0[0] < 100),
        "a blank page, not a scan"
    );
    assert!(
        blank
            .pixels()
            .all(|p| i32::from(p.0[0]) - i32::from(p.0[1].max(p.0[2])) <= 20),
        "blank.png has red ink"
    );
}
