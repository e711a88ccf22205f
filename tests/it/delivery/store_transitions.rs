//! The store's one delivery transition (`Tx::transition_delivery`, and `Tx::update_delivery` for
//! changes without a move), on both backends: the domain's state machine decides, the fields
//! and the audit record are written in the caller's transaction, and nothing is written when
//! the move is refused.

use super::store_backends::{actor, new_delivery, now, provisioned_order, sqlite_url};
use crate::pg::PgDatabase;
use keystation::audit::event::{AuditEvent, DeliveryHeld, DeliverySending};
use keystation::domain::{DeliveryEvent, DeliveryState};
use keystation::store::{AuditFilter, DeliveryRecord, Store, StoreError};
use serde_json::json;

const ORDER: &str = "BJ20261124-0010";
const DELIVERY: &str = "d-10";

const EVENTS: [DeliveryEvent; 8] = [
    DeliveryEvent::Claim,
    DeliveryEvent::Accepted,
    DeliveryEvent::Confirm,
    DeliveryEvent::RetryLater,
    DeliveryEvent::Escalate,
    DeliveryEvent::Reject,
    DeliveryEvent::Cancel,
    DeliveryEvent::OperatorRetry,
];

/// A Provisioned order with one queued delivery, committed.
async fn queued_delivery(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    let mut tx = provisioned_order(&store, ORDER).await;
    tx.insert_delivery(&new_delivery(DELIVERY, ORDER))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store
}

