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
//!    doubt, resolved by asking the channel at the next pass, never by sending again blindly.
//!
//! SMS go in groups of `delivery.sms.max_in_flight` (`send`): the transactions of steps 2 and
//! 4 are each one for the whole group, and the group's messages are sent concurrently, under
//! the provider's rate limit. A bank file's transfers are claimed and recorded together too.
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
//! Every station of an installation may run this worker at once; each delivery has one sender
//! at a time (`senders`).
//!
//! This file holds the run, its passes and its report; the channels' set-up, the preparation of
//! a message (the only place the PIN is in clear), the sender leases, each channel's sending and
//! recovery, and the transactions both channels share live in the submodules `channels`,
//! `prepare`, `senders`, `send` (SMS), `sms`, `bank` and `transitions`; the applicant's notices, sent after
//! the deliveries of each pass, in `notices`.

use super::error::DeliveryError;
use super::files::{self, PublishError};
use super::outbox::{confirm_in_tx, order_is_deliverable};
use super::station_copies::remove_spool_message;
use crate::audit::event::{
    AuditEvent, DeliveryFailed, DeliveryHeld, DeliveryRescheduled, DeliverySending, DeliverySent,
    DeliveryWithdrawn,
};
use crate::clock::{format_utc, parse_utc};
use crate::config::SmsKind;
use crate::delivery::bank::{
    Agent, CreditTransfer, PaymentBatch, end_to_end_id, order_reference, render_memo, write_pain001,
};
use crate::delivery::sms::{OutgoingSms, QueryOutcome, SendOutcome, SmsChannel, SpoolState};
use crate::domain::delivery::channel_name;
use crate::domain::order::DeliveryChannel;
use crate::domain::{DeliveryEvent, DeliveryState, Order, OrderNo, OrderState};
use crate::station::Station;
use crate::station::hsm::{Hsm, blocking};
use crate::store::{Actor, DeliveryRecord, OrderRecord, StoreError, StoredPin, Tx};
use crate::token::vault::pin_aad;
use crate::token::{TokenError, Vault};
use serde_json::json;
use std::time::Duration;

mod bank;
mod channels;
mod notices;
mod prepare;
mod send;
mod senders;
mod sms;
mod transitions;

pub use channels::{DeliveryChannels, email_channel};
pub use notices::NoticeRunEvent;

/// One state change made by the worker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunEvent {
    /// The delivery.
    pub delivery_id: String,
    /// Its order.
    pub order_no: OrderNo,
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
    /// Every change of an applicant's notice, in order (they do not count as unfinished
    /// deliveries: no PIN waits on them).
    pub notices: Vec<NoticeRunEvent>,
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
            files::WorkerLock::acquire(&self.config.data_dir().join("delivery-worker.lock"))?;
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
            let events_before = w.report.events.len() + w.report.notices.len();
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
            if let Err(e) = self.heartbeat().await {
                tracing::warn!(error = %e, "could not record the station's heartbeat");
            }
            // A pass that changed nothing anchors nothing: the records other stations append
            // are theirs to anchor, and every write to the shared vault token is one more
            // moment another process may find it mid-change.
            if w.report.events.len() + w.report.notices.len() > events_before {
                self.anchor_if_needed(hsm).await;
            }
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
        for d in store
            .due_deliveries(DeliveryState::Sending, self.now())
            .await?
        {
            if *stop.borrow() {
                return Ok(());
            }
            self.resolve_in_doubt(d).await?;
        }
        let queued = store
            .due_deliveries(DeliveryState::Queued, self.now())
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
        self.send_sms(sms, stop).await?;
        self.notices_pass(stop).await?;
        if !self.channels.confirms_on_acceptance() {
            for d in store
                .due_deliveries(DeliveryState::Sent, self.now())
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
}
