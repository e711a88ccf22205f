//! The service desk's requests (PIN reset first) and their execution journal.
//!
//! A request changes like a delivery does: a writer reads it inside its transaction, then
//! [`Tx::transition_service_request`] applies the domain's table
//! ([`crate::domain::RequestState::apply`], which holds the four-eyes rule), lets the caller set
//! the fields that go with the move, writes the row back only if it is still in the state that
//! was read, and appends the move's typed audit record — all in the caller's transaction.
//!
//! Nothing secret is stored: the new PIN of a reset only as the vault's sealed blob
//! (`pending_pin`), moved to `sealed_pins` when its delivery is queued.

use super::requests::{Bound, RequestRow, StoredRequest, request_fields};
use super::{Actor, AuditEntry, DbContext, Store, StoreError, Tx, stored_id};
use crate::audit::AuditEvent;
use crate::clock::format_utc;
use crate::domain::{
    JournaledStep, OperatorId, OrderNo, PinResetStep, RequestEvent, RequestKind, RequestState,
    RetireStep, SealedPin, UnlockStep,
};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A service request as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceRequestRecord {
    /// UUID.
    pub id: String,
    /// What is asked.
    pub kind: RequestKind,
    /// The order whose key it concerns.
    pub order_no: OrderNo,
    /// Where it is.
    pub state: RequestState,
    /// Who asked.
    pub requested_by: OperatorId,
    /// Why (the customer's words, as the desk noted them).
    pub reason: String,
    /// What the desk checked (documents seen).
    pub evidence: String,
    /// When.
    pub requested_at: String,
    /// Who approved or rejected it (never the requester).
    pub decided_by: Option<OperatorId>,
    /// When.
    pub decided_at: Option<String>,
    /// The decider's note (why rejected, ...).
    pub decision_note: Option<String>,
    /// The key it acts on, fixed when execution starts.
    pub token_serial: Option<String>,
    /// The order's PIN generation it made (1 = the first reset).
    pub pin_generation: Option<i64>,
    /// The delivery it queued.
    pub delivery_id: Option<String>,
    /// Why the last run stopped.
    pub last_error: Option<String>,
    /// Last change.
    pub updated_at: String,
}

/// A request to record (state `requested`).
#[derive(Debug, Clone)]
pub struct NewServiceRequest {
    /// UUID.
    pub id: String,
    /// What is asked.
    pub kind: RequestKind,
    /// The order.
    pub order_no: OrderNo,
    /// Who asks.
    pub requested_by: OperatorId,
    /// Why.
    pub reason: String,
    /// What was checked.
    pub evidence: String,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct ServiceRequestFilter {
    /// Only this order's.
    pub order_no: Option<OrderNo>,
    /// Only in this state.
    pub state: Option<RequestState>,
    /// Only of this kind.
    pub kind: Option<RequestKind>,
}

/// One step of a request's execution journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestStepRecord {
    /// The step.
    pub step: String,
    /// `started` or `done`.
    pub status: String,
    /// When it (last) started.
    pub started_at: String,
    /// When it was done.
    pub finished_at: Option<String>,
    /// How many times it was started.
    pub runs: i64,
}

impl StoredRequest for ServiceRequestRecord {
    const TABLE: &'static str = "service_requests";
    const NOUN: &'static str = "service request";
    const READING: &'static str = "reading a service request";
    const UPDATING: &'static str = "updating a service request";
    const COLUMNS: &'static str = "id, kind, order_no, state, requested_by, reason, evidence, \
         requested_at, decided_by, decided_at, decision_note, token_serial, pin_generation, \
         delivery_id, last_error, updated_at";
    const UPDATE: &'static str = "UPDATE service_requests SET state = $1, decided_by = $2, \
         decided_at = $3, decision_note = $4, token_serial = $5, pin_generation = $6, \
         delivery_id = $7, last_error = $8, updated_at = $9 WHERE id = $10 AND state = $11";

    fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        let row = RequestRow::<Self>::new(r);
        let kind = row.text("kind")?;
        Ok(ServiceRequestRecord {
            id: row.text("id")?,
            kind: RequestKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown request kind {kind:?}")))?,
            order_no: stored_id("service_requests.order_no", &row.text("order_no")?)?,
            state: row.state()?,
            requested_by: row.requested_by()?,
            reason: row.text("reason")?,
            evidence: row.text("evidence")?,
            requested_at: row.text("requested_at")?,
            decided_by: row.decided_by()?,
            decided_at: row.opt("decided_at")?,
            decision_note: row.opt("decision_note")?,
            token_serial: row.opt("token_serial")?,
            pin_generation: r
                .try_get::<Option<i64>, _>("pin_generation")
                .ctx(Self::READING)?,
            delivery_id: row.opt("delivery_id")?,
            last_error: row.opt("last_error")?,
            updated_at: row.text("updated_at")?,
        })
    }

    fn bind_changes<'q>(&self, q: Bound<'q>) -> Bound<'q> {
        q.bind(self.token_serial.clone())
            .bind(self.pin_generation)
            .bind(self.delivery_id.clone())
            .bind(self.last_error.clone())
    }

    request_fields!();

    fn audit_entry(&self, event: AuditEvent) -> AuditEntry {
        AuditEntry::order(&self.order_no, event)
    }
}

impl Tx {
    /// Records a new request (state `requested`); [`StoreError::RequestOpen`] when the order
    /// has an open request of that kind already.
    pub async fn insert_service_request(
        &mut self,
        n: &NewServiceRequest,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO service_requests (id, kind, order_no, state, requested_by, reason, \
             evidence, requested_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&n.id)
        .bind(n.kind.as_str())
        .bind(n.order_no.as_str())
        .bind(RequestState::Requested.as_str())
        .bind(n.requested_by.as_str())
        .bind(&n.reason)
        .bind(&n.evidence)
        .bind(&now)
        .execute(self.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::RequestOpen {
                order_no: n.order_no.to_string(),
                kind: n.kind,
            },
            _ => StoreError::Db {
                context: "recording a service request",
                source: e,
            },
        })?;
        Ok(())
    }

    /// A request, read inside this transaction.
    pub async fn service_request(&mut self, id: &str) -> Result<ServiceRequestRecord, StoreError> {
        self.stored_request(id).await
    }

    /// Applies `event` to `r` (read in this transaction) through the domain's table — the
    /// four-eyes rule included: a refused move is [`StoreError::Request`] and nothing is
    /// written — lets `change` set the fields that go with it and name its audit record, then
    /// writes the row back only if it is still in the state it was read in (else
    /// [`StoreError::RequestConflict`]) and appends the record. Returns the state `r` left.
    pub async fn transition_service_request(
        &mut self,
        actor: &Actor,
        r: &mut ServiceRequestRecord,
        event: &RequestEvent,
        change: impl FnOnce(&mut ServiceRequestRecord) -> AuditEvent,
    ) -> Result<RequestState, StoreError> {
        self.transition_request((r, event), actor, change).await
    }

    /// Like [`Self::transition_service_request`] for fields that change without a move.
    pub async fn update_service_request(
        &mut self,
        actor: &Actor,
        r: &ServiceRequestRecord,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        self.save_request(r, r.state).await?;
        self.audit_request(actor, r, audit).await
    }

    /// Keeps the sealed new PIN of request `id`, unless it has one already (a concurrent or
    /// earlier run drew it first): true when this one was stored.
    pub async fn set_pending_pin(
        &mut self,
        id: &str,
        sealed: &SealedPin,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE service_requests SET pending_pin = $1 WHERE id = $2 AND pending_pin IS NULL",
        )
        .bind(&sealed.0)
        .bind(id)
        .execute(self.conn())
        .await
        .ctx("keeping a sealed PIN with its request")?;
        Ok(done.rows_affected() == 1)
    }

    /// The sealed new PIN of request `id`, if it has one.
    pub async fn pending_pin(&mut self, id: &str) -> Result<Option<SealedPin>, StoreError> {
        let row = sqlx::query("SELECT pending_pin FROM service_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a request's sealed PIN")?;
        let Some(row) = row else {
            return Err(StoreError::RequestNotFound(id.to_string()));
        };
        Ok(row
            .try_get::<Option<Vec<u8>>, _>("pending_pin")
            .ctx("reading a request's sealed PIN")?
            .map(SealedPin))
    }

    /// Forgets the sealed new PIN of request `id` (it moved to the order's sealed PIN).
    pub async fn clear_pending_pin(&mut self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE service_requests SET pending_pin = NULL WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .ctx("clearing a request's sealed PIN")?;
        Ok(())
    }

    /// Journals `step` of request `id` as started (again, after a crash: `runs` counts).
    pub async fn request_step_started<S: JournaledStep>(
        &mut self,
        id: &str,
        step: S,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO service_request_steps (request_id, step, status, started_at, runs) \
             VALUES ($1, $2, 'started', $3, 1) ON CONFLICT (request_id, step) DO UPDATE \
             SET status = 'started', started_at = $3, finished_at = NULL, \
             runs = service_request_steps.runs + 1",
        )
        .bind(id)
        .bind(step.name())
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("journaling a request step")?;
        Ok(())
    }

    /// Journals `step` of request `id` as done.
    pub async fn request_step_done<S: JournaledStep>(
        &mut self,
        id: &str,
        step: S,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "UPDATE service_request_steps SET status = 'done', finished_at = $1 \
             WHERE request_id = $2 AND step = $3",
        )
        .bind(&now)
        .bind(id)
        .bind(step.name())
        .execute(self.conn())
        .await
        .ctx("journaling a request step")?;
        Ok(())
    }

    /// The PIN generation a new PIN of `order_no` gets: one more than any delivery's so far.
    pub async fn next_pin_generation(&mut self, order_no: &OrderNo) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(pin_generation), 0) AS g FROM deliveries WHERE order_no = $1",
        )
        .bind(order_no.as_str())
        .fetch_one(self.conn())
        .await
        .ctx("reading an order's PIN generation")?;
        Ok(row
            .try_get::<i64, _>("g")
            .ctx("reading an order's PIN generation")?
            + 1)
    }

    /// The deliveries of `order_no` that are not settled (neither confirmed nor cancelled).
    pub async fn unsettled_deliveries(
        &mut self,
        order_no: &OrderNo,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "SELECT id FROM deliveries WHERE order_no = $1 \
             AND state NOT IN ('confirmed', 'cancelled') ORDER BY created_at, id",
        )
        .bind(order_no.as_str())
        .fetch_all(self.conn())
        .await
        .ctx("reading an order's deliveries")?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading an order's deliveries")
    }
}

