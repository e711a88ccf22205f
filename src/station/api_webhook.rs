//! The order API's webhook (issue 17, item 3): every order state change, queued by the store in
//! the change's own transaction (`webhook_events`), pushed to `[api.webhook] url`, signed, by
//! [`Station::webhook_send`] — run by `keystation serve` every few seconds and by
//! `keystation api-token webhook-send` once.
//!
//! Events are queued whether or not a webhook is configured: the store's one transition function
//! cannot see the configuration, so queueing there (rather than in each caller) is what makes
//! every change queue exactly one event whatever path made it; another station of the
//! installation may be the one with the webhook; and a portal configured later gets the
//! changes it missed, in order. Without `[api.webhook]` the sender does nothing.
//!
//! Per event, like a notice: claim (`queued` -> `sending`, attempt counted) in one transaction
//! BEFORE the receiver is contacted; post; record the outcome with its audit record in another.
//! 2xx: `sent`. 5xx, 408, 429 or no connection: queued again with backoff, up to
//! `max_attempts`, then `failed`. Any other 4xx: `failed`. Timeout or broken exchange after
//! sending, or a sender that stopped while `sending`: `failed`, never resent automatically (at
//! most once; the receiver de-duplicates on `X-Keystation-Event` if an operator requeues it).
//! An order's events go one after the other: none is sent while an earlier one of the same order
//! is unsettled.
//!
//! Security notes: the HMAC key is read from `secret_file` (mode 0600 required) into zeroizing
//! memory and nowhere else; the body carries no secret (see `crate::domain::webhook`).

use super::Station;
use crate::audit::event::{AuditEvent, WebhookAttempt};
use crate::clock::{format_utc, parse_utc};
use crate::config::ConfigError;
use crate::delivery::webhook::WebhookChannel;
use crate::domain::OrderNo;
use crate::domain::notification::{NoticeEvent, NoticeState};
use crate::domain::webhook::{WebhookOutcome, next_move};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::store::{Actor, AuditEntry, StoreError, Tx, WebhookEventRecord};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// The longest wait between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// Bytes of a key made by `api-token webhook-secret`.
const SECRET_BYTES: usize = 32;

/// Errors of the webhook.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The database failed, or who acts is refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `[api.webhook]` is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key file is missing, empty or open to others.
    #[error("api.webhook.secret_file {path}: {reason}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("api.webhook: the HTTP client cannot be built: {0}")]
    Client(String),
    /// No event has this id.
    #[error("no webhook event {0}")]
    NotFound(String),
    /// Only a failed event may be requeued.
    #[error("webhook event {id} is {state}: only a failed event may be requeued")]
    NotFailed {
        /// The event.
        id: String,
        /// Its state.
        state: NoticeState,
    },
    /// No key could be drawn.
    #[error("drawing a webhook key: {0}")]
    Random(#[from] crate::random::RandomError),
    /// The key file could not be written (it is never overwritten).
    #[error("writing the webhook key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Coded for WebhookError {
    fn code(&self) -> ErrorCode {
        match self {
            WebhookError::Store(e) => e.code(),
            WebhookError::Config(e) => e.code(),
            WebhookError::SecretFile { .. } => ec::SECRET_FILE,
            WebhookError::Client(_) => ec::CONFIG_INVALID,
            WebhookError::NotFound(_) => ec::USAGE,
            WebhookError::NotFailed { .. } => ec::OPERATION_REFUSED,
            WebhookError::Random(_) => ec::RANDOM,
            WebhookError::KeyFile { .. } => ec::IO,
        }
    }
}

/// The configured webhook: its channel and retry policy.
#[derive(Debug)]
pub struct WebhookSender {
    channel: WebhookChannel,
    max_attempts: u32,
    retry_initial: Duration,
}

/// One change of an event made by the sender.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookRunEvent {
    /// The event.
    pub event_id: String,
    /// Its order.
    pub order_no: OrderNo,
    /// The order's version after the change.
    pub sequence: i64,
    /// The event's state after.
    pub to: NoticeState,
    /// What happened (a status or a transport error).
    pub note: String,
}

/// What one run of the sender did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WebhookRun {
    /// Whether `[api.webhook]` is configured (nothing is sent without it).
    pub configured: bool,
    /// Every change, in order.
    pub events: Vec<WebhookRunEvent>,
}

/// Reads the key: the first line of a file only its owner may read.
fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, WebhookError> {
    let line = crate::private_files::read_secret_line(path).map_err(|reason| {
        WebhookError::SecretFile {
            path: path.display().to_string(),
            reason,
        }
    })?;
    Ok(Zeroizing::new(line.as_bytes().to_vec()))
}

