#![allow(clippy::unwrap_used)]

use super::*;
use NoticeEvent as E;
use NoticeState as S;
use proptest::prelude::*;
use time::macros::datetime;

const EVENTS: [NoticeEvent; 5] = [
    E::Claim,
    E::Accepted,
    E::RetryLater,
    E::Fail,
    E::OperatorRetry,
];

#[test]
fn defaults_check_and_render_every_kind() {
    let t = NoticeTemplates::default();
    t.check().unwrap();
    let notices = [
        Notice::Approved,
        Notice::Rejected {
            reason: "营业执照不清晰".into(),
        },
        Notice::Shipped {
            carrier: Some("顺丰".into()),
            tracking_no: "SF123".into(),
        },
        Notice::PinSent {
            channel: "sms".into(),
            destination: "138****8000".into(),
        },
        Notice::Expiring {
            days: 7,
            not_after: "2027-11-26".into(),
            serial: "0a1b".into(),
        },
        Notice::Revoked {
            serial: "0a1b".into(),
            reason: "keyCompromise".into(),
        },
    ];
    for n in &notices {
        let r = t.render(n, "BJ1", "示例公司").unwrap();
        assert!(r.subject.contains("BJ1"), "{r:?}");
        assert!(!r.body.contains('{'), "{r:?}");
    }
    let r = t.render(&notices[1], "BJ1", "示例公司").unwrap();
    assert!(r.body.contains("营业执照不清晰"));
    let r = t.render(&notices[2], "BJ1", "示例公司").unwrap();
    assert!(r.body.contains("顺丰") && r.body.contains("SF123"));
    let r = t.render(&notices[3], "BJ1", "示例公司").unwrap();
    assert!(r.body.contains("短信") && r.body.contains("138****8000"));
    // The expiry notice says how to renew: from 30 days before, with the order number.
    let r = t.render(&notices[4], "BJ1", "示例公司").unwrap();
    assert!(
        r.body.contains("证书更新") && r.body.contains("30天") && r.body.contains("订单号BJ1"),
        "{r:?}"
    );
}

#[test]
fn a_pin_placeholder_is_refused_in_every_kind() {
    for kind in NoticeKind::ALL {
        assert_eq!(
            check_template(kind, "密码{pin}"),
            Err(TemplateError::UnknownPlaceholder {
                kind,
                name: "pin".into()
            })
        );
    }
    // A placeholder of another kind is refused too.
    assert!(check_template(NoticeKind::Approved, "{reason}").is_err());
    assert!(check_template(NoticeKind::Rejected, "{reason}").is_ok());
    assert!(matches!(
        check_template(NoticeKind::Approved, "a}b"),
        Err(TemplateError::StrayBrace { offset: 1, .. })
    ));
    assert!(matches!(
        check_template(NoticeKind::Approved, "a{b"),
        Err(TemplateError::StrayBrace { offset: 1, .. })
    ));
    assert!(check_template(NoticeKind::Approved, " ").is_err());
}

#[test]
fn event_refs_tell_events_apart() {
    let e30 = Notice::Expiring {
        days: 30,
        not_after: "d".into(),
        serial: "ab".into(),
    };
    let e7 = Notice::Expiring {
        days: 7,
        not_after: "d".into(),
        serial: "ab".into(),
    };
    assert_ne!(e30.event_ref(None), e7.event_ref(None));
    assert_eq!(Notice::Approved.event_ref(None), "review");
    let pin = Notice::PinSent {
        channel: "sms".into(),
        destination: "x".into(),
    };
    assert_eq!(pin.event_ref(Some("d-1")), "d-1");
}

#[test]
fn expiry_thresholds() {
    let end = datetime!(2027-11-26 15:59:59 UTC);
    assert_eq!(expiry_threshold(end - time::Duration::days(31), end), None);
    assert_eq!(
        expiry_threshold(end - time::Duration::days(30), end),
        Some(30)
    );
    assert_eq!(
        expiry_threshold(end - time::Duration::days(8), end),
        Some(30)
    );
    assert_eq!(
        expiry_threshold(end - time::Duration::days(7), end),
        Some(7)
    );
    assert_eq!(
        expiry_threshold(end - time::Duration::hours(1), end),
        Some(7)
    );
    assert_eq!(expiry_threshold(end, end), None);
}

#[test]
fn names_round_trip() {
    for k in NoticeKind::ALL {
        assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
    }
    for s in NoticeState::ALL {
        assert_eq!(NoticeState::parse(s.as_str()), Some(s));
    }
    for m in NoticeMedium::ALL {
        assert_eq!(NoticeMedium::parse(m.as_str()), Some(m));
    }
}

#[test]
fn in_doubt_is_never_sent_again_automatically() {
    // Only queued is claimed; sending goes back to queued only on "nothing reached the server".
    for s in S::ALL {
        assert_eq!(s.apply(E::Claim).is_ok(), s == S::Queued);
    }
    assert!(S::Sent.apply(E::RetryLater).is_err());
    assert!(S::Sent.apply(E::OperatorRetry).is_err());
    assert_eq!(S::Failed.apply(E::OperatorRetry), Ok(S::Queued));
}

proptest! {
    /// Sent is final, and reached only through a claim.
    #[test]
    fn sent_is_final(path in proptest::collection::vec(proptest::sample::select(EVENTS.to_vec()), 0..40)) {
        let mut s = S::Queued;
        let mut claimed = false;
        for e in path {
            if let Ok(next) = s.apply(e) {
                prop_assert_ne!(s, S::Sent);
                if next == S::Sending { claimed = true; }
                if next == S::Sent { prop_assert!(claimed); }
                s = next;
            }
        }
    }

    /// Rendering never leaves a placeholder and never panics, whatever the values.
    #[test]
    fn render_fills_every_placeholder(reason in "\\PC{0,40}", order in "[A-Z0-9-]{1,20}") {
        let t = NoticeTemplates::default();
        let r = t.render(&Notice::Rejected { reason: reason.clone() }, &order, "公司").unwrap();
        prop_assert!(r.body.contains(&reason));
        prop_assert!(r.subject.contains(&order));
    }
}
