//! The delivery queries of the store, run against both backends with one query text: SQLite
//! (a temp file) and PostgreSQL (a throwaway database on the local server, dropped afterwards).
//! The PostgreSQL database comes from the one harness, [`crate::pg`]: never skipped.

use super::*;
use crate::pg::PgDatabase;
use keystation::audit::event::{AuditEvent, DeliverySending};
use keystation::domain::SealedPin;
use keystation::domain::delivery::mask_phone;
use keystation::domain::order::DeliveryChannel;
use keystation::domain::{
    DeliveryEvent, DeliveryState, FileFacts, ImageType, OrderEvent, OrderState, ValidationContext,
    validate_order,
};
use keystation::store::{
    Actor, DeliveryFilter, NewDelivery, NewOrder, Shipment, Store, StoreError, Tx,
};

pub(crate) fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-11-24 06:00 UTC)
}

pub(crate) fn actor() -> Actor {
    Actor {
        name: "test".into(),
        station_id: Some("station-test".into()),
        operation_id: "op-1".into(),
    }
}

pub(crate) fn new_order(no: &str) -> NewOrder {
    let ctx = ValidationContext {
        today: time::macros::date!(2026 - 11 - 24),
        uscc_checksum_override: None,
    };
    let valid = validate_order(&sms_order(no, "13800138000"), &ctx, &mut |_, _| {
        FileFacts::Found {
            size: 1000,
            image: Some(ImageType::Png),
        }
    })
    .unwrap();
    NewOrder {
        order: valid.order,
        warnings: vec![],
        uscc_override_reason: None,
        attachments: vec![],
    }
}

pub(super) fn new_delivery(id: &str, no: &str) -> NewDelivery {
    NewDelivery {
        id: id.into(),
        order_no: order_no(no),
        station_id: "station-01".into(),
        channel: DeliveryChannel::BankTransfer,
        destination_masked: mask_phone("13800138000"),
        end_to_end_id: Some(format!("KS{id}")),
        pin_generation: 0,
    }
}

/// Stores order `no` and moves it to Provisioned in a write transaction left open for the caller.
pub(crate) async fn provisioned_order(store: &Store, no: &str) -> Tx {
    store
        .insert_orders(&[new_order(no)], &actor(), now())
        .await
        .unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    for e in [
        OrderEvent::Approve,
        OrderEvent::Claim,
        OrderEvent::CompleteProvisioning,
    ] {
        tx.transition(&order_no(no), None, e).await.unwrap();
    }
    tx
}

/// A fresh SQLite database file in `dir`.
pub(crate) fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display())
}

