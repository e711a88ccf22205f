//! Webhook channel against the fake gateway on loopback.

use std::sync::Arc;
use std::time::Duration;

use keystation::delivery::sms::{
    QueryOutcome, SendOutcome, SmsChannel, WebhookChannel, WebhookConfig, verify_webhook_signature,
};
use zeroize::Zeroizing;

use crate::sms::fake_sms_gateway::{FakeWebhook, WebhookScript};
use crate::sms::{FixedStamps, PHONE, assert_no_secret, assert_outcome, fixed_now, reason, sms};

const SECRET: &[u8] = b"gateway-shared-secret";

fn channel(url: &str, secret: &[u8], request_timeout: Duration) -> SmsChannel {
    let mut config = WebhookConfig::new(
        url,
        Zeroizing::new(String::from_utf8(secret.to_vec()).unwrap()),
    );
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = request_timeout;
    SmsChannel::Webhook(
        WebhookChannel::new(config, Arc::new(FixedStamps::at(fixed_now()))).unwrap(),
    )
}

#[tokio::test]
async fn happy_path_is_accepted_and_signed() {
    let fake = FakeWebhook::start(SECRET).await;
    let msg = sms("dlv-w001");
    let outcome = channel(&fake.url, SECRET, Duration::from_secs(5))
        .send(&msg)
        .await;
    assert_eq!(
        outcome,
        SendOutcome::Accepted {
            provider_id: "wh-1".to_owned()
        }
    );
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.idempotency_key, "dlv-w001");
    assert_eq!(r.body["delivery_id"], "dlv-w001");
    assert_eq!(r.body["to"], PHONE);
    assert_eq!(r.body["order_no"], "20201126135521");
    assert_eq!(r.body["text"], msg.text().expose_secret());
    assert_eq!(r.body.as_object().unwrap().len(), 4);
    assert_eq!(r.timestamp, fixed_now().unix_timestamp().to_string());
    // The library's verifier agrees with the receiver on what was actually sent...
    assert!(verify_webhook_signature(
        SECRET,
        &r.timestamp,
        &r.raw_body,
        &r.signature
    ));
    // ...and rejects it under another secret or timestamp.
    assert!(!verify_webhook_signature(
        b"other",
        &r.timestamp,
        &r.raw_body,
        &r.signature
    ));
    assert!(!verify_webhook_signature(
        SECRET,
        "1",
        &r.raw_body,
        &r.signature
    ));
    assert_no_secret(&outcome, &msg);
}

#[tokio::test]
async fn bad_signature_is_rejected_by_the_receiver() {
    let fake = FakeWebhook::start(SECRET).await;
    let msg = sms("dlv-w002");
    let outcome = channel(&fake.url, b"wrong-secret", Duration::from_secs(5))
        .send(&msg)
        .await;
    assert_outcome(&outcome, "permanent", "401");
    assert_eq!(fake.rejected_signatures(), 1);
    assert!(fake.received().is_empty());
    assert_no_secret(&outcome, &msg);
}

#[tokio::test]
async fn resending_the_same_delivery_is_deduplicated_by_the_gateway() {
    let fake = FakeWebhook::start(SECRET).await;
    let ch = channel(&fake.url, SECRET, Duration::from_secs(5));
    let msg = sms("dlv-w003");
    let first = ch.send(&msg).await;
    let second = ch.send(&msg).await;
    assert_eq!(first, second);
    assert_eq!(fake.requests(), 2);
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn status_codes_map_to_outcomes() {
    let fake = FakeWebhook::start(SECRET).await;
    let ch = channel(&fake.url, SECRET, Duration::from_secs(5));
    for (status, retryable) in [
        (429, true),
        (503, true),
        (500, true),
        (400, false),
        (422, false),
    ] {
        fake.script(WebhookScript::Status(status));
        let outcome = ch.send(&sms("dlv-w004")).await;
        if retryable {
            assert!(
                matches!(outcome, SendOutcome::Retryable { .. }),
                "{status}: {outcome:?}"
            );
        } else {
            assert!(
                matches!(outcome, SendOutcome::Permanent { .. }),
                "{status}: {outcome:?}"
            );
        }
        assert!(
            reason(&outcome).contains(&status.to_string()),
            "{outcome:?}"
        );
    }
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn hang_is_unknown_query_unsupported_and_resend_is_safe() {
    let fake = FakeWebhook::start(SECRET).await;
    fake.script(WebhookScript::Hang(Duration::from_secs(3)));
    let ch = channel(&fake.url, SECRET, Duration::from_millis(400));
    let msg = sms("dlv-w005");
    let outcome = ch.send(&msg).await;
    assert_outcome(&outcome, "unknown", "");
    assert_eq!(ch.query(&msg, fixed_now()).await, QueryOutcome::Unsupported);
    // The documented recovery: resend with the same delivery id, the gateway de-duplicates.
    let again = ch.send(&msg).await;
    assert_eq!(
        again,
        SendOutcome::Accepted {
            provider_id: "wh-1".to_owned()
        }
    );
    assert_eq!(fake.received().len(), 1);
}
