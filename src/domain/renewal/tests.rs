#![allow(clippy::unwrap_used)]

use super::*;
use time::macros::datetime;

const NOT_AFTER: time::OffsetDateTime = datetime!(2027-12-06 00:00 UTC);

#[test]
fn window_opens_thirty_days_before_not_after_and_closes_at_it() {
    let opens = datetime!(2027-11-06 00:00 UTC);
    assert_eq!(renewal_opens_at(NOT_AFTER), opens);
    assert_eq!(
        renewal_window(NOT_AFTER, opens - time::Duration::seconds(1)),
        Err(RenewalRefusal::NotYetOpen {
            opens_at: opens,
            not_after: NOT_AFTER
        })
    );
    assert_eq!(renewal_window(NOT_AFTER, opens), Ok(()));
    assert_eq!(
        renewal_window(NOT_AFTER, NOT_AFTER - time::Duration::seconds(1)),
        Ok(())
    );
    assert_eq!(
        renewal_window(NOT_AFTER, NOT_AFTER),
        Err(RenewalRefusal::Expired {
            not_after: NOT_AFTER
        })
    );
    assert!(renewal_window(NOT_AFTER, datetime!(2026-12-06 00:00 UTC)).is_err());
}

#[test]
fn refusal_names_the_date_it_opens() {
    let e = renewal_window(NOT_AFTER, datetime!(2027-01-01 00:00 UTC)).unwrap_err();
    assert!(e.to_string().contains("2027-11-06"), "{e}");
}

#[test]
fn renewal_numbers_follow_the_chain_root() {
    let o = OrderNo::parse("ORD-2026-001").unwrap();
    assert_eq!(renewal_root(&o, false), "ORD-2026-001");
    assert_eq!(
        renewal_order_no("ORD-2026-001", 1).unwrap().as_str(),
        "ORD-2026-001-R1"
    );
    let r1 = OrderNo::parse("ORD-2026-001-R1").unwrap();
    assert_eq!(renewal_root(&r1, true), "ORD-2026-001");
    // An imported order that merely ends in -R<n> is its own root.
    assert_eq!(renewal_root(&r1, false), "ORD-2026-001-R1");
    let r12 = OrderNo::parse("X-R2-R12").unwrap();
    assert_eq!(renewal_root(&r12, true), "X-R2");
    // Odd suffixes are not stripped.
    for s in ["A-R", "A-Rx", "-R1"] {
        let n = OrderNo::parse(s).unwrap();
        assert_eq!(renewal_root(&n, true), s);
    }
}

#[test]
fn a_root_too_long_for_a_label_is_refused() {
    assert!(renewal_order_no(&"A".repeat(30), 1).is_err());
    assert_eq!(
        renewal_order_no(&"A".repeat(29), 1).unwrap().as_str().len(),
        32
    );
    assert!(renewal_order_no(&"A".repeat(29), 10).is_err());
}
