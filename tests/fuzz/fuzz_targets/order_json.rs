//! Order import: arbitrary bytes through the same steps as `keystation order import` — strict
//! JSON parsing (`parse_application`: BOM, duplicate keys), then `validate_order` on the object (or on each element of an array) — with a file
//! probe that invents what it finds at each path from the path itself (no filesystem access), so
//! the fuzzer can steer every `FileFacts` branch by choosing paths.
//!
//! Asserts, beyond "never panics": the validator's result contract — `Ok` carries warnings only,
//! `Err` carries at least one error — and that it is a function of its input (same verdict twice).
#![no_main]

use keystation::domain::validate::MAX_DOCUMENT_BYTES;
use keystation::domain::application_json::{ApplicationJsonError, parse_application};
use keystation::domain::{
    FileFacts, FileUse, ImageType, PictureProblem, Severity, ValidationContext, validate_order,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use time::macros::date;

/// What a document reader could report for `path`, chosen by the path's spelling.
fn probe(path: &str, use_: FileUse) -> FileFacts {
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    if path.contains("..") || path.starts_with('/') {
        return FileFacts::PathRejected("climbs out of the order's directory");
    }
    if path.starts_with("missing") {
        return FileFacts::Missing;
    }
    if path.starts_with("locked") {
        return FileFacts::Unreadable;
    }
    if path.starts_with("huge") {
        return FileFacts::TooLarge;
    }
    if use_ == FileUse::SealPicture {
        if path.starts_with("blank") {
            return FileFacts::BadPicture(PictureProblem::Empty);
        }
        if path.starts_with("giant") {
            return FileFacts::BadPicture(PictureProblem::TooLarge {
                width: 20_000,
                height: 20_000,
                max_side: 8000,
            });
        }
        if path.starts_with("corrupt") {
            return FileFacts::BadPicture(PictureProblem::Unreadable("truncated".to_owned()));
        }
    }
    let image = match path.rsplit('.').next() {
        Some("png") => Some(ImageType::Png),
        Some("jpg") => Some(ImageType::Jpeg),
        Some("gif") => Some(ImageType::Gif),
        _ => None,
    };
    // Mostly plausible sizes, sometimes just over the limit.
    let size = if hash % 8 == 0 {
        MAX_DOCUMENT_BYTES + 1 + hash % 1024
    } else {
        hash % MAX_DOCUMENT_BYTES
    };
    FileFacts::Found { size, image }
}

fn check_one(item: &Value, ctx: &ValidationContext) {
    let first = validate_order(item, ctx, &mut probe);
    match &first {
        Ok(valid) => assert!(
            valid
                .warnings
                .iter()
                .all(|v| v.severity == Severity::Warning),
            "an accepted order carries an error: {:?}",
            valid.warnings
        ),
        Err(violations) => assert!(
            violations.iter().any(|v| v.severity == Severity::Error),
            "a rejected order names no error: {violations:?}"
        ),
    }
    let second = validate_order(item, ctx, &mut probe);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a.order, b.order, "validation is not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a, b, "validation is not deterministic"),
        _ => panic!("validation is not deterministic"),
    }
}

fuzz_target!(|data: &[u8]| {
    let value = match parse_application(data) {
        Ok(value) => value,
        Err(ApplicationJsonError::DuplicateKeys(dups)) => {
            assert!(!dups.is_empty(), "duplicate keys reported without a violation");
            return;
        }
        Err(ApplicationJsonError::Syntax(_)) => return,
    };
    let ctx = ValidationContext {
        today: date!(2025 - 06 - 01),
        // Exercise both branches of the USCC checksum rule without spending input bytes.
        uscc_checksum_override: (data.len() % 2 == 1).then(|| "operator accepted".to_owned()),
    };
    // `order import` takes one order or an array of orders.
    match &value {
        Value::Array(items) => items.iter().for_each(|item| check_one(item, &ctx)),
        v => check_one(v, &ctx),
    }
});
