//! Unit tests of the secondary-key rule.

#![allow(clippy::unwrap_used)]
use super::*;
use time::macros::datetime;

const USCC: &str = "9144030071526726XG";
const NOW: OffsetDateTime = datetime!(2026-12-06 08:00 UTC);

fn no(s: &str) -> OrderNo {
    OrderNo::parse(s).unwrap()
}

fn secondary(main: Option<&str>) -> Order {
    // The CA's sample order (a Shenzhen company), turned into a secondary key.
    let mut o = crate::ca::testkit::sample_order();
    o.order_no = OrderNo::parse("SZ-SEC-1").unwrap();
    o.product.key_role = KeyRole::Secondary;
    o.product.main_order_no = main.map(no);
    o
}

fn cert(serial: &str, status: CertificateStatus, not_after: OffsetDateTime) -> MainCertificate {
    MainCertificate {
        serial: serial.into(),
        status,
        not_after,
        token_serial: Some("TOK-MAIN".into()),
    }
}

fn live_main() -> MainKeyFacts {
    MainKeyFacts {
        order_no: no("SZ-MAIN-1"),
        key_role: KeyRole::Main,
        uscc: USCC.into(),
        bound_token: Some("TOK-MAIN".into()),
        certificates: vec![cert(
            "0a",
            CertificateStatus::OnToken,
            datetime!(2027-12-06 00:00 UTC),
        )],
    }
}

#[test]
fn a_main_key_needs_no_main_key() {
    let mut o = secondary(None);
    o.product.key_role = KeyRole::Main;
    assert_eq!(check_main_key(&o, None, NOW), Ok(None));
}

#[test]
fn a_secondary_key_is_accepted_against_a_live_main_key_of_its_company() {
    let live = check_main_key(&secondary(Some("SZ-MAIN-1")), Some(&live_main()), NOW);
    assert_eq!(
        live,
        Ok(Some(LiveMainKey {
            order_no: no("SZ-MAIN-1"),
            token_serial: "TOK-MAIN".into(),
            certificate_serial: "0a".into(),
        }))
    );
}

#[test]
fn a_secondary_key_is_refused_without_a_live_main_key() {
    let o = secondary(Some("SZ-MAIN-1"));
    let refused = |m: MainKeyFacts| check_main_key(&o, Some(&m), NOW).unwrap_err();
    let not_live = MainKeyRefusal::NotLive(no("SZ-MAIN-1"));

    assert_eq!(
        check_main_key(&secondary(None), Some(&live_main()), NOW),
        Err(MainKeyRefusal::NotNamed)
    );
    assert_eq!(
        check_main_key(&o, None, NOW),
        Err(MainKeyRefusal::NotFound(no("SZ-MAIN-1")))
    );
    // Facts about some other order are no facts about the named one.
    let mut other_no = live_main();
    other_no.order_no = no("SZ-MAIN-2");
    assert_eq!(refused(other_no), MainKeyRefusal::NotFound(no("SZ-MAIN-1")));

    let mut m = live_main();
    m.key_role = KeyRole::Secondary;
    assert_eq!(refused(m), MainKeyRefusal::NotMainKey(no("SZ-MAIN-1")));

    let mut m = live_main();
    m.uscc = "91110000600037341L".into();
    let e = refused(m);
    assert_eq!(
        e,
        MainKeyRefusal::OtherCompany {
            main: no("SZ-MAIN-1"),
            uscc: "91110000600037341L".into(),
            expected: USCC.into(),
        }
    );
    assert!(e.to_string().contains("SZ-MAIN-1"), "{e}");

    for status in [
        CertificateStatus::Revoked,
        CertificateStatus::Reserved,
        CertificateStatus::Issued,
    ] {
        let mut m = live_main();
        m.certificates[0].status = status;
        assert_eq!(refused(m), not_live, "{status:?}");
    }

    // Expired: notAfter at or before now.
    let mut m = live_main();
    m.certificates[0].not_after = NOW;
    assert_eq!(refused(m), not_live);

    // The token released (lost, rejected): no bound token.
    let mut m = live_main();
    m.bound_token = None;
    assert_eq!(refused(m), not_live);

    // A certificate meant for an earlier token does not count for the bound one.
    let mut m = live_main();
    m.bound_token = Some("TOK-NEW".into());
    assert_eq!(refused(m), not_live);

    let mut m = live_main();
    m.certificates.clear();
    assert_eq!(refused(m), not_live);
    assert!(not_live.to_string().contains("SZ-MAIN-1"));
}

#[test]
fn one_live_certificate_among_dead_ones_is_enough() {
    let mut m = live_main();
    m.certificates.insert(
        0,
        cert(
            "09",
            CertificateStatus::Revoked,
            datetime!(2027-12-06 00:00 UTC),
        ),
    );
    let live = check_main_key(&secondary(Some("SZ-MAIN-1")), Some(&m), NOW).unwrap();
    assert_eq!(live.map(|l| l.certificate_serial), Some("0a".into()));
}

struct Key(&'static str, KeyRole, Option<&'static str>);

impl CompanyKey for Key {
    fn order_no(&self) -> &str {
        self.0
    }
    fn key_role(&self) -> KeyRole {
        self.1
    }
    fn main_order_no(&self) -> Option<&str> {
        self.2
    }
}

#[test]
fn company_keys_list_each_main_key_then_its_secondaries() {
    use KeyRole::{Main, Secondary};
    let keys = vec![
        Key("S1", Secondary, Some("M2")),
        Key("M1", Main, None),
        Key("S2", Secondary, Some("M1")),
        Key("S3", Secondary, Some("GONE")),
        Key("M2", Main, None),
        Key("S4", Secondary, Some("M1")),
    ];
    let order: Vec<&str> = arrange_company_keys(keys).iter().map(|k| k.0).collect();
    assert_eq!(order, ["M1", "S2", "S4", "M2", "S1", "S3"]);
}
