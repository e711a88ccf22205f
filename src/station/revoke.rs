//! Revoking an order's certificate (`keystation order revoke`): the minimal path the delivery
//! rules need — a revoked order's PIN is never delivered.
//!
//! Four-eyes (issue 17): an operator's revocation is a service request
//! ([`super::service_desk::revoke`]) that a second operator approves; only then does this module
//! revoke, and the request moves to `done` in the revocation's own transaction, whose audit
//! record names both operators ([`FourEyes`]). Nothing here is public to the CLI or the console:
//! the only ways in are that request, a key reported lost, and a retire request's run.
//!
//! One transaction: order -> Revoked, every certificate of the order not yet revoked recorded in
//! `revocations` (RFC 5280 reason name, through the store's `revoke_certificate`, the same record
//! the provisioning job writes for superseded certificates), deliveries that have not reached a
//! channel (queued, failed, needs_operator) cancelled, the sealed PIN destroyed, one audit record.
//! A delivery already `sending` or `sent` is left as it is (the message may be out) and reported.
//! Once it has committed, a new CRL listing the revocation is issued and published
//! ([`super::crl`]); the report says whether it was (a CRL that failed leaves the revocation
//! standing: `keystation ca crl` issues it later, as does the serving loop).
//!
//! Revoking ONE certificate (`keystation cert revoke SERIAL`) is the operator's way out of what
//! `check` finds — a second live certificate of an order (a duplicate issuance), a certificate
//! left on a token the order no longer uses. The order keeps its state. Refused (exit 2): an
//! unknown or already revoked serial; a certificate whose order a live process is provisioning
//! (its lease); and the only certificate on an order's token, which would leave the order
//! without one (that is `order revoke`, or for an interrupted order `provision --reinit`).

use super::Station;
use super::crl::CrlOutcome;
use super::delivery::DeliveryError;
use super::lease::keeps_others_out;
use super::service_desk::carry_out_in;
use super::service_desk::lost::{LostClosed, LostKey};
use crate::audit::event::{AuditEvent, CertificateRevoked, FourEyes, OrderRevoked};
use crate::domain::lease::LeaseKind;
use crate::domain::notification::Notice;
use crate::domain::{
    CertSerial, CertificateStatus, DeliveryEvent, DeliveryState, OrderEvent, OrderNo, OrderState,
    TokenSerial,
};
use crate::station::argument::InvalidArgument;
use crate::store::{AuditEntry, CertificateRecord, DeliveryFilter, Tx};

/// RFC 5280 CRLReason names accepted for a revocation.
pub const REVOCATION_REASONS: [&str; 6] = [
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
];

/// What a revocation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevokeReport {
    /// The order.
    pub order_no: OrderNo,
    /// Its state before.
    pub from: OrderState,
    /// Certificates recorded as revoked.
    pub certificates: Vec<CertSerial>,
    /// Deliveries cancelled.
    pub deliveries_cancelled: Vec<String>,
    /// Deliveries that may already be out (sending / sent), left as they are.
    pub deliveries_in_flight: Vec<String>,
    /// Whether a sealed PIN was destroyed.
    pub sealed_pin_destroyed: bool,
    /// The CRL issued after the revocation (none when no certificate was revoked).
    pub crl: Option<CrlOutcome>,
    /// The four-eyes request carried out: who asked and who approved.
    pub four_eyes: Option<FourEyes>,
}

/// What revoking one certificate did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateRevokeReport {
    /// The certificate (hex serial).
    pub serial: CertSerial,
    /// Its order.
    pub order_no: OrderNo,
    /// The token it was meant for.
    pub token_serial: Option<TokenSerial>,
    /// Its status before (`reserved`, `issued`, `on_token`).
    pub previous_status: CertificateStatus,
    /// RFC 5280 reason.
    pub reason: String,
    /// Who revoked it.
    pub revoked_by: String,
    /// The order's certificates still live afterwards.
    pub still_live: Vec<CertSerial>,
    /// The CRL issued after the revocation.
    pub crl: CrlOutcome,
    /// The four-eyes request carried out: who asked and who approved.
    pub four_eyes: FourEyes,
}

