//! A worker killed while sending a notice: the notice is in doubt (the server may have it), so
//! it fails once the station lease it was claimed under has passed, and is never sent again —
//! at most once, whether the kill came before or after the server took it.

use super::expiry::deliver_at;
use super::*;
use keystation::clock::Clock as _;

async fn killed_at(point: &str) -> (usize, Vec<Value>) {
    let webhook = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
    let smtp = SmtpServer::start(Security::None, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let st = notifying_station(&webhook, &smtp).await;
    // Approval queues two notices (SMS and e-mail); the worker dies on the first one it sends.
    let a = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    st.deliver_aborted_at(point).await;
    let list = notices(&st, &a).await;
    assert_eq!(
        list.iter().filter(|n| n["state"] == "sending").count(),
        1,
        "{list:#?}"
    );
    let reached = notice_sms(&webhook).len() + smtp.received().len();

    // Right after, another pass leaves it alone (its sender may still be at it)...
    st.deliver_once().await;
    let list = notices(&st, &a).await;
    assert_eq!(list.iter().filter(|n| n["state"] == "sending").count(), 1);
    // ...and once its lease has passed, it is failed, not sent again.
    deliver_at(
        &st,
        keystation::clock::SystemClock.now() + time::Duration::hours(1),
    )
    .await;
    deliver_at(
        &st,
        keystation::clock::SystemClock.now() + time::Duration::hours(2),
    )
    .await;
    let total = notice_sms(&webhook).len() + smtp.received().len();
    assert_eq!(total, reached + 1, "only the other notice went out");
    (reached, notices(&st, &a).await)
}

fn states(list: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|n| n["state"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_send_the_notice_fails_and_nothing_goes_twice() {
    let (reached, list) = killed_at("deliver.notice.before_send").await;
    assert_eq!(reached, 0);
    assert_eq!(states(&list), ["failed", "sent"]);
    let failed = list.iter().find(|n| n["state"] == "failed").unwrap();
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{failed:#}"
    );
    // The journal shows the interrupted attempt: started, never finished.
    let log = items(&failed["attempt_log"]);
    assert_eq!(log.len(), 1);
    assert!(log[0]["finished_at"].is_null(), "{failed:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_server_took_it_the_notice_is_not_sent_again() {
    let (reached, list) = killed_at("deliver.notice.after_send").await;
    assert_eq!(reached, 1);
    assert_eq!(states(&list), ["failed", "sent"]);
}
