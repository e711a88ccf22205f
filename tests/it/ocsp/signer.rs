//! The delegated OCSP signer over its life: an installation made before it existed has none
//! (`serve` refuses, naming the command that makes one); `ca ocsp-signer`, approved by a second
//! officer, makes it, audited; asked for and approved again it renews it, and a running server answers with the new signer within seconds.

use super::{Serve, ask_with, ca_pem, eventually, station_with_certificate};
use crate::support::{SECOND_OFFICER, audit_records, operator_credential, run_ok};
use std::process::Command;

fn der_of(pem: &std::path::Path) -> Vec<u8> {
    run_ok(
        Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(pem),
    )
    .stdout
}

#[test]
fn ca_ocsp_signer_makes_and_renews_the_signer_and_serve_takes_it_up() {
    let (st, cert, _) = station_with_certificate("OCSP-SIGNER-1");
    let ca = ca_pem(&st);
    let signer_pem = st.path().join("ca/ocsp-signer.pem");
    let audit = st.json(&["audit", "show"]);
    assert_eq!(
        audit_records(&audit, "ca.ocsp_signer_issued").len(),
        1,
        "init made one"
    );

    // An installation from before: no signer recorded. serve says what to do (exit 2).
    let (rt, mut db) = st.sqlite();
    rt.block_on(
        sqlx::query("DELETE FROM station_material WHERE name LIKE 'ocsp_signer%'").execute(&mut db),
    )
    .unwrap();
    let out = st.run(&["serve", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("E-OCSP-NO-SIGNER"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Four-eyes: one officer asks, a second approves (`four_eyes::ocsp_signer_by_two`).
    let officer = operator_credential(&st.config(), "signer-officer").unwrap();
    let second = operator_credential(&st.config(), SECOND_OFFICER).unwrap();
    let by_two =
        || crate::four_eyes::ocsp_signer_by_two(&st.config(), &officer, &second)["carried"].clone();
    let first = by_two();
    assert!(first["replaces"].is_null(), "{first}");
    let first_der = der_of(&signer_pem);
    let serve = Serve::start(&st.config());
    let respout = st.tmp().join("resp.der");
    let ask = || {
        let (ok, out) = ask_with(
            &serve.url,
            &ca,
            &cert,
            &["-respout", respout.to_str().unwrap()],
        );
        assert!(
            ok && out.contains(": good") && out.contains("Response verify OK"),
            "{out}"
        );
        std::fs::read(&respout).unwrap()
    };
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(&ask(), &first_der),
        "the answer carries the signer's certificate"
    );

    let renewed = by_two();
    assert_eq!(renewed["replaces"], first["serial"], "{renewed}");
    let second_der = der_of(&signer_pem);
    assert_ne!(first_der, second_der);
    eventually("the running server answers with the renewed signer", || {
        contains(&ask(), &second_der).then_some(String::new())
    });
    let audit = st.json(&["audit", "show"]);
    let issued = audit_records(&audit, "ca.ocsp_signer_issued");
    assert_eq!(
        issued.len(),
        3,
        "init, the first for the old installation, the renewal"
    );
    assert!(serve.stop().success());
    st.ok(&["audit", "verify"]);
}
