//! Sending the applicant's notices, in every pass of the worker after the PIN deliveries: the
//! expiry tick queues what the calendar calls for, then each due notice is rendered from the
//! templates, claimed (`queued` -> `sending`, attempt journaled) BEFORE the server is contacted,
//! sent, and its outcome recorded with its audit record.
//!
//! At most once: a notice whose outcome is unknown (timeout or broken connection during the mail
//! transaction, or a worker that stopped while it was `sending`) is `failed`, never sent again
//! automatically. A notice still `sending` longer than a station lease after its claim belongs
//! to a worker that is gone.
//!
//! Failpoints (debug builds): `deliver.notice.before_send`, `deliver.notice.after_send`.

use super::*;
use crate::audit::event::NoticeOutcome;
use crate::delivery::email::OutgoingEmail;
use crate::domain::notification::{NoticeEvent, NoticeMedium, NoticeState};
use crate::store::NotificationRecord;

/// One change of a notice made by the worker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoticeRunEvent {
    /// The notice.
    pub notification_id: String,
    /// Its order.
    pub order_no: String,
    /// What about.
    pub kind: &'static str,
    /// `sms` or `email`.
    pub medium: &'static str,
    /// Its state after.
    pub to: NoticeState,
    /// What happened (codes, never the text).
    pub note: String,
}

