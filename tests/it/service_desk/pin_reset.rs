//! PIN reset end to end on SoftHSM: four-eyes, then the new PIN delivered by SMS exactly as at
//! issuance opens the token and the old one no longer does; no PIN anywhere but the message.

use super::*;
use crate::delivery::files_containing;
use crate::support::audit_records;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_reset_needs_a_second_operator_and_delivers_a_new_pin_that_replaces_the_old() {
    let st = TestStation::init().await;
    let (no, old_pin) = delivered_sms_order(&st, "DESK-0001").await;
    assert!(
        pin_opens_token(&st, &no, &old_pin),
        "the delivered PIN works"
    );

    // A key whose PIN is not delivered yet is not reset (its delivery is retried instead).
    let pending = st.shipped_sms("DESK-0002").await;
    let out = st.run(&reset_request(&pending, "y", ALICE)).await;
    let stderr = assert_refused(&out, "E-OPERATION-REFUSED");
    assert!(stderr.contains("not delivered yet"), "{stderr}");
    deliver_pin(&st, &pending).await;
    // Evidence is required, named.
    let out = st.run(&reset_request(&no, " ", ALICE)).await;
    assert!(assert_refused(&out, "E-USAGE").contains("--evidence"));

    let id = request_reset(&st, &no).await;
    // One open request per order and kind.
    let out = st.run(&reset_request(&no, "id", BOB)).await;
    assert_refused(&out, "E-REQUEST-OPEN");

    // Unapproved: cannot run; the key is not touched.
    let out = st
        .run(&["pin-reset", "run", &id, "--operator", ALICE])
        .await;
    let stderr = assert_refused(&out, "E-REQUEST-TRANSITION");
    assert!(stderr.contains("second, different operator"), "{stderr}");
    assert!(pin_opens_token(&st, &no, &old_pin));

    // The requester cannot approve (nor reject) their own request; nothing is written.
    let out = st
        .run(&["pin-reset", "approve", &id, "--operator", ALICE])
        .await;
    assert_refused(&out, "E-REQUEST-SAME-OPERATOR");
    let out = st
        .run(&[
            "pin-reset",
            "reject",
            &id,
            "--operator",
            ALICE,
            "--reason",
            "no",
        ])
        .await;
    assert_refused(&out, "E-REQUEST-SAME-OPERATOR");
    let shown = st.json(&["pin-reset", "show", &id]).await;
    assert_eq!(shown["state"], "requested", "{shown:#}");

    // A second operator approves; approving touches no key.
    let approved = st
        .json(&["pin-reset", "approve", &id, "--operator", BOB])
        .await;
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["decided_by"], BOB);
    assert!(pin_opens_token(&st, &no, &old_pin));
    // Decided once.
    let out = st
        .run(&["pin-reset", "approve", &id, "--operator", "carol"])
        .await;
    assert_refused(&out, "E-REQUEST-TRANSITION");

    // Run at the desk: the old PIN stops working at once; the new one is queued, not yet sent.
    let run = st
        .json(&["pin-reset", "run", &id, "--operator", "carol"])
        .await;
    assert_eq!(
        run["steps_run"],
        serde_json::json!(["seal_pin", "init_pin", "queue_delivery"])
    );
    assert_eq!(run["pin_generation"], 1);
    assert_eq!(run["channel"], "sms");
    assert_eq!(run["destination_masked"], "138****8000");
    assert!(
        !pin_opens_token(&st, &no, &old_pin),
        "the old PIN still opens the token"
    );
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    let queued = deliveries_of_generation(&st, &no, 1).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["state"], "queued");
    assert_eq!(queued[0]["id"], run["delivery_id"]);
    // `check` accepts the sealed new PIN of a PinDelivered order while its delivery is on its way.
    st.ok(&["check"]).await;

    // Delivered as at issuance: one SMS to the legal representative, confirmed by the gateway.
    let new_pin = deliver_pin(&st, &no).await;
    assert_ne!(new_pin, old_pin);
    assert!(
        pin_opens_token(&st, &no, &new_pin),
        "the new PIN does not open the token"
    );
    assert!(!pin_opens_token(&st, &no, &old_pin));
    let d = &deliveries_of_generation(&st, &no, 1).await[0];
    assert_eq!(d["state"], "confirmed", "{d:#}");
    assert_eq!(
        st.deliveries(&no).await.len(),
        2,
        "issuance + reset, nothing more"
    );
    let store = st.store().await;
    assert!(
        store
            .sealed_pin(&crate::support::order_no(&no))
            .await
            .unwrap()
            .is_none(),
        "sealed PIN destroyed"
    );
    store.close().await;
    // A further pass sends nothing.
    let again = st.deliver_once().await;
    assert!(again["events"].as_array().unwrap().is_empty(), "{again:#}");

    // Settled: it does not run again.
    let out = st
        .run(&["pin-reset", "run", &id, "--operator", "carol"])
        .await;
    assert_refused(&out, "E-REQUEST-TRANSITION");
    let list = st.json(&["pin-reset", "list", "--order", &no]).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["state"], "done");
    assert_eq!(list[0]["delivery_id"], run["delivery_id"]);

    // The trail names both operators and every step; it verifies; `check` is clean.
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    let decided = &audit_records(&audit, "service.approved")[0];
    let details: Value = serde_json::from_str(decided["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["requested_by"], ALICE);
    assert_eq!(details["decided_by"], BOB);
    for action in [
        "service.requested",
        "service.started",
        "pin_reset.seal_pin.done",
        "pin_reset.init_pin.done",
        "service.done",
    ] {
        assert_eq!(audit_records(&audit, action).len(), 1, "{action}");
    }
    st.ok(&["audit", "verify"]).await;
    st.ok(&["check"]).await;

    // The PINs: in no log (trace level), in no file of the station (database included).
    let logs = st.logs();
    for pin in [&old_pin, &new_pin] {
        assert!(!logs.contains(pin.as_str()), "a PIN is in the logs");
        let leaks = files_containing(&st.data_dir(), pin.as_bytes(), &[]);
        assert!(leaks.is_empty(), "a PIN is in {leaks:?}");
    }
}

/// The order's channel, as at issuance: a corporate-transfer order's new PIN goes in the memo of
/// a new 0.01 CNY transfer (its own `EndToEndId` and file, valid pain.001), confirmed by the
/// bank's pain.002; one transfer per PIN, which `check` accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_orders_new_pin_goes_in_the_memo_of_its_own_transfer() {
    use crate::delivery::{bank_order, pain002_file, pins_in_pain001, xmllint};
    let st = TestStation::init().await;
    let no = st.shipped(bank_order("DESK-BANK-1"), "SF9").await;
    let inbound = st.data_dir().join("bank/inbound");
    // Issuance: the first PIN by transfer, confirmed by the bank.
    let transfer = |generation: i64, name: &'static str| {
        let st = &st;
        let no = no.clone();
        let inbound = inbound.clone();
        async move {
            st.deliver_once().await;
            let outbound = st.files_in("bank/outbound");
            assert_eq!(outbound.len(), 1, "{outbound:?}");
            xmllint(&outbound[0], "pain.001.001.10.xsd");
            let pins = pins_in_pain001(&outbound[0]);
            assert_eq!(pins.len(), 1);
            let d = deliveries_of_generation(st, &no, generation).await;
            assert_eq!(d.len(), 1, "{d:#?}");
            let e2e = d[0]["end_to_end_id"].as_str().unwrap().to_string();
            let msg = d[0]["bank_message_id"].as_str().unwrap().to_string();
            let status = pain002_file(&inbound, name, &msg, &[(&e2e, "ACSC", None)]);
            st.bank_import_by_finance(&status).await;
            assert_eq!(
                deliveries_of_generation(st, &no, generation).await[0]["state"],
                "confirmed"
            );
            (pins[0].clone(), e2e)
        }
    };
    let (old_pin, old_e2e) = transfer(0, "status-1.xml").await;
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    assert!(pin_opens_token(&st, &no, &old_pin));

    let id = request_reset(&st, &no).await;
    st.ok(&["pin-reset", "approve", &id, "--operator", BOB])
        .await;
    let run = st.json(&["pin-reset", "run", &id, "--operator", BOB]).await;
    assert_eq!(run["channel"], "bank");
    assert_eq!(run["destination_masked"], "****5671");
    let (new_pin, new_e2e) = transfer(1, "status-2.xml").await;
    assert_ne!(new_e2e, old_e2e, "a new transfer, never the old one again");
    assert!(pin_opens_token(&st, &no, &new_pin));
    assert!(!pin_opens_token(&st, &no, &old_pin));
    assert_eq!(st.deliveries(&no).await.len(), 2);
    st.ok(&["check"]).await;
}

