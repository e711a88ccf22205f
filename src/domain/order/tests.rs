//! Unit tests of the parent module (moved out to keep the production file short).

use super::*;
use proptest::prelude::*;

const EVENTS: [OrderEvent; 9] = [
    OrderEvent::Approve,
    OrderEvent::Reject,
    OrderEvent::Claim,
    OrderEvent::CompleteProvisioning,
    OrderEvent::Fail,
    OrderEvent::Release,
    OrderEvent::Ship,
    OrderEvent::ConfirmPinDelivery,
    OrderEvent::Revoke,
];

#[test]
fn happy_path() {
    let mut s = OrderState::Submitted;
    for e in [
        OrderEvent::Approve,
        OrderEvent::Claim,
        OrderEvent::CompleteProvisioning,
        OrderEvent::Ship,
        OrderEvent::ConfirmPinDelivery,
    ] {
        s = s.apply(e).unwrap_or_else(|err| panic!("{err}"));
    }
    assert_eq!(s, OrderState::PinDelivered);
}

#[test]
fn review_happens_once() {
    let approved = OrderState::Submitted.apply(OrderEvent::Approve);
    assert_eq!(approved, Ok(OrderState::Approved));
    assert!(OrderState::Approved.apply(OrderEvent::Reject).is_err());
    assert!(OrderState::Rejected.apply(OrderEvent::Approve).is_err());
    assert!(OrderState::Submitted.apply(OrderEvent::Claim).is_err());
}

#[test]
fn failed_orders_resume_or_release() {
    assert_eq!(
        OrderState::Failed.apply(OrderEvent::Claim),
        Ok(OrderState::Provisioning)
    );
    assert_eq!(
        OrderState::Failed.apply(OrderEvent::Release),
        Ok(OrderState::Approved)
    );
}

#[test]
fn failed_orders_can_be_rejected_but_nothing_later() {
    assert_eq!(
        OrderState::Failed.apply(OrderEvent::Reject),
        Ok(OrderState::Rejected)
    );
    for s in [
        OrderState::Approved,
        OrderState::Provisioning,
        OrderState::Provisioned,
        OrderState::Shipped,
        OrderState::PinDelivered,
        OrderState::Revoked,
        OrderState::Rejected,
    ] {
        assert!(s.apply(OrderEvent::Reject).is_err(), "{s} accepted Reject");
    }
}

#[test]
fn state_names_round_trip() {
    for s in OrderState::ALL {
        assert_eq!(OrderState::parse(s.as_str()), Some(s));
    }
    assert_eq!(OrderState::parse("approved"), Some(OrderState::Approved));
    assert_eq!(OrderState::parse("nope"), None);
}

#[test]
fn channel_follows_auth_method() {
    assert_eq!(
        AuthMethod::LegalRepPhone.delivery_channel(),
        DeliveryChannel::Sms
    );
    assert_eq!(
        AuthMethod::LegalRepBankCard.delivery_channel(),
        DeliveryChannel::Sms
    );
    assert_eq!(
        AuthMethod::CorporateTransfer.delivery_channel(),
        DeliveryChannel::BankTransfer
    );
}

#[test]
fn image_sniffing_uses_magic_bytes() {
    assert_eq!(
        ImageType::sniff(b"\x89PNG\r\n\x1a\nrest"),
        Some(ImageType::Png)
    );
    assert_eq!(
        ImageType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
        Some(ImageType::Jpeg)
    );
    assert_eq!(ImageType::sniff(b"GIF89a..."), Some(ImageType::Gif));
    assert_eq!(ImageType::sniff(b"%PDF-1.7"), None);
    assert_eq!(ImageType::sniff(b""), None);
}

proptest! {
    /// Terminal states accept nothing, and no event ever leads back to Submitted.
    #[test]
    fn terminal_states_are_final_and_submitted_is_never_reentered(
        path in proptest::collection::vec(proptest::sample::select(EVENTS.to_vec()), 0..30)
    ) {
        let mut s = OrderState::Submitted;
        for e in path {
            match s.apply(e) {
                Ok(next) => {
                    prop_assert!(!s.is_terminal(), "{} accepted {:?}", s, e);
                    prop_assert_ne!(next, OrderState::Submitted);
                    s = next;
                }
                Err(err) => {
                    prop_assert_eq!(err.from, s);
                }
            }
        }
    }

    /// Reject is accepted only at review or after a failure, and a rejected order never
    /// had its PIN delivered.
    #[test]
    fn rejection_comes_from_review_or_failure_and_never_after_delivery(
        path in proptest::collection::vec(proptest::sample::select(EVENTS.to_vec()), 0..30)
    ) {
        let mut s = OrderState::Submitted;
        let mut delivered = false;
        for e in path {
            if let Ok(next) = s.apply(e) {
                if e == OrderEvent::Reject {
                    prop_assert!(matches!(s, OrderState::Submitted | OrderState::Failed), "{} rejected", s);
                    prop_assert!(!delivered);
                }
                delivered |= next == OrderState::PinDelivered;
                s = next;
            }
        }
    }

    /// A PIN is only ever delivered for an order that was provisioned first.
    #[test]
    fn pin_delivered_only_after_provisioned(
        path in proptest::collection::vec(proptest::sample::select(EVENTS.to_vec()), 0..30)
    ) {
        let mut s = OrderState::Submitted;
        let mut provisioned = false;
        for e in path {
            if let Ok(next) = s.apply(e) {
                if next == OrderState::Provisioned { provisioned = true; }
                if next == OrderState::PinDelivered { prop_assert!(provisioned); }
                s = next;
            }
        }
    }
}
