//! The reader's defences, driven through both real handlers (`pain.002`, `camt.054`).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::delivery::bank::test_support::{ORIGINAL_GROUP, err_of, fixture, pain002_doc};
use crate::delivery::bank::{PAIN002_NAMESPACE, parse_camt054, parse_pain002};
use proptest::prelude::*;

#[test]
fn entities_cdata_prefixes_and_foreign_elements() {
    let xml = format!(
        "\u{FEFF}<?xml version=\"1.0\"?>\n<!-- a comment -->\n<p:Document xmlns:p=\"{PAIN002_NAMESPACE}\" xmlns:x=\"urn:other\">\
         <p:CstmrPmtStsRpt><p:GrpHdr><p:MsgId> A&amp;B&#x4E2D;<![CDATA[<c>]]> </p:MsgId><x:MsgId>ignored</x:MsgId></p:GrpHdr>\
         <p:OrgnlGrpInfAndSts><p:OrgnlMsgId>O1</p:OrgnlMsgId><p:GrpSts>ACCP</p:GrpSts></p:OrgnlGrpInfAndSts>\
         </p:CstmrPmtStsRpt></p:Document>\n<?pi after?>\n"
    );
    let r = parse_pain002(xml.as_bytes()).unwrap();
    assert_eq!(r.message_id, "A&B中<c>");
    assert_eq!(r.group_status.as_deref(), Some("ACCP"));
}

#[test]
fn billion_laughs_is_refused() {
    let mut xml =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE Document [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        xml.push_str(&format!(
            " <!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    xml.push_str(&format!("]>\n<Document xmlns=\"{PAIN002_NAMESPACE}\"><CstmrPmtStsRpt><GrpHdr><MsgId>&lol9;</MsgId></GrpHdr></CstmrPmtStsRpt></Document>"));
    let e = err_of(parse_pain002(xml.as_bytes()));
    assert!(matches!(e, BankError::DtdRefused { .. }), "{e:?}");
    assert!(e.to_string().contains("DOCTYPE"));
    assert!(matches!(
        parse_camt054(xml.as_bytes()),
        Err(BankError::DtdRefused { .. })
    ));
}

#[test]
fn external_entities_are_refused() {
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
         <Document xmlns=\"{PAIN002_NAMESPACE}\"><CstmrPmtStsRpt>&x;</CstmrPmtStsRpt></Document>"
    );
    assert!(matches!(
        parse_pain002(xxe.as_bytes()),
        Err(BankError::DtdRefused { .. })
    ));
    // Without a DTD an unknown entity is undefined, never looked up.
    let undefined =
        pain002_doc("<OrgnlGrpInfAndSts><OrgnlMsgId>&x;</OrgnlMsgId></OrgnlGrpInfAndSts>");
    assert!(matches!(
        parse_pain002(undefined.as_bytes()),
        Err(BankError::UndefinedEntity { .. })
    ));
}

#[test]
fn truncated_documents_are_rejected_cleanly() {
    let doc = fixture("pain002-accepted.xml");
    let end = doc.windows(11).position(|w| w == b"</Document>").unwrap() + 11;
    for cut in 0..end {
        assert!(parse_pain002(&doc[..cut]).is_err(), "cut at {cut}");
    }
    assert!(parse_pain002(&doc[..end]).is_ok());
    let cut = doc.windows(13).position(|w| w == b"</TxInfAndSts").unwrap();
    assert!(matches!(
        parse_pain002(&doc[..cut]),
        Err(BankError::Truncated { open }) if open > 3
    ));
    let camt = fixture("camt054-booked.xml");
    assert!(parse_camt054(&camt[..camt.len() / 2]).is_err());
}

#[test]
fn wrong_namespace_or_root_is_rejected() {
    let camt = fixture("camt054-booked.xml");
    let e = err_of(parse_pain002(&camt));
    assert!(matches!(e, BankError::WrongDocument { .. }), "{e:?}");
    assert!(e.to_string().contains("camt.054.001.08"), "{e}");
    let old = String::from_utf8(fixture("pain002-accepted.xml"))
        .unwrap()
        .replace("pain.002.001.11", "pain.002.001.03");
    assert!(matches!(
        parse_pain002(old.as_bytes()),
        Err(BankError::WrongDocument { .. })
    ));
    let no_ns = "<Document><CstmrPmtStsRpt/></Document>";
    assert!(matches!(
        parse_pain002(no_ns.as_bytes()),
        Err(BankError::WrongDocument { .. })
    ));
    let wrong_root = format!("<Doc xmlns=\"{PAIN002_NAMESPACE}\"/>");
    assert!(matches!(
        parse_pain002(wrong_root.as_bytes()),
        Err(BankError::WrongDocument { .. })
    ));
    let undeclared = "<p:Document xmlns=\"x\"/>";
    assert!(matches!(
        parse_pain002(undeclared.as_bytes()),
        Err(BankError::Malformed { .. })
    ));
}

