//! Notices to the applicant: the `notifications` outbox and its attempt journal.
//!
//! A notice is queued with [`Tx::queue_notification`] inside the transaction of the state change
//! that causes it; the unique key (order, kind, event ref, medium) makes a second queueing of
//! the same event a no-op, so an event produces at most one notice per medium. After that the
//! worker is the only writer: [`Tx::transition_notification`] applies the domain's
//! [`NoticeState`] table and writes the row back only if it is still in the state it was read
//! in. Nothing here is secret (see the migration).

use super::attempt_journal::NOTIFICATION_ATTEMPTS;
use super::{DbContext, Store, StoreError, Tx, id_column, stored_id};
use crate::clock::format_utc;
use crate::domain::notification::{Notice, NoticeEvent, NoticeKind, NoticeMedium, NoticeState};
use crate::domain::{CertSerial, OrderNo};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One notice as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotificationRecord {
    /// UUID (the e-mail `Message-ID`, the SMS id).
    pub id: String,
    /// The order.
    pub order_no: OrderNo,
    /// What it is about.
    pub kind: NoticeKind,
    /// Which event of that kind.
    pub event_ref: String,
    /// SMS or e-mail.
    pub medium: NoticeMedium,
    /// Its parameters.
    pub notice: Notice,
    /// Where it is.
    pub state: NoticeState,
    /// `139****9000`, `l***@example.com`.
    pub destination_masked: String,
    /// Sends so far.
    pub attempts: i64,
    /// Not before (RFC 3339).
    pub next_attempt_at: String,
    /// The server's reference.
    pub provider_id: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// When the current / last send began.
    pub sending_at: Option<String>,
    /// When the server took it.
    pub sent_at: Option<String>,
    /// When queued.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// A notice to queue.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// The order.
    pub order_no: &'a OrderNo,
    /// What it says.
    pub notice: &'a Notice,
    /// Which event (see [`Notice::event_ref`]).
    pub event_ref: &'a str,
    /// SMS or e-mail.
    pub medium: NoticeMedium,
    /// Masked destination.
    pub destination_masked: &'a str,
}

const COLUMNS: &str = "id, order_no, kind, event_ref, medium, notice, state, destination_masked, \
     attempts, next_attempt_at, provider_id, last_error, sending_at, sent_at, created_at, updated_at";

fn record(r: &AnyRow) -> Result<NotificationRecord, StoreError> {
    let req = |c: &'static str| -> Result<String, StoreError> {
        r.try_get::<String, _>(c).ctx("reading a notification")
    };
    let opt = |c: &'static str| -> Result<Option<String>, StoreError> {
        r.try_get::<Option<String>, _>(c)
            .ctx("reading a notification")
    };
    let corrupt =
        |what: &str, v: &str| StoreError::Corrupt(format!("unknown notification {what} {v:?}"));
    let kind = req("kind")?;
    let medium = req("medium")?;
    let state = req("state")?;
    let notice = req("notice")?;
    Ok(NotificationRecord {
        id: req("id")?,
        order_no: stored_id("notifications.order_no", &req("order_no")?)?,
        kind: NoticeKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        event_ref: req("event_ref")?,
        medium: NoticeMedium::parse(&medium).ok_or_else(|| corrupt("medium", &medium))?,
        notice: serde_json::from_str(&notice)
            .map_err(|e| StoreError::Corrupt(format!("notification parameters: {e}")))?,
        state: NoticeState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        destination_masked: req("destination_masked")?,
        attempts: r.try_get("attempts").ctx("reading a notification")?,
        next_attempt_at: req("next_attempt_at")?,
        provider_id: opt("provider_id")?,
        last_error: opt("last_error")?,
        sending_at: opt("sending_at")?,
        sent_at: opt("sent_at")?,
        created_at: req("created_at")?,
        updated_at: req("updated_at")?,
    })
}

