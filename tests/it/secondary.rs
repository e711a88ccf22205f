//! Issue 16 item 6: a secondary key (副锁) names its company's main-key order and is refused
//! unless that company has a live main key — at approval, and again when provisioning starts;
//! with one it gets its own key pair, certificate and PIN and no seals, and `order show` lists
//! the company's keys together. Real SoftHSM tokens, openssl and pkcs11-tool as checkers.

use crate::pg::PgDatabase;
use crate::station::{TestStation, child_station, order_json, unseal_pins};
use crate::support::{items, openssl, run_ok};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const REFUSED: &str = "E-MAIN-KEY-NOT-LIVE";

/// A secondary-key order of the Beijing company naming `main` (none: the field left out).
fn secondary(no: &str, main: Option<&str>) -> Value {
    let mut o = order_json(no, "legal_rep_bank_card", "none", "secondary");
    if let Some(main) = main {
        o["product"]["main_order_no"] = json!(main);
    }
    o
}

/// The same order for another company (Shanghai).
fn of_other_company(mut o: Value) -> Value {
    o["company"]["uscc"] = json!("91310115MA1K3BTP2B");
    o["company"]["name"] = json!("上海示例信息技术有限公司");
    o["invoice"]["title"] = json!("上海示例信息技术有限公司");
    o["invoice"]["taxpayer_id"] = json!("91310115MA1K3BTP2B");
    o
}