#[test]
fn structural_limits() {
    let deep = pain002_doc(&"<A>".repeat(100));
    assert!(matches!(
        parse_pain002(deep.as_bytes()),
        Err(BankError::TooDeep { limit: 64, .. })
    ));
    let big = vec![b' '; MAX_INPUT_BYTES + 1];
    assert!(matches!(
        parse_pain002(&big),
        Err(BankError::InputTooLarge { .. })
    ));
    let mut bad = fixture("pain002-accepted.xml");
    bad[60] = 0xFF;
    assert!(matches!(
        parse_pain002(&bad),
        Err(BankError::InvalidUtf8 { offset: 60 })
    ));
    let gbk = String::from_utf8(fixture("pain002-accepted.xml"))
        .unwrap()
        .replace("encoding=\"UTF-8\"", "encoding=\"GB2312\"");
    assert!(matches!(
        parse_pain002(gbk.as_bytes()),
        Err(BankError::UnsupportedDeclaration { .. })
    ));
    let control =
        pain002_doc("<OrgnlGrpInfAndSts><OrgnlMsgId>a\u{1}</OrgnlMsgId></OrgnlGrpInfAndSts>");
    assert!(matches!(
        parse_pain002(control.as_bytes()),
        Err(BankError::ForbiddenCharacter { .. })
    ));
    let nul_ref =
        pain002_doc("<OrgnlGrpInfAndSts><OrgnlMsgId>a&#1;</OrgnlMsgId></OrgnlGrpInfAndSts>");
    assert!(parse_pain002(nul_ref.as_bytes()).is_err());
    let two_roots = format!(
        "{}<Document xmlns=\"{PAIN002_NAMESPACE}\"/>",
        pain002_doc(ORIGINAL_GROUP)
    );
    assert!(matches!(
        parse_pain002(two_roots.as_bytes()),
        Err(BankError::ContentOutsideRoot { .. })
    ));
    let trailing = format!("{}junk", pain002_doc(ORIGINAL_GROUP));
    assert!(matches!(
        parse_pain002(trailing.as_bytes()),
        Err(BankError::ContentOutsideRoot { .. })
    ));
    let mismatched =
        pain002_doc("<OrgnlGrpInfAndSts><OrgnlMsgId>O</OrgnlMsgNmId></OrgnlGrpInfAndSts>");
    assert!(matches!(
        parse_pain002(mismatched.as_bytes()),
        Err(BankError::Malformed { .. })
    ));
    let long = pain002_doc(&format!(
        "<OrgnlGrpInfAndSts><OrgnlMsgId>{}</OrgnlMsgId></OrgnlGrpInfAndSts>",
        "x".repeat(MAX_EXTRACTED_CHARS + 1)
    ));
    assert!(matches!(
        parse_pain002(long.as_bytes()),
        Err(BankError::InvalidValue { .. })
    ));
    assert!(matches!(
        parse_pain002(b""),
        Err(BankError::Truncated { open: 0 })
    ));
}

#[test]
fn errors_never_carry_element_text() {
    let secret = "PIN Ab3k9Qz7";
    let doc = pain002_doc(&format!(
        "<OrgnlGrpInfAndSts><OrgnlMsgId>{secret}{}</OrgnlMsgId></OrgnlGrpInfAndSts>",
        "x".repeat(MAX_EXTRACTED_CHARS)
    ));
    let e = err_of(parse_pain002(doc.as_bytes())).to_string();
    assert!(!e.contains("Ab3k9Qz7"), "{e}");
    let camt = String::from_utf8(fixture("camt054-booked.xml"))
        .unwrap()
        .replace(
            "<CdtDbtInd>DBIT</CdtDbtInd>",
            "<CdtDbtInd>Ab3k9Qz7</CdtDbtInd>",
        );
    let e = err_of(parse_camt054(camt.as_bytes())).to_string();
    assert!(!e.contains("Ab3k9Qz7"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_pain002(&bytes);
        let _ = parse_camt054(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let names = ["pain002-accepted.xml", "pain002-rejected.xml",
                     "pain002-group-accepted.xml", "camt054-booked.xml"];
        let mut doc = fixture(names[which]);
        for (at, byte) in edits {
            let i = at.index(doc.len());
            doc[i] = byte;
        }
        let _ = parse_pain002(&doc);
        let _ = parse_camt054(&doc);
    }
}
