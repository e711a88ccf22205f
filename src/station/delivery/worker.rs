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

use super::files::{self, PublishError};
use super::station_copies::remove_spool_message;
use super::{DeliveryError, apply, confirm_in_tx, order_is_deliverable};
use crate::clock::{Clock, format_utc, parse_utc};
use crate::config::{AliyunConfirm, Config, SmsKind};
use crate::delivery::bank::{
    Agent, CreditTransfer, PaymentBatch, end_to_end_id, order_reference, render_memo, write_pain001,
};
use crate::delivery::sms::{
    AliyunChannel, AliyunConfig, AliyunCredentials, OutgoingSms, QueryOutcome, SendOutcome,
    SmsChannel, SmsTemplate, SpoolChannel, SpoolState, SystemStamps, WebhookChannel, WebhookConfig,
};
use crate::domain::delivery::{backoff, channel_name};
use crate::domain::order::DeliveryChannel;
use crate::domain::{DeliveryEvent, DeliveryState, Order, OrderState};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::station::provision::pin_aad;
use crate::store::{Actor, AuditEntry, DeliveryRecord, StoreError};
use crate::token::{SealedPin, TokenError, Vault};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The configured channels, built once per `deliver run`.
#[derive(Debug)]
pub struct DeliveryChannels {
    sms: SmsChannel,
    sms_kind: SmsKind,
    template: SmsTemplate,
    aliyun_confirm: AliyunConfirm,
    query_delay: Duration,
    outbound_dir: PathBuf,
}

impl DeliveryChannels {
    /// Builds the channels from `[delivery]`: reads the credential files (mode 0600), checks the
    /// endpoints, creates the spool and bank directories. The templates were checked when the
    /// configuration was loaded.
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, DeliveryError> {
        let d = &config.delivery;
        let stamps = Arc::new(SystemStamps(clock));
        let sms = match d.sms.kind {
            SmsKind::Spool => {
                let dir = config.path(&d.sms.spool_dir);
                files::ensure_dir(&dir)?;
                SmsChannel::Spool(SpoolChannel::new(dir, stamps))
            }
            SmsKind::Aliyun => {
                let a = d.sms.aliyun.as_ref().ok_or(DeliveryError::Invalid {
                    field: "delivery.sms.aliyun",
                    message: "missing".into(),
                })?;
                let secret = files::read_secret_file(&config.path(&a.access_key_secret_file))?;
                let mut c = AliyunConfig::new(&d.sms.sign_name, &a.template_code);
                c.endpoint = a.endpoint.clone();
                c.region_id = a.region.clone();
                c.connect_timeout = Duration::from_secs(a.connect_timeout_secs);
                c.request_timeout = Duration::from_secs(a.request_timeout_secs);
                let creds = AliyunCredentials {
                    access_key_id: a.access_key_id.clone(),
                    access_key_secret: secret,
                };
                SmsChannel::Aliyun(AliyunChannel::new(c, creds, stamps)?)
            }
            SmsKind::Webhook => {
                let w = d.sms.webhook.as_ref().ok_or(DeliveryError::Invalid {
                    field: "delivery.sms.webhook",
                    message: "missing".into(),
                })?;
                let secret = files::read_secret_file(&config.path(&w.secret_file))?;
                let mut c = WebhookConfig::new(&w.url, secret);
                c.connect_timeout = Duration::from_secs(w.connect_timeout_secs);
                c.request_timeout = Duration::from_secs(w.request_timeout_secs);
                SmsChannel::Webhook(WebhookChannel::new(c, stamps)?)
            }
        };
        let outbound_dir = config.path(&d.bank.outbound_dir);
        files::ensure_dir(&outbound_dir)?;
        files::ensure_dir(&config.path(&d.bank.inbound_dir))?;
        Ok(DeliveryChannels {
            sms,
            sms_kind: d.sms.kind,
            template: SmsTemplate {
                sign_name: d.sms.sign_name.clone(),
                body: d.sms.template.clone(),
            },
            aliyun_confirm: d.sms.aliyun.as_ref().map(|a| a.confirm).unwrap_or_default(),
            query_delay: Duration::from_secs(d.sms.query_delay_secs),
            outbound_dir,
        })
    }

    fn confirms_on_acceptance(&self) -> bool {
        match self.sms_kind {
            SmsKind::Webhook => true,
            SmsKind::Spool => false,
            SmsKind::Aliyun => self.aliyun_confirm != AliyunConfirm::DeliveryReport,
        }
    }

