#![allow(clippy::unwrap_used)]

use super::*;
use crate::delivery::bank::CAMT054_NAMESPACE;
use crate::delivery::bank::test_support::{CAMT054, fixture, xmllint};

#[test]
fn camt054_booked() {
    let r = parse_camt054(&fixture("camt054-booked.xml")).unwrap();
    assert_eq!(r.message_id, "ICBC-NTF-20240305-0001");
    assert_eq!(
        r.entries,
        vec![BookedTx {
            end_to_end_id: Some("KSD-000001".into()),
            amount_minor: 1,
            currency: "CNY".into(),
            credit_debit: CreditDebit::Debit,
            status: EntryStatus::Booked,
            booking_date: Some("2024-03-05".into()),
        }]
    );
}

#[test]
fn camt054_amounts() {
    let p = |t: &str, c: &str| parse_amount_minor("Amt", t, c).ok();
    assert_eq!(p("0.01", "CNY"), Some(1));
    assert_eq!(p("1", "CNY"), Some(100));
    assert_eq!(p("1.", "CNY"), Some(100));
    assert_eq!(p(".5", "CNY"), Some(50));
    assert_eq!(p("+12.30", "CNY"), Some(1230));
    assert_eq!(p("0.01000", "CNY"), Some(1));
    assert_eq!(p("100", "JPY"), Some(100));
    assert_eq!(p("1.234", "KWD"), Some(1234));
    assert_eq!(p("184467440737095516.15", "CNY"), Some(u64::MAX));
    assert_eq!(p("184467440737095516.16", "CNY"), None);
    assert_eq!(p("0.001", "CNY"), None);
    assert_eq!(p("-1", "CNY"), None);
    assert_eq!(p("1e3", "CNY"), None);
    assert_eq!(p("", "CNY"), None);
    assert_eq!(p(".", "CNY"), None);
    assert_eq!(p("1.0.0", "CNY"), None);
    assert_eq!(p("１", "CNY"), None);
}

#[test]
fn camt054_entry_without_details_and_credit() {
    let xml = format!(
        "<Document xmlns=\"{CAMT054_NAMESPACE}\"><BkToCstmrDbtCdtNtfctn>\
         <GrpHdr><MsgId>N1</MsgId><CreDtTm>2024-03-05T10:00:00+08:00</CreDtTm></GrpHdr>\
         <Ntfctn><Id>1</Id><Acct><Id><Othr><Id>123</Id></Othr></Id></Acct>\
         <Ntry><Amt Ccy=\"CNY\">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>\
         <BkTxCd/></Ntry>\
         <Ntry><Amt Ccy=\"CNY\">0.02</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Prtry>HELD</Prtry></Sts>\
         <BookgDt><DtTm>2024-03-05T10:00:00+08:00</DtTm></BookgDt><BkTxCd/>\
         <NtryDtls><TxDtls><Refs><EndToEndId>E1</EndToEndId></Refs><Amt Ccy=\"CNY\">0.01</Amt></TxDtls>\
         <TxDtls><Refs><EndToEndId>E2</EndToEndId></Refs><Amt Ccy=\"CNY\">0.01</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls></NtryDtls></Ntry>\
         </Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    );
    xmllint(xml.as_bytes(), CAMT054).unwrap();
    let r = parse_camt054(xml.as_bytes()).unwrap();
    assert_eq!(r.entries.len(), 3);
    assert_eq!(r.entries[0].amount_minor, 500);
    assert_eq!(r.entries[0].credit_debit, CreditDebit::Credit);
    assert_eq!(r.entries[0].status, EntryStatus::Pending);
    assert_eq!(r.entries[0].end_to_end_id, None);
    assert_eq!(r.entries[1].end_to_end_id.as_deref(), Some("E1"));
    assert_eq!(r.entries[1].amount_minor, 1);
    assert_eq!(r.entries[1].status, EntryStatus::Other("HELD".into()));
    assert_eq!(
        r.entries[2].booking_date.as_deref(),
        Some("2024-03-05T10:00:00+08:00")
    );
    // Two transactions without their own amounts cannot share the entry's.
    let ambiguous = xml.replace("<Amt Ccy=\"CNY\">0.01</Amt>", "");
    assert!(matches!(
        parse_camt054(ambiguous.as_bytes()),
        Err(BankError::MissingElement { path }) if path.ends_with("TxDtls/Amt")
    ));
    let no_ccy = xml.replace("<Amt Ccy=\"CNY\">5.00</Amt>", "<Amt>5.00</Amt>");
    assert!(parse_camt054(no_ccy.as_bytes()).is_err());
}
