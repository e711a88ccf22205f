//! Two stations of one installation on one PostgreSQL database: desk 1 serves OCSP, desk 2
//! revokes, and desk 1's answers (also the kept ones, asked without a nonce) say revoked.

use super::{Serve, ask_with, eventually};
use crate::fleet::Fleet;
use crate::support::{certificate_as_pem, revoke_order_args};

#[test]
fn a_revocation_at_another_station_reaches_the_answers() {
    let fleet = Fleet::new(2);
    let no = fleet.approved_orders(1).remove(0);
    let desk1 = fleet.desk(1);
    desk1.json(&["provision", "--all-approved"]);
    let serial = desk1.json(&["order", "show", &no])["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let der = fleet.sql(&format!(
        "SELECT encode(der, 'hex') FROM certificates WHERE serial = '{serial}'"
    ))[0][0]
        .clone();
    let cert = certificate_as_pem(fleet.tmp(), "unit", &hex::decode(der).unwrap());
    let ca = desk1.dir.join("ca/ca.pem");
    let serve = Serve::start(&desk1.config());
    let ask = || ask_with(&serve.url, &ca, &cert, &["-no_nonce"]);
    let (ok, out) = ask();
    assert!(
        ok && out.contains(": good") && out.contains("Response verify OK"),
        "{out}"
    );

    let desk2 = fleet.desk(2);
    desk2.revoke(&revoke_order_args(&no, "desk-2-operator"));
    let out = eventually("desk 1 answers revoked after desk 2's revocation", || {
        let (ok, out) = ask();
        (ok && out.contains(": revoked")).then_some(out)
    });
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(serve.stop().success());
}
