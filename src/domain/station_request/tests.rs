//! Station requests: their kinds, subjects, the bootstrap rule, and the shared machine.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::api::Scope;
use crate::domain::{RequestError, RequestEvent, RequestState, Role};

fn op(s: &str) -> OperatorId {
    OperatorId::parse(s).unwrap()
}

fn every_change() -> Vec<StationChange> {
    vec![
        StationChange::OperatorAdd {
            operator: op("olga"),
            roles: [Role::Administrator].into(),
        },
        StationChange::OperatorDisable {
            operator: op("olga"),
        },
        StationChange::OperatorEnable {
            operator: op("olga"),
        },
        StationChange::OperatorRoles {
            operator: op("olga"),
            roles: [Role::Reviewer, Role::Auditor].into(),
        },
        StationChange::ApiTokenAdd {
            operator: op("portal"),
            scopes: [Scope::OrdersSubmit].into(),
        },
        StationChange::ApiTokenRevoke { token_id: 7 },
        StationChange::OcspSigner,
        StationChange::Reinit {
            order_no: OrderNo::parse("KS-0001").unwrap(),
            token_serial: Some(TokenSerial::parse("0123456789abcdef").unwrap()),
        },
    ]
}

#[test]
fn each_change_has_its_own_kind_and_round_trips_as_stored() {
    let all = every_change();
    let kinds: Vec<&str> = all.iter().map(StationChange::kind).collect();
    assert_eq!(kinds, StationChange::KINDS);
    for c in &all {
        let json = serde_json::to_string(c).unwrap();
        assert!(
            json.contains(&format!("\"kind\":\"{}\"", c.kind())),
            "{json}"
        );
        assert_eq!(&serde_json::from_str::<StationChange>(&json).unwrap(), c);
    }
    // A stored change naming an unknown role or a malformed operator is not a change.
    assert!(
        serde_json::from_str::<StationChange>(
            r#"{"kind":"operator_add","operator":"x","roles":["root"]}"#
        )
        .is_err()
    );
    assert!(
        serde_json::from_str::<StationChange>(r#"{"kind":"operator_disable","operator":""}"#)
            .is_err()
    );
}

#[test]
fn changes_of_one_operator_share_a_subject_and_each_family_its_action() {
    let all = every_change();
    assert!(all[..4].iter().all(|c| c.subject() == "operator:olga"));
    assert_eq!(all[4].subject(), "api_token_of:portal");
    assert_eq!(all[5].subject(), "api_token:7");
    for c in &all[..6] {
        assert_eq!(c.action(), Action::ManageOperators, "{c:?}");
    }
    assert_eq!(all[6].action(), Action::ManageCa);
    assert_eq!(all[6].family(), ChangeFamily::Ca);
    assert_eq!(all[4].family().command(), "api-token");
    let secrets: Vec<bool> = all.iter().map(StationChange::writes_secret).collect();
    assert_eq!(
        secrets,
        [true, false, false, false, true, false, false, false]
    );
    // A reinit: asked by a provisioner, decided by a security officer, run by `provision`.
    let reinit = &all[7];
    assert_eq!(reinit.subject(), "order:KS-0001");
    assert_eq!(reinit.action(), Action::Provision);
    assert_eq!(reinit.decide_action(), Action::DecideRequest);
    assert_eq!(reinit.cancel_action(), Action::CancelRequest);
    assert!(!reinit.runs_at_approval());
    assert!(all[..7].iter().all(StationChange::runs_at_approval));
    assert!(all[..7].iter().all(|c| c.decide_action() == c.action()));
    assert_eq!(
        all[3].summary(),
        "set the roles of olga to reviewer,auditor"
    );
}

#[test]
fn only_the_one_administrator_changes_operators_at_once_and_never_the_ca_nor_a_reinit() {
    for c in every_change() {
        let ca = c.action() != Action::ManageOperators;
        assert_eq!(takes_effect_at_once(&c, 1), !ca, "{c:?}");
        assert!(!takes_effect_at_once(&c, 2), "{c:?}");
        assert!(!takes_effect_at_once(&c, 5), "{c:?}");
    }
}

#[test]
fn a_station_request_moves_by_the_one_machine_with_its_four_eyes_rule() {
    let by = op("ada");
    let s = RequestState::Requested;
    assert_eq!(
        s.apply(&by, &RequestEvent::Approve { by: by.clone() }),
        Err(RequestError::SameOperator {
            operator: by.clone()
        })
    );
    let approved = s
        .apply(&by, &RequestEvent::Approve { by: op("bert") })
        .unwrap();
    let done = approved
        .apply(&by, &RequestEvent::Start)
        .and_then(|s| s.apply(&by, &RequestEvent::Complete))
        .unwrap();
    assert_eq!(done, RequestState::Done);
}