impl Tx {
    /// Queues a notice (due now) unless this event already has one on this medium; returns its
    /// id when queued, `None` when it was there already.
    pub async fn queue_notification(
        &mut self,
        n: &NewNotification<'_>,
    ) -> Result<Option<String>, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = format_utc(self.now());
        let notice = serde_json::to_string(n.notice)
            .map_err(|e| StoreError::Corrupt(format!("notification parameters: {e}")))?;
        let done = sqlx::query(
            "INSERT INTO notifications (id, order_no, kind, event_ref, medium, notice, state, \
             destination_masked, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $9) \
             ON CONFLICT (order_no, kind, event_ref, medium) DO NOTHING",
        )
        .bind(&id)
        .bind(n.order_no.as_str())
        .bind(n.notice.kind().as_str())
        .bind(n.event_ref)
        .bind(n.medium.as_str())
        .bind(notice)
        .bind(NoticeState::Queued.as_str())
        .bind(n.destination_masked)
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("queuing a notification")?;
        Ok((done.rows_affected() == 1).then_some(id))
    }

    /// A notice, read inside this transaction.
    pub async fn notification(&mut self, id: &str) -> Result<NotificationRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a notification")?
            .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))?;
        record(&row)
    }

    /// Applies `event` to `n` (read in this transaction) through the domain's table, lets
    /// `change` set the fields that go with it, and writes the row back only if it is still in
    /// the state it was read in ([`StoreError::Corrupt`] otherwise: the worker reads and writes
    /// in one transaction, so another writer is a bug). Returns the state before.
    pub async fn transition_notification(
        &mut self,
        n: &mut NotificationRecord,
        event: NoticeEvent,
        change: impl FnOnce(&mut NotificationRecord),
    ) -> Result<NoticeState, StoreError> {
        let from = n.state;
        n.state = from.apply(event).map_err(|e| {
            StoreError::Corrupt(format!("refused notification move of {}: {e}", n.id))
        })?;
        change(n);
        n.updated_at = format_utc(self.now());
        let done = sqlx::query(
            "UPDATE notifications SET state = $1, attempts = $2, next_attempt_at = $3, \
             provider_id = $4, last_error = $5, sending_at = $6, sent_at = $7, updated_at = $8 \
             WHERE id = $9 AND state = $10",
        )
        .bind(n.state.as_str())
        .bind(n.attempts)
        .bind(&n.next_attempt_at)
        .bind(&n.provider_id)
        .bind(&n.last_error)
        .bind(&n.sending_at)
        .bind(&n.sent_at)
        .bind(&n.updated_at)
        .bind(&n.id)
        .bind(from.as_str())
        .execute(self.conn())
        .await
        .ctx("writing a notification")?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Corrupt(format!(
                "notification {} was not {from} any more",
                n.id
            )));
        }
        Ok(from)
    }

    /// Journals the start of a contact with the server; returns its sequence number.
    pub async fn notice_attempt_started(&mut self, id: &str) -> Result<i64, StoreError> {
        self.journal_attempt_started(&NOTIFICATION_ATTEMPTS, id, None)
            .await
    }

    /// Journals the end of a contact.
    pub async fn notice_attempt_finished(
        &mut self,
        id: &str,
        seq: i64,
        outcome: &str,
        provider_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.journal_attempt_finished(
            &NOTIFICATION_ATTEMPTS,
            (id, seq),
            outcome,
            provider_id,
            error,
        )
        .await
    }
}

/// One contact with a server, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeAttempt {
    /// Position, from 1.
    pub seq: i64,
    /// Written before the contact.
    pub started_at: String,
    /// Written after it (absent: the process stopped in between).
    pub finished_at: Option<String>,
    /// What happened.
    pub outcome: Option<String>,
    /// The server's reference.
    pub provider_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Store {
    /// Notices, oldest first; only `order_no`'s when given.
    pub async fn notifications(
        &self,
        order_no: Option<&OrderNo>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE ($1 = '' OR order_no = $1) \
             ORDER BY created_at, kind, medium, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(order_no.map_or("", |n| n.as_str()).to_string())
            .fetch_all(self.pool())
            .await
            .ctx("listing notifications")?
            .iter()
            .map(record)
            .collect()
    }

    /// Notices in `state` due at `now`, oldest first.
    pub async fn due_notifications(
        &self,
        state: NoticeState,
        now: time::OffsetDateTime,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE state = $1 AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at, created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(format_utc(now))
            .fetch_all(self.pool())
            .await
            .ctx("reading due notifications")?
            .iter()
            .map(record)
            .collect()
    }

    /// The attempt journal of a notice.
    pub async fn notice_attempts(&self, id: &str) -> Result<Vec<NoticeAttempt>, StoreError> {
        sqlx::query(
            "SELECT seq, started_at, finished_at, outcome, provider_id, error \
             FROM notification_attempts WHERE notification_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .ctx("reading notification attempts")?
        .iter()
        .map(|r| -> Result<NoticeAttempt, sqlx::Error> {
            Ok(NoticeAttempt {
                seq: r.try_get("seq")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                outcome: r.try_get("outcome")?,
                provider_id: r.try_get("provider_id")?,
                error: r.try_get("error")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading notification attempts")
    }

    /// Certificates on their token (live) whose notAfter is at or before `until`:
    /// `(order_no, serial, not_after)`.
    pub async fn live_certificates_ending_by(
        &self,
        until: time::OffsetDateTime,
    ) -> Result<Vec<(OrderNo, CertSerial, String)>, StoreError> {
        sqlx::query(
            "SELECT order_no, serial, not_after FROM certificates \
             WHERE status = 'on_token' AND not_after <= $1 ORDER BY not_after, serial",
        )
        .bind(format_utc(until))
        .fetch_all(self.pool())
        .await
        .ctx("reading expiring certificates")?
        .iter()
        .map(|r| -> Result<(OrderNo, CertSerial, String), sqlx::Error> {
            Ok((
                id_column(r, "order_no", "certificates.order_no")?,
                id_column(r, "serial", "certificates.serial")?,
                r.try_get("not_after")?,
            ))
        })
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading expiring certificates")
    }
}
