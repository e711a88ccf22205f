//! Unit and property tests of the service-request machine.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

fn op(s: &str) -> OperatorId {
    OperatorId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn events() -> impl Strategy<Value = RequestEvent> {
    let who = proptest::sample::select(vec!["alice", "bob", "carol"]).prop_map(op);
    prop_oneof![
        who.clone().prop_map(|by| RequestEvent::Approve { by }),
        who.clone().prop_map(|by| RequestEvent::Reject { by }),
        who.prop_map(|by| RequestEvent::Cancel { by }),
        Just(RequestEvent::Start),
        Just(RequestEvent::Complete),
        Just(RequestEvent::Fail),
    ]
}

#[test]
fn happy_path_with_two_operators() {
    let alice = op("alice");
    let mut s = RequestState::Requested;
    for e in [
        RequestEvent::Approve { by: op("bob") },
        RequestEvent::Start,
        RequestEvent::Complete,
    ] {
        s = s.apply(&alice, &e).unwrap_or_else(|err| panic!("{err}"));
    }
    assert_eq!(s, RequestState::Done);
}

#[test]
fn the_requester_cannot_approve_or_reject_their_own_request() {
    let alice = op("alice");
    for e in [
        RequestEvent::Approve { by: op("alice") },
        RequestEvent::Reject { by: op(" alice ") },
    ] {
        let err = RequestState::Requested.apply(&alice, &e).unwrap_err();
        assert_eq!(
            err,
            RequestError::SameOperator {
                operator: op("alice")
            }
        );
        assert!(
            err.to_string().contains("second, different operator"),
            "{err}"
        );
    }
    // Withdrawing one's own request needs no second pair of eyes.
    assert_eq!(
        RequestState::Requested.apply(&alice, &RequestEvent::Cancel { by: op("alice") }),
        Ok(RequestState::Cancelled)
    );
}

#[test]
fn an_unapproved_request_cannot_start_and_a_failed_one_resumes() {
    let alice = op("alice");
    let err = RequestState::Requested
        .apply(&alice, &RequestEvent::Start)
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::Illegal {
            from: RequestState::Requested,
            event: "start"
        }
    );
    assert_eq!(
        RequestState::Failed.apply(&alice, &RequestEvent::Start),
        Ok(RequestState::Executing)
    );
    assert!(
        RequestState::Executing
            .apply(&alice, &RequestEvent::Cancel { by: op("bob") })
            .is_err(),
        "a request half carried out is finished, not abandoned"
    );
}

#[test]
fn names_round_trip_and_operators_are_checked() {
    for s in RequestState::ALL {
        assert_eq!(RequestState::parse(s.as_str()), Some(s));
    }
    for k in RequestKind::ALL {
        assert_eq!(RequestKind::parse(k.as_str()), Some(k));
    }
    assert!(OperatorId::parse("  ").is_err());
    assert!(OperatorId::parse("a\nb").is_err());
    assert!(OperatorId::parse(&"x".repeat(65)).is_err());
    assert_eq!(op(" 张三 ").as_str(), "张三");
}

#[test]
fn steps_run_in_order() {
    assert_eq!(PinResetStep::next(&[]), Some(PinResetStep::SealPin));
    assert_eq!(
        PinResetStep::next(&[PinResetStep::SealPin]),
        Some(PinResetStep::InitPin)
    );
    assert_eq!(PinResetStep::next(&PinResetStep::ALL), None);
    assert_eq!(RetireStep::next(&[]), Some(RetireStep::Revoke));
    assert_eq!(
        RetireStep::next(&[RetireStep::Revoke]),
        Some(RetireStep::Wipe)
    );
    assert_eq!(
        RetireStep::next(&[RetireStep::Revoke, RetireStep::Wipe]),
        Some(RetireStep::Close)
    );
    assert_eq!(RetireStep::next(&RetireStep::ALL), None);
    for s in RetireStep::ALL {
        assert_eq!(RetireStep::parse(s.as_str()), Some(s));
        assert!(
            PinResetStep::parse(s.as_str()).is_none(),
            "{s} is a name of its own"
        );
    }
}

proptest! {
    /// Whatever happens: final states accept nothing; execution only ever begins after an
    /// approval by someone other than the requester; done is reached only through execution.
    #[test]
    fn four_eyes_hold_on_every_path(path in proptest::collection::vec(events(), 0..30)) {
        let requester = op("alice");
        let mut s = RequestState::Requested;
        let mut approved_by: Option<OperatorId> = None;
        let mut executed = false;
        for e in path {
            match s.apply(&requester, &e) {
                Ok(next) => {
                    prop_assert!(!s.is_final(), "{} accepted {:?}", s, e);
                    if let RequestEvent::Approve { by } = &e {
                        prop_assert_ne!(by, &requester);
                        approved_by = Some(by.clone());
                    }
                    if next == RequestState::Executing {
                        prop_assert!(approved_by.as_ref().is_some_and(|a| a != &requester));
                        executed = true;
                    }
                    if next == RequestState::Done {
                        prop_assert!(executed);
                    }
                    prop_assert_ne!(next, RequestState::Requested);
                    s = next;
                }
                Err(RequestError::SameOperator { operator }) => {
                    prop_assert_eq!(operator, requester.clone());
                }
                Err(RequestError::Illegal { from, .. }) => prop_assert_eq!(from, s),
            }
        }
    }
}

#[test]
fn unlock_steps_run_in_order_and_parse_back() {
    assert_eq!(UnlockStep::next(&[]), Some(UnlockStep::ReserveGeneration));
    assert_eq!(
        UnlockStep::next(&[UnlockStep::ReserveGeneration]),
        Some(UnlockStep::SendCode)
    );
    assert_eq!(UnlockStep::next(&UnlockStep::ALL), None);
    for s in UnlockStep::ALL {
        assert_eq!(UnlockStep::parse(s.as_str()), Some(s));
    }
    assert_eq!(RequestKind::parse("unlock"), Some(RequestKind::Unlock));
}

#[test]
fn only_the_revocation_kinds_are_revocations_and_they_keep_the_four_eyes_rule() {
    let revocations: Vec<RequestKind> = RequestKind::ALL
        .into_iter()
        .filter(|k| k.is_revocation())
        .collect();
    assert_eq!(
        revocations,
        [RequestKind::Revoke, RequestKind::RevokeCertificate]
    );
    let at_approval: Vec<RequestKind> = RequestKind::ALL
        .into_iter()
        .filter(|k| k.runs_at_approval())
        .collect();
    assert_eq!(
        at_approval,
        [
            RequestKind::Revoke,
            RequestKind::RevokeCertificate,
            RequestKind::Reissue
        ]
    );
    assert_eq!(RequestKind::parse("reissue"), Some(RequestKind::Reissue));
    assert_eq!(RequestKind::parse("revoke"), Some(RequestKind::Revoke));
    assert_eq!(
        RequestKind::parse("revoke_certificate"),
        Some(RequestKind::RevokeCertificate)
    );
    // The same machine for every kind: the requester never approves, a rejected one never runs.
    let alice = op("alice");
    assert!(matches!(
        RequestState::Requested.apply(&alice, &RequestEvent::Approve { by: op("alice") }),
        Err(RequestError::SameOperator { .. })
    ));
    assert!(
        RequestState::Rejected
            .apply(&alice, &RequestEvent::Start)
            .is_err()
    );
}
