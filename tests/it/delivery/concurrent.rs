//! Many SMS in flight at once (`delivery.sms.max_in_flight`) through the fake webhook gateway,
//! which counts the requests in flight and holds a run of them on the test's word: the bound
//! is reached and never passed, and a worker SIGKILLed with a group in flight loses nothing
//! and delivers nothing twice after its restart.

use super::*;
use crate::sms::fake_sms_gateway::FakeWebhook;
use std::collections::BTreeMap;

const SECRET: &str = "webhook-shared-secret";

/// A station sending through `fake`, `max_in_flight` at a time; its deliveries are queued by
/// provisioning (`trigger = "on_provisioned"`).
async fn webhook_station(fake: &FakeWebhook, max_in_flight: usize) -> TestStation {
    let st = TestStation::init().await;
    st.set("kind", "\"webhook\"");
    st.set("trigger", "\"on_provisioned\"");
    st.set("max_in_flight", &max_in_flight.to_string());
    st.append(&format!(
        "[delivery.sms.webhook]\nurl = \"{}\"\nconnect_timeout_secs = 5\nrequest_timeout_secs = 120\n",
        fake.url
    ));
    st.secret_file("secrets/sms-webhook.secret", SECRET);
    st
}

/// `n` SMS orders imported in one file, approved and provisioned (`--all-approved`): `n`
/// deliveries queued. Returns the order numbers.
async fn queued_orders(st: &TestStation, n: usize) -> Vec<String> {
    let dir = st.dir.path().join("orders");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixtures().join("seals/company.png"), dir.join("c.png")).unwrap();
    let orders: Vec<Value> = (1..=n)
        .map(|i| sms_order(&format!("BJ20261124-{i:04}"), "13800138000"))
        .collect();
    let nos: Vec<String> = orders
        .iter()
        .map(|o| o["order_no"].as_str().unwrap().to_string())
        .collect();
    let file = dir.join("orders.json");
    std::fs::write(&file, Value::Array(orders).to_string()).unwrap();
    st.ok(&["order", "import", file.to_str().unwrap()]).await;
    for no in &nos {
        st.ok(&["order", "approve", no, "--operator", "reviewer"])
            .await;
    }
    st.ok(&["provision", "--all-approved", "--workers", "2"])
        .await;
    nos
}

/// Every delivery of the station by its state.
async fn deliveries_by_state(st: &TestStation) -> BTreeMap<String, Vec<String>> {
    let mut by_state: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in items(&st.json(&["deliver", "status"]).await) {
        by_state
            .entry(d["state"].as_str().unwrap().to_string())
            .or_default()
            .push(d["id"].as_str().unwrap().to_string());
    }
    by_state
}

/// `deliver run --once` as a child process (its stderr dropped).
fn spawn_worker(st: &TestStation) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_keystation"))
        .arg("--config")
        .arg(&st.config)
        .args(["deliver", "run", "--once"])
        .env_remove("KEYSTATION_FAILPOINTS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_sent_at_once_and_never_more_than_max_in_flight() {
    let fake = FakeWebhook::start(SECRET.as_bytes()).await;
    let st = webhook_station(&fake, 4).await;
    let nos = queued_orders(&st, 10).await;

    // The gateway answers nothing until four requests wait at once: a worker that sent one at
    // a time would never get there.
    fake.hold(0, 4);
    let mut worker = spawn_worker(&st);
    assert!(
        fake.wait_held(4).await,
        "four sends were never in flight at once"
    );
    fake.release();
    assert!(worker.wait().await.unwrap().success());

    assert_eq!(fake.max_in_flight(), 4, "never more than max_in_flight");
    let per_key = fake.requests_per_key();
    assert_eq!(per_key.len(), 10);
    assert!(per_key.values().all(|&n| n == 1), "{per_key:?}");
    assert_eq!(deliveries_by_state(&st).await["confirmed"].len(), 10);
    for no in &nos {
        assert_eq!(st.order_state(no).await, "PinDelivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_many_sends_in_flight_delivers_each_message_once_after_restart() {
    let fake = FakeWebhook::start(SECRET.as_bytes()).await;
    let st = webhook_station(&fake, 8).await;
    let nos = queued_orders(&st, 30).await;

    // Two groups go through; the third is at the gateway (recorded, unanswered) when the worker
    // is SIGKILLed.
    fake.hold(16, 8);
    let mut worker = spawn_worker(&st);
    assert!(
        fake.wait_held(8).await,
        "the third group never reached the gateway"
    );
    worker.kill().await.unwrap();
    worker.wait().await.unwrap();
    fake.release();

    let after_kill = deliveries_by_state(&st).await;
    assert_eq!(after_kill["confirmed"].len(), 16, "{after_kill:#?}");
    let in_doubt = after_kill["sending"].clone();
    assert_eq!(in_doubt.len(), 8, "claimed before sending: {after_kill:#?}");
    assert_eq!(after_kill["queued"].len(), 6, "{after_kill:#?}");

    // Restart: the eight in doubt are sent again under their Idempotency-Key (the gateway
    // answers with the message it has), the six queued ones go out.
    st.deliver_once().await;
    let after_restart = deliveries_by_state(&st).await;
    assert_eq!(after_restart.len(), 1, "{after_restart:#?}");
    assert_eq!(after_restart["confirmed"].len(), 30);
    for no in &nos {
        assert_eq!(st.order_state(no).await, "PinDelivered");
    }

    // At the gateway: each message once; only those in doubt were asked for twice.
    let received = fake.received();
    assert_eq!(received.len(), 30, "each message reached the gateway once");
    let mut keys: Vec<&str> = received
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 30);
    for (key, n) in fake.requests_per_key() {
        let expected = if in_doubt.contains(&key) { 2 } else { 1 };
        assert_eq!(n, expected, "requests for {key}");
    }
    assert!(fake.max_in_flight() <= 8);
    assert_eq!(fake.rejected_signatures(), 0);
}
