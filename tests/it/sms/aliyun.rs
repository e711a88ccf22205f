//! Aliyun channel against the fake Dysmsapi on loopback.

use std::sync::Arc;
use std::time::Duration;

use keystation::delivery::sms::{
    AliyunChannel, AliyunConfig, AliyunCredentials, QueryOutcome, SendOutcome, SmsChannel,
};
use zeroize::Zeroizing;

use crate::sms::fake_sms_gateway::{AliyunScript, FakeAliyun};
use crate::sms::{FixedStamps, PHONE, PIN, assert_no_secret, assert_outcome, fixed_now, sms};

const KEY_ID: &str = "LTAI5tFakeKeyId";
const SECRET: &str = "fake-secret-Hx8*~ 9";

fn channel_to(endpoint: &str, secret: &str, request_timeout: Duration) -> SmsChannel {
    let mut config = AliyunConfig::new("北京CA", "SMS_465880123");
    config.endpoint = endpoint.to_owned();
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = request_timeout;
    let credentials = AliyunCredentials {
        access_key_id: KEY_ID.to_owned(),
        access_key_secret: Zeroizing::new(secret.to_owned()),
    };
    SmsChannel::Aliyun(
        AliyunChannel::new(config, credentials, Arc::new(FixedStamps::at(fixed_now()))).unwrap(),
    )
}

fn channel(fake: &FakeAliyun) -> SmsChannel {
    channel_to(&fake.endpoint, SECRET, Duration::from_secs(5))
}

#[tokio::test]
async fn correct_send_is_accepted_and_recorded() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let msg = sms("dlv-0001");
    let outcome = channel(&fake).send(&msg).await;
    let SendOutcome::Accepted { provider_id } = &outcome else {
        panic!("{outcome:?}");
    };
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    let a = &accepted[0];
    assert_eq!(provider_id, &a.biz_id);
    assert_eq!(a.phone, PHONE);
    assert_eq!(a.sign_name, "北京CA");
    assert_eq!(a.template_code, "SMS_465880123");
    assert_eq!(a.out_id.as_deref(), Some("dlv-0001"));
    assert_eq!(a.params["pin"], PIN);
    assert_eq!(a.params["order_no"], "20201126135521");
    assert_eq!(a.params["company"], "北京某某科技有限公司");
    assert_eq!(a.params.len(), 3);
    assert_no_secret(&outcome, &msg);
}

#[tokio::test]
async fn every_request_uses_a_fresh_nonce() {
    // The fake refuses a reused SignatureNonce, as Aliyun does.
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let ch = channel(&fake);
    for i in 0..3 {
        let outcome = ch.send(&sms(&format!("dlv-n{i}"))).await;
        assert_outcome(&outcome, "accepted", "");
    }
    assert_eq!(fake.accepted().len(), 3);
}

#[tokio::test]
async fn wrong_secret_is_permanent_and_names_signature_does_not_match() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let msg = sms("dlv-0002");
    let outcome = channel_to(&fake.endpoint, "not-the-secret", Duration::from_secs(5))
        .send(&msg)
        .await;
    assert_outcome(&outcome, "permanent", "SignatureDoesNotMatch");
    assert!(fake.accepted().is_empty());
    // The fake echoed its string to sign, with the encoded PIN, in Message: it must not leak.
    assert_no_secret(&outcome, &msg);
}

#[tokio::test]
async fn unknown_access_key_is_permanent() {
    let fake = FakeAliyun::start("LTAIsomeoneelse", SECRET).await;
    let outcome = channel(&fake).send(&sms("dlv-0003")).await;
    assert_outcome(&outcome, "permanent", "InvalidAccessKeyId.NotFound");
}

#[tokio::test]
async fn throttle_is_retryable_and_a_later_attempt_succeeds() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    fake.script(AliyunScript::Throttle);
    let ch = channel(&fake);
    let msg = sms("dlv-0004");
    let outcome = ch.send(&msg).await;
    assert_outcome(&outcome, "retryable", "isv.BUSINESS_LIMIT_CONTROL");
    assert!(fake.accepted().is_empty());
    assert_no_secret(&outcome, &msg);
    let outcome = ch.send(&msg).await;
    assert_outcome(&outcome, "accepted", "");
    assert_eq!(fake.accepted().len(), 1);
}

