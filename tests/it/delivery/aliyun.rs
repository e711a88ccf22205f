//! `delivery.sms.kind = "aliyun"` against the loopback fake of Dysmsapi, which checks every
//! request's signature with its own implementation: the station's worker, not just the channel.
//! And `kind = "webhook"` against the fake signed-webhook gateway.

use super::*;
use crate::sms::fake_sms_gateway::{AliyunScript, FakeAliyun};
use crate::support::strings;
use std::time::Duration;

const KEY_ID: &str = "LTAI5tStationKey";
const SECRET: &str = "station-secret-Hx8*~ 9";

/// A station sending through `fake`, retrying after 1 s, 2 s, ...
async fn aliyun_station(fake: &FakeAliyun, request_timeout_secs: u64) -> TestStation {
    let st = TestStation::init().await;
    st.set("kind", "\"aliyun\"");
    st.set("retry_initial_secs", "1");
    st.set("query_delay_secs", "0");
    st.append(&format!(
        "[delivery.sms.aliyun]\nendpoint = \"{}\"\naccess_key_id = \"{KEY_ID}\"\n\
         template_code = \"SMS_465880123\"\nconnect_timeout_secs = 2\nrequest_timeout_secs = {request_timeout_secs}\n",
        fake.endpoint
    ));
    st.secret_file("secrets/aliyun-access-key-secret", SECRET);
    st
}

/// Provisions and ships one SMS order; returns (order, delivery id).
async fn queued_sms(st: &TestStation) -> (String, String) {
    let no = st.shipped(sms_order(SMS_ORDER, "13912345678"), "SF1").await;
    let id = st.delivery(&no).await["id"].as_str().unwrap().to_string();
    (no, id)
}

