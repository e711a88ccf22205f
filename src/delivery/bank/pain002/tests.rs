#![allow(clippy::unwrap_used)]

use super::*;
use crate::delivery::bank::test_support::{
    CAMT054, ORIGINAL_GROUP, PAIN002, err_of, fixture, pain002_doc, xmllint,
};

#[test]
fn fixtures_are_schema_valid() {
    for (name, schema) in [
        ("pain002-accepted.xml", PAIN002),
        ("pain002-rejected.xml", PAIN002),
        ("pain002-group-accepted.xml", PAIN002),
        ("camt054-booked.xml", CAMT054),
    ] {
        xmllint(&fixture(name), schema).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn pain002_accepted() {
    let r = parse_pain002(&fixture("pain002-accepted.xml")).unwrap();
    assert_eq!(r.message_id, "ICBC-STS-20240305-0001");
    assert_eq!(r.original_message_id, "KS-MSG-20240305-0001");
    assert_eq!(r.group_status.as_deref(), Some("ACSC"));
    assert_eq!(r.payment_infos.len(), 1);
    assert_eq!(
        r.payment_infos[0].original_payment_info_id,
        "KS-PMT-20240305-0001"
    );
    assert_eq!(r.transactions.len(), 2);
    for (t, n) in r.transactions.iter().zip(1..) {
        assert_eq!(t.status, TxStatusCode::Acsc);
        assert_eq!(t.original_payment_info_id, "KS-PMT-20240305-0001");
        assert_eq!(t.original_instruction_id, Some(format!("KS-I-000{n}")));
        assert_eq!(t.original_end_to_end_id, Some(format!("KSD-00000{n}")));
        assert_eq!(t.reason_code, None);
        assert_eq!(t.reason_text, None);
    }
}

#[test]
fn pain002_rejected() {
    let r = parse_pain002(&fixture("pain002-rejected.xml")).unwrap();
    assert_eq!(r.group_status.as_deref(), Some("RJCT"));
    assert_eq!(r.transactions.len(), 1);
    let t = &r.transactions[0];
    assert_eq!(t.status, TxStatusCode::Rjct);
    assert_eq!(t.original_end_to_end_id.as_deref(), Some("KSD-000001"));
    assert_eq!(t.reason_code.as_deref(), Some("AC04"));
    assert_eq!(t.reason_text.as_deref(), Some("closed account"));
}

#[test]
fn pain002_group_accepted() {
    let r = parse_pain002(&fixture("pain002-group-accepted.xml")).unwrap();
    assert_eq!(r.message_id, "ICBC-STS-20240305-0003");
    assert_eq!(r.original_message_id, "KS-MSG-20240305-0001");
    assert_eq!(r.group_status.as_deref(), Some("ACSC"));
    assert!(r.payment_infos.is_empty());
    assert!(r.transactions.is_empty());
}

#[test]
fn tx_status_falls_back_to_block_status() {
    let xml = pain002_doc(&format!(
        "{ORIGINAL_GROUP}<OrgnlPmtInfAndSts><OrgnlPmtInfId>P1</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>\
         <StsRsnInf><Rsn><Cd>AM04</Cd></Rsn><AddtlInf>insufficient</AddtlInf><AddtlInf>funds</AddtlInf></StsRsnInf>\
         <TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId></TxInfAndSts></OrgnlPmtInfAndSts>"
    ));
    xmllint(xml.as_bytes(), PAIN002).unwrap();
    let r = parse_pain002(xml.as_bytes()).unwrap();
    assert_eq!(r.transactions[0].status, TxStatusCode::Rjct);
    assert_eq!(r.payment_infos[0].status, Some(TxStatusCode::Rjct));
    assert_eq!(r.payment_infos[0].reason_code.as_deref(), Some("AM04"));
    assert_eq!(
        r.payment_infos[0].reason_text.as_deref(),
        Some("insufficient funds")
    );
    // No status anywhere: an error, not a guess.
    let xml = pain002_doc(&format!(
        "{ORIGINAL_GROUP}<OrgnlPmtInfAndSts><OrgnlPmtInfId>P1</OrgnlPmtInfId>\
         <TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId></TxInfAndSts></OrgnlPmtInfAndSts>"
    ));
    assert!(matches!(
        parse_pain002(xml.as_bytes()),
        Err(BankError::MissingElement { .. })
    ));
}

#[test]
fn missing_and_duplicate_elements() {
    let xml = pain002_doc("");
    assert!(matches!(
        parse_pain002(xml.as_bytes()),
        Err(BankError::MissingElement { path }) if path.ends_with("OrgnlMsgId")
    ));
    let xml = pain002_doc(
        "<OrgnlGrpInfAndSts><OrgnlMsgId>O1</OrgnlMsgId><OrgnlMsgId>O2</OrgnlMsgId></OrgnlGrpInfAndSts>",
    );
    assert!(matches!(
        parse_pain002(xml.as_bytes()),
        Err(BankError::DuplicateElement { .. })
    ));
    let xml = pain002_doc("<OrgnlGrpInfAndSts><OrgnlMsgId>  </OrgnlMsgId></OrgnlGrpInfAndSts>");
    assert!(matches!(
        parse_pain002(xml.as_bytes()),
        Err(BankError::InvalidValue { .. })
    ));
}

#[test]
fn reason_lines_are_bounded_in_all_not_only_each() {
    // Each `AddtlInf` was bounded, but the lines repeat and are joined into one value, so a
    // 10 MiB document could make the station store a 10 MiB reason text. The `bank_status`
    // fuzz target asserts the bound on every extracted value; its regression seed is
    // tests/fuzz/seeds/bank_status/regression-reason-lines-over-bound.xml.
    let doc = |lines: usize, tx: bool| {
        let reason = format!(
            "<StsRsnInf>{}</StsRsnInf>",
            format!("<AddtlInf>{}</AddtlInf>", "x".repeat(100)).repeat(lines)
        );
        let (group, block) = if tx {
            (
                String::new(),
                format!(
                    "<OrgnlPmtInfAndSts><OrgnlPmtInfId>P1</OrgnlPmtInfId>\
                     <TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId><TxSts>RJCT</TxSts>\
                     {reason}</TxInfAndSts></OrgnlPmtInfAndSts>"
                ),
            )
        } else {
            (reason, String::new())
        };
        pain002_doc(&format!(
            "<OrgnlGrpInfAndSts><OrgnlMsgId>O1</OrgnlMsgId>\
             <OrgnlMsgNmId>pain.001.001.10</OrgnlMsgNmId><GrpSts>RJCT</GrpSts>{group}\
             </OrgnlGrpInfAndSts>{block}"
        ))
    };
    // 10 lines of 100 characters joined by 9 spaces: 1009, within the bound.
    let ok = parse_pain002(doc(10, false).as_bytes()).unwrap();
    assert_eq!(ok.group_reason_text.unwrap().chars().count(), 1009);
    let ok = parse_pain002(doc(10, true).as_bytes()).unwrap();
    assert_eq!(ok.transactions[0].reason_text.as_ref().unwrap().len(), 1009);
    // 11 lines: 1110 characters in all.
    for tx in [false, true] {
        let e = err_of(parse_pain002(doc(11, tx).as_bytes()));
        assert!(
            matches!(&e, BankError::InvalidValue { path, .. } if path.ends_with("StsRsnInf/AddtlInf")),
            "{e:?}"
        );
        assert!(e.to_string().contains("in all"), "{e}");
    }
}
