//! The PIN (and the text that carries it) never shows in an outcome or a Debug output, whatever
//! the channel and whatever the provider echoes back.

use std::sync::Arc;
use std::time::Duration;

use keystation::delivery::sms::{
    AliyunChannel, AliyunConfig, AliyunCredentials, SmsChannel, SpoolChannel, WebhookChannel,
    WebhookConfig,
};
use zeroize::Zeroizing;

use crate::sms::fake_sms_gateway::{AliyunScript, FakeAliyun, FakeWebhook, WebhookScript};
use crate::sms::{FixedStamps, PIN, assert_no_secret, fixed_now, sms};

const ALIYUN_SECRET: &str = "aliyun-secret-value-123";
const WEBHOOK_SECRET: &str = "webhook-secret-value-456";

fn aliyun(endpoint: &str, secret: &str) -> SmsChannel {
    let mut config = AliyunConfig::new("北京CA", "SMS_1");
    config.endpoint = endpoint.to_owned();
    config.request_timeout = Duration::from_millis(400);
    SmsChannel::Aliyun(
        AliyunChannel::new(
            config,
            AliyunCredentials {
                access_key_id: "LTAIid".to_owned(),
                access_key_secret: Zeroizing::new(secret.to_owned()),
            },
            Arc::new(FixedStamps::at(fixed_now())),
        )
        .unwrap(),
    )
}

fn webhook(url: &str, secret: &str) -> SmsChannel {
    let mut config = WebhookConfig::new(url, Zeroizing::new(secret.to_owned()));
    config.request_timeout = Duration::from_millis(400);
    SmsChannel::Webhook(
        WebhookChannel::new(config, Arc::new(FixedStamps::at(fixed_now()))).unwrap(),
    )
}

#[tokio::test]
async fn pin_never_appears_in_outcomes_or_debug_output() {
    let msg = sms("dlv-x001");
    assert!(msg.text().expose_secret().contains(PIN), "test premise");

    let fake = FakeAliyun::start("LTAIid", ALIYUN_SECRET).await;
    let hook = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
    let spool_dir = tempfile::tempdir().unwrap();
    let channels = [
        aliyun(&fake.endpoint, ALIYUN_SECRET),
        aliyun(&fake.endpoint, "wrong"),
        webhook(&hook.url, WEBHOOK_SECRET),
        webhook(&hook.url, "wrong"),
        SmsChannel::Spool(SpoolChannel::new(
            spool_dir.path(),
            Arc::new(FixedStamps::at(fixed_now())),
        )),
        SmsChannel::Spool(SpoolChannel::new(
            "/sys/kernel",
            Arc::new(FixedStamps::at(fixed_now())),
        )),
    ];
    for ch in &channels {
        let dbg = format!("{ch:?}");
        assert!(
            !dbg.contains(ALIYUN_SECRET) && !dbg.contains(WEBHOOK_SECRET),
            "{dbg}"
        );
    }
    assert_no_secret(&msg, &msg);
    assert_no_secret(msg.text(), &msg);

    fake.script(AliyunScript::Throttle);
    fake.script(AliyunScript::ServerError);
    fake.script(AliyunScript::InvalidNumber);
    fake.script(AliyunScript::Hang(Duration::from_secs(2)));
    hook.script(WebhookScript::Status(400));
    hook.script(WebhookScript::Status(503));
    hook.script(WebhookScript::Hang(Duration::from_secs(2)));
    let mut seen = 0;
    for ch in &channels {
        for _ in 0..5 {
            let outcome = ch.send(&msg).await;
            assert_no_secret(&outcome, &msg);
            let found = ch.query(&msg, fixed_now()).await;
            assert_no_secret(&found, &msg);
            seen += 1;
        }
    }
    assert_eq!(seen, 30);
    // The Aliyun fake did accept (and would echo in Content / Message) the PIN: the test exercised
    // answers that carry it.
    assert!(fake.accepted().iter().any(|a| a.params["pin"] == PIN));
}