    /// The spool channel, when SMS go through one.
    pub fn spool(&self) -> Option<&SpoolChannel> {
        match &self.sms {
            SmsChannel::Spool(s) => Some(s),
            _ => None,
        }
    }
}

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
            .sweep_station_copies(channels.spool(), &channels.outbound_dir)
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
        let poll = Duration::from_secs(self.config.delivery.poll_interval_secs);
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
        if self.station.config.delivery.bank.batch {
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
    // Preparing a message: the only place the PIN is in clear.
    // -----------------------------------------------------------------------------------------

    /// Unseals the order's PIN and hands it to `build` (inside the vault session). Errors of the
    /// vault itself (token missing, login) stop the run; a blob that does not open is the
    /// delivery's problem.
    fn with_pin<T>(
        &self,
        order_no: &str,
        sealed: &(String, Vec<u8>),
        build: impl FnOnce(&Vault, &str) -> Result<T, Unpreparable>,
    ) -> Result<Result<T, Unpreparable>, DeliveryError> {
        blocking(|| {
            let vault = self.hsm.vault()?;
            let aad = pin_aad(order_no, &sealed.0);
            let pin = match vault.unseal_pin(&SealedPin(sealed.1.clone()), &aad) {
                Ok(p) => p,
                Err(e @ TokenError::Unexpected { .. }) => {
                    return Ok(Err(Unpreparable(format!(
                        "the sealed PIN does not open: {e}"
                    ))));
                }
                Err(e) => return Err(DeliveryError::Token(e)),
            };
            // Exposed to render the one message that carries it; `pin` is zeroized on drop.
            Ok(build(&vault, pin.expose_secret()))
        })
    }

    fn prepare_sms(
        &self,
        d: &DeliveryRecord,
        order: &Order,
        sealed: &(String, Vec<u8>),
    ) -> Result<Result<PreparedSms, Unpreparable>, DeliveryError> {
        let template = &self.channels.template;
        self.with_pin(&order.order_no, sealed, |vault, pin| {
            let sms = OutgoingSms::new(
                &d.id,
                &order.legal_rep.mobile,
                &order.order_no,
                &order.company.name,
                pin,
                template,
            )
            .map_err(|e| Unpreparable(format!("the SMS cannot be built: {e}")))?;
            let mac = vault
                // Exposed to the vault's HMAC only: the receipt proves what was sent.
                .receipt_mac(sms.text().expose_secret().as_bytes())
                .map_err(|e| Unpreparable(format!("the receipt MAC failed: {e}")))?;
            Ok(PreparedSms { sms, mac })
        })
    }

    fn prepare_transfer(
        &self,
        d: &DeliveryRecord,
        order: &Order,
        sealed: &(String, Vec<u8>),
    ) -> Result<Result<PreparedTransfer, Unpreparable>, DeliveryError> {
        let bank = &self.station.config.delivery.bank;
        let Some(account) = order.corporate_account.as_ref() else {
            return Ok(Err(Unpreparable(
                "the order has no corporate account".into(),
            )));
        };
        let Some(e2e) = d.end_to_end_id.clone() else {
            return Ok(Err(Unpreparable("the delivery has no EndToEndId".into())));
        };
        let reference = match order_reference(&order.order_no, bank.memo_order_ref_len) {
            Ok(r) => r,
            // Only a template with {order_ref} needs one.
            Err(_) if !bank.memo_template.contains("{order_ref}") => String::new(),
            Err(e) => {
                return Ok(Err(Unpreparable(format!(
                    "the memo cannot be rendered: {e}"
                ))));
            }
        };
        let agent_name = match &account.branch {
            Some(b) => format!("{}{}", account.bank_name, b),
            None => account.bank_name.clone(),
        };
        self.with_pin(&order.order_no, sealed, |vault, pin| {
            let memo = render_memo(&bank.memo_template, pin, &reference, bank.memo_max_bytes)
                .map_err(|e| Unpreparable(format!("the memo cannot be rendered: {e}")))?;
            let mac = vault
                .receipt_mac(memo.as_bytes())
                .map_err(|e| Unpreparable(format!("the receipt MAC failed: {e}")))?;
            Ok(PreparedTransfer {
                delivery: d.clone(),
                transfer: CreditTransfer {
                    instruction_id: e2e.clone(),
                    end_to_end_id: e2e,
                    amount_fen: 1,
                    creditor_name: account.account_name.clone(),
                    creditor_account: account.account_number.clone(),
                    creditor_agent: Agent {
                        bic: None,
                        name: Some(agent_name),
                    },
                    memo,
                },
                mac,
            })
        })
    }

    fn batch(&self, message_id: &str, transfers: Vec<CreditTransfer>) -> PaymentBatch {
        let bank = &self.station.config.delivery.bank;
        let now = self.now().to_offset(crate::clock::BEIJING);
        PaymentBatch {
            message_id: message_id.to_string(),
            created_at: now,
            initiating_party: bank
                .initiating_party
                .clone()
                .unwrap_or_else(|| bank.debtor_name.clone()),
            debtor_name: bank.debtor_name.clone(),
            debtor_account: bank.debtor_account.clone(),
            debtor_agent: Agent {
                bic: bank.debtor_agent_bic.clone(),
                name: bank.debtor_agent_name.clone(),
            },
            requested_execution_date: now.date(),
            payment_info_id: message_id.to_string(),
            transfers,
        }
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
        let from = cur.state;
        cur.state = apply(from, DeliveryEvent::Cancel)?;
        cur.cancel_reason = Some(format!("order is {order_state}: its PIN is never sent"));
        tx.save_delivery(&cur, from).await?;
        tx.audit(
            &self.actor,
            AuditEntry::order(
                "delivery.cancelled",
                &cur.order_no,
                json!({"delivery_id": cur.id, "reason": cur.cancel_reason, "order_state": order_state}),
            ),
        )
        .await?;
        tx.commit().await?;
        let note = cur.cancel_reason.clone().unwrap_or_default();
        self.event(&cur, from, note);
        Ok(())
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
        let from = cur.state;
        cur.state = apply(from, DeliveryEvent::Reject)?;
        cur.last_error = Some(format!("not sent: {reason}"));
        tx.save_delivery(&cur, from).await?;
        tx.audit(
            &self.actor,
            AuditEntry::order(
                "delivery.failed",
                &cur.order_no,
                json!({"delivery_id": cur.id, "reason": reason, "channel_contacted": false}),
            ),
        )
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
        tx: &mut crate::store::Tx,
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
        let now = format_utc(tx.now());
        if !order_is_deliverable(order_state) {
            let from = cur.state;
            cur.state = apply(from, DeliveryEvent::Cancel)?;
            cur.cancel_reason = Some(format!("order is {order_state}: its PIN is never sent"));
            tx.save_delivery(&cur, from).await?;
            tx.audit(
                &self.actor,
                AuditEntry::order(
                    "delivery.cancelled",
                    &cur.order_no,
                    json!({"delivery_id": cur.id, "reason": cur.cancel_reason, "order_state": order_state}),
                ),
            )
            .await?;
            let note = cur.cancel_reason.clone().unwrap_or_default();
            self.event(&cur, from, note);
            return Ok(None);
        }
        let from = cur.state;
        cur.state = apply(from, DeliveryEvent::Claim)?;
        cur.attempts += 1;
        cur.sending_at = Some(now.clone());
        // Due at once: if this process dies mid-send, the next pass resolves the doubt.
        cur.next_attempt_at = now;
        cur.message_hmac = Some(mac.to_string());
        if let Some((file, message_id)) = bank_file {
            cur.bank_file = Some(file.to_string());
            cur.bank_message_id = Some(message_id.to_string());
        }
        tx.save_delivery(&cur, from).await?;
        let seq = tx.attempt_started(&cur.id, kind).await?;
        tx.audit(
            &self.actor,
            AuditEntry::order(
                "delivery.sending",
                &cur.order_no,
                json!({
                    "delivery_id": cur.id,
                    "channel": channel_name(cur.channel),
                    "destination": cur.destination_masked,
                    "attempt": cur.attempts,
                    "bank_file": cur.bank_file,
                }),
            ),
        )
        .await?;
        Ok(Some((cur, seq)))
    }

    /// After a failure that sent nothing: back to the queue with backoff, or to the operator
    /// once the attempts are used up. `cur` is in `sending`.
    async fn retry_or_escalate(
        &mut self,
        tx: &mut crate::store::Tx,
        cur: &mut DeliveryRecord,
        reason: &str,
    ) -> Result<(), DeliveryError> {
        self.requeue_or_escalate(tx, cur, reason, true).await
    }

    /// Like [`Self::retry_or_escalate`]; without `backoff` the delivery is due at once (an
    /// interrupted send that provably sent nothing: the channel did not fail).
    async fn requeue_or_escalate(
        &mut self,
        tx: &mut crate::store::Tx,
        cur: &mut DeliveryRecord,
        reason: &str,
        with_backoff: bool,
    ) -> Result<(), DeliveryError> {
        let cfg = &self.station.config.delivery;
        let from = cur.state;
        let attempts = u32::try_from(cur.attempts).unwrap_or(u32::MAX);
        if attempts >= cfg.max_attempts {
            cur.state = apply(from, DeliveryEvent::Escalate)?;
            cur.last_error = Some(format!(
                "gave up after {attempts} attempt(s); last: {reason}"
            ));
        } else {
            cur.state = apply(from, DeliveryEvent::RetryLater)?;
            let delay = if with_backoff {
                backoff(
                    attempts,
                    Duration::from_secs(cfg.retry_initial_secs),
                    Duration::from_secs(cfg.retry_max_secs),
                )
            } else {
                Duration::ZERO
            };
            cur.next_attempt_at = format_utc(tx.now() + delay);
            cur.last_error = Some(reason.to_string());
        }
        tx.save_delivery(cur, from).await?;
        let action = if cur.state == DeliveryState::Queued {
            "delivery.retry_scheduled"
        } else {
            "delivery.needs_operator"
        };
        tx.audit(
            &self.actor,
            AuditEntry::order(
                action,
                &cur.order_no,
                json!({"delivery_id": cur.id, "attempt": cur.attempts, "reason": cur.last_error,
                       "next_attempt_at": cur.next_attempt_at}),
            ),
        )
        .await?;
        Ok(())
    }

    /// `cur` (in `from`) goes to the operator with `reason`.
    async fn escalate_in_tx(
        &mut self,
        tx: &mut crate::store::Tx,
        cur: &mut DeliveryRecord,
        reason: String,
    ) -> Result<(), DeliveryError> {
        let from = cur.state;
        cur.state = apply(from, DeliveryEvent::Escalate)?;
        cur.last_error = Some(reason);
        tx.save_delivery(cur, from).await?;
        tx.audit(
            &self.actor,
            AuditEntry::order(
                "delivery.needs_operator",
                &cur.order_no,
                json!({"delivery_id": cur.id, "reason": cur.last_error}),
            ),
        )
        .await?;
        Ok(())
    }

    /// `cur` (in `sending`) reached the provider: confirmed at once, or `sent` awaiting the
    /// delivery report.
    async fn accepted_in_tx(
        &mut self,
        tx: &mut crate::store::Tx,
        cur: &mut DeliveryRecord,
        provider_id: &str,
        confirmed: bool,
        evidence: serde_json::Value,
    ) -> Result<(), DeliveryError> {
        let from = cur.state;
        cur.provider_id = Some(provider_id.to_string());
        cur.sent_at = Some(format_utc(tx.now()));
        if confirmed {
            confirm_in_tx(tx, &self.actor, cur, from, evidence).await?;
        } else {
            cur.state = apply(from, DeliveryEvent::Accepted)?;
            cur.last_error = None;
            // A spool receipt is a local file, looked for at every pass; Aliyun delivery reports
            // are polled with backoff; a bank transfer waits for `bank import`.
            let spool_sms = cur.channel == DeliveryChannel::Sms && self.channels.spool().is_some();
            cur.next_attempt_at = if spool_sms {
                format_utc(tx.now())
            } else {
                format_utc(
                    tx.now() + Duration::from_secs(self.station.config.delivery.retry_initial_secs),
                )
            };
            tx.save_delivery(cur, from).await?;
            tx.audit(
                &self.actor,
                AuditEntry::order(
                    "delivery.sent",
                    &cur.order_no,
                    json!({"delivery_id": cur.id, "provider_id": provider_id,
                           "message_hmac": cur.message_hmac, "evidence": evidence}),
                ),
            )
            .await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // SMS
    // -----------------------------------------------------------------------------------------

    async fn send_sms(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let Some((order, sealed)) = self.load(&d).await? else {
            return Ok(());
        };
        let prepared = match self.prepare_sms(&d, &order, &sealed)? {
            Ok(p) => p,
            Err(Unpreparable(reason)) => return self.fail_queued(&d, reason).await,
        };
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let Some((mut cur, seq)) = self
            .claim_in_tx(&mut tx, &d, &prepared.mac, "send", None)
            .await?
        else {
            tx.commit().await?;
            return Ok(());
        };
        tx.commit().await?;
        crate::failpoint!("deliver.sms.before_send");
        let outcome = self.channels.sms.send(&prepared.sms).await;
        crate::failpoint!("deliver.sms.after_send");
        drop(prepared);
        let mut tx = self.station.store.begin_write(self.now()).await?;
        cur = tx.delivery(&cur.id).await?;
        let from = cur.state;
        if from != DeliveryState::Sending {
            // Changed while the message travelled (cannot happen through this station's
            // commands, which leave `sending` alone): keep the journal, change nothing else.
            let provider_id = match &outcome {
                SendOutcome::Accepted { provider_id } => Some(provider_id.as_str()),
                _ => None,
            };
            tx.attempt_finished(&cur.id, seq, outcome_name(&outcome), provider_id, None)
                .await?;
            tx.commit().await?;
            tracing::warn!(delivery = %cur.id, state = %from, "delivery changed during the send");
            return Ok(());
        }
        let note = match &outcome {
            SendOutcome::Accepted { provider_id } => {
                tx.attempt_finished(&cur.id, seq, "accepted", Some(provider_id), None)
                    .await?;
                let confirmed = self.channels.confirms_on_acceptance();
                let evidence =
                    json!({"confirmed_by": "provider acceptance", "attempt": cur.attempts});
                self.accepted_in_tx(&mut tx, &mut cur, provider_id, confirmed, evidence)
                    .await?;
                format!("accepted by the provider as {provider_id}")
            }
            SendOutcome::Retryable { reason } => {
                tx.attempt_finished(&cur.id, seq, "retryable", None, Some(reason))
                    .await?;
                self.retry_or_escalate(&mut tx, &mut cur, reason).await?;
                reason.clone()
            }
            SendOutcome::Permanent { reason } => {
                tx.attempt_finished(&cur.id, seq, "permanent", None, Some(reason))
                    .await?;
                self.escalate_in_tx(&mut tx, &mut cur, reason.clone())
                    .await?;
                reason.clone()
            }
            SendOutcome::Unknown { reason } => {
                // In doubt: stays `sending`, due at once; the next pass asks the provider.
                tx.attempt_finished(&cur.id, seq, "unknown", None, Some(reason))
                    .await?;
                cur.last_error = Some(format!(
                    "outcome unknown, the provider will be asked: {reason}"
                ));
                tx.save_delivery(&cur, from).await?;
                tx.audit(
                    &self.actor,
                    AuditEntry::order(
                        "delivery.in_doubt",
                        &cur.order_no,
                        json!({"delivery_id": cur.id, "reason": reason}),
                    ),
                )
                .await?;
                format!("outcome unknown: {reason}")
            }
        };
        tx.commit().await?;
        self.event(&cur, from, note);
        Ok(())
    }

    /// The provider has a message whose send outcome was unknown: it is never sent again.
    async fn found_in_tx(
        &mut self,
        tx: &mut crate::store::Tx,
        cur: &mut DeliveryRecord,
        provider_id: &str,
        delivered: bool,
    ) -> Result<String, DeliveryError> {
        tx.attempt_record(&cur.id, "query", "found", Some(provider_id), None)
            .await?;
        let confirmed = delivered || self.channels.confirms_on_acceptance();
        self.accepted_in_tx(
            tx,
            cur,
            provider_id,
            confirmed,
            json!({"confirmed_by": "provider query after an unknown outcome", "delivered": delivered}),
        )
        .await?;
        Ok(format!(
            "the provider has it ({provider_id}); not sent again"
        ))
    }

    /// A delivery in `sending` with no send in flight (crash, timeout): ask, never resend.
    async fn resolve_in_doubt(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        match d.channel {
            DeliveryChannel::BankTransfer => self.resolve_bank(d).await,
            DeliveryChannel::Sms => self.resolve_sms(d).await,
        }
    }

    async fn resolve_sms(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let from = d.state;
        let Some(rec) = self.station.store.order(&d.order_no).await? else {
            return Err(StoreError::OrderNotFound(d.order_no.clone()).into());
        };
        let sealed = self.station.store.sealed_pin(&d.order_no).await?;
        let prepared = match &sealed {
            Some(sealed) => self.prepare_sms(&d, &rec.order, sealed)?,
            None => Err(Unpreparable("the order has no sealed PIN".into())),
        };
        let sent_at = d
            .sending_at
            .as_deref()
            .and_then(parse_utc)
            .unwrap_or_else(|| self.now());
        let query = match prepared {
            Ok(p) => Ok(self.channels.sms.query(&p.sms, sent_at).await),
            Err(u) => Err(u),
        };
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Sending {
            return Ok(());
        }
        let query = match query {
            Ok(q) => q,
            Err(Unpreparable(reason)) => {
                let why = format!(
                    "outcome unknown and the provider cannot be asked: {reason}; an operator decides"
                );
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                tx.commit().await?;
                self.event(&cur, from, why);
                return Ok(());
            }
        };
        let age = tx.now() - sent_at;
        let note = match query {
            QueryOutcome::Delivered { provider_id } => {
                self.found_in_tx(&mut tx, &mut cur, &provider_id, true)
                    .await?
            }
            QueryOutcome::Accepted { provider_id } => {
                self.found_in_tx(&mut tx, &mut cur, &provider_id, false)
                    .await?
            }
            QueryOutcome::Undelivered {
                provider_id,
                reason,
            } => {
                tx.attempt_record(
                    &cur.id,
                    "query",
                    "undelivered",
                    Some(&provider_id),
                    Some(&reason),
                )
                .await?;
                cur.provider_id = Some(provider_id.clone());
                let why = format!(
                    "the provider accepted it ({provider_id}) but the carrier reported {reason}; \
                     it is not sent again automatically"
                );
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                why
            }
            QueryOutcome::NotFound if self.channels.sms_kind == SmsKind::Spool => {
                // The spool directory is the provider: no file means nothing was published.
                if let SmsChannel::Spool(spool) = &self.channels.sms {
                    let removed = spool.remove_stale_temps(&cur.id);
                    if removed > 0 {
                        tracing::warn!(delivery = %cur.id, removed, "removed unpublished spool temp files of an interrupted send");
                    }
                }
                tx.attempt_record(&cur.id, "query", "not_found", None, None)
                    .await?;
                self.requeue_or_escalate(
                    &mut tx,
                    &mut cur,
                    "interrupted before the spool file was published",
                    false,
                )
                .await?;
                "no spool file: never published, queued again".to_string()
            }
            QueryOutcome::NotFound => {
                tx.attempt_record(&cur.id, "query", "not_found", None, None)
                    .await?;
                let delay = time::Duration::try_from(self.channels.query_delay)
                    .unwrap_or(time::Duration::MAX);
                if age >= delay {
                    let why = "outcome unknown and the provider has no record of it after its \
                               indexing delay; an operator decides (`deliver retry` sends it again)"
                        .to_string();
                    self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                    why
                } else {
                    cur.next_attempt_at = format_utc(sent_at + delay);
                    cur.last_error = Some(
                        "outcome unknown; the provider has no record yet, asking again after its indexing delay"
                            .into(),
                    );
                    tx.save_delivery(&cur, from).await?;
                    "not found yet; asking again later".to_string()
                }
            }
            QueryOutcome::Unsupported => {
                tx.attempt_record(&cur.id, "query", "unsupported", None, None)
                    .await?;
                let why = "outcome unknown and this channel cannot be asked; an operator decides \
                           (the webhook gateway de-duplicates on Idempotency-Key, so `deliver retry` \
                           cannot deliver it twice there)"
                    .to_string();
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                why
            }
            QueryOutcome::Failed { reason } => {
                tx.attempt_record(&cur.id, "query", "failed", None, Some(&reason))
                    .await?;
                cur.next_attempt_at = format_utc(
                    tx.now() + Duration::from_secs(self.station.config.delivery.retry_initial_secs),
                );
                cur.last_error = Some(format!(
                    "outcome unknown; asking the provider failed: {reason}"
                ));
                tx.save_delivery(&cur, from).await?;
                format!("query failed: {reason}")
            }
        };
        tx.commit().await?;
        if let (DeliveryState::Confirmed, Some(spool)) = (cur.state, self.channels.spool()) {
            remove_spool_message(spool, &cur.id);
        }
        self.event(&cur, from, note);
        Ok(())
    }

    /// A spool SMS in `sent`: confirmed once the gateway agent's receipt is there, then the
    /// station's copy of the message is removed. Nothing is unsealed to look.
    async fn poll_spool_receipt(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let Some(spool) = self.channels.spool() else {
            return Ok(());
        };
        let state = match spool.state(&d.id) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "cannot look for the spool receipt");
                return Ok(());
            }
        };
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.delivery(&d.id).await?;
        let from = cur.state;
        if from != DeliveryState::Sent {
            return Ok(());
        }
        let note = match state {
            SpoolState::Received { gateway_id } => {
                let receipt = format!("{}{}", cur.id, crate::delivery::sms::spool::RECEIPT_SUFFIX);
                tx.attempt_record(&cur.id, "receipt", "delivered", Some(&receipt), None)
                    .await?;
                confirm_in_tx(
                    &mut tx,
                    &self.actor,
                    &mut cur,
                    from,
                    json!({"confirmed_by": "gateway agent receipt", "receipt": receipt,
                           "gateway_id": gateway_id}),
                )
                .await?;
                "the gateway agent's receipt is in the spool".to_string()
            }
            SpoolState::Waiting => return Ok(()),
            SpoolState::Missing => {
                // Taken without a receipt (yet): an agent writes the receipt before it removes
                // the message. Said once, for the operator; the receipt still confirms it.
                let why = "the spool message is gone but the gateway agent wrote no receipt: \
                           ask the agent whether it sent the SMS"
                    .to_string();
                if cur.last_error.as_deref() == Some(why.as_str()) {
                    return Ok(());
                }
                cur.last_error = Some(why.clone());
                tx.save_delivery(&cur, from).await?;
                tx.commit().await?;
                tracing::warn!(delivery = %cur.id, "{why}");
                return Ok(());
            }
        };
        tx.commit().await?;
        remove_spool_message(spool, &cur.id);
        self.event(&cur, from, note);
        Ok(())
    }

    /// Aliyun with `confirm = "delivery_report"`: a sent SMS is confirmed by the carrier's
    /// receipt.
    async fn poll_delivery_report(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let from = d.state;
        let Some(rec) = self.station.store.order(&d.order_no).await? else {
            return Err(StoreError::OrderNotFound(d.order_no.clone()).into());
        };
        let Some(sealed) = self.station.store.sealed_pin(&d.order_no).await? else {
            return Ok(());
        };
        let Ok(prepared) = self.prepare_sms(&d, &rec.order, &sealed)? else {
            return Ok(());
        };
        let sent_at = d
            .sending_at
            .as_deref()
            .and_then(parse_utc)
            .unwrap_or_else(|| self.now());
        let query = self.channels.sms.query(&prepared.sms, sent_at).await;
        drop(prepared);
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Sent {
            return Ok(());
        }
        let note = match query {
            QueryOutcome::Delivered { provider_id } => {
                tx.attempt_record(&cur.id, "query", "delivered", Some(&provider_id), None)
                    .await?;
                confirm_in_tx(
                    &mut tx,
                    &self.actor,
                    &mut cur,
                    from,
                    json!({"confirmed_by": "carrier delivery report"}),
                )
                .await?;
                "carrier delivery report received".to_string()
            }
            QueryOutcome::Undelivered {
                provider_id,
                reason,
            } => {
                tx.attempt_record(
                    &cur.id,
                    "query",
                    "undelivered",
                    Some(&provider_id),
                    Some(&reason),
                )
                .await?;
                let why = format!(
                    "the carrier reported {reason}; the provider accepted it, so it is not sent again automatically"
                );
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                why
            }
            other => {
                let outcome = match &other {
                    QueryOutcome::Failed { reason } => format!("query failed: {reason}"),
                    _ => "no delivery report yet".to_string(),
                };
                cur.next_attempt_at = format_utc(
                    tx.now() + Duration::from_secs(self.station.config.delivery.retry_initial_secs),
                );
                tx.save_delivery(&cur, from).await?;
                tx.commit().await?;
                tracing::debug!(delivery = %cur.id, %outcome, "delivery report pending");
                return Ok(());
            }
        };
        tx.commit().await?;
        self.event(&cur, from, note);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Bank
    // -----------------------------------------------------------------------------------------

    /// Emits one pain.001 for `due` (one delivery, or all of them with `bank.batch`).
    async fn send_bank(&mut self, due: Vec<DeliveryRecord>) -> Result<(), DeliveryError> {
        let mut prepared = Vec::new();
        for d in due {
            let Some((order, sealed)) = self.load(&d).await? else {
                continue;
            };
            match self.prepare_transfer(&d, &order, &sealed)? {
                Ok(p) => {
                    // Checked alone first, so one unusable transfer never blocks a batch.
                    let probe = self.batch(&end_to_end_id(&d.id), vec![p.transfer.clone()]);
                    match write_pain001(&probe) {
                        Ok(_) => prepared.push(p),
                        Err(e) => {
                            self.fail_queued(
                                &d,
                                format!("the transfer is not valid ISO 20022: {e}"),
                            )
                            .await?
                        }
                    }
                }
                Err(Unpreparable(reason)) => self.fail_queued(&d, reason).await?,
            }
        }
        if prepared.is_empty() {
            return Ok(());
        }
        let message_id = if prepared.len() == 1 && !self.station.config.delivery.bank.batch {
            prepared[0].transfer.end_to_end_id.clone()
        } else {
            format!("KB{}", uuid::Uuid::new_v4().simple()).to_uppercase()
        };
        let file_name = format!("{message_id}.xml");

        // Record `sending` and the file name BEFORE the file exists.
        let mut claimed = Vec::new();
        let mut tx = self.station.store.begin_write(self.now()).await?;
        for p in prepared {
            if let Some((cur, seq)) = self
                .claim_in_tx(
                    &mut tx,
                    &p.delivery,
                    &p.mac,
                    "file",
                    Some((&file_name, &message_id)),
                )
                .await?
            {
                claimed.push((cur, seq, p.transfer));
            }
        }
        tx.commit().await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let batch = self.batch(
            &message_id,
            claimed.iter().map(|(_, _, t)| t.clone()).collect(),
        );
        let document = write_pain001(&batch);
        drop(batch);
        crate::failpoint!("deliver.bank.before_write");
        let published = match &document {
            Ok(doc) => {
                let dir = self.channels.outbound_dir.clone();
                blocking(|| files::publish_new_file(&dir, &file_name, doc.as_bytes())).map_err(
                    |e| match e {
                        PublishError::NotPublished(e) => {
                            format!("the file could not be written: {e}")
                        }
                        PublishError::AlreadyExists => "a file of that name already exists in the \
                             outbound directory; nothing was written over it"
                            .to_string(),
                    },
                )
            }
            Err(e) => Err(format!("the pain.001 could not be built: {e}")),
        };
        let already_exists = matches!(&published, Err(m) if m.contains("already exists"));
        drop(document);
        crate::failpoint!("deliver.bank.after_write");

        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut events = Vec::new();
        for (claimed_row, seq, _) in claimed {
            let mut cur = tx.delivery(&claimed_row.id).await?;
            let from = cur.state;
            if from != DeliveryState::Sending {
                // Settled meanwhile (a bank report imported while the file was written).
                let outcome = if published.is_ok() {
                    "written"
                } else {
                    "not_written"
                };
                tx.attempt_finished(&cur.id, seq, outcome, Some(&file_name), None)
                    .await?;
                continue;
            }
            match &published {
                Ok(()) => {
                    tx.attempt_finished(&cur.id, seq, "written", Some(&file_name), None)
                        .await?;
                    let evidence = json!({"bank_file": file_name, "message_id": message_id,
                                          "end_to_end_id": cur.end_to_end_id});
                    self.accepted_in_tx(&mut tx, &mut cur, &file_name, false, evidence)
                        .await?;
                    events.push((cur, from, format!("pain.001 {file_name} emitted")));
                }
                Err(reason) if already_exists => {
                    // Someone else's file under our deterministic name: never overwrite, never
                    // guess.
                    tx.attempt_finished(&cur.id, seq, "refused", None, Some(reason))
                        .await?;
                    self.escalate_in_tx(&mut tx, &mut cur, reason.clone())
                        .await?;
                    events.push((cur, from, reason.clone()));
                }
                Err(reason) => {
                    // Nothing was published: the file never existed, so sending it later is
                    // not a second transfer.
                    tx.attempt_finished(&cur.id, seq, "retryable", None, Some(reason))
                        .await?;
                    cur.bank_file = None;
                    cur.bank_message_id = None;
                    self.retry_or_escalate(&mut tx, &mut cur, reason).await?;
                    events.push((cur, from, reason.clone()));
                }
            }
        }
        tx.commit().await?;
        for (cur, from, note) in events {
            self.event(&cur, from, note);
        }
        Ok(())
    }

    /// A bank delivery found in `sending`: the file name was recorded before the file was
    /// written. Present -> emitted (`sent`); absent -> nobody can tell whether it was never
    /// written or already collected by the bank's agent: the operator asks the bank. Never a
    /// second file.
    async fn resolve_bank(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let from = d.state;
        let dir = self.channels.outbound_dir.clone();
        let present = d
            .bank_file
            .as_ref()
            .map(|f| {
                let removed = files::remove_stale_temp(&dir, f);
                if removed {
                    tracing::warn!(delivery = %d.id, file = %f, "removed an unpublished temp file of an interrupted attempt");
                }
                dir.join(f).is_file()
            });
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.delivery(&d.id).await?;
        if cur.state != DeliveryState::Sending {
            return Ok(());
        }
        let note = match (present, cur.bank_file.clone()) {
            (Some(true), Some(file)) => {
                tx.attempt_record(&cur.id, "recover", "found", Some(&file), None)
                    .await?;
                let evidence = json!({"bank_file": file, "recovered": true,
                                      "message_id": cur.bank_message_id,
                                      "end_to_end_id": cur.end_to_end_id});
                self.accepted_in_tx(&mut tx, &mut cur, &file, false, evidence)
                    .await?;
                format!(
                    "pain.001 {file} found after an interruption: emitted once, not written again"
                )
            }
            (Some(false), Some(file)) => {
                tx.attempt_record(&cur.id, "recover", "not_found", Some(&file), None)
                    .await?;
                let why = format!(
                    "interrupted while emitting {file}, which is not in the outbound directory: it \
                     was either never written or already collected by the bank's agent. Ask the \
                     bank about EndToEndId {}; then `bank import` its status, or `deliver retry \
                     --force-new-transfer` if no transfer happened",
                    cur.end_to_end_id.as_deref().unwrap_or("?")
                );
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                why
            }
            _ => {
                tx.attempt_record(&cur.id, "recover", "no_file_recorded", None, None)
                    .await?;
                self.requeue_or_escalate(
                    &mut tx,
                    &mut cur,
                    "interrupted before a file was chosen",
                    false,
                )
                .await?;
                "no file was recorded: nothing emitted, queued again".to_string()
            }
        };
        tx.commit().await?;
        self.event(&cur, from, note);
        Ok(())
    }
}
