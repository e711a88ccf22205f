//! Unit tests of the store's own helpers (identifier columns).

use super::*;

#[test]
fn a_stored_identifier_that_does_not_parse_is_corrupt_data_naming_its_column() {
    let ok: Result<OrderNo, _> = stored_id("orders.order_no", "KS-0001");
    assert_eq!(ok.ok().as_ref().map(OrderNo::as_str), Some("KS-0001"));
    let bad: Result<OrderNo, _> = stored_id("orders.order_no", "KS 0001");
    let msg = match bad {
        Err(e @ StoreError::Corrupt(_)) => e.to_string(),
        other => panic!("not corrupt data: {other:?}"),
    };
    assert!(
        msg.contains("orders.order_no") && msg.contains("order number \"KS 0001\""),
        "{msg}"
    );
}

#[test]
fn a_column_that_does_not_decode_as_an_identifier_is_corrupt_data_naming_it() {
    // What `id_column` hands back for a stored serial that is no serial.
    let decoded: Result<CertSerial, sqlx::Error> = decode_id("4a:0b", "certificates.serial");
    let msg = match decoded.ctx("reading certificates") {
        Err(e @ StoreError::Corrupt(_)) => e.to_string(),
        other => panic!("not corrupt data: {other:?}"),
    };
    assert!(
        msg.contains("certificates.serial") && msg.contains("certificate serial \"4a:0b\""),
        "{msg}"
    );
    let ok: Result<CertSerial, sqlx::Error> = decode_id("4A0B", "certificates.serial");
    assert_eq!(ok.ok().as_ref().map(CertSerial::as_str), Some("4a0b"));
    // Any other decoding failure stays a database error.
    let other: Result<(), StoreError> =
        Err(sqlx::Error::ColumnNotFound("serial".into())).ctx("reading certificates");
    assert!(matches!(other, Err(StoreError::Db { .. })), "{other:?}");
}

#[test]
fn an_in_list_has_one_numbered_placeholder_per_value_from_the_first_number() {
    assert_eq!(placeholders(1, 3), "$1, $2, $3");
    assert_eq!(placeholders(2, 1), "$2");
    assert_eq!(placeholders(4, 0), "");
}