async fn exercise(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let no = "BJ20261124-0009";
    let mut tx = provisioned_order(&store, no).await;
    tx.put_sealed_pin(
        &order_no(no),
        &"SERIAL1".parse().unwrap(),
        &SealedPin(b"sealed-blob".to_vec()),
    )
    .await
    .unwrap();
    tx.insert_shipment(&Shipment {
        order_no: order_no(no),
        tracking_no: "SF1".into(),
        carrier: None,
        shipped_at: "2026-11-24T06:00:00.000000Z".into(),
        shipped_by: "op".into(),
    })
    .await
    .unwrap();
    assert_eq!(tx.delivery_count(&order_no(no)).await.unwrap(), 0);
    assert!(tx.has_sealed_pin(&order_no(no)).await.unwrap());
    tx.insert_delivery(&new_delivery("d-1", no)).await.unwrap();
    assert_eq!(
        tx.order_state(&order_no(no)).await.unwrap(),
        OrderState::Provisioned
    );
    assert_eq!(tx.order_in_tx(&order_no(no)).await.unwrap().order_no, no);
    tx.commit().await.unwrap();

    // One shipment and one live delivery per order (each refusal in its own transaction: a
    // failed statement ends a PostgreSQL transaction).
    let mut tx = store.begin_write(now()).await.unwrap();
    let dup = tx
        .insert_shipment(&Shipment {
            order_no: order_no(no),
            tracking_no: "SF2".into(),
            carrier: None,
            shipped_at: "x".into(),
            shipped_by: "op".into(),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyShipped(_))), "{dup:?}");
    drop(tx);
    let mut tx = store.begin_write(now()).await.unwrap();
    let dup = tx.insert_delivery(&new_delivery("d-2", no)).await;
    assert!(matches!(dup, Err(StoreError::DeliveryExists(_))), "{dup:?}");
    drop(tx);

    // Due now, not before; any station of the installation sends it (issue 14), so it is due
    // whichever station queued it.
    let due = store
        .due_deliveries(DeliveryState::Queued, now())
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(
        store
            .due_deliveries(DeliveryState::Queued, now() - time::Duration::SECOND)
            .await
            .unwrap()
            .is_empty()
    );

    // Optimistic write-back, attempt journal.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut d = tx.delivery("d-1").await.unwrap();
    let mut read_before = d.clone();
    tx.transition_delivery(&actor(), &mut d, DeliveryEvent::Claim, |d| {
        d.attempts = 1;
        d.bank_file = Some("KSd-1.xml".into());
        d.bank_message_id = Some("MSG1".into());
        Some(AuditEvent::DeliverySending(DeliverySending {
            delivery_id: d.id.clone(),
            channel: "bank".into(),
            destination: d.destination_masked.clone(),
            attempt: d.attempts,
            bank_file: d.bank_file.clone(),
        }))
    })
    .await
    .unwrap();
    let seq = tx.attempt_started("d-1", "file").await.unwrap();
    assert_eq!(seq, 1);
    tx.attempt_finished("d-1", seq, "written", Some("KSd-1.xml"), None)
        .await
        .unwrap();
    assert_eq!(
        tx.attempt_record("d-1", "import", "confirmed", None, None)
            .await
            .unwrap(),
        2
    );
    // A copy read in `queued` before the claim: the row is no longer in that state.
    let stale = tx
        .transition_delivery(&actor(), &mut read_before, DeliveryEvent::Claim, |_| None)
        .await;
    assert!(
        matches!(stale, Err(StoreError::DeliveryConflict { .. })),
        "{stale:?}"
    );
    tx.commit().await.unwrap();

    let by_e2e = store
        .delivery_by_end_to_end_id("KSd-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_e2e.state, DeliveryState::Sending);
    assert_eq!(by_e2e.attempts, 1);
    assert_eq!(
        store
            .deliveries_by_bank_message("MSG1")
            .await
            .unwrap()
            .len(),
        1
    );
    let attempts = store.delivery_attempts("d-1").await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome.as_deref(), Some("written"));
    let filtered = store
        .deliveries(&DeliveryFilter {
            order_no: Some(no.parse().unwrap()),
            state: Some(DeliveryState::Sending),
        })
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert!(
        store
            .deliveries(&DeliveryFilter {
                order_no: None,
                state: Some(DeliveryState::Confirmed),
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .deliveries(&DeliveryFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .shipment(&order_no(no))
            .await
            .unwrap()
            .unwrap()
            .tracking_no,
        "SF1"
    );

    // A cancelled delivery no longer blocks a new one; the sealed PIN can be destroyed.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut d = tx.delivery("d-1").await.unwrap();
    for event in [DeliveryEvent::Escalate, DeliveryEvent::Cancel] {
        tx.transition_delivery(&actor(), &mut d, event, |_| None)
            .await
            .unwrap();
    }
    assert_eq!(d.state, DeliveryState::Cancelled);
    tx.insert_delivery(&new_delivery("d-3", no)).await.unwrap();
    assert_eq!(tx.delivery_count(&order_no(no)).await.unwrap(), 2);
    assert!(tx.delete_sealed_pin(&order_no(no)).await.unwrap());
    assert!(!tx.has_sealed_pin(&order_no(no)).await.unwrap());
    tx.commit().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn delivery_queries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn delivery_queries_on_postgres() {
    let db = PgDatabase::create().await;
    exercise(&db.url).await;
}
