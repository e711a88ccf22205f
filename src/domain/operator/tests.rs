//! The role table and the authorisation rule.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used)]

use super::*;

fn op(s: &str) -> OperatorId {
    OperatorId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The table, written out: for each action, exactly the roles that may do it.
#[test]
fn the_role_table() {
    use Action as A;
    use Role as R;
    let expected: &[(Action, &[Role])] = &[
        (A::ImportOrder, &[R::Reviewer, R::Provisioner]),
        (A::ReviewOrder, &[R::Reviewer]),
        (A::RenewOrder, &[R::Reviewer, R::Provisioner]),
        (A::Provision, &[R::Provisioner]),
        (A::ShipOrder, &[R::Provisioner]),
        (A::ManageDelivery, &[R::Provisioner]),
        (A::Revoke, &[R::SecurityOfficer]),
        (A::ReportLost, &[R::Provisioner, R::SecurityOfficer]),
        (A::RequestService, &[R::Provisioner]),
        (A::DecideRequest, &[R::SecurityOfficer]),
        (A::RunRequest, &[R::Provisioner]),
        (
            A::CancelRequest,
            &[R::Reviewer, R::Provisioner, R::SecurityOfficer],
        ),
        (A::ManageOperators, &[R::Administrator]),
        (A::ManageCa, &[R::SecurityOfficer, R::Administrator]),
    ];
    assert_eq!(expected.len(), Action::ALL.len(), "every action is listed");
    for (action, roles) in expected {
        assert_eq!(&action.roles(), roles, "{action}");
    }
}

#[test]
fn an_auditor_changes_nothing_and_an_administrator_only_manages_operators_and_the_ca() {
    for a in Action::ALL {
        assert!(!Role::Auditor.permits(a), "{a}");
        assert_eq!(
            Role::Administrator.permits(a),
            matches!(a, Action::ManageOperators | Action::ManageCa),
            "{a}"
        );
    }
}

#[test]
fn a_reviewer_cannot_revoke_nor_decide_a_request() {
    let roles: Roles = [Role::Reviewer].into();
    let err = authorize(&op("rita"), &roles, true, Action::Revoke).unwrap_err();
    assert_eq!(
        err,
        OperatorRefused::MissingRole {
            operator: op("rita"),
            action: Action::Revoke,
            needs: vec![Role::SecurityOfficer],
        }
    );
    assert!(err.to_string().contains("security_officer"), "{err}");
    assert!(authorize(&op("rita"), &roles, true, Action::DecideRequest).is_err());
    assert!(authorize(&op("rita"), &roles, true, Action::ReviewOrder).is_ok());
}

#[test]
fn a_disabled_operator_may_do_nothing() {
    let all: Roles = Role::ALL.into();
    for a in Action::ALL {
        assert_eq!(
            authorize(&op("dan"), &all, false, a),
            Err(OperatorRefused::Disabled(op("dan")))
        );
    }
}

#[test]
fn any_held_role_that_permits_is_enough() {
    let roles: Roles = [Role::Auditor, Role::SecurityOfficer].into();
    assert!(authorize(&op("sam"), &roles, true, Action::Revoke).is_ok());
    assert!(authorize(&op("sam"), &roles, true, Action::ShipOrder).is_err());
}

#[test]
fn role_lists_parse_and_print() {
    let roles = parse_roles(" Reviewer, security-officer ,reviewer").unwrap();
    assert_eq!(roles, [Role::Reviewer, Role::SecurityOfficer].into());
    assert_eq!(roles_text(&roles), "reviewer,security_officer");
    assert_eq!(parse_roles(&roles_text(&roles)).unwrap(), roles);
    assert!(parse_roles("").unwrap_err().contains("at least one"));
    let e = parse_roles("reviewer,boss").unwrap_err();
    assert!(e.contains("\"boss\"") && e.contains("administrator"), "{e}");
    for r in Role::ALL {
        assert_eq!(Role::parse(r.as_str()), Some(r));
    }
}

#[test]
fn an_auditor_sees_every_page_and_a_reviewer_not_the_audit_trail() {
    let auditor: Roles = [Role::Auditor].into();
    let reviewer: Roles = [Role::Reviewer].into();
    for v in View::ALL {
        assert!(
            authorize_view(&op("audra"), &auditor, true, v).is_ok(),
            "{v}"
        );
        assert_eq!(
            authorize_view(&op("audra"), &auditor, false, v),
            Err(OperatorRefused::Disabled(op("audra")))
        );
    }
    let err = authorize_view(&op("rita"), &reviewer, true, View::Audit).unwrap_err();
    assert!(err.to_string().contains("auditor"), "{err}");
    assert!(authorize_view(&op("rita"), &reviewer, true, View::Requests).is_ok());
    assert!(authorize_view(&op("rita"), &reviewer, true, View::Desk).is_err());
    // An administrator sees the requests (the operator changes waiting for a second one), and
    // nothing of the work on orders.
    let admin: Roles = [Role::Administrator].into();
    assert!(authorize_view(&op("ada"), &admin, true, View::Requests).is_ok());
    for v in [View::Desk, View::Deliveries, View::Certificates] {
        assert!(authorize_view(&op("ada"), &admin, true, v).is_err(), "{v}");
    }
}
