//! The order API's webhook outbox (`webhook_events`): one event per order state change.
//!
//! [`queue_webhook_event`] is called by the one function that changes an order's state
//! (`orders::transition`), in its transaction; the unique key (order, version after the change)
//! makes a second queueing of the same change a no-op. After that the sender is the only
//! writer: [`Tx::transition_webhook_event`] applies the notices' state table
//! ([`NoticeState`]) and writes the row back only if it is still in the state it was read in.
//! Nothing here is secret (see the migration).

use super::{DbContext, Store, StoreError, Tx, stored_id};
use crate::clock::format_utc;
use crate::domain::OrderNo;
use crate::domain::notification::{NoticeEvent, NoticeState};
use crate::domain::order::OrderState;
use crate::domain::webhook::WebhookPayload;
use sqlx::Row;
use sqlx::any::AnyRow;

/// One webhook event as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookEventRecord {
    /// UUID (`X-Keystation-Event`).
    pub id: String,
    /// The order.
    pub order_no: OrderNo,
    /// The order's version after the change.
    pub sequence: i64,
    /// State before.
    pub from: OrderState,
    /// State after.
    pub to: OrderState,
    /// When the change was made.
    pub changed_at: String,
    /// Where the event is.
    pub state: NoticeState,
    /// Attempts so far.
    pub attempts: i64,
    /// Not before (RFC 3339).
    pub next_attempt_at: String,
    /// What the last attempt came to (`delivered`, `retryable`, `refused`, `unknown`,
    /// `interrupted`).
    pub last_outcome: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// When the current / last attempt began.
    pub sending_at: Option<String>,
    /// When the receiver took it.
    pub sent_at: Option<String>,
    /// When queued.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl WebhookEventRecord {
    /// The JSON body it is sent with.
    pub fn payload(&self) -> WebhookPayload {
        WebhookPayload::new(
            &self.id,
            self.order_no.as_str(),
            self.sequence,
            self.from,
            self.to,
            &self.changed_at,
        )
    }
}

const COLUMNS: &str = "id, order_no, seq, from_state, to_state, changed_at, state, attempts, \
     next_attempt_at, last_outcome, last_error, sending_at, sent_at, created_at, updated_at";

fn record(r: &AnyRow) -> Result<WebhookEventRecord, StoreError> {
    let req = |c: &'static str| -> Result<String, StoreError> {
        r.try_get::<String, _>(c).ctx("reading a webhook event")
    };
    let opt = |c: &'static str| -> Result<Option<String>, StoreError> {
        r.try_get::<Option<String>, _>(c)
            .ctx("reading a webhook event")
    };
    let corrupt =
        |what: &str, v: &str| StoreError::Corrupt(format!("unknown webhook event {what} {v:?}"));
    let order_state = |c: &'static str| -> Result<OrderState, StoreError> {
        let v = req(c)?;
        OrderState::parse(&v).ok_or_else(|| corrupt(c, &v))
    };
    let state = req("state")?;
    Ok(WebhookEventRecord {
        id: req("id")?,
        order_no: stored_id("webhook_events.order_no", &req("order_no")?)?,
        sequence: r.try_get("seq").ctx("reading a webhook event")?,
        from: order_state("from_state")?,
        to: order_state("to_state")?,
        changed_at: req("changed_at")?,
        state: NoticeState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        attempts: r.try_get("attempts").ctx("reading a webhook event")?,
        next_attempt_at: req("next_attempt_at")?,
        last_outcome: opt("last_outcome")?,
        last_error: opt("last_error")?,
        sending_at: opt("sending_at")?,
        sent_at: opt("sent_at")?,
        created_at: req("created_at")?,
        updated_at: req("updated_at")?,
    })
}