fn seconds_between(a: &Value, b: &Value) -> f64 {
    let p = |v: &Value| keystation::clock::parse_utc(v.as_str().unwrap()).unwrap();
    (p(b) - p(a)).as_seconds_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature_is_the_providers_error_and_goes_to_the_operator() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 5).await;
    st.secret_file("secrets/aliyun-access-key-secret", "not-the-secret");
    let (no, id) = queued_sms(&st).await;

    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "needs_operator", "{d:#}");
    assert_eq!(d["attempts"], 1);
    let err = d["last_error"].as_str().unwrap();
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(fake.accepted().is_empty());
    assert_eq!(fake.send_requests(), 1);
    assert_eq!(d["attempt_log"][0]["outcome"], "permanent");
    assert_eq!(st.order_state(&no).await, "Shipped");

    // The operator fixes the key and retries: the provider never accepted it, so it may go.
    st.secret_file("secrets/aliyun-access-key-secret", SECRET);
    st.ok(&["deliver", "retry", &id, "--operator", "op1"]).await;
    assert_eq!(st.delivery(&no).await["state"], "queued");
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "confirmed", "{d:#}");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].out_id.as_deref(), Some(id.as_str()));
    assert_eq!(d["provider_id"], accepted[0].biz_id.as_str());
    let pin = accepted[0].params["pin"].clone();
    assert_pin_opens_token(&st, &no, &pin);
    assert_eq!(st.order_state(&no).await, "PinDelivered");

    // The fake echoed its string to sign (with the PIN) in the refusal: none of it leaked.
    assert!(!st.logs().contains(&pin), "PIN in the logs");
    let leaks = files_containing(&st.data_dir(), pin.as_bytes(), &[]);
    assert!(leaks.is_empty(), "PIN found in {leaks:?}");

    // A message the provider accepted is never sent again, even on an operator's request.
    let retry = st
        .run(&["deliver", "retry", &id, "--operator", "op1"])
        .await;
    assert_eq!(retry.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_are_retried_with_growing_backoff_then_sent() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 5).await;
    // 2 s, then 4 s: wide enough that "not due yet" holds on a loaded machine.
    st.set("retry_initial_secs", "2");
    let (no, _) = queued_sms(&st).await;
    fake.script(AliyunScript::Throttle);
    fake.script(AliyunScript::ServerError);

    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "queued");
    assert_eq!(d["attempts"], 1);
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .contains("isv.BUSINESS_LIMIT_CONTROL")
    );
    let gap1 = seconds_between(&d["attempt_log"][0]["finished_at"], &d["next_attempt_at"]);
    assert!((1.99..2.01).contains(&gap1), "first backoff {gap1}s");

    // Not due yet: an immediate pass sends nothing.
    let run = st.deliver_once().await;
    assert!(run["events"].as_array().unwrap().is_empty(), "{run:#}");
    assert_eq!(fake.send_requests(), 1);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "queued");
    assert_eq!(d["attempts"], 2);
    assert!(
        d["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{d:#}"
    );
    let gap2 = seconds_between(&d["attempt_log"][1]["finished_at"], &d["next_attempt_at"]);
    assert!((3.99..4.01).contains(&gap2), "second backoff {gap2}s");

    tokio::time::sleep(Duration::from_millis(4200)).await;
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "confirmed", "{d:#}");
    assert_eq!(d["attempts"], 3);
    let outcomes: Vec<&str> = strings(&d["attempt_log"], "outcome");
    assert_eq!(outcomes, ["retryable", "retryable", "accepted"]);
    assert_eq!(fake.accepted().len(), 1);
    assert_eq!(fake.send_requests(), 3);
    assert_eq!(st.order_state(&no).await, "PinDelivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_then_needs_operator() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 5).await;
    st.set("max_attempts", "2");
    let (no, _) = queued_sms(&st).await;
    fake.script(AliyunScript::Throttle);
    fake.script(AliyunScript::Throttle);
    st.deliver_once().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "needs_operator", "{d:#}");
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 2")
    );
    assert_eq!(fake.send_requests(), 2);
    assert!(fake.accepted().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_never_resent_blindly_the_provider_is_asked() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 1).await;
    let (no, id) = queued_sms(&st).await;
    // Aliyun takes the message but answers after the station's 1 s timeout.
    fake.script(AliyunScript::Hang(Duration::from_secs(3)));

    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "sending", "in doubt: {d:#}");
    assert_eq!(d["attempt_log"][0]["outcome"], "unknown");
    assert_eq!(fake.send_requests(), 1);
    assert_eq!(fake.accepted().len(), 1);

    // The next pass asks (QuerySendDetails by OutId) instead of sending again.
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "confirmed", "{d:#}");
    assert_eq!(d["provider_id"], id.as_str(), "found by its OutId");
    assert_eq!(fake.send_requests(), 1, "never sent twice");
    assert!(fake.query_requests() >= 1);
    assert_eq!(st.order_state(&no).await, "PinDelivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_request_waits_for_the_indexing_delay_then_goes_to_the_operator() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 1).await;
    st.set("query_delay_secs", "5");
    let (no, id) = queued_sms(&st).await;
    fake.script(AliyunScript::Lost(Duration::from_secs(3)));

    st.deliver_once().await;
    assert_eq!(st.delivery(&no).await["state"], "sending");
    // Asked at once: no record yet, but Aliyun indexes with a delay, so the station waits.
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "sending", "{d:#}");
    let run = st.deliver_once().await;
    assert!(
        run["events"].as_array().unwrap().is_empty(),
        "not due before the delay"
    );

    let sending_at = keystation::clock::parse_utc(d["sending_at"].as_str().unwrap()).unwrap();
    let due = sending_at + Duration::from_secs(5);
    assert_eq!(
        d["next_attempt_at"],
        keystation::clock::format_utc(due).as_str()
    );
    let wait = due - keystation::clock::Clock::now(&keystation::clock::SystemClock);
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default() + Duration::from_millis(300))
        .await;
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "needs_operator", "{d:#}");
    assert_eq!(fake.send_requests(), 1, "never resent automatically");

    // The provider never had it: the operator may send it again.
    st.ok(&["deliver", "retry", &id, "--operator", "op1"]).await;
    st.deliver_once().await;
    assert_eq!(st.delivery(&no).await["state"], "confirmed");
    assert_eq!(fake.accepted().len(), 1);
    assert_eq!(fake.send_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_provider_accepted_is_resolved_by_asking() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 5).await;
    let (no, _) = queued_sms(&st).await;

    st.deliver_aborted_at("deliver.sms.after_send").await;
    assert_eq!(fake.accepted().len(), 1);
    assert_eq!(st.delivery(&no).await["state"], "sending");

    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "confirmed", "{d:#}");
    assert_eq!(fake.send_requests(), 1, "not sent again after the crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_report_mode_confirms_on_the_carriers_receipt() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let st = aliyun_station(&fake, 5).await;
    st.append("confirm = \"delivery_report\"\n");
    let (no, _) = queued_sms(&st).await;
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(
        d["state"], "sent",
        "accepted, waiting for the receipt: {d:#}"
    );
    assert_eq!(st.order_state(&no).await, "Shipped");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    st.deliver_once().await;
    assert_eq!(st.delivery(&no).await["state"], "confirmed");
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    assert_eq!(fake.send_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_unknown_outcome_goes_to_the_operator_and_the_gateway_deduplicates_a_retry() {
    use crate::sms::fake_sms_gateway::{FakeWebhook, WebhookScript};
    let fake = FakeWebhook::start(b"webhook-shared-secret").await;
    let st = TestStation::init().await;
    st.set("kind", "\"webhook\"");
    // This station does not rely on the gateway's de-duplication (`dedup_window_secs = 0`): a
    // message in doubt goes to the operator (the default re-sends it under the same key: see
    // `concurrent`).
    st.append(&format!(
        "[delivery.sms.webhook]\nurl = \"{}\"\nconnect_timeout_secs = 2\nrequest_timeout_secs = 1\n\
         dedup_window_secs = 0\n",
        fake.url
    ));
    st.secret_file("secrets/sms-webhook.secret", "webhook-shared-secret");

    // Accepted = confirmed (the gateway de-duplicates, there is no receipt to wait for).
    let (a, _) = queued_sms(&st).await;
    st.deliver_once().await;
    let d = st.delivery(&a).await;
    assert_eq!(d["state"], "confirmed", "{d:#}");
    assert_eq!(d["provider_id"], "wh-1");

    // The gateway takes the message but answers too late: the outcome is unknown and a webhook
    // cannot be asked, so an operator decides; a retry re-sends the same Idempotency-Key and the
    // gateway answers with the message it already has.
    let b = st
        .shipped(sms_order("BJ20261124-0003", "13700137000"), "SF3")
        .await;
    fake.script(WebhookScript::Hang(Duration::from_secs(3)));
    st.deliver_once().await;
    assert_eq!(st.delivery(&b).await["state"], "sending");
    st.deliver_once().await;
    let d = st.delivery(&b).await;
    assert_eq!(d["state"], "needs_operator", "{d:#}");
    assert_eq!(fake.received().len(), 2);
    let id = d["id"].as_str().unwrap().to_string();
    st.ok(&["deliver", "retry", &id, "--operator", "op1"]).await;
    st.deliver_once().await;
    let d = st.delivery(&b).await;
    assert_eq!(d["state"], "confirmed", "{d:#}");
    assert_eq!(
        d["provider_id"], "wh-2",
        "the gateway's id of the first request"
    );
    assert_eq!(fake.received().len(), 2, "the gateway has it once");
    assert_eq!(fake.rejected_signatures(), 0);
    let pin = pin_in_sms_text(fake.received()[1].body["text"].as_str().unwrap());
    assert_pin_opens_token(&st, &b, &pin);
    assert!(!st.logs().contains(&pin));
    assert!(files_containing(&st.data_dir(), pin.as_bytes(), &[]).is_empty());
}
