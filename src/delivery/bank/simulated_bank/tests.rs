#![allow(clippy::unwrap_used)]

use super::*;
use crate::delivery::bank::pain002::{PaymentInfoStatus, TxStatus, TxStatusCode, parse_pain002};
use crate::delivery::bank::test_support::{PAIN002, err_of, fixture, xmllint};
use proptest::prelude::*;

fn sample_report() -> Pain002Report {
    Pain002Report {
        message_id: "DEMO-BANK-0001".into(),
        original_message_id: "KS-MSG-20240305-0001".into(),
        group_status: Some("PART".into()),
        group_reason_code: None,
        group_reason_text: Some("部分交易被拒绝 & <见明细>".into()),
        payment_infos: vec![
            PaymentInfoStatus {
                original_payment_info_id: "KS-PMT-1".into(),
                status: Some(TxStatusCode::Pdng),
                reason_code: None,
                reason_text: None,
            },
            PaymentInfoStatus {
                original_payment_info_id: "KS-PMT-2".into(),
                status: None,
                reason_code: Some("NARR".into()),
                reason_text: None,
            },
        ],
        transactions: vec![
            TxStatus {
                original_payment_info_id: "KS-PMT-1".into(),
                original_instruction_id: Some("KS-I-0001".into()),
                original_end_to_end_id: Some("KSD-000001".into()),
                status: TxStatusCode::Acsc,
                reason_code: None,
                reason_text: None,
            },
            TxStatus {
                original_payment_info_id: "KS-PMT-1".into(),
                original_instruction_id: None,
                original_end_to_end_id: Some("KSD-000002".into()),
                status: TxStatusCode::Rjct,
                reason_code: Some("AC04".into()),
                reason_text: Some("closed account".into()),
            },
            TxStatus {
                original_payment_info_id: "KS-PMT-2".into(),
                original_instruction_id: Some("KS-I-0003".into()),
                original_end_to_end_id: Some("KSD-000003".into()),
                status: TxStatusCode::Other("BLCK".into()),
                reason_code: Some("BANK-SPECIFIC-17".into()),
                reason_text: Some("账户已冻结".into()),
            },
        ],
    }
}

#[test]
fn write_pain002_validates_and_round_trips() {
    let at = time::macros::datetime!(2024-03-05 10:00:00 +08:00);
    let report = sample_report();
    let xml = write_pain002(&report, at).unwrap();
    xmllint(xml.as_bytes(), PAIN002).unwrap();
    assert!(xml.contains("<Prtry>BANK-SPECIFIC-17</Prtry>"));
    assert!(xml.contains("<Cd>AC04</Cd>"));
    assert_eq!(parse_pain002(xml.as_bytes()).unwrap(), report);

    for r in [
        parse_pain002(&fixture("pain002-accepted.xml")).unwrap(),
        parse_pain002(&fixture("pain002-rejected.xml")).unwrap(),
        parse_pain002(&fixture("pain002-group-accepted.xml")).unwrap(),
    ] {
        let xml = write_pain002(&r, at).unwrap();
        xmllint(xml.as_bytes(), PAIN002).unwrap();
        assert_eq!(parse_pain002(xml.as_bytes()).unwrap(), r);
    }
}

#[test]
fn write_pain002_rejects_invalid_fields() {
    let at = time::macros::datetime!(2024-03-05 10:00:00 +08:00);
    let mut r = sample_report();
    r.message_id = "M".repeat(36);
    assert!(
        err_of(write_pain002(&r, at))
            .to_string()
            .contains("`message_id`")
    );
    let mut r = sample_report();
    r.transactions[1].reason_text = Some("x".repeat(106));
    assert!(
        err_of(write_pain002(&r, at))
            .to_string()
            .contains("`transactions[1].reason_text`")
    );
    let mut r = sample_report();
    r.transactions[0].status = TxStatusCode::Other("ACCEPTED".into());
    assert!(
        err_of(write_pain002(&r, at))
            .to_string()
            .contains("`transactions[0].status`")
    );
    let mut r = sample_report();
    r.transactions[0].original_payment_info_id = "NOPE".into();
    assert!(
        err_of(write_pain002(&r, at))
            .to_string()
            .contains("`transactions[0].original_payment_info_id`")
    );
}

proptest! {
    #[test]
    fn written_reports_round_trip(
        statuses in prop::collection::vec(
            prop_oneof![Just("ACSC".to_owned()), Just("RJCT".to_owned()), Just("PDNG".to_owned()), "[A-Z]{4}"],
            0..6,
        ),
        text in proptest::option::of("[a-z][a-zA-Z0-9<>&'\" ]{0,30}[a-z]"),
    ) {
        let at = time::macros::datetime!(2024-03-05 10:00:00 UTC);
        let mut report = sample_report();
        report.transactions = statuses.iter().enumerate().map(|(i, s)| TxStatus {
            original_payment_info_id: "KS-PMT-1".into(),
            original_instruction_id: None,
            original_end_to_end_id: Some(format!("E{i}")),
            status: TxStatusCode::from_code(s),
            reason_code: None,
            reason_text: text.clone(),
        }).collect();
        let xml = write_pain002(&report, at).unwrap();
        prop_assert_eq!(parse_pain002(xml.as_bytes()).unwrap(), report);
    }
}
