//! Issue 16 items 1 and 2: the e-mail channel against a loopback SMTP receiver that speaks
//! real SMTP (`smtp_server`), and the applicant's notices end to end — a real station (SoftHSM,
//! SQLite) driven through the CLI, its SMS through the fake signed-webhook gateway and its
//! e-mail through the loopback receiver, where every message is counted and read.

mod crash;
mod email;
mod expiry;
pub mod smtp_server;
mod store_backends;
mod webhook;

use crate::delivery::{SMS_ORDER, TestStation, fixtures, sms_order};
use crate::sms::fake_sms_gateway::{FakeWebhook, WebhookReceived};
use crate::support::items;
use serde_json::Value;
use smtp_server::{Received, Security, SmtpServer};

const WEBHOOK_SECRET: &str = "webhook-shared-secret";
const SMTP_USER: &str = "station";
const SMTP_PASSWORD: &str = "smtp-password-1";
/// The handler of `sms_order` (notices go to the handler; the PIN to the legal rep).
const HANDLER_MOBILE: &str = "13900139000";
const HANDLER_EMAIL: &str = "li.si@example.com";

/// A station whose SMS go to `webhook` and whose e-mail goes to `smtp`, notices on.
async fn notifying_station(webhook: &FakeWebhook, smtp: &SmtpServer) -> TestStation {
    let st = TestStation::init().await;
    st.set("kind", "\"webhook\"");
    st.secret_file("secrets/sms-webhook.secret", WEBHOOK_SECRET);
    st.secret_file("secrets/smtp.password", SMTP_PASSWORD);
    st.append(&format!(
        "[delivery.sms.webhook]\nurl = \"{}\"\n\n\
         [delivery.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         username = \"{SMTP_USER}\"\npassword_file = \"secrets/smtp.password\"\n\
         from = \"北京CA <ca@example.com>\"\ntimeout_secs = 5\n\n\
         [delivery.notices]\nenabled = true\n",
        webhook.url,
        smtp.addr.port()
    ));
    st
}

