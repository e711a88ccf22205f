#![allow(clippy::unwrap_used)]

use super::*;
use crate::domain::delivery::DeliveryState;
use crate::domain::order::OrderState;
use crate::domain::pin::PinAlphabet;

// The stored format, byte for byte, as the records held it when details were written with
// `json!` at each call site: a change here changes the audit trail.
#[test]
fn events_encode_to_the_stored_action_and_details() {
    let cases: Vec<(AuditEvent, &str, &str)> = vec![
        (
            AuditEvent::Reviewed(Reviewed {
                approved: true,
                operator: "alice".into(),
                reason: None,
            }),
            "order.approved",
            r#"{"operator":"alice","reason":null}"#,
        ),
        (
            AuditEvent::Reviewed(Reviewed {
                approved: false,
                operator: "bob".into(),
                reason: Some("stamp missing".into()),
            }),
            "order.rejected",
            r#"{"operator":"bob","reason":"stamp missing"}"#,
        ),
        (
            AuditEvent::StepStarted(StepStarted {
                step: "init_pin".into(),
                attempt: 2,
            }),
            "provision.init_pin.started",
            r#"{"attempt":2}"#,
        ),
        (
            AuditEvent::StepDone(StepOutcome::InitPin(PinInitialized {
                pin_length: 8,
                alphabet: PinAlphabet::Digits,
                sealed_bytes: 60,
            })),
            "provision.init_pin.done",
            r#"{"alphabet":"digits","pin_length":8,"sealed_bytes":60}"#,
        ),
        (
            AuditEvent::SerialReserved,
            "certificate.serial_reserved",
            "{}",
        ),
        (
            AuditEvent::CertificateRevoked(CertificateRevoked {
                reason: "superseded".into(),
                detail: "re-issued".into(),
                previous_status: crate::domain::CertificateStatus::Issued,
                order_state: None,
                four_eyes: None,
            }),
            "certificate.revoked",
            r#"{"detail":"re-issued","previous_status":"issued","reason":"superseded"}"#,
        ),
        (
            AuditEvent::CertificateRevoked(CertificateRevoked {
                reason: "keyCompromise".into(),
                detail: "lost".into(),
                previous_status: crate::domain::CertificateStatus::OnToken,
                order_state: Some(OrderState::Shipped),
                four_eyes: None,
            }),
            "certificate.revoked",
            r#"{"detail":"lost","order_state":"Shipped","previous_status":"on_token","reason":"keyCompromise"}"#,
        ),
        (
            AuditEvent::CertificateRevoked(CertificateRevoked {
                reason: "superseded".into(),
                detail: "duplicate".into(),
                previous_status: crate::domain::CertificateStatus::OnToken,
                order_state: Some(OrderState::PinDelivered),
                four_eyes: Some(FourEyes {
                    request_id: "r1".into(),
                    requested_by: "alice".into(),
                    approved_by: "bob".into(),
                }),
            }),
            "certificate.revoked",
            r#"{"detail":"duplicate","four_eyes":{"approved_by":"bob","request_id":"r1","requested_by":"alice"},"order_state":"PinDelivered","previous_status":"on_token","reason":"superseded"}"#,
        ),
        (
            AuditEvent::DeliveryRescheduled(DeliveryRescheduled {
                escalated: true,
                delivery_id: "d1".into(),
                attempt: 3,
                reason: Some("gave up".into()),
                next_attempt_at: "2026-01-01T00:00:00Z".into(),
            }),
            "delivery.needs_operator",
            r#"{"attempt":3,"delivery_id":"d1","next_attempt_at":"2026-01-01T00:00:00Z","reason":"gave up"}"#,
        ),
        (
            AuditEvent::DeliveryCancelled(DeliveryCancelled {
                delivery_id: "d2".into(),
                from: DeliveryState::Queued,
                reason: Some("duplicate".into()),
            }),
            "delivery.cancelled",
            r#"{"delivery_id":"d2","from":"queued","reason":"duplicate"}"#,
        ),
        (
            AuditEvent::OrderTakenOver(OrderTakenOver {
                from_station: "desk-1".into(),
                decision: crate::domain::takeover::Takeover::KeyLost,
                journal_point: crate::domain::takeover::JournalPoint::KeyTouched,
                key_in_reach: false,
                binding_id: "b1".into(),
                order_state: OrderState::Provisioning,
            }),
            "provision.taken_over",
            r#"{"binding_id":"b1","decision":"key_lost","from_station":"desk-1","journal_point":"key_touched","key_in_reach":false,"order_state":"Provisioning"}"#,
        ),
        (
            AuditEvent::DeliverySenderTakenOver(DeliverySenderTakenOver {
                delivery_id: "d3".into(),
                reason: crate::domain::lease::TakeoverReason::HolderGone,
                previous: crate::domain::lease::LeaseHolder {
                    station_id: "desk-2".into(),
                    instance_id: "i".into(),
                    host: "h:boot".into(),
                    pid: 7,
                    process_start: "42".into(),
                },
                previous_expires_at: "2026-01-01T00:00:00Z".into(),
            }),
            "delivery.sender_taken_over",
            r#"{"delivery_id":"d3","previous":{"host":"h:boot","instance_id":"i","pid":7,"process_start":"42","station_id":"desk-2"},"previous_expires_at":"2026-01-01T00:00:00Z","reason":"holder_gone"}"#,
        ),
        (
            AuditEvent::StationJoined(StationJoined {
                station_id: "desk-3".into(),
                installation: InstallationMaterial {
                    ca_fingerprint: "ca".into(),
                    ca_token_serial: "s1".into(),
                    vault_token_serial: "s2".into(),
                    seal_maker_fingerprint: "sm".into(),
                    audit_anchor_spki: "30".into(),
                },
                pkcs11_module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            }),
            "station.joined",
            r#"{"installation":{"audit_anchor_spki":"30","ca_fingerprint":"ca","ca_token_serial":"s1","seal_maker_fingerprint":"sm","vault_token_serial":"s2"},"pkcs11_module":"/usr/lib/softhsm/libsofthsm2.so","station_id":"desk-3"}"#,
        ),
        (
            AuditEvent::CrlIssued(CrlIssued {
                number: 3,
                this_update: "2026-12-01T00:00:00.000000Z".into(),
                next_update: "2026-12-02T00:00:00.000000Z".into(),
                entries: 1,
                sha256: "ab".into(),
                trigger: "revocation".into(),
            }),
            "crl.issued",
            r#"{"entries":1,"next_update":"2026-12-02T00:00:00.000000Z","number":3,"sha256":"ab","this_update":"2026-12-01T00:00:00.000000Z","trigger":"revocation"}"#,
        ),
        (
            AuditEvent::ServiceDecided(ServiceDecided {
                request_id: "r1".into(),
                kind: "pin_reset".into(),
                approved: true,
                requested_by: "alice".into(),
                decided_by: "bob".into(),
                note: None,
            }),
            "service.approved",
            r#"{"approved":true,"decided_by":"bob","kind":"pin_reset","note":null,"request_id":"r1","requested_by":"alice"}"#,
        ),
        (
            AuditEvent::PinResetStepDone(PinResetStepDone {
                request_id: "r1".into(),
                step: "init_pin".into(),
                token_serial: "abc".into(),
                runs: 2,
            }),
            "pin_reset.init_pin.done",
            r#"{"request_id":"r1","runs":2,"step":"init_pin","token_serial":"abc"}"#,
        ),
        (
            AuditEvent::RetireStepDone(PinResetStepDone {
                request_id: "r2".into(),
                step: "wipe".into(),
                token_serial: "abc".into(),
                runs: 1,
            }),
            "retire.wipe.done",
            r#"{"request_id":"r2","runs":1,"step":"wipe","token_serial":"abc"}"#,
        ),
        (
            AuditEvent::TokenRetired(TokenRetired {
                request_id: "r2".into(),
                token_serial: "abc".into(),
                binding_id: "b1".into(),
                label: "keystation-retired".into(),
            }),
            "token.retired",
            r#"{"binding_id":"b1","label":"keystation-retired","request_id":"r2","token_serial":"abc"}"#,
        ),
        (
            AuditEvent::UnlockCodeSend(UnlockCodeSend {
                request_id: "r2".into(),
                state: "in_doubt".into(),
                send: 1,
                destination_masked: "l***@example.com".into(),
                reason: Some("timeout".into()),
            }),
            "unlock.code_in_doubt",
            r#"{"destination_masked":"l***@example.com","reason":"timeout","request_id":"r2","send":1,"state":"in_doubt"}"#,
        ),
        (
            AuditEvent::UnlockConfirmed(UnlockConfirmed {
                request_id: "r2".into(),
                token_serial: "abc".into(),
                confirmed_by: "carol".into(),
                generation: 1,
            }),
            "unlock.confirmed",
            r#"{"confirmed_by":"carol","generation":1,"request_id":"r2","token_serial":"abc"}"#,
        ),
    ];
    for (event, action, details) in cases {
        assert_eq!(
            event.encode().unwrap(),
            (action.to_string(), details.to_string())
        );
    }
}

// Compile-time guard: if any secret type ever became an `AuditField`, the calls below would be
// ambiguous and this module would not compile (the `static_assertions` "not impl" trick).
trait AmbiguousIfAuditField<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfAuditField<()> for T {}
#[allow(dead_code)]
struct IsAuditField;
impl<T: ?Sized + AuditField> AmbiguousIfAuditField<IsAuditField> for T {}

const _: fn() = || {
    <crate::domain::pin::Pin as AmbiguousIfAuditField<_>>::check();
    <crate::domain::pin::SoPin as AmbiguousIfAuditField<_>>::check();
    <crate::token::vault::SealedPin as AmbiguousIfAuditField<_>>::check();
    <zeroize::Zeroizing<String> as AmbiguousIfAuditField<_>>::check();
    <Vec<u8> as AmbiguousIfAuditField<_>>::check();
};
