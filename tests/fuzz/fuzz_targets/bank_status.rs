//! Bank status reports: `pain.002.001.11` and `camt.054.001.08` arrive from the bank (or from
//! whoever can put a file in the station's inbox), so both readers take arbitrary bytes.
//!
//! Asserts, beyond "never panics" (which covers the readers' own DOCTYPE, entity, depth, size and
//! UTF-8 guards):
//! - no extracted value is longer than `MAX_EXTRACTED_CHARS`, the bound on what a hostile
//!   document can make the station store;
//! - a `pain.002` report that the demo bank's writer accepts reads back equal (the writer's
//!   documented round trip), so the station understands what its own simulated bank says.
#![no_main]

use keystation::delivery::bank::{
    MAX_EXTRACTED_CHARS, parse_camt054, parse_pain002, write_pain002,
};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fn bounded(value: &str) {
    assert!(
        value.chars().count() <= MAX_EXTRACTED_CHARS,
        "an extracted value of {} characters",
        value.chars().count()
    );
}

fn bounded_opt(value: &Option<String>) {
    if let Some(v) = value {
        bounded(v);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = parse_pain002(data) {
        bounded(&report.message_id);
        bounded(&report.original_message_id);
        bounded_opt(&report.group_status);
        bounded_opt(&report.group_reason_code);
        bounded_opt(&report.group_reason_text);
        for p in &report.payment_infos {
            bounded(&p.original_payment_info_id);
            bounded_opt(&p.reason_code);
            bounded_opt(&p.reason_text);
        }
        for t in &report.transactions {
            bounded(&t.original_payment_info_id);
            bounded_opt(&t.original_instruction_id);
            bounded_opt(&t.original_end_to_end_id);
            bounded_opt(&t.reason_code);
            bounded_opt(&t.reason_text);
        }
        if let Ok(xml) = write_pain002(&report, datetime!(2025-06-01 12:00:00 UTC)) {
            let again = parse_pain002(xml.as_bytes()).expect("the writer's output parses");
            assert_eq!(again, report, "pain.002 does not survive write -> parse");
        }
    }
    if let Ok(report) = parse_camt054(data) {
        bounded(&report.message_id);
        for e in &report.entries {
            bounded_opt(&e.end_to_end_id);
            bounded(&e.currency);
            bounded_opt(&e.booking_date);
        }
    }
});
