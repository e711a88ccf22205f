//! The store's SO PIN generations and unlock requests on both backends with one query text:
//! SQLite (a temp file) and PostgreSQL (a throwaway database from [`crate::pg`]).

use super::store::{now, op, with_order};
use crate::pg::PgDatabase;
use keystation::domain::{OrderNo, RequestKind};
use keystation::store::{NewServiceRequest, SendRecord, SoPinGeneration, StoreError};

async fn exercise(url: &str) {
    let no = OrderNo::parse("UNLK-STORE-1").unwrap();
    let store = with_order(url, &no).await;
    let identity = "serial:0123456789abcdef";
    let mut tx = store.begin_write(now()).await.unwrap();
    tx.insert_service_request(&NewServiceRequest {
        id: "u-1".into(),
        kind: RequestKind::Unlock,
        order_no: no.clone(),
        requested_by: op("alice"),
        reason: "locked".into(),
        evidence: "caller identified".into(),
    })
    .await
    .unwrap();
    tx.insert_unlock_request("u-1", "0123456789abcdef", "00ff", "ab")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A request code is used once (its own transaction: a failed statement ends it on PG).
    let mut tx = store.begin_write(now()).await.unwrap();
    let again = tx
        .insert_unlock_request("u-1", "0123456789abcdef", "00ff", "ab")
        .await;
    assert!(
        matches!(again, Err(StoreError::UnlockCodeUsed)),
        "{again:?}"
    );
    drop(tx);

    // No row: generation 0, nothing pending.
    assert_eq!(
        store.so_pin_generation(identity).await.unwrap(),
        SoPinGeneration::default()
    );
    let mut tx = store.begin_write(now()).await.unwrap();
    let g = tx.reserve_so_pin_generation(identity, "u-1").await.unwrap();
    assert_eq!((g.current, g.pending), (0, Some(1)));
    assert_eq!(g.pending_request.as_deref(), Some("u-1"));
    // Reserved again before it is confirmed: the same pending generation.
    let g = tx.reserve_so_pin_generation(identity, "u-1").await.unwrap();
    assert_eq!((g.current, g.pending), (0, Some(1)));
    tx.record_unlock_send(
        "u-1",
        &SendRecord::Sending {
            destination_masked: "l***@example.com".into(),
            expires_at: "2026-12-03T02:00:00.000000Z".into(),
        },
    )
    .await
    .unwrap();
    tx.record_unlock_send("u-1", &SendRecord::InDoubt("timeout".into()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let u = store.unlock_request("u-1").await.unwrap().unwrap();
    assert_eq!(
        (u.send_state.as_str(), u.sends, u.last_error.as_deref()),
        ("in_doubt", 1, Some("timeout"))
    );
    assert!(store.unlock_request("u-2").await.unwrap().is_none());

    // Confirmed: the pending generation becomes current; a second confirm changes nothing.
    let mut tx = store.begin_write(now()).await.unwrap();
    let before = tx.confirm_so_pin_generation(identity).await.unwrap();
    assert_eq!((before.current, before.pending), (0, Some(1)));
    let before = tx.confirm_so_pin_generation(identity).await.unwrap();
    assert_eq!((before.current, before.pending), (1, None));
    // The next unlock rotates to generation 2.
    let g = tx.reserve_so_pin_generation(identity, "u-1").await.unwrap();
    assert_eq!((g.current, g.pending), (1, Some(2)));
    tx.commit().await.unwrap();
    // Another identity is untouched.
    assert_eq!(
        store.so_pin_generation("serial:other").await.unwrap(),
        SoPinGeneration::default()
    );
    store.close().await;
}

#[tokio::test]
async fn unlock_records_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&crate::delivery::store_backends::sqlite_url(&dir)).await;
}

#[tokio::test]
async fn unlock_records_on_postgres() {
    let db = PgDatabase::create().await;
    exercise(&db.url).await;
}
