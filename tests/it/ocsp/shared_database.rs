//! Two stations of one installation on one PostgreSQL database: desk 1 serves OCSP, desk 2
//! revokes, and desk 1's answers (also the kept ones, asked without a nonce) say revoked.

use super::{Serve, eventually, openssl_ocsp};
use crate::fleet::Fleet;
use crate::support::run_ok;
use std::process::Command;

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
    let der_path = fleet.tmp().join("unit.der");
    std::fs::write(&der_path, hex::decode(der).unwrap()).unwrap();
    let cert = fleet.tmp().join("unit.pem");
    run_ok(Command::new("openssl").args([
        "x509",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    let ca = desk1.dir.join("ca/ca.pem");
    let serve = Serve::start(&desk1.config());
    let ask = || {
        openssl_ocsp(&[
            "-issuer",
            ca.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-url",
            &serve.url,
            "-CAfile",
            ca.to_str().unwrap(),
            "-no_nonce",
        ])
    };
    let (ok, out) = ask();
    assert!(
        ok && out.contains(": good") && out.contains("Response verify OK"),
        "{out}"
    );

    let desk2 = fleet.desk(2);
    desk2.json(&[
        "order",
        "revoke",
        &no,
        "--reason",
        "keyCompromise",
        "--operator",
        "desk-2-operator",
    ]);
    let out = eventually("desk 1 answers revoked after desk 2's revocation", || {
        let (ok, out) = ask();
        (ok && out.contains(": revoked")).then_some(out)
    });
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(serve.stop().success());
}
