//! The store's service-request records on both backends with one query text: SQLite (a temp
//! file) and PostgreSQL (a throwaway database from [`crate::pg`], never skipped).

use crate::delivery::sms_order;
use crate::pg::PgDatabase;
use keystation::audit::event::{AuditEvent, ServiceDecided};
use keystation::domain::order::DeliveryChannel;
use keystation::domain::reissue::KeyDisposition;
use keystation::domain::{
    BindingId, FileFacts, ImageType, OperatorId, OrderNo, PinResetStep, RequestError, RequestEvent,
    RequestKind, RequestState, SealedPin, TokenSerial, ValidationContext, validate_order,
};
use keystation::store::{
    Actor, NewDelivery, NewOrder, NewServiceRequest, RetiredToken, ServiceRequestFilter, Store,
    StoreError,
};

pub(super) fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-01 02:00 UTC)
}

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        station_id: Some("station-test".into()),
        operation_id: "op-1".into(),
    }
}

pub(super) fn op(s: &str) -> OperatorId {
    OperatorId::parse(s).unwrap()
}

fn decided(id: &str, by: &str) -> AuditEvent {
    AuditEvent::ServiceDecided(ServiceDecided {
        request_id: id.into(),
        kind: "pin_reset".into(),
        approved: true,
        requested_by: "alice".into(),
        decided_by: by.into(),
        note: None,
    })
}

fn delivery(id: &str, no: &OrderNo, generation: i64) -> NewDelivery {
    NewDelivery {
        id: id.into(),
        order_no: no.clone(),
        station_id: "station-test".into(),
        channel: DeliveryChannel::Sms,
        destination_masked: "138****8000".into(),
        end_to_end_id: None,
        pin_generation: generation,
    }
}

/// A store at `url` with one imported order `no`.
pub(super) async fn with_order(url: &str, no: &OrderNo) -> Store {
    let store = Store::connect(url).await.unwrap();
    let ctx = ValidationContext {
        today: time::macros::date!(2026 - 12 - 01),
        uscc_checksum_override: None,
    };
    let valid = validate_order(&sms_order(no.as_str(), "13800138000"), &ctx, &mut |_, _| {
        FileFacts::Found {
            size: 1000,
            image: Some(ImageType::Png),
        }
    })
    .unwrap();
    store
        .insert_orders(
            &[NewOrder {
                order: valid.order,
                warnings: vec![],
                uscc_override_reason: None,
                attachments: vec![],
            }],
            &actor(),
            now(),
        )
        .await
        .unwrap();
    store
}

