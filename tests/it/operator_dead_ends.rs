//! Issue 12, item 8: the operator's dead ends, each with a way forward and an exit code that
//! says what happened — rejecting a Failed order, queueing a new delivery after a cancelled one
//! (still exactly once), and `deliver run --once` failing when nothing could be sent.

use crate::delivery::{TestStation as DeliveryStation, bank_order, gateway_agent_takes};
use crate::station::{TestStation, order_json};
use crate::support::{audit_record, items};
use serde_json::Value;

#[test]
fn a_failed_order_can_be_rejected_its_certificate_revoked_and_its_token_released() {
    let st = TestStation::new();
    st.import_approved(&order_json("DE-1", "legal_rep_phone", "company", "main"));
    // Provisioning fails after the certificate is on the token: the order is Failed with a
    // token bound, a sealed PIN and a live certificate.
    st.provision_failing_at("DE-1", "provision.write_seals.started");
    let before = st.json(&["order", "show", "DE-1"]);
    assert_eq!(before["state"], "Failed");
    assert!(before["token"].is_object(), "{before:#}");
    let serial = before["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(before["certificates"][0]["status"], "revoked");

    // A rejection needs a reason, and a Submitted-only command would stop here (exit 2).
    let rejected = st.json(&[
        "order",
        "reject",
        "DE-1",
        "--operator",
        "审核员",
        "--reason",
        "营业执照已注销",
    ]);
    assert_eq!(rejected["state"], "Rejected", "{rejected:#}");
    assert_eq!(rejected["from"], "Failed");
    assert_eq!(
        rejected["certificates_revoked"],
        serde_json::json!([serial])
    );
    assert!(rejected["binding_released"].is_string());
    assert_eq!(rejected["sealed_pin_destroyed"], true);

    let after = st.json(&["order", "show", "DE-1"]);
    assert_eq!(after["state"], "Rejected");
    assert_eq!(after["reviewed_by"], "审核员");
    assert!(after["token"].is_null(), "binding released: {after:#}");
    assert!(
        items(&after["certificates"])
            .iter()
            .all(|c| c["status"] == "revoked"),
        "{after:#}"
    );
    // Nothing is left to resume: provisioning it again is refused, and the invariants hold
    // (no orphan certificate, no sealed PIN of a closed order).
    let again = st.run(&["provision", "DE-1"], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("rejected"));
    st.ok(&["check"]);
    st.ok(&["audit", "verify"]);
    let audit = st.json(&["audit", "show", "--order", "DE-1"]);
    let rec = audit_record(&audit, "order.rejected");
    assert_eq!(rec["actor"], "审核员");
}

/// `deliver run --once` with its exit code, stdout parsed.
async fn deliver_once(st: &DeliveryStation) -> (Option<i32>, Value, String) {
    let out = st.run(&["--json", "deliver", "run", "--once"]).await;
    let report = serde_json::from_slice(&out.stdout).unwrap();
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sms_delivery_can_be_requeued_and_is_delivered_once() {
    let st = DeliveryStation::init().await;
    let no = st.shipped_sms("DE20261124-0002").await;
    let first = st.delivery(&no).await["id"].as_str().unwrap().to_string();
    // No new delivery while one is live.
    let live = st
        .run(&["deliver", "requeue", &no, "--operator", "op1"])
        .await;
    assert_eq!(live.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&live.stderr).contains(&first));

    st.ok(&[
        "deliver",
        "cancel",
        &first,
        "--reason",
        "wrong number",
        "--operator",
        "op1",
    ])
    .await;
    // The dead end of old: Shipped, sealed PIN, no live delivery.
    assert_eq!(st.order_state(&no).await, "Shipped");
    let r = st
        .json(&["deliver", "requeue", &no, "--operator", "op1"])
        .await;
    let second = r["delivery_id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(r["replaces"], serde_json::json!([first]));

    // Delivered exactly once: one message in the spool, one receipt, one confirmation.
    let (code, _, stderr) = deliver_once(&st).await;
    assert_eq!(code, Some(0), "{stderr}");
    let taken = gateway_agent_takes(
        &st.data_dir().join("spool/sms"),
        &st.dir.path().join("agent"),
    );
    assert_eq!(taken.len(), 1);
    assert!(taken[0].ends_with(format!("{second}.json")));
    deliver_once(&st).await;
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    let all = st.deliveries(&no).await;
    let states: Vec<&str> = all.iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(
        states.iter().filter(|s| **s == "confirmed").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "cancelled").count(),
        1,
        "{states:?}"
    );
    // Nothing more can be queued for a delivered PIN.
    let after = st
        .run(&["deliver", "requeue", &no, "--operator", "op1"])
        .await;
    assert_eq!(after.status.code(), Some(2));
    st.ok(&["check"]).await;
    st.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transfer_the_bank_had_is_requeued_only_when_the_operator_says_it_did_not_arrive()
 {
    let st = DeliveryStation::init().await;
    let no = st.shipped(bank_order("DE20261124-0003"), "SF1").await;
    deliver_once(&st).await;
    let d = st.delivery(&no).await;
    let id = d["id"].as_str().unwrap().to_string();
    let e2e = d["end_to_end_id"].as_str().unwrap().to_string();
    // The bank rejects it: failed; the operator cancels it instead of retrying.
    let status = crate::delivery::pain002_file(
        &st.dir.path().join("answers"),
        "rjct.xml",
        d["bank_message_id"].as_str().unwrap(),
        &[(&e2e, "RJCT", Some("AC04"))],
    );
    st.ok(&["bank", "import", status.to_str().unwrap()]).await;
    st.ok(&[
        "deliver",
        "cancel",
        &id,
        "--reason",
        "closed account",
        "--operator",
        "op1",
    ])
    .await;

    // The file reached the bank: a requeue without the operator's word is refused.
    let refused = st
        .run(&["deliver", "requeue", &no, "--operator", "op1"])
        .await;
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--not-delivered") && err.contains(&id),
        "{err}"
    );

    let r = st
        .json(&[
            "deliver",
            "requeue",
            &no,
            "--operator",
            "op1",
            "--not-delivered",
        ])
        .await;
    let new_id = r["delivery_id"].as_str().unwrap();
    let (code, _, stderr) = deliver_once(&st).await;
    assert_eq!(code, Some(0), "{stderr}");
    let new = st.delivery(&no).await;
    assert_eq!(new["id"], new_id);
    assert_eq!(new["state"], "sent");
    assert_ne!(
        new["end_to_end_id"],
        e2e.as_str(),
        "a new transfer reference"
    );
    st.ok(&["check"]).await; // one live transfer for the order
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    let rec = audit_record(&audit, "delivery.requeued");
    let details: Value = serde_json::from_str(rec["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["declared_not_delivered"], serde_json::json!([id]));
    assert_eq!(rec["actor"], "op1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_run_once_exits_1_when_something_due_was_not_sent() {
    let st = DeliveryStation::init().await;
    // Nothing due: 0.
    let (code, report, _) = deliver_once(&st).await;
    assert_eq!(code, Some(0));
    assert!(report["events"].as_array().unwrap().is_empty());

    // An SMS gateway that refuses connections, one attempt allowed: the delivery goes to the
    // operator, and the run says so with exit 1 and the delivery named.
    st.set("kind", "\"webhook\"");
    st.set("max_attempts", "1");
    st.secret_file("secrets/sms-webhook.secret", "a-webhook-secret");
    st.append("[delivery.sms.webhook]\nurl = \"http://127.0.0.1:9/send\"\nsecret_file = \"secrets/sms-webhook.secret\"\nconnect_timeout_secs = 2\nrequest_timeout_secs = 2\n");
    let no = st.shipped_sms("DE20261124-0004").await;
    let id = st.delivery(&no).await["id"].as_str().unwrap().to_string();
    let (code, report, stderr) = deliver_once(&st).await;
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["unfinished"][0]["delivery_id"], id.as_str());
    assert_eq!(report["unfinished"][0]["to"], "needs_operator");
    assert!(
        stderr.contains(&id) && stderr.contains("not sent"),
        "{stderr}"
    );
    // It waits for the operator, not for the worker: the next run has nothing due (0).
    let (code, report, _) = deliver_once(&st).await;
    assert_eq!(code, Some(0));
    assert!(report["events"].as_array().unwrap().is_empty());

    // The way forward: fix the channel, retry; the run that sends it exits 0.
    st.set("kind", "\"spool\"");
    st.ok(&["deliver", "retry", &id, "--operator", "op1"]).await;
    let (code, report, stderr) = deliver_once(&st).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["events"][0]["to"], "sent");
    assert!(report["unfinished"].as_array().unwrap().is_empty());
}
