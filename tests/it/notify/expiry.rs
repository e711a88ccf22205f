//! Expiry notices: 30 and 7 days before notAfter, once each, whatever the number of ticks; none
//! for a fresh certificate. The station runs in this process on a fixed clock (the worker's
//! tick reads the station's clock), with the SoftHSM vault and SQLite of a CLI-made station.

use std::sync::Arc;

use keystation::clock::{FixedClock, parse_utc};
use keystation::station::Station;

use super::*;

/// The expiry notices of an order.
async fn expiring(st: &TestStation, order_no: &str) -> Vec<Value> {
    notices(st, order_no)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "expiring")
        .collect()
}

/// `deliver run --once` in this process, at `at`.
pub(super) async fn deliver_at(st: &TestStation, at: time::OffsetDateTime) {
    let cfg = keystation::config::Config::load(&st.config).unwrap();
    let station = Station::open(cfg, Arc::new(FixedClock::new(at)))
        .await
        .unwrap();
    let hsm = station.open_hsm().await.unwrap();
    let channels = station.delivery_channels().unwrap();
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    station
        .deliver_run(&hsm, &channels, true, stop_rx)
        .await
        .unwrap();
    station.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_notices_go_once_at_30_and_7_days() {
    let webhook = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
    let smtp = SmtpServer::start(Security::None, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let st = notifying_station(&webhook, &smtp).await;
    let a = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    let shown = st.json(&["order", "show", &a]).await;
    let not_after = parse_utc(
        items(&shown["certificates"])[0]["not_after"]
            .as_str()
            .unwrap(),
    )
    .unwrap();

    // A fresh certificate: ticks send nothing about expiry.
    st.deliver_once().await;
    deliver_at(&st, not_after - time::Duration::days(31)).await;
    assert!(expiring(&st, &a).await.is_empty());

    // 20 days before: the 30-day notice, once, however many ticks.
    let at = not_after - time::Duration::days(20);
    deliver_at(&st, at).await;
    deliver_at(&st, at + time::Duration::hours(1)).await;
    deliver_at(&st, at + time::Duration::days(2)).await;
    let e = expiring(&st, &a).await;
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .all(|n| n["event_ref"].as_str().unwrap().starts_with("30d:"))
    );
    assert!(e.iter().all(|n| n["state"] == "sent"), "{e:#?}");

    // 5 days before: the 7-day notice, once.
    let at = not_after - time::Duration::days(5);
    deliver_at(&st, at).await;
    deliver_at(&st, at + time::Duration::days(1)).await;
    let e = expiring(&st, &a).await;
    assert_eq!(e.len(), 4, "{e:#?}");
    assert_eq!(
        e.iter()
            .filter(|n| n["event_ref"].as_str().unwrap().starts_with("7d:"))
            .count(),
        2
    );
    // Expired: nothing more.
    deliver_at(&st, not_after + time::Duration::days(1)).await;
    assert_eq!(expiring(&st, &a).await.len(), 4);

    // Counted at the servers: two expiry SMS and two expiry e-mails, the 30-day and the 7-day.
    let sms: Vec<String> = notice_sms(&webhook).iter().map(sms_text).collect();
    let mail = mail_texts(&smtp.received());
    for texts in [&sms, &mail] {
        assert_eq!(
            count_containing(texts, &["到期", "不足30天"]),
            1,
            "{texts:#?}"
        );
        assert_eq!(
            count_containing(texts, &["到期", "不足7天"]),
            1,
            "{texts:#?}"
        );
    }
}