/// What a revocation of an order closes in its own transaction.
pub(crate) enum Closing<'a> {
    /// Nothing beside the revocation (a retire request's run).
    Nothing,
    /// A lost or broken key's records (`order lost`).
    Lost(&'a LostKey),
    /// The approved four-eyes request `id` it carries out (`order revoke`).
    Request(&'a str),
}

/// Checks the common arguments of a revocation.
pub(crate) fn check_reason_and_operator(reason: &str, operator: &str) -> Result<(), DeliveryError> {
    if !REVOCATION_REASONS.contains(&reason) {
        return Err(DeliveryError::Invalid(InvalidArgument {
            field: "--reason",
            message: format!(
                "{reason:?} is not an RFC 5280 reason: {}",
                REVOCATION_REASONS.join(", ")
            ),
        }));
    }
    if operator.trim().is_empty() {
        return Err(DeliveryError::Invalid(InvalidArgument {
            field: "--operator",
            message: "must name the operator".into(),
        }));
    }
    Ok(())
}

/// A certificate an operator may revoke alone (its order keeps its state), read in `tx`: the
/// certificate, the order's state, and the order's other certificates. See the module docs for
/// what is refused.
pub(crate) async fn revocable_certificate(
    tx: &mut Tx,
    serial: &CertSerial,
) -> Result<(CertificateRecord, OrderState, Vec<CertificateRecord>), DeliveryError> {
    let certs = tx.certificates_beside(serial).await?;
    let Some(cert) = certs.iter().find(|c| c.serial == *serial).cloned() else {
        return Err(DeliveryError::Invalid(InvalidArgument {
            field: "SERIAL",
            message: format!("no certificate {serial} was issued by this station"),
        }));
    };
    let no = cert.order_no.clone();
    if cert.status == CertificateStatus::Revoked {
        return Err(DeliveryError::Refused(format!(
            "certificate {serial} (order {no}) is already revoked"
        )));
    }
    if let Some(l) = tx.lease(LeaseKind::Provision, no.as_str()).await? {
        if keeps_others_out(&l, tx.now()) {
            return Err(DeliveryError::Refused(format!(
                "order {no} is being provisioned by {}: revoke its certificate once that \
                 process has ended",
                l.holder
            )));
        }
    }
    let on_token = certs
        .iter()
        .filter(|c| c.status == CertificateStatus::OnToken)
        .count();
    let state = tx.order_state(&no).await?;
    if cert.status == CertificateStatus::OnToken && on_token == 1 && state != OrderState::Revoked {
        let way = if matches!(state, OrderState::Provisioning | OrderState::Failed) {
            format!("start its token over with `keystation provision {no} --reinit`")
        } else {
            format!("withdraw the order with `keystation order revoke {no}`")
        };
        return Err(DeliveryError::Refused(format!(
            "certificate {serial} is the only certificate on order {no}'s token ({state}): \
             revoking it alone would leave the order without one; {way}"
        )));
    }
    Ok((cert, state, certs))
}

/// An order an operator may revoke: refused (naming its state) when the order's machine has no
/// revocation from where it is.
pub(crate) fn revocable_order(order_no: &OrderNo, state: OrderState) -> Result<(), DeliveryError> {
    state.apply(OrderEvent::Revoke).map(|_| ()).map_err(|_| {
        DeliveryError::Refused(format!(
            "order {order_no} is {state}: it cannot be revoked from there"
        ))
    })
}

impl Station {
    /// Revokes the one certificate `serial`, carrying out approved four-eyes request
    /// `request_id` in the same transaction. See the module docs.
    pub(crate) async fn revoke_certificate(
        &self,
        serial: &CertSerial,
        (reason, detail): (&str, Option<&str>),
        operator: &str,
        request_id: &str,
    ) -> Result<CertificateRevokeReport, DeliveryError> {
        check_reason_and_operator(reason, operator)?;
        let actor = self
            .operator_actor(operator, crate::domain::Action::Revoke)
            .await?;
        let mut tx = self.begin_write().await?;
        let (cert, state, certs) = revocable_certificate(&mut tx, serial).await?;
        let no = cert.order_no.clone();
        let four_eyes = carry_out_in(&mut tx, &actor, request_id).await?;
        let detail = detail.unwrap_or("revoked by an operator");
        tx.revoke_certificate(serial, &no, reason, detail, operator)
            .await?;
        tx.audit(
            &actor,
            AuditEntry {
                order_no: Some(no.clone()),
                token_serial: cert.token_serial.clone(),
                cert_serial: Some(serial.clone()),
                event: AuditEvent::CertificateRevoked(CertificateRevoked {
                    reason: reason.to_string(),
                    detail: detail.to_string(),
                    previous_status: cert.status,
                    order_state: Some(state),
                    four_eyes: Some(four_eyes.clone()),
                }),
            },
        )
        .await?;
        let order = tx.order_in_tx(&no).await?;
        let notice = Notice::Revoked {
            serial: serial.to_string(),
            reason: reason.to_string(),
        };
        self.queue_notices_in(&mut tx, &actor, &order, &notice)
            .await?;
        tx.commit().await?;
        let crl = self.crl_after(None, "revocation").await;
        Ok(CertificateRevokeReport {
            crl,
            still_live: certs
                .iter()
                .filter(|c| c.serial != *serial && c.status != CertificateStatus::Revoked)
                .map(|c| c.serial.clone())
                .collect(),
            serial: serial.clone(),
            order_no: no,
            token_serial: cert.token_serial,
            previous_status: cert.status,
            reason: reason.to_string(),
            revoked_by: operator.to_string(),
            four_eyes,
        })
    }

    /// Revokes `order_no`'s certificate(s) with no second operator: only a retire request's run
    /// calls it, which a second operator approved already. See the module docs.
    pub(crate) async fn revoke_order(
        &self,
        order_no: &OrderNo,
        reason: &str,
        detail: Option<&str>,
        operator: &str,
    ) -> Result<RevokeReport, DeliveryError> {
        self.revoke_order_closing(order_no, (reason, detail), operator, Closing::Nothing)
            .await
            .map(|(report, _)| report)
    }

    /// [`Station::revoke_order`], closing in the same transaction what `closing` names: a lost
    /// key's records (`order lost`, [`super::service_desk::lost`]) or the approved four-eyes
    /// request it carries out (`order revoke`).
    pub(crate) async fn revoke_order_closing(
        &self,
        order_no: &OrderNo,
        (reason, detail): (&str, Option<&str>),
        operator: &str,
        closing: Closing<'_>,
    ) -> Result<(RevokeReport, Option<LostClosed>), DeliveryError> {
        let no = order_no;
        check_reason_and_operator(reason, operator)?;
        // Reporting a key lost revokes it at once: the desk may (see the role table).
        let action = if matches!(closing, Closing::Lost(_)) {
            crate::domain::Action::ReportLost
        } else {
            crate::domain::Action::Revoke
        };
        let actor = self.operator_actor(operator, action).await?;
        let certs = self.store.certificates_of_order(order_no).await?;
        let deliveries = self
            .store
            .deliveries(&DeliveryFilter {
                order_no: Some(no.clone()),
                state: None,
            })
            .await?;
        let mut tx = self.begin_write().await?;
        let from = tx.order_state(order_no).await?;
        tx.transition(order_no, Some(from), OrderEvent::Revoke)
            .await?;
        let revoked = tx
            .revoke_live_certificates(
                &certs,
                order_no,
                reason,
                detail.unwrap_or("revoked by an operator"),
                operator,
            )
            .await?;
        let mut cancelled = Vec::new();
        let mut in_flight = Vec::new();
        for d in &deliveries {
            let mut cur = tx.delivery(&d.id).await?;
            let before = cur.state;
            if before.apply(DeliveryEvent::Cancel).is_ok() {
                // Recorded by `order.revoked` below, which lists the deliveries it cancelled.
                tx.transition_delivery(&actor, &mut cur, DeliveryEvent::Cancel, |d| {
                    d.cancel_reason = Some(format!("order revoked ({reason})"));
                    None
                })
                .await?;
                cancelled.push(cur.id.clone());
            } else if matches!(before, DeliveryState::Sending | DeliveryState::Sent) {
                in_flight.push(cur.id.clone());
            }
        }
        let destroyed = tx.delete_sealed_pin(order_no).await?;
        let (closed, four_eyes) = match closing {
            Closing::Lost(l) => (Some(l.close_in(&mut tx, &actor, order_no).await?), None),
            Closing::Request(id) => (None, Some(carry_out_in(&mut tx, &actor, id).await?)),
            Closing::Nothing => (None, None),
        };
        let order = tx.order_in_tx(order_no).await?;
        for serial in &revoked {
            let notice = Notice::Revoked {
                serial: serial.to_string(),
                reason: reason.to_string(),
            };
            self.queue_notices_in(&mut tx, &actor, &order, &notice)
                .await?;
        }
        tx.audit(
            &actor,
            AuditEntry::order(
                order_no,
                AuditEvent::OrderRevoked(OrderRevoked {
                    reason: reason.to_string(),
                    detail: detail.map(str::to_string),
                    from,
                    certificates: revoked.iter().map(CertSerial::to_string).collect(),
                    deliveries_cancelled: cancelled.clone(),
                    deliveries_in_flight: in_flight.clone(),
                    sealed_pin_destroyed: destroyed,
                    four_eyes: four_eyes.clone(),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        let crl = if revoked.is_empty() {
            None
        } else {
            Some(self.crl_after(None, "revocation").await)
        };
        let report = RevokeReport {
            crl,
            order_no: order_no.clone(),
            from,
            certificates: revoked,
            deliveries_cancelled: cancelled,
            deliveries_in_flight: in_flight,
            sealed_pin_destroyed: destroyed,
            four_eyes,
        };
        Ok((report, closed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_rfc_5280_names_and_the_operator_is_named() {
        // Every reason an operator may give has its CRL reason code.
        for name in REVOCATION_REASONS {
            assert!(crate::ca::crl::reason_from_name(name).is_some(), "{name}");
        }
        assert!(check_reason_and_operator("superseded", "alice").is_ok());
        assert!(matches!(
            check_reason_and_operator("duplicate", "alice"),
            Err(DeliveryError::Invalid(InvalidArgument {
                field: "--reason",
                ..
            }))
        ));
        assert!(matches!(
            check_reason_and_operator("superseded", " "),
            Err(DeliveryError::Invalid(InvalidArgument {
                field: "--operator",
                ..
            }))
        ));
    }
}
