//! Issue 17, item 3: the order API's webhook. A real station (SoftHSM, SQLite) driven through
//! the CLI pushes its orders' state changes to a loopback receiver (axum) that checks every
//! signature with its own HMAC implementation (the `hmac` crate, not the station's ring) and
//! records what it got: one signed event per change, in order, each exactly once however often
//! the sender runs; a 500 is retried later and then delivered; a receiver that never answers
//! leaves its event failed and not sent again until an operator requeues it. The store's
//! queries run on SQLite and PostgreSQL.

use crate::delivery::store_backends::{now, provisioned_order, sqlite_url};
use crate::delivery::{TestStation, sms_order};
use crate::pg::PgDatabase;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use keystation::domain::notification::{NoticeEvent, NoticeState};
use keystation::domain::order::OrderState;
use keystation::store::{Store, StoreError};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};

const SECRET: &str = "portal-webhook-key-0123456789abcdef";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    event_header: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// `sha256=` + hex HMAC-SHA256(key, timestamp "." body), computed independently.
fn expected_signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn verifies(key: &[u8], got: &Got) -> bool {
    expected_signature(key, &got.timestamp, &got.body) == got.signature
}

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
    /// Answer 500 to this many requests first.
    fail_first: usize,
}

/// The loopback receiver a portal would run.
struct Receiver {
    url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            fail_first,
            ..Inner::default()
        }));
        async fn hook(
            State(inner): State<Arc<Mutex<Inner>>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let h = |n: &str| {
                headers
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            let mut inner = inner.lock().unwrap();
            inner.got.push(Got {
                event_header: h("x-keystation-event"),
                timestamp: h("x-keystation-timestamp"),
                signature: h("x-keystation-signature"),
                body: body.to_vec(),
            });
            if inner.fail_first > 0 {
                inner.fail_first -= 1;
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            StatusCode::NO_CONTENT
        }
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            inner,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.inner.lock().unwrap().got.clone()
    }
}

/// A station whose `[api.webhook]` posts to `url`.
async fn station_with_webhook(url: &str, extra: &str) -> TestStation {
    let st = TestStation::init().await;
    st.secret_file("secrets/webhook.key", SECRET);
    st.append(&format!(
        "[api.webhook]\nurl = \"{url}\"\nsecret_file = \"secrets/webhook.key\"\n{extra}"
    ));
    st
}

/// `api-token webhook-send --json`.
async fn send(st: &TestStation) -> Value {
    st.json(&["api-token", "webhook-send"]).await
}

