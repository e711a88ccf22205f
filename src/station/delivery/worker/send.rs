//! Sending due SMS, in groups of `delivery.sms.max_in_flight`: per group, every message is
//! prepared, then ONE transaction claims them all (each `queued` -> `sending` under the
//! group's sender lease, its attempt journaled), then they are sent concurrently (at most
//! `max_in_flight` requests in flight, each waiting its turn under the provider's rate limit),
//! then ONE transaction records every outcome.
//!
//! Exactly-once is per message as before: each message is claimed before its request can
//! start, so whatever happens between the two transactions (a crash, a lost database) leaves
//! it `sending`, in doubt, resolved by asking its channel, never by sending it again blindly.
//! Grouping only changes how many can be in doubt at once (one group). The failpoints
//! `deliver.sms.before_send` (claimed, nothing sent) and `deliver.sms.after_send` (sent,
//! nothing recorded) are passed once per group.

use super::*;
use std::sync::Arc;

/// One claimed SMS: its delivery (in `sending`) and its attempt journal row.
struct Claimed {
    cur: DeliveryRecord,
    seq: i64,
}

impl Worker<'_> {
    /// Sends `due` (queued SMS deliveries) group by group; `stop` is looked at between groups.
    pub(super) async fn send_sms(
        &mut self,
        due: Vec<DeliveryRecord>,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), DeliveryError> {
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            if *stop.borrow() {
                return Ok(());
            }
            let group: Vec<DeliveryRecord> =
                due.by_ref().take(self.channels.max_in_flight).collect();
            self.send_sms_group(group).await?;
        }
        Ok(())
    }

    async fn send_sms_group(&mut self, group: Vec<DeliveryRecord>) -> Result<(), DeliveryError> {
        let mut prepared = Vec::with_capacity(group.len());
        for (d, order, sealed) in self.load(group).await? {
            match self.prepare_sms(&d, &order, &sealed)? {
                Ok(p) => prepared.push((d, p)),
                Err(Unpreparable(reason)) => self.fail_queued(&d, reason).await?,
            }
        }
        if prepared.is_empty() {
            return Ok(());
        }

        // Claimed BEFORE any request starts, all in one transaction, under one sender lease.
        let lease_id = uuid::Uuid::new_v4().to_string();
        let mut claimed = Vec::with_capacity(prepared.len());
        let mut messages = Vec::with_capacity(prepared.len());
        let mut tx = self.station.store.begin_write(self.now()).await?;
        for (d, p) in prepared {
            if let Some((cur, seq)) = self
                .claim_in_tx(&mut tx, &d, &p.mac, "send", None, &lease_id)
                .await?
            {
                claimed.push(Claimed { cur, seq });
                messages.push(p.sms);
            }
        }
        tx.commit().await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let kept = self.keep_senders(
            claimed.iter().map(|c| c.cur.id.clone()).collect(),
            &lease_id,
        );
        crate::failpoint!("deliver.sms.before_send");
        // Each message is dropped (zeroized) by the task that sent it.
        let outcomes = self.send_concurrently(messages).await;
        crate::failpoint!("deliver.sms.after_send");
        kept.stop_renewing();

        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut events = Vec::with_capacity(claimed.len());
        for (Claimed { cur, seq }, outcome) in claimed.into_iter().zip(outcomes) {
            if !self.release_sender(&mut tx, &cur.id, &lease_id).await? {
                continue;
            }
            if let Some(event) = self
                .record_send_in_tx(&mut tx, &cur.id, seq, &outcome)
                .await?
            {
                events.push(event);
            }
        }
        tx.commit().await?;
        for (cur, from, note) in events {
            self.event(&cur, from, note);
        }
        Ok(())
    }

    /// Sends every message at once (at most `max_in_flight` requests in flight, each started
    /// only when the rate limit allows); the outcomes in the order of `messages`. A send task
    /// that dies is an unknown outcome: its message may have left.
    async fn send_concurrently(&self, messages: Vec<OutgoingSms>) -> Vec<SendOutcome> {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.channels.max_in_flight));
        let sends: Vec<_> = messages
            .into_iter()
            .map(|sms| {
                let channel = Arc::clone(&self.channels.sms);
                let pace = self.channels.sms_pace.clone();
                let slots = Arc::clone(&slots);
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    if let Some(pace) = pace {
                        pace.wait_turn().await;
                    }
                    channel.send(&sms).await
                })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(sends.len());
        for send in sends {
            outcomes.push(send.await.unwrap_or_else(|e| SendOutcome::Unknown {
                reason: format!("the send task ended abnormally: {e}"),
            }));
        }
        outcomes
    }

    /// Records in `tx` what became of the message of delivery `id` (claimed by this worker,
    /// its sender lease just released), journal row `seq`. Returns the state change, if any.
    async fn record_send_in_tx(
        &mut self,
        tx: &mut Tx,
        id: &str,
        seq: i64,
        outcome: &SendOutcome,
    ) -> Result<Option<(DeliveryRecord, DeliveryState, String)>, DeliveryError> {
        let mut cur = tx.delivery(id).await?;
        let from = cur.state;
        if from != DeliveryState::Sending {
            // Changed while the message travelled (cannot happen through this station's
            // commands, which leave `sending` alone): keep the journal, change nothing else.
            let provider_id = match outcome {
                SendOutcome::Accepted { provider_id } => Some(provider_id.as_str()),
                _ => None,
            };
            tx.attempt_finished(&cur.id, seq, outcome.name(), provider_id, None)
                .await?;
            tracing::warn!(delivery = %cur.id, state = %from, "delivery changed during the send");
            return Ok(None);
        }
        let note = match outcome {
            SendOutcome::Accepted { provider_id } => {
                tx.attempt_finished(&cur.id, seq, outcome.name(), Some(provider_id), None)
                    .await?;
                let confirmed = self.channels.confirms_on_acceptance();
                let evidence =
                    json!({"confirmed_by": "provider acceptance", "attempt": cur.attempts});
                self.accepted_in_tx(tx, &mut cur, provider_id, confirmed, evidence)
                    .await?;
                format!("accepted by the provider as {provider_id}")
            }
            SendOutcome::Retryable { reason } => {
                tx.attempt_finished(&cur.id, seq, outcome.name(), None, Some(reason))
                    .await?;
                self.retry_or_escalate(tx, &mut cur, reason).await?;
                reason.clone()
            }
            SendOutcome::Permanent { reason } => {
                tx.attempt_finished(&cur.id, seq, outcome.name(), None, Some(reason))
                    .await?;
                self.escalate_in_tx(tx, &mut cur, reason.clone()).await?;
                reason.clone()
            }
            SendOutcome::Unknown { reason } => {
                // In doubt: stays `sending`, due at once; the next pass asks the provider.
                tx.attempt_finished(&cur.id, seq, outcome.name(), None, Some(reason))
                    .await?;
                tx.update_delivery(&self.actor, &mut cur, |d| {
                    d.last_error = Some(format!(
                        "outcome unknown, the provider will be asked: {reason}"
                    ));
                    Some(AuditEvent::DeliveryInDoubt(DeliveryHeld {
                        delivery_id: d.id.clone(),
                        reason: Some(reason.to_string()),
                    }))
                })
                .await?;
                format!("outcome unknown: {reason}")
            }
        };
        Ok(Some((cur, from, note)))
    }
}