async fn exercise(url: &str) {
    let no = OrderNo::parse("DESK-STORE-1").unwrap();
    let store = with_order(url, &no).await;
    let new = |id: &str| NewServiceRequest {
        id: id.into(),
        kind: RequestKind::PinReset,
        order_no: no.clone(),
        requested_by: op("alice"),
        reason: "forgot".into(),
        evidence: "营业执照原件 + 经办人身份证".into(),
    };

    let mut tx = store.begin_write(now()).await.unwrap();
    tx.insert_service_request(&new("r-1")).await.unwrap();
    tx.commit().await.unwrap();
    // One open request per order and kind (each refusal in its own transaction: a failed
    // statement ends a PostgreSQL transaction).
    let mut tx = store.begin_write(now()).await.unwrap();
    let dup = tx.insert_service_request(&new("r-2")).await;
    assert!(
        matches!(dup, Err(StoreError::RequestOpen { .. })),
        "{dup:?}"
    );
    drop(tx);

    // Four-eyes in the store's one writer: the requester's approval is refused, nothing written.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut r = tx.service_request("r-1").await.unwrap();
    let stale = r.clone();
    let same = tx
        .transition_service_request(
            &actor(),
            &mut r,
            &RequestEvent::Approve { by: op("alice") },
            |_| decided("r-1", "alice"),
        )
        .await;
    assert!(
        matches!(
            same,
            Err(StoreError::Request {
                source: RequestError::SameOperator { .. },
                ..
            })
        ),
        "{same:?}"
    );
    assert_eq!(r.state, RequestState::Requested);
    let from = tx
        .transition_service_request(
            &actor(),
            &mut r,
            &RequestEvent::Approve { by: op("bob") },
            |r| {
                r.decided_by = Some(op("bob"));
                decided("r-1", "bob")
            },
        )
        .await
        .unwrap();
    assert_eq!(from, RequestState::Requested);
    tx.commit().await.unwrap();
    let stored = store.service_request("r-1").await.unwrap().unwrap();
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.decided_by, Some(op("bob")));
    // A writer acting on what it read before is refused.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut old = stale;
    let conflict = tx
        .transition_service_request(
            &actor(),
            &mut old,
            &RequestEvent::Approve { by: op("carol") },
            |_| decided("r-1", "carol"),
        )
        .await;
    assert!(
        matches!(conflict, Err(StoreError::RequestConflict { .. })),
        "{conflict:?}"
    );
    drop(tx);

    // The sealed new PIN: kept once; the execution journal counts restarts.
    let mut tx = store.begin_write(now()).await.unwrap();
    assert!(
        tx.set_pending_pin("r-1", &SealedPin(b"first".to_vec()))
            .await
            .unwrap()
    );
    assert!(
        !tx.set_pending_pin("r-1", &SealedPin(b"second".to_vec()))
            .await
            .unwrap()
    );
    assert_eq!(tx.pending_pin("r-1").await.unwrap().unwrap().0, b"first");
    tx.request_step_started("r-1", PinResetStep::InitPin)
        .await
        .unwrap();
    tx.request_step_started("r-1", PinResetStep::SealPin)
        .await
        .unwrap();
    tx.request_step_started("r-1", PinResetStep::SealPin)
        .await
        .unwrap();
    tx.request_step_done("r-1", PinResetStep::SealPin)
        .await
        .unwrap();
    tx.clear_pending_pin("r-1").await.unwrap();
    assert!(tx.pending_pin("r-1").await.unwrap().is_none());
    tx.commit().await.unwrap();
    let steps = store.request_steps("r-1").await.unwrap();
    let names: Vec<(&str, &str, i64)> = steps
        .iter()
        .map(|s| (s.step.as_str(), s.status.as_str(), s.runs))
        .collect();
    assert_eq!(names, [("seal_pin", "done", 2), ("init_pin", "started", 1)]);

    // One live delivery per order and PIN generation.
    let mut tx = store.begin_write(now()).await.unwrap();
    assert_eq!(tx.next_pin_generation(&no).await.unwrap(), 1);
    tx.insert_delivery(&delivery("d-0", &no, 0)).await.unwrap();
    tx.insert_delivery(&delivery("d-1", &no, 1)).await.unwrap();
    assert_eq!(tx.next_pin_generation(&no).await.unwrap(), 2);
    assert_eq!(tx.unsettled_deliveries(&no).await.unwrap(), ["d-0", "d-1"]);
    tx.commit().await.unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    let dup = tx.insert_delivery(&delivery("d-1b", &no, 1)).await;
    assert!(matches!(dup, Err(StoreError::DeliveryExists(_))), "{dup:?}");
    drop(tx);
    assert_eq!(
        store.delivery("d-1").await.unwrap().unwrap().pin_generation,
        1
    );

    let approved = store
        .service_requests(&ServiceRequestFilter {
            order_no: Some(no.clone()),
            state: Some(RequestState::Approved),
            kind: None,
        })
        .await
        .unwrap();
    assert_eq!(approved.len(), 1);
    assert!(
        store
            .service_requests(&ServiceRequestFilter {
                order_no: None,
                state: Some(RequestState::Done),
                kind: None,
            })
            .await
            .unwrap()
            .is_empty()
    );
    retired_keys(&store, &no).await;
    store.close().await;
}

/// Key dispositions (one per order) and retired keys (reused once), on either backend.
async fn retired_keys(store: &Store, no: &OrderNo) {
    let serial = TokenSerial::parse("0123456789abcdef").unwrap();
    let old = BindingId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
    let new = BindingId::parse("77e55044-10b1-426f-9247-bb680e5fe0c9").unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    assert_eq!(tx.key_disposition(no).await.unwrap(), None);
    tx.record_key_disposition(no, KeyDisposition::Retired, Some(&serial), &op("alice"))
        .await
        .unwrap();
    assert_eq!(
        tx.key_disposition(no).await.unwrap(),
        Some(KeyDisposition::Retired)
    );
    let retired = RetiredToken {
        request_id: "r-1".into(),
        token_serial: serial.clone(),
        so_identity: "blank:67e55044-10b1-426f-9247-bb680e5fe0c8".into(),
        order_no: no.clone(),
        binding_id: old,
        label: "keystation-retired".into(),
        retired_at: "2026-12-01T02:00:00.000000Z".into(),
    };
    tx.insert_retired_token(&retired).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.available_retired_token(&serial).await.unwrap(),
        Some(retired)
    );
    let mut tx = store.begin_write(now()).await.unwrap();
    assert!(tx.reuse_retired_token(&serial, &new).await.unwrap());
    assert!(
        !tx.reuse_retired_token(&serial, &new).await.unwrap(),
        "once"
    );
    tx.commit().await.unwrap();
    assert_eq!(store.available_retired_token(&serial).await.unwrap(), None);
    // A second disposition of the same order is refused.
    let mut tx = store.begin_write(now()).await.unwrap();
    assert!(
        tx.record_key_disposition(no, KeyDisposition::Lost, None, &op("bob"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn service_requests_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&crate::delivery::store_backends::sqlite_url(&dir)).await;
}

#[tokio::test]
async fn service_requests_on_postgres() {
    let db = PgDatabase::create().await;
    exercise(&db.url).await;
}