/// The desk's everyday case: a key locked after too many wrong PINs (simulated: SoftHSM never
/// locks, `KEYSTATION_TOKEN_SIM` does as a real key would). The reset's SO login and
/// `C_InitPIN` unlock it, and its new PIN opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_key_is_unlocked_by_its_pin_reset() {
    let st = TestStation::init().await;
    let (no, _old) = delivered_sms_order(&st, "DESK-LOCKED").await;
    let serial = st.json(&["order", "show", &no]).await["token"]["token_serial"]
        .as_str()
        .unwrap()
        .to_string();
    let sim = st.dir.path().join("token-sim.json");
    std::fs::write(
        &sim,
        serde_json::json!({"tokens": {&serial: {"max_user_tries": 6, "user_tries_left": 0}}})
            .to_string(),
    )
    .unwrap();
    let env = [("KEYSTATION_TOKEN_SIM", sim.to_str().unwrap())];
    let id = request_reset(&st, &no).await;
    st.ok(&["pin-reset", "approve", &id, "--operator", BOB])
        .await;
    let out = st
        .run_env(
            &["--json", "pin-reset", "run", &id, "--operator", BOB],
            &env,
        )
        .await;
    crate::support::assert_success(&out, "pin-reset run on a locked key");
    let state: Value = serde_json::from_slice(&std::fs::read(&sim).unwrap()).unwrap();
    assert_eq!(state["tokens"][&serial]["user_tries_left"], 6, "{state:#}");
    let new_pin = deliver_pin(&st, &no).await;
    assert!(pin_opens_token(&st, &no, &new_pin));
}