#[tokio::test]
async fn server_error_is_retryable() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    fake.script(AliyunScript::ServerError);
    let outcome = channel(&fake).send(&sms("dlv-0005")).await;
    assert_outcome(&outcome, "retryable", "500");
    assert!(fake.accepted().is_empty());
}

#[tokio::test]
async fn invalid_number_is_permanent() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    fake.script(AliyunScript::InvalidNumber);
    let outcome = channel(&fake).send(&sms("dlv-0006")).await;
    assert_outcome(&outcome, "permanent", "isv.MOBILE_NUMBER_ILLEGAL");
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    // A port that was free a moment ago: nothing listens, the connection is refused before sending.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = channel_to(
        &format!("http://127.0.0.1:{port}/"),
        SECRET,
        Duration::from_secs(5),
    );
    let outcome = ch.send(&sms("dlv-0007")).await;
    assert_outcome(&outcome, "retryable", "connect");
}

#[tokio::test]
async fn hang_is_unknown_and_query_finds_the_message_without_a_resend() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    fake.script(AliyunScript::Hang(Duration::from_secs(3)));
    let ch = channel_to(&fake.endpoint, SECRET, Duration::from_millis(400));
    let msg = sms("dlv-0008");
    let sent_at = fixed_now();
    let outcome = ch.send(&msg).await;
    assert_outcome(&outcome, "unknown", "");
    assert_no_secret(&outcome, &msg);
    // The provider did take it: a blind resend would deliver the PIN twice.
    assert_eq!(fake.accepted().len(), 1);
    let found = ch.query(&msg, sent_at).await;
    assert_eq!(
        found,
        QueryOutcome::Delivered {
            provider_id: "dlv-0008".to_owned()
        }
    );
    // The query answer carried the text (Content) with the PIN: nothing of it may surface.
    assert_no_secret(&found, &msg);
    assert_eq!(fake.send_requests(), 1, "query must not resend");
    // A delivery that never reached the provider is reported as such.
    assert_eq!(
        ch.query(&sms("dlv-0009"), sent_at).await,
        QueryOutcome::NotFound
    );
}

#[tokio::test]
async fn query_pages_through_the_day() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let ch = channel(&fake);
    for i in 0..55 {
        let outcome = ch.send(&sms(&format!("dlv-p{i:02}"))).await;
        assert_outcome(&outcome, "accepted", "");
    }
    let before = fake.query_requests();
    let found = ch.query(&sms("dlv-p54"), fixed_now()).await;
    assert!(matches!(found, QueryOutcome::Delivered { .. }), "{found:?}");
    assert_eq!(fake.query_requests() - before, 2, "second page needed");
    let before = fake.query_requests();
    assert_eq!(
        ch.query(&sms("dlv-none"), fixed_now()).await,
        QueryOutcome::NotFound
    );
    assert_eq!(
        fake.query_requests() - before,
        2,
        "stops after the last page"
    );
}

#[tokio::test]
async fn query_with_a_wrong_secret_fails_without_leaking() {
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let msg = sms("dlv-0010");
    assert!(matches!(
        channel(&fake).send(&msg).await,
        SendOutcome::Accepted { .. }
    ));
    let bad = channel_to(&fake.endpoint, "wrong", Duration::from_secs(5));
    let outcome = bad.query(&msg, fixed_now()).await;
    let QueryOutcome::Failed { reason } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("SignatureDoesNotMatch"), "{reason}");
    assert_no_secret(&outcome, &msg);
}

#[tokio::test]
async fn awkward_characters_are_signed_like_aliyun_does() {
    // Space, `*`, `~`, `+`, `/`, `&`, `=`, full-width and astral characters all go through the
    // percent-encoding; the fake encodes them its own (Java URLEncoder) way.
    let fake = FakeAliyun::start(KEY_ID, SECRET).await;
    let company = "A&B *Co.~+/=（北京）\u{20000}";
    let msg = keystation::delivery::sms::OutgoingSms::new(
        "dlv-0011",
        PHONE,
        "O 1+2",
        company,
        "a*b~c d",
        &crate::sms::template(),
    )
    .unwrap();
    let outcome = channel(&fake).send(&msg).await;
    assert_outcome(&outcome, "accepted", "");
    let a = &fake.accepted()[0];
    assert_eq!(a.params["company"], company);
    assert_eq!(a.params["order_no"], "O 1+2");
    assert_eq!(a.params["pin"], "a*b~c d");
}