fn import(st: &TestStation, order: &Value) {
    let file = st.write_order(order);
    st.ok(&["order", "import", file.to_str().unwrap()]);
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `args` must be refused with the secondary-key code, naming `main`.
fn refused(st: &TestStation, args: &[&str], main: &str) {
    let out = st.run(args, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(REFUSED) && err.contains(main),
        "{args:?}: {err}"
    );
}

fn approve_refused(st: &TestStation, no: &str, main: &str) {
    refused(
        st,
        &["order", "approve", no, "--operator", "reviewer"],
        main,
    );
    assert_eq!(st.json(&["order", "show", no])["state"], "Submitted");
}

fn approve(st: &TestStation, no: &str) {
    st.ok(&["order", "approve", no, "--operator", "reviewer"]);
}

/// In the child bound to the station's SoftHSM: the secondary key's token, opened with its own
/// PIN (the vault's sealed PIN of that order, bound to that token's serial), holds no seal object; the main key's token, with its PIN, holds both (so the look can
/// see seals where there are some).
fn child_checks(dir: &Path) {
    let st_conf = dir.join("softhsm2.conf");
    let data_objects = |label: &str| -> String {
        let (pin, _) = unseal_pins(dir, label);
        let mut c = Command::new("pkcs11-tool");
        c.arg("--module")
            .arg(crate::station::softhsm_module())
            .args(["--token-label", label, "--list-objects", "--type", "data"])
            .args(["--login", "--pin", "env:KS_TEST_PIN"])
            .env("KS_TEST_PIN", pin)
            .env("SOFTHSM2_CONF", &st_conf);
        String::from_utf8_lossy(&run_ok(&mut c).stdout).into_owned()
    };
    let main = data_objects("BJ-MAIN");
    assert!(
        main.contains("seal:company") && main.contains("seal:legal_rep"),
        "{main}"
    );
    let sec = data_objects("BJ-SEC-1");
    assert!(
        !sec.contains("seal:"),
        "seal objects on a secondary key:\n{sec}"
    );
}

#[test]
fn a_secondary_key_needs_its_companys_live_main_key() {
    let Some(st) = TestStation::unless_child(&[], child_checks) else {
        return;
    };
    scenario(
        &st,
        "secondary::a_secondary_key_needs_its_companys_live_main_key",
    );
}

#[test]
fn a_secondary_key_needs_its_companys_live_main_key_on_postgres() {
    if let Some(dir) = child_station() {
        child_checks(&dir);
        return;
    }
    let pg = PgDatabase::create_blocking();
    let st = TestStation::with_args(&["--database-url", &pg.url]);
    scenario(
        &st,
        "secondary::a_secondary_key_needs_its_companys_live_main_key_on_postgres",
    );
}

/// The whole story on one station; `test_path` runs [`child_checks`] in a child.
fn scenario(st: &TestStation, test_path: &str) {
    // Validation: a secondary key that names no main order is refused at import, by field.
    let file = st.write_order(&secondary("BJ-SEC-0", None));
    let out = st.run(&["order", "import", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("product.main_order_no")
            && stderr(&out).contains("main_order_required"),
        "{}",
        stderr(&out)
    );

    // No such main order.
    import(st, &secondary("BJ-SEC-NONE", Some("BJ-NOWHERE")));
    approve_refused(st, "BJ-SEC-NONE", "BJ-NOWHERE");

    // The main key of another company, live.
    st.import_approved(&of_other_company(order_json(
        "SH-MAIN",
        "legal_rep_phone",
        "none",
        "main",
    )));
    st.json(&["provision", "SH-MAIN"]);
    import(st, &secondary("BJ-SEC-SH", Some("SH-MAIN")));
    approve_refused(st, "BJ-SEC-SH", "SH-MAIN");

    // Its own company's main key, approved but not provisioned yet: not live.
    st.import_approved(&order_json(
        "BJ-MAIN",
        "legal_rep_phone",
        "company_and_legal_rep",
        "main",
    ));
    import(st, &secondary("BJ-SEC-1", Some("BJ-MAIN")));
    approve_refused(st, "BJ-SEC-1", "BJ-MAIN");

    // Live: accepted and provisioned, with its own key pair, certificate and PIN, no seals.
    let main = st.json(&["provision", "BJ-MAIN"]);
    approve(st, "BJ-SEC-1");
    let sec = st.json(&["provision", "BJ-SEC-1"]);
    assert_eq!(sec["seals"], json!([]), "{sec}");
    assert_ne!(sec["token_serial"], main["token_serial"]);
    assert_ne!(sec["certificate_serial"], main["certificate_serial"]);
    let der = st.read_object("BJ-SEC-1", "cert", sec["key_id"].as_str().unwrap());
    let der_file = st.tmp().join("sec.der");
    std::fs::write(&der_file, der).unwrap();
    let pem = st.tmp().join("sec.pem");
    run_ok(
        Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&der_file)
            .arg("-out")
            .arg(&pem),
    );
    let (ok, msg) = openssl(&[
        "verify",
        "-CAfile",
        st.path().join("ca/ca.pem").to_str().unwrap(),
        pem.to_str().unwrap(),
    ]);
    assert!(ok && msg.contains(": OK"), "openssl verify: {msg}");

    // `order show` lists the company's keys together: the main key, then its secondaries,
    // with states, token serials and certificate serials; the other company's key is not there.
    for shown_from in ["BJ-MAIN", "BJ-SEC-1"] {
        let show = st.json(&["order", "show", shown_from]);
        let keys = items(&show["company_keys"]);
        let nos: Vec<&str> = keys
            .iter()
            .map(|k| k["order_no"].as_str().unwrap())
            .collect();
        assert_eq!(
            nos,
            ["BJ-MAIN", "BJ-SEC-1", "BJ-SEC-NONE", "BJ-SEC-SH"],
            "{shown_from}: {keys:?}"
        );
        let (m, s) = (&keys[0], &keys[1]);
        assert_eq!(m["key_role"], "main");
        assert_eq!(m["state"], "Provisioned");
        assert_eq!(m["token_serial"], main["token_serial"]);
        assert_eq!(m["certificates"][0]["serial"], main["certificate_serial"]);
        assert_eq!(m["certificates"][0]["status"], "on_token");
        assert_eq!(s["key_role"], "secondary");
        assert_eq!(s["main_order_no"], "BJ-MAIN");
        assert_eq!(s["state"], "Provisioned");
        assert_eq!(s["token_serial"], sec["token_serial"]);
        assert_eq!(s["certificates"][0]["serial"], sec["certificate_serial"]);
        assert_eq!(keys[2]["state"], "Submitted");
        assert_eq!(keys[2]["token_serial"], Value::Null);
    }
    let text = st.ok(&["order", "show", "BJ-MAIN"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("company key  BJ-SEC-1 (secondary of BJ-MAIN) Provisioned")),
        "{text}"
    );
    let sh = st.json(&["order", "show", "SH-MAIN"]);
    assert_eq!(strings_of(&sh["company_keys"]), ["SH-MAIN"]);

    // Seal objects, read with each key's own PIN (in a child bound to the SoftHSM).
    st.run_child(test_path, &[]);

    // Approved while the main key was live, then the main key revoked: provisioning refuses it
    // before any token is touched, and a new secondary is refused at approval. The secondary
    // made before stays as it is.
    import(st, &secondary("BJ-SEC-2", Some("BJ-MAIN")));
    approve(st, "BJ-SEC-2");
    import(st, &secondary("BJ-SEC-3", Some("BJ-MAIN")));
    st.revoke(&[
        "order",
        "revoke",
        "BJ-MAIN",
        "--reason",
        "keyCompromise",
        "--operator",
        "reviewer",
    ]);
    approve_refused(st, "BJ-SEC-3", "BJ-MAIN");
    refused(st, &["provision", "BJ-SEC-2"], "BJ-MAIN");
    // The batch passes over it (left Approved, not failed) and provisions what it can.
    st.import_approved(&order_json("BJ-MAIN-2", "legal_rep_phone", "none", "main"));
    let batch = st.json(&["provision", "--all-approved"]);
    let done: Vec<&str> = items(&batch["ok"])
        .iter()
        .map(|r| r["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(done, ["BJ-MAIN-2"], "{batch}");
    assert_eq!(batch["failed"], json!([]), "{batch}");
    let two = st.json(&["order", "show", "BJ-SEC-2"]);
    assert_eq!(two["state"], "Approved");
    assert_eq!(two["token"], Value::Null);
    let one = st.json(&["order", "show", "BJ-SEC-1"]);
    assert_eq!(one["state"], "Provisioned");
    assert_eq!(one["certificates"][0]["status"], "on_token");
}

fn strings_of(v: &Value) -> Vec<String> {
    items(v)
        .iter()
        .map(|k| k["order_no"].as_str().unwrap().to_string())
        .collect()
}
