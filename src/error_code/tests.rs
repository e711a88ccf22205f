#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::BTreeSet;
use std::path::Path;

/// The README's table, as [`ALL`] makes it.
fn table() -> String {
    let mut t = String::from("| code | exit | meaning |\n|---|---|---|\n");
    for c in ALL {
        let exit = match c.class() {
            Class::Refusal => 2,
            Class::Failure => 1,
        };
        t.push_str(&format!(
            "| `{}` | {exit} | {} |\n",
            c.as_str(),
            c.meaning()
        ));
    }
    t
}

#[test]
fn every_code_is_unique_and_well_formed() {
    let mut seen = BTreeSet::new();
    for c in ALL {
        assert!(seen.insert(c.as_str()), "{} is declared twice", c.as_str());
        let rest = c.as_str().strip_prefix("E-").unwrap();
        assert!(
            rest.chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '-'),
            "{}",
            c.as_str()
        );
        assert!(
            !c.meaning().contains('|'),
            "{}: breaks the table",
            c.as_str()
        );
    }
}

#[test]
fn the_readme_documents_every_code() {
    let readme = include_str!("../../README.md");
    let want = table();
    assert!(
        readme.contains(&want),
        "README.md must hold this table of error codes (generated from error_code::ALL):\n\n{want}"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A code no error gives would be documentation of nothing.
#[test]
fn every_code_is_given_by_some_error() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let text: String = files
        .iter()
        .filter(|p| !p.starts_with(src.join("error_code")) && !p.ends_with("error_code.rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    // The constants' names, as `codes!` declares them.
    let decl = include_str!("mod.rs");
    let names: Vec<&str> = decl
        .lines()
        .filter_map(|l| l.trim().split_once(" = \"E-").map(|(n, _)| n))
        .collect();
    assert_eq!(names.len(), ALL.len());
    for name in names {
        let pattern = format!("ec::{name}");
        let given = text.match_indices(&pattern).any(|(at, _)| {
            !text[at + pattern.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        });
        assert!(given, "error code {name} is declared but no error gives it");
    }
}
