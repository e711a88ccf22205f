//! The notices' store queries on both backends, one query text: SQLite (a temp file) and
//! PostgreSQL (a throwaway database from the one harness, never skipped). Queueing an event
//! twice keeps one notice per medium; moves are conditional on the state read.

use crate::delivery::store_backends::{now, provisioned_order, sqlite_url};
use crate::pg::PgDatabase;
use keystation::domain::OrderNo;
use keystation::domain::notification::{Notice, NoticeEvent, NoticeMedium, NoticeState};
use keystation::store::{NewNotification, Store, StoreError};

async fn exercise(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let no = "BJ20261124-0019";
    let order_no: OrderNo = no.parse().unwrap();
    let tx = provisioned_order(&store, no).await;
    tx.commit().await.unwrap();
    let notice = Notice::Shipped {
        carrier: Some("顺丰".into()),
        tracking_no: "SF1".into(),
    };
    let new = |medium| NewNotification {
        order_no: &order_no,
        notice: &notice,
        event_ref: "shipment",
        medium,
        destination_masked: "139****9000",
    };
    let mut tx = store.begin_write(now()).await.unwrap();
    let sms = tx
        .queue_notification(&new(NoticeMedium::Sms))
        .await
        .unwrap();
    let email = tx
        .queue_notification(&new(NoticeMedium::Email))
        .await
        .unwrap();
    assert!(sms.is_some() && email.is_some());
    // The same event again: nothing new, and the transaction goes on (no failed statement).
    assert_eq!(
        tx.queue_notification(&new(NoticeMedium::Sms))
            .await
            .unwrap(),
        None
    );
    tx.commit().await.unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    assert_eq!(
        tx.queue_notification(&new(NoticeMedium::Email))
            .await
            .unwrap(),
        None
    );
    tx.commit().await.unwrap();

    let all = store.notifications(Some(&order_no)).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].notice, notice);
    assert!(
        store
            .notifications(Some(&"BJ20261124-0020".parse().unwrap()))
            .await
            .unwrap()
            .is_empty()
    );
    let due = store
        .due_notifications(NoticeState::Queued, now())
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert!(
        store
            .due_notifications(NoticeState::Queued, now() - time::Duration::SECOND)
            .await
            .unwrap()
            .is_empty()
    );

    // Claim, journal, accept; a second claim of the same row is refused by the state table.
    let id = sms.unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut n = tx.notification(&id).await.unwrap();
    tx.transition_notification(&mut n, NoticeEvent::Claim, |c| c.attempts += 1)
        .await
        .unwrap();
    let seq = tx.notice_attempt_started(&id).await.unwrap();
    tx.notice_attempt_finished(&id, seq, "accepted", Some("wh-1"), None)
        .await
        .unwrap();
    tx.transition_notification(&mut n, NoticeEvent::Accepted, |c| {
        c.provider_id = Some("wh-1".into())
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut again = tx.notification(&id).await.unwrap();
    assert_eq!(again.state, NoticeState::Sent);
    let refused = tx
        .transition_notification(&mut again, NoticeEvent::Claim, |_| {})
        .await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    drop(tx);
    let log = store.notice_attempts(&id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome.as_deref(), Some("accepted"));
}

#[tokio::test]
async fn notices_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn notices_on_postgres() {
    let db = PgDatabase::create().await;
    exercise(&db.url).await;
}