/// `api-token webhook-events --order NO --json`.
async fn events(st: &TestStation, order_no: &str) -> Vec<Value> {
    st.json(&["api-token", "webhook-events", "--order", order_no])
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// The `action`s of the order's audit trail.
async fn actions(st: &TestStation, order_no: &str) -> Vec<String> {
    let audit = st.json(&["audit", "show", "--order", order_no]).await;
    crate::support::items(&audit)
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_one_signed_event_in_order_and_sent_once_however_often_the_sender_runs() {
    let receiver = Receiver::start(0).await;
    let st = station_with_webhook(&receiver.url, "").await;
    // Import, approve, provision: every change of the order's state queues one event.
    let no = st
        .provisioned(sms_order("BJ20261207-0001", "13800138000"))
        .await;
    let state = st.order_state(&no).await;
    let queued = events(&st, &no).await;
    assert!(queued.len() >= 3, "{queued:#?}");

    let first = send(&st).await;
    assert_eq!(first["configured"], true);
    let again = send(&st).await;
    assert!(
        again["events"].as_array().unwrap().is_empty(),
        "nothing left to send: {again:#}"
    );
    let got = receiver.got();
    assert_eq!(got.len(), queued.len(), "each event exactly once: {got:#?}");

    // In order: a chain of changes from Submitted to the order's state, sequence 1, 2, ...
    let mut from = "Submitted".to_string();
    let mut ids = std::collections::HashSet::new();
    for (i, g) in got.iter().enumerate() {
        let body = g.json();
        assert!(verifies(SECRET.as_bytes(), g), "signature of {body:#}");
        // A wrong key is detected.
        assert!(!verifies(b"not-the-portal-key", g));
        assert_eq!(body["event_id"], g.event_header.as_str());
        assert!(ids.insert(g.event_header.clone()), "event sent twice");
        assert_eq!(body["type"], "order.state_changed");
        assert_eq!(body["order_no"], no.as_str());
        assert_eq!(body["sequence"], i as i64 + 1);
        assert_eq!(body["from"], from.as_str());
        from = body["to"].as_str().unwrap().to_string();
        // The timestamp is now-ish unix seconds.
        let ts: i64 = g.timestamp.parse().unwrap();
        #[allow(clippy::disallowed_methods)] // the station under test runs on the system clock
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((ts - now).abs() < 300);
        // Nothing about the company or its people.
        let text = String::from_utf8_lossy(&g.body);
        assert!(!text.contains("13800138000"), "{text}");
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "changed_at",
                "event_id",
                "from",
                "order_no",
                "sequence",
                "state_label",
                "to",
                "type"
            ]
        );
    }
    assert_eq!(from, state, "the last event ends where the order is");
    assert!(
        events(&st, &no)
            .await
            .iter()
            .all(|e| e["state"] == "sent" && e["attempts"] == 1)
    );
    let acts = actions(&st, &no).await;
    assert_eq!(
        acts.iter().filter(|a| *a == "webhook.sent").count(),
        got.len()
    );
    // The key is in no output or log.
    assert!(!st.logs().contains(SECRET));
    st.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_500_gets_the_event_again_later_and_it_is_then_delivered() {
    let receiver = Receiver::start(1).await;
    let st =
        station_with_webhook(&receiver.url, "retry_initial_secs = 1\nmax_attempts = 3\n").await;
    let no = st
        .provisioned(sms_order("BJ20261207-0002", "13800138000"))
        .await;
    let ev = events(&st, &no).await;
    assert!(ev.len() >= 3, "{ev:#?}");
    assert_eq!(ev[0]["from"], "Submitted");
    assert_eq!(ev[0]["to"], "Approved");

    send(&st).await;
    let ev = events(&st, &no).await;
    assert_eq!(ev[0]["state"], "queued", "{ev:#?}");
    assert_eq!(ev[0]["attempts"], 1);
    assert_eq!(ev[0]["last_outcome"], "retryable");
    // The order's later changes wait for the first: nothing else was sent.
    assert!(ev[1..].iter().all(|e| e["attempts"] == 0), "{ev:#?}");
    // Not due yet: nothing is sent.
    send(&st).await;
    assert_eq!(receiver.got().len(), 1);

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    send(&st).await;
    let got = receiver.got();
    assert_eq!(got.len(), ev.len() + 1, "{got:#?}");
    assert_eq!(
        got[0].event_header, got[1].event_header,
        "the same event again"
    );
    assert_eq!(got[0].body, got[1].body);
    let sequences: Vec<i64> = got[1..]
        .iter()
        .map(|g| g.json()["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=ev.len() as i64).collect::<Vec<_>>());
    assert!(got.iter().all(|g| verifies(SECRET.as_bytes(), g)));
    let ev = events(&st, &no).await;
    assert!(ev.iter().all(|e| e["state"] == "sent"), "{ev:#?}");
    assert_eq!(ev[0]["attempts"], 2);
    let acts = actions(&st, &no).await;
    let retry = acts.iter().position(|a| a == "webhook.retry_scheduled");
    let sent = acts.iter().position(|a| a == "webhook.sent");
    assert!(retry.is_some() && sent > retry, "{acts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_leaves_the_event_failed_and_not_sent_again() {
    // Takes connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(Mutex::new(Vec::new()));
    let held = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            held.lock().unwrap().push(socket);
        }
    });
    let st = station_with_webhook(&format!("http://{addr}/hook"), "timeout_secs = 1\n").await;
    let no = st
        .approved(sms_order("BJ20261207-0003", "13800138000"))
        .await;

    send(&st).await;
    let ev = events(&st, &no).await;
    assert_eq!(ev[0]["state"], "failed", "{ev:#?}");
    assert_eq!(ev[0]["last_outcome"], "unknown");
    assert_eq!(connections.lock().unwrap().len(), 1);

    // At most once: the next runs do not send it again.
    send(&st).await;
    send(&st).await;
    assert_eq!(connections.lock().unwrap().len(), 1);
    assert_eq!(events(&st, &no).await[0]["attempts"], 1);
    assert!(
        actions(&st, &no)
            .await
            .contains(&"webhook.failed".to_string())
    );

    // An operator may queue it again; the requeue is audited under their name.
    let id = ev[0]["id"].as_str().unwrap().to_string();
    let cred = crate::support::operator_credential(&st.config, "desk-operator").unwrap();
    let cred = cred.to_str().unwrap().to_string();
    st.ok(&["--credential", &cred, "api-token", "webhook-requeue", &id])
        .await;
    assert_eq!(events(&st, &no).await[0]["state"], "queued");
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    let requeued = crate::support::audit_record(&audit, "webhook.requeued");
    assert_eq!(requeued["actor"], "desk-operator", "{requeued:#}");
    // A queued one cannot be requeued.
    let out = st
        .run(&["--credential", &cred, "api-token", "webhook-requeue", &id])
        .await;
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystation_serve_pushes_the_events_itself_once() {
    let receiver = Receiver::start(0).await;
    let st = station_with_webhook(&receiver.url, "").await;
    let no = st
        .approved(sms_order("BJ20261207-0005", "13800138000"))
        .await;
    let config = st.config.clone();
    let serve = tokio::task::block_in_place(|| crate::ocsp::Serve::start(&config));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while receiver.got().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Two more ticks: nothing sent again.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    tokio::task::block_in_place(|| drop(serve));
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(verifies(SECRET.as_bytes(), &got[0]));
    assert_eq!(got[0].json()["order_no"], no.as_str());
    assert_eq!(got[0].json()["to"], "Approved");
    assert_eq!(events(&st, &no).await[0]["state"], "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_events_are_kept_and_nothing_is_sent_and_a_bad_config_is_refused() {
    let st = TestStation::init().await;
    let no = st
        .approved(sms_order("BJ20261207-0004", "13800138000"))
        .await;
    let run = send(&st).await;
    assert_eq!(run["configured"], false);
    let ev = events(&st, &no).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["state"], "queued");

    // Plain http to another host, and a key file others may read: refused, naming the key.
    st.secret_file("secrets/webhook.key", SECRET);
    st.append(
        "[api.webhook]\nurl = \"http://portal.example/hook\"\nsecret_file = \"secrets/webhook.key\"\n",
    );
    let out = st.run(&["api-token", "webhook-send"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("api.webhook.url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&st.config)
        .unwrap()
        .replace("http://portal.example/hook", "https://portal.example/hook");
    std::fs::write(&st.config, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let key = st.data_dir().join("secrets/webhook.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = st.run(&["api-token", "webhook-send"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api.webhook.secret_file"), "{err}");
    assert!(!err.contains(SECRET));

    // `webhook-secret` writes a fresh key, private, once.
    let file = st.dir.path().join("new.key");
    let f = file.to_str().unwrap();
    st.ok(&["api-token", "webhook-secret", "--out", f]).await;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim().len(), 64);
    assert!(
        !st.run(&["api-token", "webhook-secret", "--out", f])
            .await
            .status
            .success()
    );
}

/// The outbox's store functions on one backend: a change queues one event with the next
/// sequence; moves follow the notices' table and are conditional on the state read.
async fn exercise(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let no = "BJ20261207-0019";
    let order_no = crate::support::order_no(no);
    let tx = provisioned_order(&store, no).await;
    tx.commit().await.unwrap();
    let all = store.webhook_events(Some(&order_no)).await.unwrap();
    let changes: Vec<(i64, OrderState, OrderState)> =
        all.iter().map(|e| (e.sequence, e.from, e.to)).collect();
    assert_eq!(
        changes,
        [
            (1, OrderState::Submitted, OrderState::Approved),
            (2, OrderState::Approved, OrderState::Provisioning),
            (3, OrderState::Provisioning, OrderState::Provisioned),
        ]
    );
    assert!(all.iter().all(|e| e.state == NoticeState::Queued));
    // A refused change queues nothing (its transaction fails).
    let mut tx = store.begin_write(now()).await.unwrap();
    assert!(
        tx.transition(
            &order_no,
            None,
            keystation::domain::order::OrderEvent::Approve
        )
        .await
        .is_err()
    );
    drop(tx);
    assert_eq!(store.webhook_events(None).await.unwrap().len(), 3);
    let pending = store.pending_webhook_events().await.unwrap();
    assert_eq!(pending.len(), 3);
    let due = store
        .due_webhook_events(NoticeState::Queued, now())
        .await
        .unwrap();
    assert_eq!(due.len(), 3);

    let mut tx = store.begin_write(now()).await.unwrap();
    let mut e = tx.webhook_event(&all[0].id).await.unwrap();
    tx.transition_webhook_event(&mut e, NoticeEvent::Claim, |e| e.attempts += 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A second writer holding the old state is refused.
    let mut stale = all[0].clone();
    let mut tx = store.begin_write(now()).await.unwrap();
    let refused = tx
        .transition_webhook_event(&mut stale, NoticeEvent::Claim, |_| {})
        .await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    drop(tx);
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut e = tx.webhook_event(&all[0].id).await.unwrap();
    assert_eq!(e.state, NoticeState::Sending);
    tx.transition_webhook_event(&mut e, NoticeEvent::Accepted, |e| {
        e.last_outcome = Some("delivered".into())
    })
    .await
    .unwrap();
    // Sent is final.
    assert!(
        tx.transition_webhook_event(&mut e, NoticeEvent::OperatorRetry, |_| {})
            .await
            .is_err()
    );
    drop(tx);
    let pending = store.pending_webhook_events().await.unwrap();
    assert_eq!(pending.len(), 3, "the dropped transaction changed nothing");
}

#[tokio::test]
async fn webhook_events_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn webhook_events_on_postgres() {
    let db = PgDatabase::create().await;
    exercise(&db.url).await;
}
