//! Retiring a returned key (退锁) end to end on SoftHSM: four-eyes, then `retire run` revokes the
//! live certificate cessationOfOperation (the published CRL says so, as `openssl crl` reads
//! it), wipes the key with `C_InitToken` under its derived SO PIN (pkcs11-tool sees the retired
//! label, no object, and the old PIN no longer opens it), closes the binding; a run stopped at
//! a step resumes; and the wiped key is then provisioned for another order, whose certificate
//! `openssl verify` accepts under the CA.

use super::*;
use crate::delivery::sms_order;
use crate::support::{audit_records, certificate_as_pem};

const RETIRED: &str = "keystation-retired";

/// `pkcs11-tool ARGS` on the station's SoftHSM store; (success, stdout + stderr).
fn pkcs11_tool(st: &TestStation, args: &[&str], pin: Option<&str>) -> (bool, String) {
    let mut cmd = std::process::Command::new("pkcs11-tool");
    cmd.env("SOFTHSM2_CONF", st.data_dir().join("softhsm2.conf"))
        .args(["--module", crate::station::softhsm_module()])
        .args(args);
    if let Some(pin) = pin {
        cmd.env("KS_TEST_PIN", pin)
            .args(["--login", "--pin", "env:KS_TEST_PIN"]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The token section of `pkcs11-tool --list-token-slots` for the token with `serial`.
fn token_listing(st: &TestStation, serial: &str) -> String {
    let (ok, text) = pkcs11_tool(st, &["--list-token-slots"], None);
    assert!(ok, "{text}");
    text.split("Slot ")
        .find(|slot| {
            slot.lines()
                .any(|l| l.trim_start().starts_with("serial num") && l.trim_end().ends_with(serial))
        })
        .unwrap_or_else(|| panic!("no token with serial {serial}: {text}"))
        .to_string()
}

async fn request_retire(st: &TestStation, no: &str) -> String {
    let r = st
        .json(&[
            "retire",
            "request",
            no,
            "--reason",
            "企业注销，退回证书介质",
            "--evidence",
            "营业执照注销证明 + 退回的 USB key",
            "--operator",
            ALICE,
        ])
        .await;
    assert_eq!(r["state"], "requested", "{r:#}");
    assert_eq!(r["kind"], "retire", "{r:#}");
    r["id"].as_str().unwrap().to_string()
}

/// A certificate of `no` in the store, as a PEM file; its serial and PEM path.
async fn certificate_file(st: &TestStation, no: &str) -> (String, std::path::PathBuf) {
    let certs = certificates_of(st, no).await;
    assert_eq!(certs.len(), 1, "{no}: {certs:?}");
    let serial = certs[0].serial.to_string();
    let pem = certificate_as_pem(st.dir.path(), &serial, &certs[0].der);
    (serial, pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_key_is_wiped_under_four_eyes_and_reused_as_a_blank_key() {
    let st = TestStation::init().await;
    let (no, pin) = delivered_sms_order(&st, "DESK-RET1").await;
    let (old_cert, _) = certificate_file(&st, &no).await;
    let id = request_retire(&st, &no).await;

    // Four-eyes: not run before approval, never approved by the requester; the key untouched.
    let out = st.run(&["retire", "run", &id, "--operator", ALICE]).await;
    assert_refused(&out, "E-REQUEST-TRANSITION");
    let out = st
        .run(&["retire", "approve", &id, "--operator", ALICE])
        .await;
    assert_refused(&out, "E-REQUEST-SAME-OPERATOR");
    assert!(pin_opens_token(&st, &no, &pin));
    // A PIN reset request is not a retire request.
    let reset = request_reset(&st, &no).await;
    let out = st.run(&["retire", "run", &reset, "--operator", BOB]).await;
    assert_refused(&out, "E-USAGE");

    let approved = st
        .json(&["retire", "approve", &id, "--operator", BOB])
        .await;
    assert_eq!(approved["state"], "approved");
    assert!(pin_opens_token(&st, &no, &pin), "approval touches no key");

    let run = st
        .json(&["retire", "run", &id, "--operator", "carol"])
        .await;
    assert_eq!(
        run["steps_run"],
        serde_json::json!(["revoke", "wipe", "close"]),
        "{run:#}"
    );
    assert_eq!(run["certificates_revoked"], serde_json::json!([old_cert]));
    assert_eq!(run["label"], RETIRED);
    let serial = run["token_serial"].as_str().unwrap().to_string();

    // pkcs11-tool: the same key, relabelled, with no user PIN and no object left; the old PIN
    // opens nothing.
    let slot = token_listing(&st, &serial);
    assert!(slot.contains(RETIRED), "{slot}");
    assert!(!slot.contains(&no), "{slot}");
    assert!(!slot.contains("PIN initialized"), "{slot}");
    let (ok, objects) = pkcs11_tool(&st, &["--token-label", RETIRED, "--list-objects"], None);
    assert!(ok, "{objects}");
    assert!(!objects.contains("Certificate Object"), "{objects}");
    assert!(!objects.contains("Public Key Object"), "{objects}");
    let (opened, _) = pkcs11_tool(
        &st,
        &["--token-label", RETIRED, "--list-objects"],
        Some(&pin),
    );
    assert!(!opened, "the old PIN must not open the wiped key");

    // Revoked cessationOfOperation, in the CRL; the order Revoked, its binding closed.
    assert_eq!(st.order_state(&no).await, "Revoked");
    let text = crl_lists(&st, &old_cert);
    assert!(text.contains("Cessation Of Operation"), "{text}");
    assert!(!has_active_binding(&st, &no).await);

    // The PIN reset asked for the wiped key is cancelled with it.
    let reset = st.json(&["pin-reset", "show", &reset]).await;
    assert_eq!(reset["state"], "cancelled", "{reset:#}");

    // Journaled and audited, both operators named; a settled request does not run again, and
    // the order has no key left to retire.
    let shown = st.json(&["retire", "show", &id]).await;
    assert_eq!(shown["state"], "done", "{shown:#}");
    assert_eq!(shown["requested_by"], ALICE);
    assert_eq!(shown["decided_by"], BOB);
    assert_eq!(shown["steps"].as_array().unwrap().len(), 3, "{shown:#}");
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    assert_eq!(audit_records(&audit, "token.retired").len(), 1);
    assert_eq!(audit_records(&audit, "retire.wipe.done").len(), 1);
    assert_eq!(audit_records(&audit, "order.revoked").len(), 1);
    let out = st.run(&["retire", "run", &id, "--operator", "carol"]).await;
    assert_refused(&out, "E-REQUEST-TRANSITION");
    let out = st
        .run(&[
            "retire",
            "request",
            &no,
            "--reason",
            "again",
            "--evidence",
            "e",
            "--operator",
            ALICE,
        ])
        .await;
    assert_refused(&out, "E-RETIRE-REFUSED");

    // The station's invariants hold with a retired key waiting for reuse.
    st.ok(&["check"]).await;

    // The wiped key is a blank key for another order: provisioned onto it, by serial.
    let next = st.approved(sms_order("DESK-RET2", "13800138000")).await;
    st.ok(&["provision", &next, "--token", &serial]).await;
    let slot = token_listing(&st, &serial);
    assert!(slot.contains(&next), "{slot}");
    assert!(!slot.contains(RETIRED), "{slot}");
    assert!(slot.contains("PIN initialized"), "{slot}");
    let (ok, objects) = pkcs11_tool(&st, &["--token-label", &next, "--list-objects"], None);
    assert!(ok && objects.contains("Certificate Object"), "{objects}");
    let (_, pem) = certificate_file(&st, &next).await;
    verifies_under_the_ca(&st, &pem);
    // ... once: it is bound to that order now, not waiting for reuse.
    let other = st.approved(sms_order("DESK-RET3", "13800138000")).await;
    let out = st.run(&["provision", &other, "--token", &serial]).await;
    assert!(!out.status.success());
    st.ok(&["audit", "verify"]).await;
    st.ok(&["check"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_run_stopped_at_a_step_resumes_without_repeating_what_was_done() {
    let st = TestStation::init().await;
    let (no, _pin) = delivered_sms_order(&st, "DESK-RET4").await;
    let id = request_retire(&st, &no).await;
    st.ok(&["retire", "approve", &id, "--operator", BOB]).await;

    // Killed after the revocation committed, before it was journaled: the order is Revoked.
    let out = st
        .run_env(
            &["retire", "run", &id, "--operator", "carol"],
            &[("KEYSTATION_FAILPOINTS", "retire.revoke.before_done=abort")],
        )
        .await;
    assert!(!out.status.success());
    assert_eq!(st.order_state(&no).await, "Revoked");
    assert_eq!(
        st.json(&["retire", "show", &id]).await["state"],
        "executing"
    );

    // The wipe happened but was not journaled done: the run fails, the request is failed.
    let out = st
        .run_env(
            &["retire", "run", &id, "--operator", "carol"],
            &[("KEYSTATION_FAILPOINTS", "retire.wipe.before_done=error")],
        )
        .await;
    assert!(!out.status.success());
    let shown = st.json(&["retire", "show", &id]).await;
    assert_eq!(shown["state"], "failed", "{shown:#}");
    assert_eq!(st.order_state(&no).await, "Revoked");

    // A crash inside close's transaction: nothing of it committed.
    let out = st
        .run_env(
            &["retire", "run", &id, "--operator", "carol"],
            &[("KEYSTATION_FAILPOINTS", "retire.close.before_commit=abort")],
        )
        .await;
    assert!(!out.status.success());
    assert!(
        has_active_binding(&st, &no).await,
        "the binding is closed only with the request's completion"
    );

    // The next run finishes; the revocation is not repeated, the wipe ran again (same SO PIN).
    let run = st
        .json(&["retire", "run", &id, "--operator", "carol"])
        .await;
    assert_eq!(run["resumed"], true, "{run:#}");
    assert_eq!(run["steps_run"], serde_json::json!(["close"]), "{run:#}");
    assert_eq!(run["certificates_revoked"], serde_json::json!([]));
    let shown = st.json(&["retire", "show", &id]).await;
    assert_eq!(shown["state"], "done", "{shown:#}");
    let wipe = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "wipe")
        .unwrap()
        .clone();
    assert_eq!(wipe["runs"], 2, "{shown:#}");
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    assert_eq!(audit_records(&audit, "order.revoked").len(), 1);
    assert_eq!(audit_records(&audit, "token.retired").len(), 1);
    let slot = token_listing(&st, run["token_serial"].as_str().unwrap());
    assert!(slot.contains(RETIRED), "{slot}");
    st.ok(&["audit", "verify"]).await;
}
