//! The worker's transactions shared by both channels: what a send reads first, and each move a
//! delivery makes under the worker (cancelled for its order, failed unprepared, claimed, queued
//! again or escalated, accepted). Each goes through the store's one delivery transition
//! ([`crate::store::Tx::transition_delivery`]).

use super::*;

impl Worker<'_> {
    /// Delivery `d` read again in a new write transaction, if it is still `state`; `None` when
    /// it moved since it was listed (another pass or station settled it), nothing written.
    pub(super) async fn still_in(
        &self,
        d: &DeliveryRecord,
        state: DeliveryState,
    ) -> Result<Option<(Tx, DeliveryRecord)>, DeliveryError> {
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let cur = tx.delivery(&d.id).await?;
        Ok((cur.state == state).then_some((tx, cur)))
    }

    /// The order of delivery `d` (which the store's foreign key guarantees).
    pub(super) async fn order_of(&self, d: &DeliveryRecord) -> Result<OrderRecord, DeliveryError> {
        match self.station.store.order(&d.order_no).await? {
            Some(rec) => Ok(rec),
            None => Err(StoreError::OrderNotFound(d.order_no.clone()).into()),
        }
    }

    /// Reads what the sends of `due` need, in one read for the group; a delivery settled here
    /// instead is left out (order no longer deliverable -> cancelled; no sealed PIN -> failed).
    pub(super) async fn load(
        &mut self,
        due: Vec<DeliveryRecord>,
    ) -> Result<Vec<(DeliveryRecord, Order, StoredPin)>, DeliveryError> {
        let order_nos: Vec<&OrderNo> = due.iter().map(|d| &d.order_no).collect();
        let material = self.station.store.send_material(&order_nos).await?;
        let mut ready = Vec::with_capacity(due.len());
        for d in due {
            // Cloned, not taken: two deliveries of one order (a PIN reset's beside the first
            // PIN's) may be in one group.
            let Some(m) = material.get(&d.order_no).cloned() else {
                return Err(StoreError::OrderNotFound(d.order_no.clone()).into());
            };
            if !order_is_deliverable(m.state, d.pin_generation) {
                self.cancel_for_order(&d, m.state).await?;
                continue;
            }
            match m.sealed {
                Some(sealed) => ready.push((d, m.order, sealed)),
                None => {
                    self.fail_queued(
                        &d,
                        "the order has no sealed PIN: nothing can be sent".into(),
                    )
                    .await?
                }
            }
        }
        Ok(ready)
    }

    /// A queued delivery whose order may not receive its PIN any more: cancelled, never sent.
    async fn cancel_for_order(
        &mut self,
        d: &DeliveryRecord,
        order_state: OrderState,
    ) -> Result<(), DeliveryError> {
        let Some((mut tx, mut cur)) = self.still_in(d, DeliveryState::Queued).await? else {
            return Ok(());
        };
        let from = self
            .cancel_for_order_in_tx(&mut tx, &mut cur, order_state)
            .await?;
        tx.commit().await?;
        let note = cur.cancel_reason.clone().unwrap_or_default();
        self.event(&cur, from, note);
        Ok(())
    }

    /// `cur` (queued) is cancelled in `tx`: its order is `order_state`, which receives no PIN.
    async fn cancel_for_order_in_tx(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        order_state: OrderState,
    ) -> Result<DeliveryState, DeliveryError> {
        let from = tx
            .transition_delivery(&self.actor, cur, DeliveryEvent::Cancel, |d| {
                d.cancel_reason = Some(format!("order is {order_state}: its PIN is never sent"));
                Some(AuditEvent::DeliveryWithdrawn(DeliveryWithdrawn {
                    delivery_id: d.id.clone(),
                    reason: d.cancel_reason.clone(),
                    order_state,
                }))
            })
            .await?;
        Ok(from)
    }

    /// A queued delivery that cannot be prepared: failed (no channel was contacted), for the
    /// operator to fix and retry, or cancel.
    pub(super) async fn fail_queued(
        &mut self,
        d: &DeliveryRecord,
        reason: String,
    ) -> Result<(), DeliveryError> {
        let Some((mut tx, mut cur)) = self.still_in(d, DeliveryState::Queued).await? else {
            return Ok(());
        };
        let from = tx
            .transition_delivery(&self.actor, &mut cur, DeliveryEvent::Reject, |d| {
                d.last_error = Some(format!("not sent: {reason}"));
                Some(AuditEvent::DeliveryFailed(DeliveryFailed {
                    delivery_id: d.id.clone(),
                    reason: reason.to_string(),
                    channel_contacted: false,
                }))
            })
            .await?;
        tx.commit().await?;
        self.event(&cur, from, reason);
        Ok(())
    }

    /// Claims `d` (must still be queued, its order deliverable, its sender lease free) inside
    /// `tx` for the sender `lease_id`: `sending`, one more attempt, the receipt MAC, an attempt
    /// journal row. Returns the journal row, or `None` when the delivery was cancelled (order
    /// revoked meanwhile) or taken by someone else.
    pub(super) async fn claim_in_tx(
        &mut self,
        tx: &mut Tx,
        d: &DeliveryRecord,
        mac: &str,
        kind: &str,
        bank_file: Option<(&str, &str)>,
        lease_id: &str,
    ) -> Result<Option<(DeliveryRecord, i64)>, DeliveryError> {
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Queued {
            return Ok(None);
        }
        if !self
            .take_sender(tx, &cur.id, &cur.order_no, lease_id)
            .await?
        {
            return Ok(None);
        }
        let order_state = tx.order_state(&cur.order_no).await?;
        if !order_is_deliverable(order_state, cur.pin_generation) {
            let from = self
                .cancel_for_order_in_tx(tx, &mut cur, order_state)
                .await?;
            let note = cur.cancel_reason.clone().unwrap_or_default();
            self.event(&cur, from, note);
            return Ok(None);
        }
        let now = format_utc(tx.now());
        tx.transition_delivery(&self.actor, &mut cur, DeliveryEvent::Claim, |d| {
            d.attempts += 1;
            d.sending_at = Some(now.clone());
            // Due at once: if this process dies mid-send, the next pass resolves the doubt.
            d.next_attempt_at = now;
            d.message_hmac = Some(mac.to_string());
            if let Some((file, message_id)) = bank_file {
                d.bank_file = Some(file.to_string());
                d.bank_message_id = Some(message_id.to_string());
            }
            Some(AuditEvent::DeliverySending(DeliverySending {
                delivery_id: d.id.clone(),
                channel: channel_name(d.channel).to_string(),
                destination: d.destination_masked.clone(),
                attempt: d.attempts,
                bank_file: d.bank_file.clone(),
            }))
        })
        .await?;
        let seq = tx.attempt_started(&cur.id, kind).await?;
        Ok(Some((cur, seq)))
    }

    /// After a failure that sent nothing: back to the queue with backoff, or to the operator
    /// once the attempts are used up. `cur` is in `sending`.
    pub(super) async fn retry_or_escalate(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        reason: &str,
    ) -> Result<(), DeliveryError> {
        self.requeue_or_escalate(tx, cur, reason, true).await
    }

    /// Like [`Self::retry_or_escalate`]; without `backoff` the delivery is due at once (an
    /// interrupted send that provably sent nothing: the channel did not fail).
    pub(super) async fn requeue_or_escalate(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        reason: &str,
        with_backoff: bool,
    ) -> Result<(), DeliveryError> {
        let policy = &self.channels.retry;
        let attempts = u32::try_from(cur.attempts).unwrap_or(u32::MAX);
        let now = tx.now();
        let event = if attempts >= policy.max_attempts {
            DeliveryEvent::Escalate
        } else {
            DeliveryEvent::RetryLater
        };
        tx.transition_delivery(&self.actor, cur, event, |d| {
            if event == DeliveryEvent::Escalate {
                d.last_error = Some(format!(
                    "gave up after {attempts} attempt(s); last: {reason}"
                ));
            } else {
                let delay = if with_backoff {
                    policy.delay_after(attempts)
                } else {
                    Duration::ZERO
                };
                d.next_attempt_at = format_utc(now + delay);
                d.last_error = Some(reason.to_string());
            }
            Some(AuditEvent::DeliveryRescheduled(DeliveryRescheduled {
                escalated: event == DeliveryEvent::Escalate,
                delivery_id: d.id.clone(),
                attempt: d.attempts,
                reason: d.last_error.clone(),
                next_attempt_at: d.next_attempt_at.clone(),
            }))
        })
        .await?;
        Ok(())
    }

    /// `cur` (in `from`) goes to the operator with `reason`.
    pub(super) async fn escalate_in_tx(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        reason: String,
    ) -> Result<(), DeliveryError> {
        tx.transition_delivery(&self.actor, cur, DeliveryEvent::Escalate, |d| {
            d.last_error = Some(reason);
            Some(AuditEvent::DeliveryNeedsOperator(DeliveryHeld {
                delivery_id: d.id.clone(),
                reason: d.last_error.clone(),
            }))
        })
        .await?;
        Ok(())
    }

    /// `cur` confirmed in `tx` by what `evidence` says (see [`confirm_in_tx`]).
    pub(super) async fn confirm_in(
        &self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        evidence: serde_json::Value,
    ) -> Result<(), DeliveryError> {
        let media = self.station.notice_media();
        Ok(confirm_in_tx(tx, &self.actor, &media, cur, evidence).await?)
    }

    /// `cur` (in `sending`) reached the provider: confirmed at once, or `sent` awaiting the
    /// delivery report.
    pub(super) async fn accepted_in_tx(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        provider_id: &str,
        confirmed: bool,
        evidence: serde_json::Value,
    ) -> Result<(), DeliveryError> {
        cur.provider_id = Some(provider_id.to_string());
        cur.sent_at = Some(format_utc(tx.now()));
        if confirmed {
            return self.confirm_in(tx, cur, evidence).await;
        }
        // A spool receipt is a local file, looked for at every pass; Aliyun delivery reports
        // are polled with backoff; a bank transfer waits for `bank import`.
        let spool_sms = cur.channel == DeliveryChannel::Sms && self.channels.spool().is_some();
        let next_attempt_at = if spool_sms {
            format_utc(tx.now())
        } else {
            format_utc(tx.now() + self.channels.retry.initial)
        };
        tx.transition_delivery(&self.actor, cur, DeliveryEvent::Accepted, |d| {
            d.last_error = None;
            d.next_attempt_at = next_attempt_at;
            Some(AuditEvent::DeliverySent(DeliverySent {
                delivery_id: d.id.clone(),
                provider_id: provider_id.to_string(),
                message_hmac: d.message_hmac.clone(),
                evidence,
            }))
        })
        .await?;
        Ok(())
    }
}