impl Station {
    /// The sender of `[api.webhook]`, its key read and checked; `None` when not configured.
    pub fn webhook_sender(&self) -> Result<Option<WebhookSender>, WebhookError> {
        let Some(w) = &self.config.api.webhook else {
            return Ok(None);
        };
        let url = w.endpoint()?;
        let key = read_key(&self.config.path(&w.secret_file))?;
        let channel = WebhookChannel::new(url, key, w.timeout()).map_err(WebhookError::Client)?;
        Ok(Some(WebhookSender {
            channel,
            max_attempts: w.max_attempts,
            retry_initial: w.retry_initial(),
        }))
    }

    /// `api-token webhook-secret --out FILE`: draws a key (32 random bytes, hex) into a new
    /// file of mode 0600 for `[api.webhook] secret_file`; the receiver gets a copy of it.
    pub fn write_webhook_secret(&self, out: &Path) -> Result<(), WebhookError> {
        let bytes = Zeroizing::new(self.random.bytes::<SECRET_BYTES>()?);
        let line = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_slice())));
        crate::private_files::write_new_file(out, line.as_bytes()).map_err(|source| {
            WebhookError::KeyFile {
                path: out.display().to_string(),
                source,
            }
        })
    }

    /// Webhook events, in the order they are sent; only `order_no`'s when given.
    pub async fn webhook_events(
        &self,
        order_no: Option<&OrderNo>,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        self.store.webhook_events(order_no).await
    }

    /// One pass of the sender: events left `sending` by a sender that is gone fail (outcome
    /// unknown), then each order's next due event is sent, in the order of the changes. Without
    /// a sender (`[api.webhook]` not configured) nothing happens.
    pub async fn webhook_send(
        &self,
        sender: Option<&WebhookSender>,
    ) -> Result<WebhookRun, WebhookError> {
        let mut run = WebhookRun {
            configured: sender.is_some(),
            events: Vec::new(),
        };
        let Some(sender) = sender else {
            return Ok(run);
        };
        let actor = self.station_actor();
        let abandoned_before = self.clock.now() - self.lease_ttl();
        // Orders whose earliest unsettled event is still unsettled after this pass's look at
        // it: their later events wait.
        let mut blocked: HashSet<OrderNo> = HashSet::new();
        for e in self.store.pending_webhook_events().await? {
            if blocked.contains(&e.order_no) {
                continue;
            }
            let after = match e.state {
                NoticeState::Sending => {
                    let stale = e
                        .sending_at
                        .as_deref()
                        .and_then(parse_utc)
                        .is_none_or(|at| at < abandoned_before);
                    if stale {
                        self.abandon_webhook_event(&actor, &e, &mut run).await?
                    } else {
                        e.state
                    }
                }
                NoticeState::Queued => {
                    let due = parse_utc(&e.next_attempt_at).is_none_or(|at| at <= self.clock.now());
                    if due {
                        self.send_webhook_event(sender, &actor, &e, &mut run)
                            .await?
                    } else {
                        e.state
                    }
                }
                settled @ (NoticeState::Sent | NoticeState::Failed) => settled,
            };
            if matches!(after, NoticeState::Queued | NoticeState::Sending) {
                blocked.insert(e.order_no.clone());
            }
        }
        Ok(run)
    }

    /// `api-token webhook-requeue ID`: an operator allowed to manage deliveries queues a failed
    /// event again (the receiver may have it already: it de-duplicates on the event's id).
    pub async fn requeue_webhook_event(
        &self,
        id: &str,
    ) -> Result<WebhookEventRecord, WebhookError> {
        let (_, actor) = self
            .acting_operator(None, crate::domain::Action::ManageDelivery)
            .await?;
        let mut tx = self.begin_write().await?;
        let mut e = match tx.webhook_event(id).await {
            Ok(e) => e,
            Err(StoreError::Corrupt(_)) => return Err(WebhookError::NotFound(id.to_string())),
            Err(e) => return Err(e.into()),
        };
        if e.state != NoticeState::Failed {
            return Err(WebhookError::NotFailed {
                id: id.to_string(),
                state: e.state,
            });
        }
        let now = format_utc(tx.now());
        tx.transition_webhook_event(&mut e, NoticeEvent::OperatorRetry, |e| {
            e.attempts = 0;
            e.next_attempt_at = now;
        })
        .await?;
        audit(&mut tx, &actor, &e, "requeued", None).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// A write transaction with event `id`, if the event is still in `state`; otherwise the
    /// state another pass moved it to.
    async fn webhook_event_still(
        &self,
        id: &str,
        state: NoticeState,
    ) -> Result<Result<(Tx, WebhookEventRecord), NoticeState>, WebhookError> {
        let mut tx = self.begin_write().await?;
        let cur = tx.webhook_event(id).await?;
        Ok(if cur.state == state {
            Ok((tx, cur))
        } else {
            Err(cur.state)
        })
    }

    async fn abandon_webhook_event(
        &self,
        actor: &Actor,
        e: &WebhookEventRecord,
        run: &mut WebhookRun,
    ) -> Result<NoticeState, WebhookError> {
        let why = "interrupted while sending: the receiver may have it, so it is not sent again";
        let (mut tx, mut cur) = match self
            .webhook_event_still(&e.id, NoticeState::Sending)
            .await?
        {
            Ok(found) => found,
            Err(moved) => return Ok(moved),
        };
        tx.transition_webhook_event(&mut cur, NoticeEvent::Fail, |c| {
            c.last_outcome = Some("interrupted".into());
            c.last_error = Some(why.into());
        })
        .await?;
        audit(&mut tx, actor, &cur, "interrupted", Some(why.into())).await?;
        tx.commit().await?;
        note(run, &cur, why);
        Ok(cur.state)
    }

    async fn send_webhook_event(
        &self,
        sender: &WebhookSender,
        actor: &Actor,
        e: &WebhookEventRecord,
        run: &mut WebhookRun,
    ) -> Result<NoticeState, WebhookError> {
        // Claim, before the receiver is contacted.
        let (mut tx, mut cur) = match self.webhook_event_still(&e.id, NoticeState::Queued).await? {
            Ok(found) => found,
            Err(moved) => return Ok(moved),
        };
        let now = format_utc(tx.now());
        tx.transition_webhook_event(&mut cur, NoticeEvent::Claim, |c| {
            c.attempts += 1;
            c.sending_at = Some(now);
        })
        .await?;
        tx.commit().await?;

        let body = serde_json::to_vec(&cur.payload())
            .map_err(|err| StoreError::Corrupt(format!("webhook event {}: {err}", cur.id)))?;
        let timestamp = self.clock.now().unix_timestamp().to_string();
        crate::failpoint!("webhook.before_send");
        let outcome = sender.channel.post(&cur.id, &timestamp, &body).await;
        crate::failpoint!("webhook.after_send");

        let mut tx = self.begin_write().await?;
        let mut cur = tx.webhook_event(&e.id).await?;
        let attempts = u32::try_from(cur.attempts).unwrap_or(u32::MAX);
        let (event, delay) = next_move(
            &outcome,
            attempts,
            sender.max_attempts,
            sender.retry_initial,
            MAX_RETRY_DELAY,
        );
        let now = tx.now();
        let note_text = match (&outcome, event) {
            (WebhookOutcome::Delivered { status }, _) => format!("delivered (HTTP {status})"),
            (o, NoticeEvent::RetryLater) => {
                format!("retry later: {}", o.reason().unwrap_or_default())
            }
            (o @ WebhookOutcome::Retryable { .. }, _) => format!(
                "gave up after {attempts} attempts: {}",
                o.reason().unwrap_or_default()
            ),
            (o @ WebhookOutcome::Unknown { .. }, _) => format!(
                "{}; not sent again automatically",
                o.reason().unwrap_or_default()
            ),
            (o, _) => format!("refused: {}", o.reason().unwrap_or_default()),
        };
        tx.transition_webhook_event(&mut cur, event, |c| {
            c.last_outcome = Some(outcome.name().to_string());
            match event {
                NoticeEvent::Accepted => {
                    c.sent_at = Some(format_utc(now));
                    c.last_error = None;
                }
                _ => {
                    if let Some(d) = delay {
                        c.next_attempt_at = format_utc(now + d);
                    }
                    c.last_error = Some(note_text.clone());
                }
            }
        })
        .await?;
        audit(
            &mut tx,
            actor,
            &cur,
            outcome.name(),
            outcome.reason().map(str::to_string),
        )
        .await?;
        tx.commit().await?;
        note(run, &cur, note_text);
        Ok(cur.state)
    }
}

