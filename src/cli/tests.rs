//! The CLI is a front of the station: it reaches the store, the tokens and SQL only through
//! `station`, and blocks on nothing itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/cli`, subfolders included, but this one (it names what it
/// forbids).
fn cli_sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let this = root.join("tests.rs");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && p != this {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    assert!(out.len() > 10, "src/cli not found: {out:?}");
    out
}

/// Code only: comments may say what the CLI does not do.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

/// Every `crate::X` the CLI names, and every path segment or field that would reach the store,
/// the tokens or SQL around the station.
fn offences(text: &str) -> Vec<String> {
    // `web`: `keystation serve` starts the HTTP front, itself a front of the station only.
    const ALLOWED: [&str; 5] = ["station", "domain", "config", "cli", "web"];
    // Randomness is the station's (injected, like the clock): the CLI draws none itself.
    const FORBIDDEN: [&str; 10] = [
        "store::",
        "token::",
        "sqlx",
        ".store.",
        "station.config.",
        "station.clock",
        "block_in_place",
        "Pkcs11Module",
        "rand::",
        "OsRng",
    ];
    let mut found = Vec::new();
    for (n, line) in code_lines(text) {
        for (at, _) in line.match_indices("crate::") {
            let module: String = line[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !ALLOWED.contains(&module.as_str()) {
                found.push(format!("line {n}: crate::{module}"));
            }
        }
        for word in FORBIDDEN {
            if line.contains(word) {
                found.push(format!("line {n}: {word}"));
            }
        }
    }
    found
}

#[test]
fn the_cli_names_only_station_domain_and_config() {
    let mut all = Vec::new();
    for (path, text) in cli_sources() {
        for o in offences(&text) {
            all.push(format!("{}: {o}", path.display()));
        }
    }
    assert!(
        all.is_empty(),
        "the CLI reaches around the station:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_check_sees_what_the_cli_did_before() {
    // The shapes of the old CLI code, each caught.
    for (sample, what) in [
        ("use crate::store::{AuditFilter, Review};", "crate::store"),
        (
            "let m = crate::token::Pkcs11Module::load(None)?;",
            "crate::token",
        ),
        (
            "let orders = station.store.list_orders(state).await?;",
            ".store.",
        ),
        (
            "let c = DeliveryChannels::from_config(&station.config, station.clock.clone())?;",
            "station.clock",
        ),
        (
            "tokio::task::block_in_place(|| module.tokens())",
            "block_in_place",
        ),
        ("sqlx::query(\"DELETE FROM orders\")", "sqlx"),
        (
            "let mut rng = rand::TryRngCore::unwrap_err(rand::rngs::OsRng);",
            "rand::",
        ),
        (
            "let s = crate::seal::verify_seal(d, c, None, now);",
            "crate::seal",
        ),
    ] {
        let found = offences(sample);
        assert!(
            found.iter().any(|o| o.contains(what)),
            "{sample}: {found:?}"
        );
    }
    assert!(offences("// the store is never named here").is_empty());
    assert!(
        offences("use crate::station::Station; flag.store(true, Ordering::SeqCst);").is_empty()
    );
}