/// Queues the webhook event of the change of `order_no` from `from` to `to` that made its
/// version `sequence` (due now), unless that change has one; returns its id when queued.
pub(super) async fn queue_webhook_event(
    tx: &mut Tx,
    order_no: &OrderNo,
    sequence: i64,
    from: OrderState,
    to: OrderState,
) -> Result<Option<String>, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = format_utc(tx.now());
    let done = sqlx::query(
        "INSERT INTO webhook_events (id, order_no, seq, from_state, to_state, changed_at, state, \
         attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $6, $6, $6) \
         ON CONFLICT (order_no, seq) DO NOTHING",
    )
    .bind(&id)
    .bind(order_no.as_str())
    .bind(sequence)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(&now)
    .bind(NoticeState::Queued.as_str())
    .execute(tx.conn())
    .await
    .ctx("queuing a webhook event")?;
    Ok((done.rows_affected() == 1).then_some(id))
}

impl Tx {
    /// A webhook event, read inside this transaction.
    pub async fn webhook_event(&mut self, id: &str) -> Result<WebhookEventRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_events WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a webhook event")?
            .ok_or_else(|| StoreError::Corrupt(format!("webhook event {id} vanished")))?;
        record(&row)
    }

    /// Applies `event` to `e` (read in this transaction) through the notices' table, lets
    /// `change` set the fields that go with it, and writes the row back only if it is still in
    /// the state it was read in ([`StoreError::Corrupt`] otherwise). Returns the state before.
    pub async fn transition_webhook_event(
        &mut self,
        e: &mut WebhookEventRecord,
        event: NoticeEvent,
        change: impl FnOnce(&mut WebhookEventRecord),
    ) -> Result<NoticeState, StoreError> {
        let from = e.state;
        e.state = from.apply(event).map_err(|err| {
            StoreError::Corrupt(format!("refused webhook event move of {}: {err}", e.id))
        })?;
        change(e);
        e.updated_at = format_utc(self.now());
        let done = sqlx::query(
            "UPDATE webhook_events SET state = $1, attempts = $2, next_attempt_at = $3, \
             last_outcome = $4, last_error = $5, sending_at = $6, sent_at = $7, updated_at = $8 \
             WHERE id = $9 AND state = $10",
        )
        .bind(e.state.as_str())
        .bind(e.attempts)
        .bind(&e.next_attempt_at)
        .bind(&e.last_outcome)
        .bind(&e.last_error)
        .bind(&e.sending_at)
        .bind(&e.sent_at)
        .bind(&e.updated_at)
        .bind(&e.id)
        .bind(from.as_str())
        .execute(self.conn())
        .await
        .ctx("writing a webhook event")?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Corrupt(format!(
                "webhook event {} was not {from} any more",
                e.id
            )));
        }
        Ok(from)
    }
}

impl Store {
    /// Webhook events, in the order they are sent (creation, then the order's sequence); only
    /// `order_no`'s when given.
    pub async fn webhook_events(
        &self,
        order_no: Option<&OrderNo>,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE ($1 = '' OR order_no = $1) \
             ORDER BY created_at, order_no, seq"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(order_no.map_or("", |n| n.as_str()).to_string())
            .fetch_all(self.pool())
            .await
            .ctx("listing webhook events")?
            .iter()
            .map(record)
            .collect()
    }

    /// Events not settled yet (`queued` or `sending`, due or not), in the order of the changes:
    /// the sender sends an order's events one after the other, never one before an earlier one.
    pub async fn pending_webhook_events(&self) -> Result<Vec<WebhookEventRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE state IN ('queued', 'sending') \
             ORDER BY created_at, order_no, seq"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .ctx("reading pending webhook events")?
            .iter()
            .map(record)
            .collect()
    }

    /// Events in `state` due at `now`, in the order of the changes (creation, then the order's
    /// sequence).
    pub async fn due_webhook_events(
        &self,
        state: NoticeState,
        now: time::OffsetDateTime,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE state = $1 AND next_attempt_at <= $2 \
             ORDER BY created_at, order_no, seq"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(format_utc(now))
            .fetch_all(self.pool())
            .await
            .ctx("reading due webhook events")?
            .iter()
            .map(record)
            .collect()
    }
}
