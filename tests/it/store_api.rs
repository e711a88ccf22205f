//! The order API's rows (issue 17, item 3), on both backends: API tokens (hash only, revoked
//! once), an order submitted through the API stored with its submission in one transaction,
//! and orders listed by their last change, a page at a time.

use super::{Db, T0, approve, operator, sample};
use crate::support::order_no;
use keystation::domain::OperatorId;
use keystation::domain::api::parse_scopes;
use keystation::domain::operator::parse_roles;
use keystation::store::{ApiSubmission, ChangedAfter, NewApiToken, NewOperator, StoreError};
use time::Duration;

/// Registers the operator `name` (a reviewer) at T0.
async fn register(db: &Db, name: &str) {
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.insert_operator(&NewOperator {
        name: OperatorId::parse(name).unwrap(),
        roles: parse_roles("reviewer").unwrap(),
        credential_hash: format!("{:0>64}", name.len()),
        created_by: "admin".into(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Adds a token of `operator` with hash `hash` and `scopes`; its id.
async fn add_token(db: &Db, operator: &str, hash: &str, scopes: &str) -> i64 {
    let mut tx = db.store.begin_write(T0).await.unwrap();
    let id = tx
        .insert_api_token(&NewApiToken {
            operator: OperatorId::parse(operator).unwrap(),
            scopes: parse_scopes(scopes).unwrap(),
            token_hash: hash.into(),
            created_by: "admin".into(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn api_tokens_are_numbered_found_by_hash_and_revoked_once(db: &Db) {
    register(db, "portal").await;
    let h1 = "a".repeat(64);
    let h2 = "b".repeat(64);
    assert_eq!(
        add_token(db, "portal", &h1, "orders:submit,orders:read").await,
        1
    );
    assert_eq!(add_token(db, "portal", &h2, "orders:read").await, 2);
    let found = db.store.api_token_by_hash(&h1).await.unwrap().unwrap();
    assert_eq!(found.id, 1);
    assert_eq!(found.operator.as_str(), "portal");
    assert_eq!(
        found.scopes,
        parse_scopes("orders:read,orders:submit").unwrap()
    );
    assert_eq!(found.revoked_at, None);
    assert!(
        db.store
            .api_token_by_hash(&"c".repeat(64))
            .await
            .unwrap()
            .is_none()
    );

    let later = T0 + Duration::hours(1);
    let mut tx = db.store.begin_write(later).await.unwrap();
    tx.revoke_api_token(2, "admin").await.unwrap();
    tx.commit().await.unwrap();
    let all = db.store.api_tokens().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].revoked_at, None);
    assert_eq!(all[1].revoked_by.as_deref(), Some("admin"));
    let revoked_at = all[1].revoked_at.clone().unwrap();
    // Revoking again changes nothing (the first revocation's time stays).
    let mut tx = db
        .store
        .begin_write(later + Duration::hours(1))
        .await
        .unwrap();
    tx.revoke_api_token(2, "someone").await.unwrap();
    tx.commit().await.unwrap();
    let again = db.store.api_token_by_hash(&h2).await.unwrap().unwrap();
    assert_eq!(again.revoked_at.as_deref(), Some(revoked_at.as_str()));
    assert_eq!(again.revoked_by.as_deref(), Some("admin"));
    // A token's hash is unique.
    let mut tx = db.store.begin_write(later).await.unwrap();
    let dup = tx
        .insert_api_token(&NewApiToken {
            operator: OperatorId::parse("portal").unwrap(),
            scopes: parse_scopes("orders:read").unwrap(),
            token_hash: h1.clone(),
            created_by: "admin".into(),
        })
        .await;
    assert!(dup.is_err(), "{dup:?}");
}

async fn an_api_order_is_stored_with_its_submission_in_one_transaction(db: &Db) {
    register(db, "portal").await;
    let token = add_token(db, "portal", &"a".repeat(64), "orders:submit").await;
    let submission = ApiSubmission {
        order_no: order_no("KS-API-0001"),
        request_sha256: "d".repeat(64),
        token_id: token,
    };
    db.store
        .insert_api_order(
            &sample(0, "KS-API-0001"),
            &submission,
            &operator("portal"),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .api_submission(&order_no("KS-API-0001"))
            .await
            .unwrap(),
        Some(submission.clone())
    );
    assert!(
        db.store
            .api_submission(&order_no("KS-API-0002"))
            .await
            .unwrap()
            .is_none()
    );
    let actions = db.chain_actions().await;
    assert_eq!(
        &actions[actions.len() - 2..],
        ["order.imported", "api.order_submitted"]
    );
    let audit = db.audit_all().await;
    assert!(
        audit[audit.len() - 2..]
            .iter()
            .all(|r| r.actor == "portal" && r.order_no.as_deref() == Some("KS-API-0001"))
    );

    // The same number again: refused, and nothing of it stored.
    let before = db.count("audit_events").await;
    let again = db
        .store
        .insert_api_order(
            &sample(1, "KS-API-0001"),
            &ApiSubmission {
                request_sha256: "e".repeat(64),
                ..submission.clone()
            },
            &operator("portal"),
            T0,
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::DuplicateOrder(_))),
        "{again:?}"
    );
    assert_eq!(db.count("audit_events").await, before);
    assert_eq!(
        db.store
            .api_submission(&order_no("KS-API-0001"))
            .await
            .unwrap(),
        Some(submission)
    );
}

async fn orders_are_listed_by_last_change_a_page_at_a_time(db: &Db) {
    for (i, no) in ["KS-CH-0001", "KS-CH-0002", "KS-CH-0003"]
        .iter()
        .enumerate()
    {
        db.import(&[sample(i, no)], T0 + Duration::minutes(i as i64))
            .await;
    }
    // The first one changes last.
    db.review("KS-CH-0001", &approve("alice"), T0 + Duration::minutes(10))
        .await
        .unwrap();
    let numbers = |page: &[keystation::store::OrderSummary]| -> Vec<String> {
        page.iter().map(|o| o.order_no.to_string()).collect()
    };
    let all = db.store.orders_changed(None, "", None, 10).await.unwrap();
    assert_eq!(numbers(&all), ["KS-CH-0002", "KS-CH-0003", "KS-CH-0001"]);
    assert!(all[2].updated_at > all[1].updated_at);

    // Two at a time, each page after the last of the previous one.
    let first = db.store.orders_changed(None, "", None, 2).await.unwrap();
    assert_eq!(numbers(&first), ["KS-CH-0002", "KS-CH-0003"]);
    let after = ChangedAfter {
        updated_at: first[1].updated_at.clone(),
        order_no: first[1].order_no.clone(),
    };
    let second = db
        .store
        .orders_changed(None, "", Some(&after), 2)
        .await
        .unwrap();
    assert_eq!(numbers(&second), ["KS-CH-0001"]);

    // By state, and since a time.
    let submitted = db
        .store
        .orders_changed(
            Some(keystation::domain::OrderState::Submitted),
            "",
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(numbers(&submitted), ["KS-CH-0002", "KS-CH-0003"]);
    let since = keystation::clock::format_utc(T0 + Duration::minutes(2));
    let recent = db
        .store
        .orders_changed(None, &since, None, 10)
        .await
        .unwrap();
    assert_eq!(numbers(&recent), ["KS-CH-0003", "KS-CH-0001"]);
}

/// Station requests (migration 0021): recorded once per open subject, moved only by the
/// domain's machine (the requester's own approval refused, nothing written), a stale move
/// refused, and found open until done.
async fn station_requests_move_by_the_machine_one_open_per_subject(db: &Db) {
    use keystation::domain::station_request::StationChange;
    use keystation::domain::{RequestEvent, RequestState};
    register(db, "ada").await;
    register(db, "bert").await;
    let ada = OperatorId::parse("ada").unwrap();
    let bert = OperatorId::parse("bert").unwrap();
    let change = StationChange::OperatorAdd {
        operator: OperatorId::parse("olga").unwrap(),
        roles: parse_roles("reviewer,auditor").unwrap(),
    };
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.insert_station_request("r-1", &change, &ada)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.store.begin_write(T0).await.unwrap();
    let again = tx.insert_station_request("r-2", &change, &ada).await;
    assert!(
        matches!(again, Err(StoreError::StationRequestOpen { .. })),
        "{again:?}"
    );
    drop(tx);
    let open = db
        .store
        .open_station_request(change.kind(), &change.subject())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.id, "r-1");
    assert_eq!(open.change, change);
    assert_eq!(open.state, RequestState::Requested);

    // The requester's own approval: refused by the machine, nothing written.
    let mut tx = db.store.begin_write(T0).await.unwrap();
    let mut r = tx.station_request("r-1").await.unwrap();
    let own = tx
        .transition_station_request(
            &operator("ada"),
            &mut r,
            &RequestEvent::Approve { by: ada.clone() },
            |_| None,
        )
        .await;
    assert!(matches!(own, Err(StoreError::Request { .. })), "{own:?}");
    drop(tx);
    // A second operator's, then a stale copy's move: refused as changed meanwhile.
    let mut tx = db.store.begin_write(T0).await.unwrap();
    let mut r = tx.station_request("r-1").await.unwrap();
    let mut stale = r.clone();
    tx.transition_station_request(
        &operator("bert"),
        &mut r,
        &RequestEvent::Approve { by: bert.clone() },
        |r| {
            r.decided_by = Some(bert.clone());
            None
        },
    )
    .await
    .unwrap();
    let conflict = tx
        .transition_station_request(
            &operator("bert"),
            &mut stale,
            &RequestEvent::Reject { by: bert.clone() },
            |_| None,
        )
        .await;
    assert!(
        matches!(conflict, Err(StoreError::RequestConflict { .. })),
        "{conflict:?}"
    );
    drop(tx);
    let mut tx = db.store.begin_write(T0).await.unwrap();
    let mut r = tx.station_request("r-1").await.unwrap();
    for event in [
        RequestEvent::Approve { by: bert.clone() },
        RequestEvent::Start,
        RequestEvent::Complete,
    ] {
        tx.transition_station_request(&operator("bert"), &mut r, &event, |r| {
            r.decided_by.get_or_insert(bert.clone());
            None
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let done = db.store.station_request("r-1").await.unwrap().unwrap();
    assert_eq!(done.state, RequestState::Done);
    assert_eq!(done.decided_by, Some(bert));
    assert!(
        db.store
            .open_station_request(change.kind(), &change.subject())
            .await
            .unwrap()
            .is_none()
    );
    let listed = db
        .store
        .station_requests(Some(RequestState::Done))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        db.store
            .station_requests(Some(RequestState::Requested))
            .await
            .unwrap()
            .is_empty()
    );
    // Closed: the subject may be asked about again.
    let mut tx = db.store.begin_write(T0).await.unwrap();
    tx.insert_station_request("r-3", &change, &ada)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

store_suite!(
    station_requests_move_by_the_machine_one_open_per_subject,
    api_tokens_are_numbered_found_by_hash_and_revoked_once,
    an_api_order_is_stored_with_its_submission_in_one_transaction,
    orders_are_listed_by_last_change_a_page_at_a_time,
);