/// A login as the user of token `label` on the test token (libkstoken.so, which counts wrong
/// PINs and locks for real), by pkcs11-tool with `pin` through the environment; its output.
fn kstoken_login(st: &TestStation, label: &str, pin: &str) -> Output {
    crate::support::pkcs11_login(crate::testtoken::module_path(), label, pin)
        .arg("--list-objects")
        .env("KSTOKEN_CONF", st.data_dir().join("kstoken.conf"))
        .output()
        .expect("pkcs11-tool (scripts/setup.sh installs opensc)")
}

/// Issue 18's lockout for real, ended by issue 16's PIN reset: on the test token, whose user PIN
/// locks after three wrong tries, a delivered key is locked by wrong PINs typed elsewhere (its
/// right PIN is then refused too); the desk's PIN reset (four-eyes) unlocks it with `C_InitPIN`
/// under its SO PIN, and the new PIN, delivered by SMS as at issuance, opens it; the old one
/// does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_test_token_a_really_locked_key_is_unlocked_by_its_pin_reset() {
    let module = crate::testtoken::module_path();
    let st = TestStation::init_with(&crate::testtoken::sm2_on_test_token_args(&module)).await;
    crate::testtoken::lock_after_three_tries(&st.data_dir().join("kstoken.conf"));

    let (no, old_pin) = delivered_sms_order(&st, "TK-LOCKED").await;
    assert!(kstoken_login(&st, &no, &old_pin).status.success());
    for _ in 0..3 {
        let out = kstoken_login(&st, &no, "definitely-wrong");
        assert!(!out.status.success(), "a wrong PIN logged in");
    }
    let locked = kstoken_login(&st, &no, &old_pin);
    assert!(!locked.status.success(), "the locked key opened");
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("CKR_PIN_LOCKED"),
        "{locked:?}"
    );

    let id = request_reset(&st, &no).await;
    st.ok(&["pin-reset", "approve", &id, "--operator", BOB])
        .await;
    let done = st.json(&["pin-reset", "run", &id, "--operator", BOB]).await;
    assert_eq!(
        done["steps_run"],
        serde_json::json!(["seal_pin", "init_pin", "queue_delivery"]),
        "{done:#}"
    );
    assert_eq!(done["pin_generation"], 1);
    let new_pin = deliver_pin(&st, &no).await;
    assert_ne!(new_pin, old_pin);
    let opened = kstoken_login(&st, &no, &new_pin);
    assert!(opened.status.success(), "{opened:?}");
    assert!(!kstoken_login(&st, &no, &old_pin).status.success());
}
