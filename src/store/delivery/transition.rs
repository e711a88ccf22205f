//! A delivery's moves: the domain's state machine, the fields that go with a move and its audit
//! record, written back in the caller's transaction only if the row is still in the state that
//! was read. The one writer of a delivery row after it is queued.

use super::super::{Actor, AuditEntry, DbContext, StoreError, Tx};
use super::DeliveryRecord;
use crate::audit::AuditEvent;
use crate::clock::format_utc;
use crate::domain::{DeliveryEvent, DeliveryState};

impl Tx {
    /// Applies `event` to `d` (read in this transaction) through the domain's table, lets
    /// `change` set the fields that go with the move and name its audit record, then writes the
    /// row back — only if it is still in the state it was read in, else
    /// [`StoreError::DeliveryConflict`] — and appends the audit record, all in this transaction.
    /// Returns the state `d` left. An event the state does not allow is refused before anything
    /// is written; `change` may not move the state itself. `change` returns `None` only when the
    /// caller's own record of the operation, in the same transaction, names this move
    /// (`order.revoked` lists the deliveries it cancelled; `delivery.retried` the transfer it
    /// superseded).
    pub async fn transition_delivery(
        &mut self,
        actor: &Actor,
        d: &mut DeliveryRecord,
        event: DeliveryEvent,
        change: impl FnOnce(&mut DeliveryRecord) -> Option<AuditEvent>,
    ) -> Result<DeliveryState, StoreError> {
        let from = d.state;
        // Callers decide on the state they read; a move the table refuses here is a bug, and
        // nothing is written.
        let to = from
            .apply(event)
            .map_err(|e| StoreError::Corrupt(format!("refused delivery move of {}: {e}", d.id)))?;
        d.state = to;
        let audit = change(d);
        self.write_delivery(actor, d, from, to, audit).await?;
        Ok(from)
    }

    /// Like [`Self::transition_delivery`] for fields that change without a move: `d` stays in
    /// its state.
    pub async fn update_delivery(
        &mut self,
        actor: &Actor,
        d: &mut DeliveryRecord,
        change: impl FnOnce(&mut DeliveryRecord) -> Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let state = d.state;
        let audit = change(d);
        self.write_delivery(actor, d, state, state, audit).await
    }

    /// Writes `d` (read in `from`, now in `to`) back and appends its audit record.
    async fn write_delivery(
        &mut self,
        actor: &Actor,
        d: &DeliveryRecord,
        from: DeliveryState,
        to: DeliveryState,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        if d.state != to {
            return Err(StoreError::Corrupt(format!(
                "delivery {} was moved to {} beside the state machine (expected {to})",
                d.id, d.state
            )));
        }
        self.save_delivery(d, from).await?;
        if let Some(a) = audit {
            self.audit(actor, AuditEntry::order(&d.order_no, a)).await?;
        }
        Ok(())
    }

    /// Writes back every mutable column of `d`, provided the row is still in `expected` (the
    /// state it was read in). Stamps `updated_at`.
    async fn save_delivery(
        &mut self,
        d: &DeliveryRecord,
        expected: DeliveryState,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let done = sqlx::query(
            "UPDATE deliveries SET state = $1, attempts = $2, next_attempt_at = $3, provider_id = $4, \
             end_to_end_id = $5, bank_message_id = $6, bank_file = $7, last_error = $8, \
             message_hmac = $9, sending_at = $10, sent_at = $11, confirmed_at = $12, \
             cancel_reason = $13, superseded_by = $14, updated_at = $15 \
             WHERE id = $16 AND state = $17",
        )
        .bind(d.state.as_str())
        .bind(d.attempts)
        .bind(&d.next_attempt_at)
        .bind(&d.provider_id)
        .bind(&d.end_to_end_id)
        .bind(&d.bank_message_id)
        .bind(&d.bank_file)
        .bind(&d.last_error)
        .bind(&d.message_hmac)
        .bind(&d.sending_at)
        .bind(&d.sent_at)
        .bind(&d.confirmed_at)
        .bind(&d.cancel_reason)
        .bind(&d.superseded_by)
        .bind(&now)
        .bind(&d.id)
        .bind(expected.as_str())
        .execute(self.conn())
        .await
        .ctx("updating a delivery")?;
        if done.rows_affected() != 1 {
            return Err(StoreError::DeliveryConflict {
                id: d.id.clone(),
                expected,
            });
        }
        Ok(())
    }
}
