//! Revoking an order's certificate (`keystation order revoke`): the minimal path the delivery
//! rules need — a revoked order's PIN is never delivered.
//!
//! One transaction: order -> Revoked, every certificate of the order not yet revoked recorded in
//! `revocations` (RFC 5280 reason name, through the store's `revoke_certificate`, the same record
//! the provisioning job writes for superseded certificates), deliveries that have not reached a
//! channel (queued, failed, needs_operator) cancelled, the sealed PIN destroyed, one audit record.
//! A delivery already `sending` or `sent` is left as it is (the message may be out) and reported.
//! Publishing the CRL is not part of this command.

use super::Station;
use super::delivery::DeliveryError;
use crate::domain::{DeliveryEvent, DeliveryState, OrderEvent, OrderState};
use crate::store::{AuditEntry, DeliveryFilter};
use serde_json::json;

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
    pub order_no: String,
    /// Its state before.
    pub from: OrderState,
    /// Certificates recorded as revoked.
    pub certificates: Vec<String>,
    /// Deliveries cancelled.
    pub deliveries_cancelled: Vec<String>,
    /// Deliveries that may already be out (sending / sent), left as they are.
    pub deliveries_in_flight: Vec<String>,
    /// Whether a sealed PIN was destroyed.
    pub sealed_pin_destroyed: bool,
}

impl Station {
    /// Revokes `order_no`'s certificate(s). See the module docs.
    pub async fn revoke_order(
        &self,
        order_no: &str,
        reason: &str,
        detail: Option<&str>,
        operator: &str,
    ) -> Result<RevokeReport, DeliveryError> {
        if !REVOCATION_REASONS.contains(&reason) {
            return Err(DeliveryError::Invalid {
                field: "--reason",
                message: format!(
                    "{reason:?} is not an RFC 5280 reason: {}",
                    REVOCATION_REASONS.join(", ")
                ),
            });
        }
        if operator.trim().is_empty() {
            return Err(DeliveryError::Invalid {
                field: "--operator",
                message: "must name the operator".into(),
            });
        }
        let actor = self.operator_actor(operator);
        let certs = self.store.certificates_of_order(order_no).await?;
        let deliveries = self
            .store
            .deliveries(&DeliveryFilter {
                order_no: Some(order_no.to_string()),
                state: None,
            })
            .await?;
        let mut tx = self.store.begin_write(self.clock.now()).await?;
        let from = tx.order_state(order_no).await?;
        tx.transition(order_no, Some(from), OrderEvent::Revoke)
            .await?;
        let mut revoked = Vec::new();
        for c in certs.iter().filter(|c| c.status != "revoked") {
            tx.revoke_certificate(
                &c.serial,
                order_no,
                reason,
                detail.unwrap_or("revoked by an operator"),
                operator,
            )
            .await?;
            revoked.push(c.serial.clone());
        }
        let mut cancelled = Vec::new();
        let mut in_flight = Vec::new();
        for d in &deliveries {
            let mut cur = tx.delivery(&d.id).await?;
            let before = cur.state;
            match before.apply(DeliveryEvent::Cancel) {
                Ok(to) => {
                    cur.state = to;
                    cur.cancel_reason = Some(format!("order revoked ({reason})"));
                    tx.save_delivery(&cur, before).await?;
                    cancelled.push(cur.id.clone());
                }
                Err(_) if matches!(before, DeliveryState::Sending | DeliveryState::Sent) => {
                    in_flight.push(cur.id.clone());
                }
                Err(_) => {}
            }
        }
        let destroyed = tx.delete_sealed_pin(order_no).await?;
        tx.audit(
            &actor,
            AuditEntry::order(
                "order.revoked",
                order_no,
                json!({
                    "reason": reason, "detail": detail, "from": from,
                    "certificates": revoked, "deliveries_cancelled": cancelled,
                    "deliveries_in_flight": in_flight, "sealed_pin_destroyed": destroyed,
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(RevokeReport {
            order_no: order_no.to_string(),
            from,
            certificates: revoked,
            deliveries_cancelled: cancelled,
            deliveries_in_flight: in_flight,
            sealed_pin_destroyed: destroyed,
        })
    }
}