impl Worker<'_> {
    /// The notices' part of a pass.
    pub(super) async fn notices_pass(
        &mut self,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), DeliveryError> {
        let tick = self.station.queue_expiry_notices().await?;
        for (order, serial, days) in &tick.queued {
            tracing::info!(%order, %serial, days, "expiry notice queued");
        }
        let store = &self.station.store;
        let abandoned_before = self.now() - self.station.lease_ttl();
        for n in store
            .due_notifications(NoticeState::Sending, self.now())
            .await?
        {
            let stale = n
                .sending_at
                .as_deref()
                .and_then(parse_utc)
                .is_none_or(|at| at < abandoned_before);
            if stale {
                self.abandon_notice(n).await?;
            }
        }
        for n in store
            .due_notifications(NoticeState::Queued, self.now())
            .await?
        {
            if *stop.borrow() {
                return Ok(());
            }
            self.send_notice(n).await?;
        }
        Ok(())
    }

    fn notice_event(&mut self, n: &NotificationRecord, note: impl Into<String>) {
        let note = note.into();
        tracing::info!(notice = %n.id, order = %n.order_no, kind = %n.kind, medium = n.medium.as_str(), to = %n.state, %note, "notice");
        self.report.notices.push(NoticeRunEvent {
            notification_id: n.id.clone(),
            order_no: n.order_no.to_string(),
            kind: n.kind.as_str(),
            medium: n.medium.as_str(),
            to: n.state,
            note,
        });
    }

    /// A notice left `sending` by a worker that is gone: failed, outcome unknown.
    async fn abandon_notice(&mut self, n: NotificationRecord) -> Result<(), DeliveryError> {
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.notification(&n.id).await?;
        if cur.state != NoticeState::Sending {
            return Ok(());
        }
        let why = "interrupted while sending: the server may have it, so it is not sent again";
        tx.transition_notification(&mut cur, NoticeEvent::Fail, |c| {
            c.last_error = Some(why.into());
        })
        .await?;
        self.audit_notice(&mut tx, &cur, None, Some(why.into()))
            .await?;
        tx.commit().await?;
        self.notice_event(&cur, why);
        Ok(())
    }

    async fn audit_notice(
        &self,
        tx: &mut Tx,
        n: &NotificationRecord,
        provider_id: Option<String>,
        error: Option<String>,
    ) -> Result<(), DeliveryError> {
        let outcome = NoticeOutcome {
            notification_id: n.id.clone(),
            medium: n.medium.as_str().to_string(),
            attempt: n.attempts,
            provider_id,
            error,
        };
        let event = match n.state {
            NoticeState::Sent => AuditEvent::NoticeSent(outcome),
            NoticeState::Queued => AuditEvent::NoticeRetryScheduled(outcome),
            NoticeState::Failed | NoticeState::Sending => AuditEvent::NoticeFailed(outcome),
        };
        tx.audit(
            &self.actor,
            crate::store::AuditEntry::order(&n.order_no, event),
        )
        .await?;
        Ok(())
    }

    /// Renders, claims, sends and records one queued notice.
    async fn send_notice(&mut self, n: NotificationRecord) -> Result<(), DeliveryError> {
        if n.medium == NoticeMedium::Email && self.channels.email.is_none() {
            tracing::debug!(notice = %n.id, "e-mail notice waits: no [delivery.email] configured");
            return Ok(());
        }
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.notification(&n.id).await?;
        if cur.state != NoticeState::Queued {
            return Ok(());
        }
        let order = tx.order_in_tx(&cur.order_no).await?;
        let rendered =
            self.channels
                .notices
                .render(&cur.notice, &order.order_no, &order.company.name);
        let message = rendered
            .map_err(|e| e.to_string())
            .and_then(|r| match cur.medium {
                NoticeMedium::Sms => OutgoingSms::notice(
                    &cur.id,
                    &order.handler.mobile,
                    &order.order_no,
                    &self.channels.template.sign_name,
                    &r.body,
                )
                .map(Message::Sms)
                .map_err(|e| e.to_string()),
                NoticeMedium::Email => Ok(Message::Email(OutgoingEmail {
                    id: cur.id.clone(),
                    to: order.handler.email.clone(),
                    subject: r.subject,
                    body: r.body,
                })),
            });
        let message = match message {
            Ok(m) => m,
            Err(why) => {
                let why = format!("the notice cannot be built: {why}");
                tx.transition_notification(&mut cur, NoticeEvent::Fail, |c| {
                    c.last_error = Some(why.clone());
                })
                .await?;
                self.audit_notice(&mut tx, &cur, None, Some(why.clone()))
                    .await?;
                tx.commit().await?;
                self.notice_event(&cur, why);
                return Ok(());
            }
        };
        let now = format_utc(tx.now());
        tx.transition_notification(&mut cur, NoticeEvent::Claim, |c| {
            c.attempts += 1;
            c.sending_at = Some(now);
        })
        .await?;
        let seq = tx.notice_attempt_started(&cur.id).await?;
        tx.commit().await?;

        crate::failpoint!("deliver.notice.before_send");
        let outcome = match &message {
            Message::Sms(sms) => {
                // The provider's rate limit counts every SMS, PIN or notice.
                if let Some(pace) = &self.channels.sms_pace {
                    pace.wait_turn().await;
                }
                self.channels.sms.send(sms).await
            }
            Message::Email(mail) => match &self.channels.email {
                Some(channel) => channel.send(mail).await,
                None => SendOutcome::Retryable {
                    reason: "no e-mail channel".into(),
                },
            },
        };

        crate::failpoint!("deliver.notice.after_send");
        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut cur = tx.notification(&n.id).await?;
        let (provider_id, error) = match &outcome {
            SendOutcome::Accepted { provider_id } => (Some(provider_id.clone()), None),
            SendOutcome::Retryable { reason }
            | SendOutcome::Permanent { reason }
            | SendOutcome::Unknown { reason } => (None, Some(reason.clone())),
        };
        tx.notice_attempt_finished(
            &cur.id,
            seq,
            outcome.name(),
            provider_id.as_deref(),
            error.as_deref(),
        )
        .await?;
        let attempts = u32::try_from(cur.attempts).unwrap_or(u32::MAX);
        let retry = &self.channels.retry;
        let (event, note) = match &outcome {
            SendOutcome::Accepted { provider_id } => {
                (NoticeEvent::Accepted, format!("accepted ({provider_id})"))
            }
            SendOutcome::Retryable { reason } if attempts < retry.max_attempts => {
                (NoticeEvent::RetryLater, format!("retry later: {reason}"))
            }
            SendOutcome::Retryable { reason } => (
                NoticeEvent::Fail,
                format!("gave up after {attempts} attempts: {reason}"),
            ),
            SendOutcome::Permanent { reason } => (NoticeEvent::Fail, reason.clone()),
            SendOutcome::Unknown { reason } => (
                NoticeEvent::Fail,
                format!("{reason}; not sent again automatically"),
            ),
        };
        let now = tx.now();
        let next = format_utc(now + retry.delay_after(attempts));
        tx.transition_notification(&mut cur, event, |c| match event {
            NoticeEvent::Accepted => {
                c.provider_id = provider_id.clone();
                c.sent_at = Some(format_utc(now));
                c.last_error = None;
            }
            NoticeEvent::RetryLater => {
                c.next_attempt_at = next;
                c.last_error = Some(note.clone());
            }
            _ => c.last_error = Some(note.clone()),
        })
        .await?;
        self.audit_notice(&mut tx, &cur, provider_id, error).await?;
        tx.commit().await?;
        self.notice_event(&cur, note);
        Ok(())
    }
}

/// A rendered notice, for its medium.
enum Message {
    Sms(OutgoingSms),
    Email(OutgoingEmail),
}
