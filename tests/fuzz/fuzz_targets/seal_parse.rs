//! GB/T 38540 `SESeal` parsing and verification: seals are read off tokens and from files
//! handed to `keystation seal verify`, so their bytes come from outside the station.
//!
//! Asserts, beyond "never panics":
//! - the parser is strict DER: whatever parses re-encodes to exactly the input bytes;
//! - a parsed seal's signed data can be recomputed;
//! - `verify_seal` always reports at least the structure check, and a seal it calls valid did
//!   parse and passed every check.
//!
//! The CA and company certificates are fixed fixtures (`tests/fuzz/fixtures/`, regenerated with
//! the seeds by `cargo test --test it -- --ignored fuzz_seeds::regenerate`), so the seed seals
//! verify and the fuzzer starts from a seal that reaches every check.
#![no_main]

use keystation::seal::{parse_seal, verify_seal};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use time::macros::datetime;

const CA_DER: &[u8] = include_bytes!("../fixtures/seal-ca.der");
const COMPANY_DER: &[u8] = include_bytes!("../fixtures/seal-company.der");
/// Inside the seed seals' validity, so a good seal is valid at this time.
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fuzz_target!(|data: &[u8]| {
    let parsed = parse_seal(data);
    if let Ok(seal) = &parsed {
        let der = seal.to_der().expect("a parsed seal re-encodes");
        assert_eq!(der, data, "parse_seal accepted a non-canonical encoding");
        seal.signed_data_der()
            .expect("the signed data of a parsed seal re-encodes");
        let _ = seal.check_profile();
    }

    // With and without the token certificate: the token check is a separate code path.
    let token_cert = (data.len() % 2 == 0).then_some(COMPANY_DER);
    let report = verify_seal(data, CA_DER, token_cert, NOW);
    assert!(
        report.check("structure").is_some(),
        "verify_seal reported no structure check"
    );
    assert_eq!(
        report.seal.is_some(),
        parsed.is_ok(),
        "verify_seal and parse_seal disagree on whether the bytes are a seal"
    );
    if report.is_valid() {
        assert!(report.checks.iter().all(|c| c.ok));
        assert!(report.seal.is_some());
    }
});
