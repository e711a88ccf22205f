//! Issue 7: token faults. PIN retry flags honoured before any login attempt, a locked PIN, a
//! wrong SO PIN, a full token: each a clear error, the order resumable, nothing lost. SoftHSM
//! never locks or fills up, so a locking/full token is simulated by the token layer's test-only
//! fault simulator (`KEYSTATION_TOKEN_SIM`, PKCS#11 flags and return values; test builds only,
//! the `test-hooks` feature). The PIN faults are also run against the project's test token
//! (`libkstoken.so`, issue 18 item 4), which counts wrong PINs and locks for real.

use crate::station::{TestStation, full_order, order_json};
use crate::support::items;
use serde_json::json;
use std::path::{Path, PathBuf};

fn sim_file(st: &TestStation) -> PathBuf {
    st.tmp().join("token-sim.json")
}

fn set_sim(st: &TestStation, state: serde_json::Value) {
    std::fs::write(sim_file(st), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
}

fn sim_left(st: &TestStation, serial: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sim_file(st)).unwrap()).unwrap();
    v["tokens"][serial]["user_tries_left"].as_u64().unwrap()
}

fn run(st: &TestStation, args: &[&str]) -> (Option<i32>, String) {
    let sim = sim_file(st);
    let out = st.run(args, &[("KEYSTATION_TOKEN_SIM", sim.to_str().unwrap())]);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn token_flags(st: &TestStation, label: &str) -> serde_json::Value {
    let sim = sim_file(st);
    let out = st.run(
        &["token", "list", "--json"],
        &[("KEYSTATION_TOKEN_SIM", sim.to_str().unwrap())],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    items(&v["tokens"])
        .iter()
        .find(|t| t["token"]["label"] == label)
        .unwrap()["token"]
        .clone()
}

fn serial_of(st: &TestStation, no: &str) -> String {
    st.json(&["order", "show", no])["token"]["token_serial"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wrong_pin_file(dir: &Path) -> PathBuf {
    let p = dir.join("wrong.pin");
    if !p.exists() {
        keystation::station::hsm::write_secret_file(&p, "definitely-wrong").unwrap();
    }
    p
}

#[test]
fn pin_retry_flags_are_honoured_before_any_login_attempt() {
    let st = TestStation::new();
    st.import_approved(&order_json("TF-1", "legal_rep_phone", "company", "main"));
    st.ok(&["provision", "TF-1"]);
    let serial = serial_of(&st, "TF-1");
    set_sim(
        &st,
        json!({"tokens": {serial.clone(): {"max_user_tries": 3, "user_tries_left": 3}}}),
    );
    let wrong = wrong_pin_file(st.tmp());
    let show = [
        "seal",
        "show",
        "--token",
        "TF-1",
        "--pin-file",
        wrong.to_str().unwrap(),
    ];

    let (code, text) = run(&st, &show);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("wrong user PIN") && text.contains(&serial),
        "{text}"
    );
    assert!(
        !text.contains("definitely-wrong"),
        "the PIN leaked into a message"
    );
    let f = token_flags(&st, "TF-1");
    assert_eq!(
        (
            f["user_pin_count_low"].as_bool(),
            f["user_pin_final_try"].as_bool()
        ),
        (Some(true), Some(false))
    );

    let (_, text) = run(&st, &show);
    assert!(text.contains("wrong user PIN"), "{text}");
    assert_eq!(token_flags(&st, "TF-1")["user_pin_final_try"], true);
    assert_eq!(sim_left(&st, &serial), 1);

    // On the final try the station does not even attempt the login.
    let (code, text) = run(&st, &show);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("final try") && text.contains("will not risk locking it"),
        "{text}"
    );
    assert_eq!(
        sim_left(&st, &serial),
        1,
        "a login was attempted on the final try"
    );

    // A locked PIN: a clear message with the way out.
    set_sim(
        &st,
        json!({"tokens": {serial.clone(): {"max_user_tries": 3, "user_tries_left": 0}}}),
    );
    let (code, text) = run(&st, &show);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("user PIN is locked") && text.contains("unlock it with the SO PIN"),
        "{text}"
    );
    assert_eq!(token_flags(&st, "TF-1")["user_pin_locked"], true);
}

#[test]
fn count_low_warns_and_proceeds_a_locked_pin_stops_and_reinit_recovers() {
    let st = TestStation::new();
    set_sim(&st, json!({"tokens": {}}));
    for no in ["TF-2A", "TF-2B"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
        // Stop after the certificate is on the token: resuming needs a user login.
        st.provision_failing_at(no, "provision.write_seals.started");
    }
    let (a, b) = (serial_of(&st, "TF-2A"), serial_of(&st, "TF-2B"));
    set_sim(
        &st,
        json!({"tokens": {
            a.clone(): {"max_user_tries": 3, "user_tries_left": 2},
            b.clone(): {"max_user_tries": 3, "user_tries_left": 0},
        }}),
    );
    // Count low: the station's PIN is right, so it proceeds — and says so.
    let (code, text) = run(&st, &["provision", "TF-2A"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("retry counter is low"), "{text}");
    assert_eq!(
        sim_left(&st, &a),
        3,
        "a successful login resets the counter"
    );

    // Locked: a clear error, the order kept.
    let (code, text) = run(&st, &["provision", "TF-2B"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("user PIN is locked"), "{text}");
    assert_eq!(st.json(&["order", "show", "TF-2B"])["state"], "Failed");
    // --reinit: C_InitToken with the derived SO PIN starts the token over (unlocking it), once
    // a second operator approved it.
    crate::support::approved_reinit(&st.config(), "TF-2B");
    let (code, text) = run(&st, &["provision", "TF-2B", "--reinit", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(st.json(&["order", "show", "TF-2B"])["state"], "Provisioned");
    let (code, text) = run(&st, &["check"]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_wrong_so_pin_is_a_clear_error_and_nothing_is_lost() {
    let st = TestStation::new();
    st.import_approved(&order_json("TF-3", "legal_rep_phone", "none", "main"));
    st.provision_failing_at("TF-3", "provision.generate_key.started");
    // The recorded SO PIN identity is damaged (e.g. a bad restore): the derived SO PIN is wrong.
    let (rt, mut db) = st.sqlite();
    let identity: (String,) = rt
        .block_on(
            sqlx::query_as("SELECT so_identity FROM token_bindings WHERE order_no = 'TF-3'")
                .fetch_one(&mut db),
        )
        .unwrap();
    let mut set = |v: &str| {
        rt.block_on(
            sqlx::query("UPDATE token_bindings SET so_identity = $1 WHERE order_no = 'TF-3'")
                .bind(v)
                .execute(&mut db),
        )
        .unwrap();
    };
    set("blank:damaged");
    let out = st.run(&["provision", "TF-3"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong SO PIN"), "{err}");
    assert_eq!(st.json(&["order", "show", "TF-3"])["state"], "Failed");
    set(&identity.0);
    st.ok(&["provision", "TF-3"]);
    assert_eq!(st.json(&["order", "show", "TF-3"])["state"], "Provisioned");
}

#[test]
fn a_full_token_is_a_clear_error_and_the_order_resumes() {
    let st = TestStation::new();
    // Every customer token holds at most 4 objects: key pair + certificate + ONE seal.
    set_sim(&st, json!({"tokens": {"*": {"max_objects": 4}}}));
    st.import_approved(&full_order("TF-4"));
    let (code, text) = run(&st, &["provision", "TF-4"]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("is full") && text.contains("write_seals"),
        "{text}"
    );
    assert_eq!(st.json(&["order", "show", "TF-4"])["state"], "Failed");
    // More room (a bigger key, or objects cleaned up): the order resumes where it stopped.
    set_sim(&st, json!({"tokens": {}}));
    let (code, text) = run(&st, &["provision", "TF-4", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&st, &["check"]);
    assert_eq!(code, Some(0), "{text}");
}

// Issue 18 item 4: the same faults on the test token (`libkstoken.so`), which counts wrong PINs
// and locks for real (no simulator): its own flags, set by the module, are what the station reads.

/// A station whose CA and customers' keys are on the test token, locking after 3 wrong user PINs.
fn kstoken_station() -> TestStation {
    let module = crate::testtoken::module_path();
    let st = TestStation::with_args(&crate::testtoken::sm2_on_test_token_args(&module));
    crate::testtoken::lock_after_three_tries(&st.path().join("kstoken.conf"));
    st
}

/// One login as the user of token `label` with a wrong PIN, by pkcs11-tool (an independent
/// client: the try the station refuses to make, made by someone else).
fn kstoken_wrong_login(st: &TestStation, label: &str) -> String {
    let out = std::process::Command::new("pkcs11-tool")
        .arg("--module")
        .arg(crate::testtoken::module_path())
        .args(["--token-label", label, "--login", "--pin", "env:KS_WRONG"])
        .arg("--list-objects")
        .env("KSTOKEN_CONF", st.path().join("kstoken.conf"))
        .env("KS_WRONG", "definitely-wrong")
        .output()
        .expect("pkcs11-tool (scripts/setup.sh installs opensc)");
    assert!(!out.status.success(), "a wrong PIN logged in");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn kstoken_flags(st: &TestStation, label: &str) -> serde_json::Value {
    let v = st.json(&["token", "list"]);
    items(&v["tokens"])
        .iter()
        .find(|t| t["token"]["label"] == label)
        .unwrap_or_else(|| panic!("no token {label} in {v}"))["token"]
        .clone()
}

fn kstoken_run(st: &TestStation, args: &[&str]) -> (Option<i32>, String) {
    let out = st.run(args, &[]);
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn on_the_test_token_wrong_pins_lock_for_real_and_the_station_refuses_the_final_try() {
    let st = kstoken_station();
    st.import_approved(&order_json("TK-1", "legal_rep_phone", "company", "main"));
    st.ok(&["provision", "TK-1"]);
    let wrong = wrong_pin_file(st.tmp());
    let show = [
        "seal",
        "show",
        "--token",
        "TK-1",
        "--pin-file",
        wrong.to_str().unwrap(),
    ];
    let flags = |f: &serde_json::Value| {
        (
            f["user_pin_count_low"].as_bool(),
            f["user_pin_final_try"].as_bool(),
            f["user_pin_locked"].as_bool(),
        )
    };
    assert_eq!(
        flags(&kstoken_flags(&st, "TK-1")),
        (Some(false), Some(false), Some(false))
    );

    // Two wrong PINs through the station: the module's own counter moves.
    let (code, text) = kstoken_run(&st, &show);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("wrong user PIN"), "{text}");
    assert!(!text.contains("definitely-wrong"), "the PIN leaked: {text}");
    assert_eq!(
        flags(&kstoken_flags(&st, "TK-1")),
        (Some(true), Some(false), Some(false))
    );
    let (_, text) = kstoken_run(&st, &show);
    assert!(text.contains("wrong user PIN"), "{text}");
    assert_eq!(
        flags(&kstoken_flags(&st, "TK-1")),
        (Some(true), Some(true), Some(false))
    );

    // The final try: the station does not make it, so the token is still not locked.
    let (code, text) = kstoken_run(&st, &show);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("final try") && text.contains("will not risk locking it"),
        "{text}"
    );
    assert_eq!(
        kstoken_flags(&st, "TK-1")["user_pin_locked"],
        false,
        "the station made the final try"
    );

    // Someone else makes it: the token locks for real, and the station says so with the way out.
    kstoken_wrong_login(&st, "TK-1");
    assert_eq!(kstoken_flags(&st, "TK-1")["user_pin_locked"], true);
    let (code, text) = kstoken_run(&st, &show);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("user PIN is locked") && text.contains("unlock it with the SO PIN"),
        "{text}"
    );
}

#[test]
fn on_the_test_token_count_low_proceeds_and_a_really_locked_pin_is_recovered_by_reinit() {
    let st = kstoken_station();
    for no in ["TK-2A", "TK-2B"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
        // Stop after the certificate is on the token: resuming needs a user login.
        st.provision_failing_at(no, "provision.write_seals.started");
    }
    kstoken_wrong_login(&st, "TK-2A");
    for _ in 0..3 {
        kstoken_wrong_login(&st, "TK-2B");
    }
    assert_eq!(kstoken_flags(&st, "TK-2A")["user_pin_count_low"], true);
    assert_eq!(kstoken_flags(&st, "TK-2B")["user_pin_locked"], true);

    // Count low: the station's PIN is right, so it proceeds, says so, and the module resets
    // its counter on the good login.
    let (code, text) = kstoken_run(&st, &["provision", "TK-2A"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("retry counter is low"), "{text}");
    assert_eq!(kstoken_flags(&st, "TK-2A")["user_pin_count_low"], false);

    // Locked for real: a clear error, the order kept, resumable.
    let (code, text) = kstoken_run(&st, &["provision", "TK-2B"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("user PIN is locked"), "{text}");
    assert_eq!(st.json(&["order", "show", "TK-2B"])["state"], "Failed");
    // --reinit: C_InitToken with the derived SO PIN starts the token over, which the module
    // allows on a user-locked token (its SO PIN is not locked).
    crate::support::approved_reinit(&st.config(), "TK-2B");
    let (code, text) = kstoken_run(&st, &["provision", "TK-2B", "--reinit", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(st.json(&["order", "show", "TK-2B"])["state"], "Provisioned");
    assert_eq!(kstoken_flags(&st, "TK-2B")["user_pin_locked"], false);
    let (code, text) = kstoken_run(&st, &["check"]);
    assert_eq!(code, Some(0), "{text}");
}