impl Store {
    /// One request.
    pub async fn service_request(
        &self,
        id: &str,
    ) -> Result<Option<ServiceRequestRecord>, StoreError> {
        self.stored_request(id).await
    }

    /// Requests, oldest first.
    pub async fn service_requests(
        &self,
        filter: &ServiceRequestFilter,
    ) -> Result<Vec<ServiceRequestRecord>, StoreError> {
        // Empty strings never match: one query text for every combination of filters.
        let sql = format!(
            "SELECT {} FROM service_requests WHERE ($1 = '' OR order_no = $1) \
             AND ($2 = '' OR state = $2) AND ($3 = '' OR kind = $3) ORDER BY requested_at, id",
            ServiceRequestRecord::COLUMNS
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(
                filter
                    .order_no
                    .as_ref()
                    .map_or("", |n| n.as_str())
                    .to_string(),
            )
            .bind(filter.state.map(|s| s.as_str()).unwrap_or_default())
            .bind(filter.kind.map(|k| k.as_str()).unwrap_or_default())
            .fetch_all(self.pool())
            .await
            .ctx("listing service requests")?
            .iter()
            .map(ServiceRequestRecord::from_row)
            .collect()
    }

    /// The execution journal of request `id`, in step order.
    pub async fn request_steps(&self, id: &str) -> Result<Vec<RequestStepRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT step, status, started_at, finished_at, runs FROM service_request_steps \
             WHERE request_id = $1",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .ctx("reading a request's journal")?;
        let mut steps = rows
            .iter()
            .map(|r| -> Result<RequestStepRecord, sqlx::Error> {
                Ok(RequestStepRecord {
                    step: r.try_get("step")?,
                    status: r.try_get("status")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    runs: r.try_get("runs")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading a request's journal")?;
        // Each kind's steps have names of their own: one list orders them all.
        let position = |s: &RequestStepRecord| {
            PinResetStep::ALL
                .iter()
                .map(|k| k.as_str())
                .chain(RetireStep::ALL.iter().map(|k| k.as_str()))
                .chain(UnlockStep::ALL.iter().map(|k| k.as_str()))
                .position(|k| k == s.step)
                .unwrap_or(usize::MAX)
        };
        steps.sort_by_key(position);
        Ok(steps)
    }
}