async fn audit_actions(store: &Store) -> Vec<String> {
    store
        .audit_records(&AuditFilter {
            order_no: Some(ORDER.parse().unwrap()),
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect()
}

async fn stored(store: &Store) -> DeliveryRecord {
    store.delivery(DELIVERY).await.unwrap().unwrap()
}

/// The record of a claim.
fn sending(d: &DeliveryRecord) -> AuditEvent {
    AuditEvent::DeliverySending(DeliverySending {
        delivery_id: d.id.clone(),
        channel: "bank".into(),
        destination: d.destination_masked.clone(),
        attempt: d.attempts,
        bank_file: d.bank_file.clone(),
    })
}

/// A legal move: the fields, the state and the audit record, together, or not at all.
async fn legal_move_with_its_audit_record(url: &str) {
    let store = queued_delivery(url).await;
    let before = audit_actions(&store).await;
    let claim = |d: &mut DeliveryRecord| {
        d.attempts += 1;
        d.bank_file = Some("KSd-10.xml".into());
        Some(sending(d))
    };

    // Rolled back: neither the move nor its record remains.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut d = tx.delivery(DELIVERY).await.unwrap();
    let from = tx
        .transition_delivery(&actor(), &mut d, DeliveryEvent::Claim, claim)
        .await
        .unwrap();
    assert_eq!(
        (from, d.state),
        (DeliveryState::Queued, DeliveryState::Sending)
    );
    drop(tx);
    assert_eq!(stored(&store).await.state, DeliveryState::Queued);
    assert_eq!(audit_actions(&store).await, before);

    // Committed: both.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut d = tx.delivery(DELIVERY).await.unwrap();
    tx.transition_delivery(&actor(), &mut d, DeliveryEvent::Claim, claim)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let row = stored(&store).await;
    assert_eq!(row.state, DeliveryState::Sending);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.bank_file.as_deref(), Some("KSd-10.xml"));
    let records = store
        .audit_records(&AuditFilter {
            order_no: Some(ORDER.parse().unwrap()),
        })
        .await
        .unwrap();
    assert_eq!(records.len(), before.len() + 1);
    let last = records.last().unwrap();
    assert_eq!(last.action, "delivery.sending");
    assert_eq!(last.order_no.as_deref(), Some(ORDER));
    assert_eq!(
        (last.actor.as_str(), last.operation_id.as_str()),
        ("test", "op-1")
    );
    let details: serde_json::Value = serde_json::from_str(&last.details).unwrap();
    assert_eq!(details["delivery_id"], json!(DELIVERY));
    assert_eq!(details["attempt"], json!(1));
    assert_eq!(details["bank_file"], json!("KSd-10.xml"));
    store.close().await;
}

/// Every event the domain refuses for a queued delivery is refused by the store, before the
/// caller's change runs and before anything is written; every event it allows is applied.
async fn the_state_machine_decides(url: &str) {
    let store = queued_delivery(url).await;
    let before = audit_actions(&store).await;
    for event in EVENTS {
        let allowed = DeliveryState::Queued.apply(event);
        let mut tx = store.begin_write(now()).await.unwrap();
        let mut d = tx.delivery(DELIVERY).await.unwrap();
        let mut changed = false;
        let result = tx
            .transition_delivery(&actor(), &mut d, event, |d| {
                changed = true;
                d.last_error = Some("changed".into());
                Some(AuditEvent::DeliveryInDoubt(DeliveryHeld {
                    delivery_id: d.id.clone(),
                    reason: Some(format!("{event:?}")),
                }))
            })
            .await;
        match allowed {
            Ok(to) => {
                assert_eq!(result.unwrap(), DeliveryState::Queued, "{event:?}");
                assert_eq!(d.state, to, "{event:?}");
                assert!(changed);
                // Not kept: each event starts from the queued delivery.
                drop(tx);
            }
            Err(_) => {
                match &result {
                    Err(StoreError::Corrupt(m)) => {
                        assert!(m.contains(DELIVERY), "{event:?}: {m}");
                    }
                    other => panic!("{event:?} from queued: {other:?}"),
                }
                assert!(!changed, "{event:?}: the change ran for a refused move");
                // Whatever the refused call wrote would be committed here.
                tx.commit().await.unwrap();
                let row = stored(&store).await;
                assert_eq!(row.state, DeliveryState::Queued, "{event:?}");
                assert_eq!(row.last_error, None, "{event:?}");
                assert_eq!(audit_actions(&store).await, before, "{event:?}");
            }
        }
    }
    store.close().await;
}

/// The caller's change may set fields, never the state: a move beside the state machine is
/// refused, for a transition as for an update, and nothing is written.
async fn no_move_beside_the_state_machine(url: &str) {
    let store = queued_delivery(url).await;
    let before = audit_actions(&store).await;
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut d = tx.delivery(DELIVERY).await.unwrap();
    let sneaked = tx
        .transition_delivery(&actor(), &mut d, DeliveryEvent::Claim, |d| {
            d.state = DeliveryState::Confirmed;
            Some(sending(d))
        })
        .await;
    assert!(
        matches!(sneaked, Err(StoreError::Corrupt(_))),
        "{sneaked:?}"
    );
    let mut d = tx.delivery(DELIVERY).await.unwrap();
    let sneaked = tx
        .update_delivery(&actor(), &mut d, |d| {
            d.state = DeliveryState::Cancelled;
            None
        })
        .await;
    assert!(
        matches!(sneaked, Err(StoreError::Corrupt(_))),
        "{sneaked:?}"
    );
    tx.commit().await.unwrap();
    assert_eq!(stored(&store).await.state, DeliveryState::Queued);
    assert_eq!(audit_actions(&store).await, before);
    store.close().await;
}

/// A change without a move keeps the state; its audit record is written when it names one.
async fn update_without_a_move(url: &str) {
    let store = queued_delivery(url).await;
    let before = audit_actions(&store).await;
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut d = tx.delivery(DELIVERY).await.unwrap();
    tx.update_delivery(&actor(), &mut d, |d| {
        d.next_attempt_at = "2026-11-24T07:00:00.000000Z".into();
        None
    })
    .await
    .unwrap();
    tx.update_delivery(&actor(), &mut d, |d| {
        d.last_error = Some("outcome unknown".into());
        Some(AuditEvent::DeliveryInDoubt(DeliveryHeld {
            delivery_id: d.id.clone(),
            reason: None,
        }))
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let row = stored(&store).await;
    assert_eq!(row.state, DeliveryState::Queued);
    assert_eq!(row.next_attempt_at, "2026-11-24T07:00:00.000000Z");
    assert_eq!(row.last_error.as_deref(), Some("outcome unknown"));
    let mut expected = before;
    expected.push("delivery.in_doubt".into());
    assert_eq!(audit_actions(&store).await, expected);
    store.close().await;
}

/// Every case on both backends: `store_transitions::sqlite::<case>` and
/// `store_transitions::postgres::<case>`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$case(&super::sqlite_url(&dir)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::PgDatabase::create().await;
                    super::$case(&db.url).await;
                }
            )*
        }
    };
}

on_both_backends!(
    legal_move_with_its_audit_record,
    the_state_machine_decides,
    no_move_beside_the_state_machine,
    update_without_a_move,
);