/// The audit record of `e`'s new state.
async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    e: &WebhookEventRecord,
    outcome: &str,
    error: Option<String>,
) -> Result<(), StoreError> {
    let attempt = WebhookAttempt {
        event_id: e.id.clone(),
        sequence: e.sequence,
        attempt: e.attempts,
        outcome: outcome.to_string(),
        error,
    };
    let event = match (e.state, outcome) {
        (NoticeState::Sent, _) => AuditEvent::WebhookSent(attempt),
        (NoticeState::Queued, "requeued") => AuditEvent::WebhookRequeued(attempt),
        (NoticeState::Queued, _) => AuditEvent::WebhookRetryScheduled(attempt),
        (NoticeState::Failed | NoticeState::Sending, _) => AuditEvent::WebhookFailed(attempt),
    };
    tx.audit(actor, AuditEntry::order(&e.order_no, event))
        .await?;
    Ok(())
}

fn note(run: &mut WebhookRun, e: &WebhookEventRecord, note: impl Into<String>) {
    let note = note.into();
    tracing::info!(event = %e.id, order = %e.order_no, sequence = e.sequence, to = %e.state, %note, "webhook");
    run.events.push(WebhookRunEvent {
        event_id: e.id.clone(),
        order_no: e.order_no.clone(),
        sequence: e.sequence,
        to: e.state,
        note,
    });
}