/// Imports an order without approving it.
async fn imported(st: &TestStation, order: Value) -> String {
    let no = order["order_no"].as_str().unwrap().to_string();
    let dir = st.dir.path().join(format!("order-{no}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixtures().join("seals/company.png"), dir.join("c.png")).unwrap();
    std::fs::write(dir.join("order.json"), order.to_string()).unwrap();
    st.ok(&["order", "import", dir.join("order.json").to_str().unwrap()])
        .await;
    no
}

/// The notices an order has, by `deliver notices --json`.
async fn notices(st: &TestStation, order_no: &str) -> Vec<Value> {
    items(&st.json(&["deliver", "notices", "--order", order_no]).await).to_vec()
}

/// `(kind, medium)` of every notice of an order, sorted.
async fn kinds(st: &TestStation, order_no: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = notices(st, order_no)
        .await
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["medium"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(kinds: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = kinds
        .iter()
        .flat_map(|k| {
            [
                (k.to_string(), "email".into()),
                (k.to_string(), "sms".into()),
            ]
        })
        .collect();
    v.sort();
    v
}

/// SMS the gateway received for the handler (notices), and their texts.
fn notice_sms(webhook: &FakeWebhook) -> Vec<WebhookReceived> {
    webhook
        .received()
        .into_iter()
        .filter(|r| r.body["to"] == HANDLER_MOBILE)
        .collect()
}

fn sms_text(r: &WebhookReceived) -> String {
    r.body["text"].as_str().unwrap().to_string()
}

/// How many of `texts` contain every one of `needles`.
fn count_containing(texts: &[String], needles: &[&str]) -> usize {
    texts
        .iter()
        .filter(|t| needles.iter().all(|n| t.contains(n)))
        .count()
}

fn mail_texts(mails: &[Received]) -> Vec<String> {
    mails
        .iter()
        .map(|m| format!("{}\n{}", m.data, m.body()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_sends_one_sms_and_one_email_and_none_carries_the_pin() {
    let webhook = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
    let smtp = SmtpServer::start(Security::None, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let st = notifying_station(&webhook, &smtp).await;

    // A: approved, provisioned, shipped, PIN delivered, then revoked. B: rejected at review.
    let a = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    let b = imported(&st, sms_order("BJ20261124-0003", "13700137000")).await;
    st.ok(&[
        "order",
        "reject",
        &b,
        "--operator",
        "reviewer",
        "--reason",
        "营业执照复印件不清晰",
    ])
    .await;
    // Queued with the review, not sent yet: nothing has reached a server.
    assert_eq!(kinds(&st, &a).await, pairs(&["approved"]));
    assert_eq!(kinds(&st, &b).await, pairs(&["rejected"]));
    assert!(
        notices(&st, &a)
            .await
            .iter()
            .all(|n| n["state"] == "queued")
    );
    assert!(webhook.received().is_empty() && smtp.received().is_empty());

    st.ok(&[
        "ship",
        &a,
        "--tracking",
        "SF1234567890",
        "--carrier",
        "顺丰",
    ])
    .await;
    let report = st.deliver_once().await;
    // The PIN went by SMS to the legal representative, and was confirmed on acceptance: the
    // PIN-sent notice was queued in that transaction and sent in the same pass.
    let pin_sms: Vec<WebhookReceived> = webhook
        .received()
        .into_iter()
        .filter(|r| r.body["to"] == "13800138000")
        .collect();
    assert_eq!(pin_sms.len(), 1, "{report:#}");
    let pin_text = sms_text(&pin_sms[0]);
    let pin = crate::delivery::pin_in_sms_text(&pin_text);
    assert_eq!(pin.len(), 8, "{pin_text}");
    assert_eq!(st.order_state(&a).await, "PinDelivered");
    assert_eq!(
        kinds(&st, &a).await,
        pairs(&["approved", "pin_sent", "shipped"])
    );

    st.revoke(&[
        "order",
        "revoke",
        &a,
        "--reason",
        "keyCompromise",
        "--operator",
        "op1",
    ])
    .await;
    st.deliver_once().await;
    // Passes with nothing new send nothing again.
    st.deliver_once().await;
    st.deliver_once().await;

    assert_eq!(
        kinds(&st, &a).await,
        pairs(&["approved", "pin_sent", "revoked", "shipped"])
    );
    assert_eq!(kinds(&st, &b).await, pairs(&["rejected"]));
    for n in notices(&st, &a)
        .await
        .iter()
        .chain(notices(&st, &b).await.iter())
    {
        assert_eq!(n["state"], "sent", "{n:#}");
        assert_eq!(n["attempts"], 1, "{n:#}");
        let log = items(&n["attempt_log"]);
        assert_eq!(log.len(), 1, "{n:#}");
        assert_eq!(log[0]["outcome"], "accepted", "{n:#}");
    }
    let masked: Vec<String> = notices(&st, &a)
        .await
        .iter()
        .map(|n| n["destination_masked"].as_str().unwrap().to_string())
        .collect();
    assert!(masked.contains(&"139****9000".to_string()), "{masked:?}");
    assert!(
        masked.contains(&"l***@example.com".to_string()),
        "{masked:?}"
    );

    // Counted at the servers: 5 events (A: approved, shipped, PIN sent, revoked; B: rejected),
    // one SMS to the handler's mobile and one e-mail to the handler's address each.
    let sms: Vec<String> = notice_sms(&webhook).iter().map(sms_text).collect();
    let mails = smtp.received();
    let mail = mail_texts(&mails);
    assert_eq!(sms.len(), 5, "{sms:#?}");
    assert_eq!(mails.len(), 5, "{mail:#?}");
    for m in &mails {
        assert_eq!(m.rcpt_to, vec![HANDLER_EMAIL.to_string()]);
        assert_eq!(m.mail_from, "ca@example.com");
        assert_eq!(m.user.as_deref(), Some(SMTP_USER));
        assert!(m.header("Message-ID").unwrap().ends_with("@keystation>"));
    }
    for texts in [&sms, &mail] {
        assert_eq!(count_containing(texts, &[&a, "审核通过"]), 1, "{texts:#?}");
        assert_eq!(
            count_containing(texts, &[&b, "未通过审核", "营业执照复印件不清晰"]),
            1
        );
        assert_eq!(count_containing(texts, &[&a, "顺丰", "SF1234567890"]), 1);
        assert_eq!(count_containing(texts, &[&a, "短信", "138****8000"]), 1);
        assert_eq!(count_containing(texts, &["吊销", "keyCompromise"]), 1);
        // None for what did not happen: no rejection of A, no approval of B, no expiry.
        assert_eq!(count_containing(texts, &[&a, "未通过审核"]), 0);
        assert_eq!(count_containing(texts, &[&b, "审核通过"]), 0);
        assert_eq!(count_containing(texts, &["到期"]), 0);
        // No notice carries the PIN.
        for t in texts.iter() {
            assert!(!t.contains(&pin), "a notice carries the PIN: {t}");
        }
    }
    // Nor does anything the station logged, and the SMTP password is in no log either.
    let logs = st.logs();
    assert!(!logs.contains(&pin));
    assert!(!logs.contains(SMTP_PASSWORD));

    // Audited: one `notice.queued` and one `notice.sent` per notice.
    let audit = st.json(&["audit", "show", "--order", &a]).await;
    let actions: Vec<String> = items(&audit)
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "notice.queued").count(), 8);
    assert_eq!(actions.iter().filter(|a| *a == "notice.sent").count(), 8);
    st.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_are_off_unless_enabled_and_an_unreachable_server_is_retried_not_lost() {
    let webhook = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
    // Off: nothing queued.
    let st = TestStation::init().await;
    let a = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    assert!(notices(&st, &a).await.is_empty());

    // On, but the SMTP server is down: the e-mail notice is retried later (queued, attempt 1,
    // the error journaled) while the SMS one goes.
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let st = TestStation::init().await;
    st.set("kind", "\"webhook\"");
    st.secret_file("secrets/sms-webhook.secret", WEBHOOK_SECRET);
    st.append(&format!(
        "[delivery.sms.webhook]\nurl = \"{}\"\n\n\
         [delivery.email]\nhost = \"127.0.0.1\"\nport = {free_port}\nsecurity = \"none\"\n\
         from = \"ca@example.com\"\n\n[delivery.notices]\nenabled = true\n",
        webhook.url
    ));
    let a = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    st.deliver_once().await;
    let list = notices(&st, &a).await;
    let email = list.iter().find(|n| n["medium"] == "email").unwrap();
    let sms = list.iter().find(|n| n["medium"] == "sms").unwrap();
    assert_eq!(sms["state"], "sent", "{sms:#}");
    assert_eq!(email["state"], "queued", "{email:#}");
    assert_eq!(email["attempts"], 1);
    let log = items(&email["attempt_log"]);
    assert_eq!(log[0]["outcome"], "retryable", "{email:#}");
    assert!(
        log[0]["error"].as_str().unwrap().contains("connecting"),
        "{email:#}"
    );
    assert_eq!(notice_sms(&webhook).len(), 1);
}

#[tokio::test]
async fn configuration_refuses_plain_smtp_to_a_remote_host_and_a_pin_in_a_template() {
    let st = TestStation::init().await;
    st.append(
        "[delivery.email]\nhost = \"smtp.example.com\"\nsecurity = \"none\"\nfrom = \"ca@example.com\"\n",
    );
    let out = st.run(&["deliver", "notices"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("delivery.email.security"), "{err}");

    let st = TestStation::init().await;
    st.append("[delivery.notices.templates]\nshipped = \"您的密码是{pin}\"\n");
    let out = st.run(&["deliver", "notices"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("delivery.notices.templates") && err.contains("{pin}"),
        "{err}"
    );
}
