//! The delivery worker (`keystation deliver run`): one pass resolves deliveries in doubt, emits
//! due bank transfers, sends due SMS, and polls Aliyun delivery reports when configured.
//!
//! Per delivery, in this order:
//! 1. the sealed PIN is unsealed in the vault and the message rendered (zeroizing), its vault
//!    HMAC computed;
//! 2. one transaction re-reads the order (a revoked order's delivery is cancelled, never sent),
//!    claims the delivery (`queued` -> `sending`, attempt journaled, for the bank the file name
//!    recorded) — BEFORE the channel is contacted;
//! 3. the channel is contacted;
//! 4. one transaction records the outcome: confirmed (with the order and the sealed PIN), sent,
//!    queued again with backoff, or needs_operator. An unknown outcome leaves it `sending`: in
//!    doubt, resolved by asking the channel at the next pass, never by sending again.
//!
//! Channel confirmation: the webhook confirms on acceptance (the gateway took it, and
//! de-duplicates); the spool confirms on the gateway agent's receipt (`{id}.sent`, see
//! `delivery::sms::spool`), checked at every pass without unsealing anything; Aliyun confirms on
//! acceptance unless `confirm = "delivery_report"`, in which case the delivery stays `sent` until
//! `QuerySendDetails` reports the carrier's receipt. A bank transfer stays `sent` until
//! `keystation bank import` reads the bank's pain.002 / camt.054. Once confirmed, the station's
//! own copy of a spool message or pain.001 is removed (`station_copies`).
//!
//! Failpoints (debug builds): `deliver.sms.before_send`, `deliver.sms.after_send`,
//! `deliver.bank.before_write`, `deliver.bank.after_write`.
//!
//! This file holds the run, its report and the transactions both channels share; the channels'
//! set-up, the preparation of a message (the only place the PIN is in clear), and each
//! channel's sending and recovery live in the submodules `channels`, `prepare`, `sms`, `bank`.

use super::files::{self, PublishError};
use super::station_copies::remove_spool_message;
use super::{DeliveryError, confirm_in_tx, order_is_deliverable};
use crate::clock::{format_utc, parse_utc};
use crate::config::SmsKind;
use crate::delivery::bank::{
    Agent, CreditTransfer, PaymentBatch, end_to_end_id, order_reference, render_memo, write_pain001,
};
use crate::delivery::sms::{OutgoingSms, QueryOutcome, SendOutcome, SmsChannel, SpoolState};
use crate::domain::delivery::channel_name;
use crate::domain::order::DeliveryChannel;
use crate::domain::{DeliveryEvent, DeliveryState, Order, OrderState};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::store::{Actor, DeliveryAudit, DeliveryRecord, StoreError, Tx};
use crate::token::vault::pin_aad;
use crate::token::{SealedPin, TokenError, Vault};
use serde_json::json;
use std::time::Duration;

mod bank;
mod channels;
mod prepare;
mod sms;

pub use channels::DeliveryChannels;

/// One state change made by the worker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunEvent {
    /// The delivery.
    pub delivery_id: String,
    /// Its order.
    pub order_no: String,
    /// `sms` or `bank`.
    pub channel: &'static str,
    /// State before.
    pub from: DeliveryState,
    /// State after.
    pub to: DeliveryState,
    /// What happened (provider codes, file names; never a message).
    pub note: String,
}

/// What `deliver run` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Passes over the queue.
    pub passes: u32,
    /// Every state change, in order.
    pub events: Vec<RunEvent>,
    /// The deliveries this run touched that did not reach their channel: the last change of
    /// each left it queued for a retry, in doubt (`sending`), failed or needing an operator.
    pub unfinished: Vec<RunEvent>,
}

impl RunReport {
    /// The last event of each delivery whose final state this run is not "reached its
    /// channel" (sent, confirmed) or "settled" (cancelled).
    fn unfinished_deliveries(events: &[RunEvent]) -> Vec<RunEvent> {
        let mut last: Vec<&RunEvent> = Vec::new();
        for e in events {
            match last.iter_mut().find(|l| l.delivery_id == e.delivery_id) {
                Some(slot) => *slot = e,
                None => last.push(e),
            }
        }
        last.into_iter()
            .filter(|e| {
                matches!(
                    e.to,
                    DeliveryState::Queued
                        | DeliveryState::Sending
                        | DeliveryState::Failed
                        | DeliveryState::NeedsOperator
                )
            })
            .cloned()
            .collect()
    }
}

/// Runs blocking vault work without stalling the async runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn outcome_name(o: &SendOutcome) -> &'static str {
    match o {
        SendOutcome::Accepted { .. } => "accepted",
        SendOutcome::Retryable { .. } => "retryable",
        SendOutcome::Permanent { .. } => "permanent",
        SendOutcome::Unknown { .. } => "unknown",
    }
}

/// A rendered SMS and its receipt MAC.
struct PreparedSms {
    sms: OutgoingSms,
    mac: String,
}

