//! Reviewing an order: approving a submitted one (`keystation order approve`), and rejecting one
//! (`keystation order reject`) at review or after its provisioning failed.
//!
//! A Submitted order is rejected by recording the review. A Failed order may already have a
//! token bound, a sealed PIN and certificates (reserved, issued, or on its token): rejecting it
//! cleans all of that up in the same transaction as the state change, as `order revoke` and
//! `provision --reinit` do for theirs — every certificate not yet revoked is revoked
//! (`privilegeWithdrawn`, the operator and reason recorded), the token binding is released, the
//! sealed PIN is destroyed, and one audit record lists what was done. The token itself is not
//! touched (it may be gone, which is often why the order failed); the station never reuses a
//! token it made for another order, so an operator wipes it before it goes back to stock.

use super::Station;
use super::lease::keeps_others_out;
use crate::audit::event::{AuditEvent, OrderRejected, Reviewed};
use crate::domain::lease::LeaseKind;
use crate::domain::notification::Notice;
use crate::domain::{BindingId, CertSerial, OrderEvent, OrderNo, OrderState};
use crate::store::{AuditEntry, Review, StoreError};

/// The RFC 5280 reason recorded for the certificates of a rejected order.
pub const REJECTION_REVOCATION_REASON: &str = "privilegeWithdrawn";

/// What a rejection did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RejectReport {
    /// The order.
    pub order_no: OrderNo,
    /// Its state before (Submitted or Failed).
    pub from: OrderState,
    /// Its state now (Rejected).
    pub state: OrderState,
    /// Certificates revoked with the rejection.
    pub certificates_revoked: Vec<CertSerial>,
    /// The token binding released, if the order had one.
    pub binding_released: Option<BindingId>,
    /// Whether a sealed PIN was destroyed.
    pub sealed_pin_destroyed: bool,
}

impl Station {
    /// Approves the Submitted order `order_no`: the review (operator, optional note), its audit
    /// record and the applicant's notices in one transaction. Returns the new state. A
    /// secondary key is refused ([`StoreError::MainKey`]) unless its company has a live main key
    /// (see [`crate::domain::secondary_key`]).
    pub async fn approve_order(
        &self,
        order_no: &OrderNo,
        operator: &str,
        reason: Option<&str>,
    ) -> Result<OrderState, StoreError> {
        let review = Review {
            event: OrderEvent::Approve,
            operator: operator.to_string(),
            reason: reason.map(str::to_string),
        };
        let actor = self
            .operator_actor(operator, crate::domain::Action::ReviewOrder)
            .await?;
        let mut tx = self.begin_write().await?;
        let to = tx.transition(order_no, None, OrderEvent::Approve).await?;
        // A secondary key only while its company has a live main key (refused: nothing written).
        let order = tx.order_in_tx(order_no).await?;
        tx.require_live_main_key(&order).await?;
        tx.record_review(order_no, &review).await?;
        tx.audit(
            &actor,
            AuditEntry::order(
                order_no,
                AuditEvent::Reviewed(Reviewed {
                    approved: true,
                    operator: review.operator.clone(),
                    reason: review.reason.clone(),
                }),
            ),
        )
        .await?;
        self.queue_notices_in(&mut tx, &actor, &order, &Notice::Approved)
            .await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Rejects `order_no` (Submitted or Failed). See the module docs.
    pub async fn reject_order(
        &self,
        order_no: &OrderNo,
        operator: &str,
        reason: &str,
    ) -> Result<RejectReport, StoreError> {
        let actor = self
            .operator_actor(operator, crate::domain::Action::ReviewOrder)
            .await?;
        let certs = self.store.certificates_of_order(order_no).await?;
        let binding = self.store.active_binding(order_no).await?;
        let mut tx = self.begin_write().await?;
        // A Failed order's job has stopped; a process that still holds its lease (one that
        // may yet resume it) is waited for, as `cert revoke` does.
        if let Some(l) = tx.lease(LeaseKind::Provision, order_no.as_str()).await? {
            if keeps_others_out(&l, tx.now()) {
                return Err(StoreError::LeaseHeld {
                    subject: format!("order {order_no}"),
                    holder: l.holder.to_string(),
                    expires_at: crate::clock::format_utc(l.expires_at),
                });
            }
        }
        let from = tx.order_state(order_no).await?;
        // `Some(from)`: a provisioning job that claims the order meanwhile makes this fail
        // instead of rejecting an order that is being worked on.
        let state = tx
            .transition(order_no, Some(from), OrderEvent::Reject)
            .await?;
        tx.record_review(
            order_no,
            &Review {
                event: OrderEvent::Reject,
                operator: operator.to_string(),
                reason: Some(reason.to_string()),
            },
        )
        .await?;
        let revoked = tx
            .revoke_live_certificates(
                &certs,
                order_no,
                REJECTION_REVOCATION_REASON,
                &format!("order rejected: {reason}"),
                operator,
            )
            .await?;
        let released = match &binding {
            Some(b) => {
                tx.release_binding(&b.binding_id, "order rejected").await?;
                Some(b.binding_id.clone())
            }
            None => None,
        };
        let destroyed = tx.delete_sealed_pin(order_no).await?;
        let order = tx.order_in_tx(order_no).await?;
        let notice = Notice::Rejected {
            reason: reason.to_string(),
        };
        self.queue_notices_in(&mut tx, &actor, &order, &notice)
            .await?;
        tx.audit(
            &actor,
            AuditEntry {
                token_serial: binding.as_ref().and_then(|b| b.token_serial.clone()),
                ..AuditEntry::order(
                    order_no,
                    AuditEvent::OrderRejected(OrderRejected {
                        operator: operator.to_string(),
                        reason: reason.to_string(),
                        from,
                        certificates_revoked: revoked.iter().map(CertSerial::to_string).collect(),
                        binding_released: released.as_ref().map(BindingId::to_string),
                        sealed_pin_destroyed: destroyed,
                    }),
                )
            },
        )
        .await?;
        tx.commit().await?;
        Ok(RejectReport {
            order_no: order_no.clone(),
            from,
            state,
            certificates_revoked: revoked,
            binding_released: released,
            sealed_pin_destroyed: destroyed,
        })
    }
}