/// A rendered transfer and its receipt MAC.
struct PreparedTransfer {
    delivery: DeliveryRecord,
    transfer: CreditTransfer,
    mac: String,
}

/// Why a delivery cannot be prepared; the delivery fails without any channel being contacted.
struct Unpreparable(String);

struct Worker<'a> {
    station: &'a Station,
    hsm: &'a Hsm,
    channels: &'a DeliveryChannels,
    actor: Actor,
    report: RunReport,
}

impl Station {
    /// `keystation deliver run`: passes over the queue until `stop` turns true (checked between
    /// deliveries and during the wait), or once with `once`. Holds the station's worker lock.
    pub async fn deliver_run(
        &self,
        hsm: &Hsm,
        channels: &DeliveryChannels,
        once: bool,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunReport, DeliveryError> {
        let _lock =
            super::WorkerLock::acquire(&self.config.data_dir().join("delivery-worker.lock"))?;
        // Copies a crash left behind after their delivery was settled.
        let swept = self
            .sweep_station_copies(channels.spool(), &channels.paths.outbound_dir)
            .await?;
        if swept > 0 {
            tracing::info!(swept, "removed station copies of settled deliveries");
        }
        let mut w = Worker {
            station: self,
            hsm,
            channels,
            actor: self.station_actor(),
            report: RunReport::default(),
        };
        let poll = channels.poll_interval;
        loop {
            match w.pass(&stop).await {
                Ok(()) => {}
                Err(e) if once => return Err(e),
                // A long-running worker survives a failed pass (database restart, vault token
                // briefly absent): what was in flight is in doubt and resolved next time.
                Err(e) => {
                    tracing::error!(error = %e, "delivery pass failed; retrying after the poll interval")
                }
            }
            w.report.passes += 1;
            self.anchor_if_needed(hsm).await;
            if once || *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        w.report.unfinished = RunReport::unfinished_deliveries(&w.report.events);
        Ok(w.report)
    }
}

impl Worker<'_> {
    fn now(&self) -> time::OffsetDateTime {
        self.station.clock.now()
    }

    fn me(&self) -> &str {
        &self.station.config.station.id
    }

    fn event(&mut self, d: &DeliveryRecord, from: DeliveryState, note: impl Into<String>) {
        let note = note.into();
        tracing::info!(delivery = %d.id, order = %d.order_no, %from, to = %d.state, %note, "delivery");
        self.report.events.push(RunEvent {
            delivery_id: d.id.clone(),
            order_no: d.order_no.clone(),
            channel: channel_name(d.channel),
            from,
            to: d.state,
            note,
        });
    }

    async fn pass(
        &mut self,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), DeliveryError> {
        let store = &self.station.store;
        let me = self.me().to_string();
        for d in store
            .due_deliveries(&me, DeliveryState::Sending, self.now())
            .await?
        {
            if *stop.borrow() {
                return Ok(());
            }
            self.resolve_in_doubt(d).await?;
        }
        let queued = store
            .due_deliveries(&me, DeliveryState::Queued, self.now())
            .await?;
        let (bank, sms): (Vec<_>, Vec<_>) = queued
            .into_iter()
            .partition(|d| d.channel == DeliveryChannel::BankTransfer);
        if self.channels.bank.batch {
            if !bank.is_empty() {
                self.send_bank(bank).await?;
            }
        } else {
            for d in bank {
                if *stop.borrow() {
                    return Ok(());
                }
                self.send_bank(vec![d]).await?;
            }
        }
        for d in sms {
            if *stop.borrow() {
                return Ok(());
            }
            self.send_sms(d).await?;
        }
        if !self.channels.confirms_on_acceptance() {
            for d in store
                .due_deliveries(&me, DeliveryState::Sent, self.now())
                .await?
                .into_iter()
                .filter(|d| d.channel == DeliveryChannel::Sms)
            {
                if *stop.borrow() {
                    return Ok(());
                }
                if self.channels.spool().is_some() {
                    self.poll_spool_receipt(d).await?;
                } else {
                    self.poll_delivery_report(d).await?;
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Small transactions shared by both channels.
    // -----------------------------------------------------------------------------------------

    /// Reads what a send needs; `None` when the delivery was settled here instead (order no
    /// longer deliverable -> cancelled; no sealed PIN -> needs_operator).
    async fn load(
        &mut self,
        d: &DeliveryRecord,
    ) -> Result<Option<(Order, (String, Vec<u8>))>, DeliveryError> {
        let Some(rec) = self.station.store.order(&d.order_no).await? else {
            return Err(StoreError::OrderNotFound(d.order_no.clone()).into());
        };
        if !order_is_deliverable(rec.state) {
            self.cancel_for_order(d, rec.state).await?;
            return Ok(None);
        }
        match self.station.store.sealed_pin(&d.order_no).await? {
            Some(sealed) => Ok(Some((rec.order, sealed))),
            None => {
                self.fail_queued(d, "the order has no sealed PIN: nothing can be sent".into())
                    .await?;
                Ok(None)
            }
        }
    }

    /// A queued delivery whose order may not receive its PIN any more: cancelled, never sent.
    async fn cancel_for_order(
        &mut self,
        d: &DeliveryRecord,
        order_state: OrderState,
    ) -> Result<(), DeliveryError> {
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Queued {
            return Ok(());
        }
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
                Some(DeliveryAudit::new(
                    "delivery.cancelled",
                    json!({"delivery_id": d.id, "reason": d.cancel_reason, "order_state": order_state}),
                ))
            })
            .await?;
        Ok(from)
    }

    /// A queued delivery that cannot be prepared: failed (no channel was contacted), for the
    /// operator to fix and retry, or cancel.
    async fn fail_queued(
        &mut self,
        d: &DeliveryRecord,
        reason: String,
    ) -> Result<(), DeliveryError> {
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Queued {
            return Ok(());
        }
        let from = tx
            .transition_delivery(&self.actor, &mut cur, DeliveryEvent::Reject, |d| {
                d.last_error = Some(format!("not sent: {reason}"));
                Some(DeliveryAudit::new(
                    "delivery.failed",
                    json!({"delivery_id": d.id, "reason": reason, "channel_contacted": false}),
                ))
            })
            .await?;
        tx.commit().await?;
        self.event(&cur, from, reason);
        Ok(())
    }

    /// Claims `d` (must still be queued, its order deliverable) inside `tx`: `sending`, one more
    /// attempt, the receipt MAC, an attempt journal row. Returns the journal row, or `None` when
    /// the delivery was cancelled (order revoked meanwhile) or taken by someone else.
    async fn claim_in_tx(
        &mut self,
        tx: &mut Tx,
        d: &DeliveryRecord,
        mac: &str,
        kind: &str,
        bank_file: Option<(&str, &str)>,
    ) -> Result<Option<(DeliveryRecord, i64)>, DeliveryError> {
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Queued {
            return Ok(None);
        }
        let order_state = tx.order_state(&cur.order_no).await?;
        if !order_is_deliverable(order_state) {
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
            Some(DeliveryAudit::new(
                "delivery.sending",
                json!({
                    "delivery_id": d.id,
                    "channel": channel_name(d.channel),
                    "destination": d.destination_masked,
                    "attempt": d.attempts,
                    "bank_file": d.bank_file,
                }),
            ))
        })
        .await?;
        let seq = tx.attempt_started(&cur.id, kind).await?;
        Ok(Some((cur, seq)))
    }

    /// After a failure that sent nothing: back to the queue with backoff, or to the operator
    /// once the attempts are used up. `cur` is in `sending`.
    async fn retry_or_escalate(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        reason: &str,
    ) -> Result<(), DeliveryError> {
        self.requeue_or_escalate(tx, cur, reason, true).await
    }

    /// Like [`Self::retry_or_escalate`]; without `backoff` the delivery is due at once (an
    /// interrupted send that provably sent nothing: the channel did not fail).
    async fn requeue_or_escalate(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        reason: &str,
        with_backoff: bool,
    ) -> Result<(), DeliveryError> {
        let policy = &self.channels.retry;
        let attempts = u32::try_from(cur.attempts).unwrap_or(u32::MAX);
        let now = tx.now();
        let (event, action) = if attempts >= policy.max_attempts {
            (DeliveryEvent::Escalate, "delivery.needs_operator")
        } else {
            (DeliveryEvent::RetryLater, "delivery.retry_scheduled")
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
            Some(DeliveryAudit::new(
                action,
                json!({"delivery_id": d.id, "attempt": d.attempts, "reason": d.last_error,
                       "next_attempt_at": d.next_attempt_at}),
            ))
        })
        .await?;
        Ok(())
    }

    /// `cur` (in `from`) goes to the operator with `reason`.
    async fn escalate_in_tx(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        reason: String,
    ) -> Result<(), DeliveryError> {
        tx.transition_delivery(&self.actor, cur, DeliveryEvent::Escalate, |d| {
            d.last_error = Some(reason);
            Some(DeliveryAudit::new(
                "delivery.needs_operator",
                json!({"delivery_id": d.id, "reason": d.last_error}),
            ))
        })
        .await?;
        Ok(())
    }

    /// `cur` (in `sending`) reached the provider: confirmed at once, or `sent` awaiting the
    /// delivery report.
    async fn accepted_in_tx(
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
            return Ok(confirm_in_tx(tx, &self.actor, cur, evidence).await?);
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
            Some(DeliveryAudit::new(
                "delivery.sent",
                json!({"delivery_id": d.id, "provider_id": provider_id,
                       "message_hmac": d.message_hmac, "evidence": evidence}),
            ))
        })
        .await?;
        Ok(())
    }

    /// A delivery in `sending` with no send in flight (crash, timeout): ask, never resend.
    async fn resolve_in_doubt(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        match d.channel {
            DeliveryChannel::BankTransfer => self.resolve_bank(d).await,
            DeliveryChannel::Sms => self.resolve_sms(d).await,
        }
    }
}
