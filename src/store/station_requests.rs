//! Station requests (migration 0021): four-eyes on changes that are not about an order —
//! operators, API tokens, the CA's OCSP signer ([`crate::domain::station_request`]).
//!
//! A request moves like a service request: a writer reads it inside its transaction, then
//! [`Tx::transition_station_request`] applies the domain's one table
//! ([`crate::domain::RequestState::apply`], the four-eyes rule in it), writes the row back only
//! if it is still in the state that was read, and appends the move's typed audit record — all in
//! the caller's transaction. The change is stored as typed JSON; nothing secret is stored.

use super::requests::{Bound, RequestRow, StoredRequest, request_fields};
use super::{Actor, AuditEntry, DbContext, Store, StoreError, Tx};
use crate::audit::AuditEvent;
use crate::clock::format_utc;
use crate::domain::station_request::StationChange;
use crate::domain::{OperatorId, RequestEvent, RequestState};
use sqlx::any::AnyRow;

/// A station request as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StationRequestRecord {
    /// UUID.
    pub id: String,
    /// What is asked (its `kind` names it).
    pub change: StationChange,
    /// Where it is.
    pub state: RequestState,
    /// Who asked.
    pub requested_by: OperatorId,
    /// When.
    pub requested_at: String,
    /// Who approved or rejected it (never the requester).
    pub decided_by: Option<OperatorId>,
    /// When.
    pub decided_at: Option<String>,
    /// The decider's (or canceller's) note.
    pub decision_note: Option<String>,
    /// Last change.
    pub updated_at: String,
}

impl StoredRequest for StationRequestRecord {
    const TABLE: &'static str = "station_requests";
    const NOUN: &'static str = "station request";
    const READING: &'static str = "reading a station request";
    const UPDATING: &'static str = "updating a station request";
    const COLUMNS: &'static str = "id, change_json, state, requested_by, requested_at, \
         decided_by, decided_at, decision_note, updated_at";
    const UPDATE: &'static str = "UPDATE station_requests SET state = $1, decided_by = $2, \
         decided_at = $3, decision_note = $4, updated_at = $5 WHERE id = $6 AND state = $7";

    fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        let row = RequestRow::<Self>::new(r);
        Ok(StationRequestRecord {
            id: row.text("id")?,
            change: serde_json::from_str(&row.text("change_json")?)
                .map_err(|e| StoreError::Corrupt(format!("station_requests.change_json: {e}")))?,
            state: row.state()?,
            requested_by: row.requested_by()?,
            requested_at: row.text("requested_at")?,
            decided_by: row.decided_by()?,
            decided_at: row.opt("decided_at")?,
            decision_note: row.opt("decision_note")?,
            updated_at: row.text("updated_at")?,
        })
    }

    fn bind_changes<'q>(&self, q: Bound<'q>) -> Bound<'q> {
        q
    }

    request_fields!();

    fn audit_entry(&self, event: AuditEvent) -> AuditEntry {
        AuditEntry::new(event)
    }
}

impl Tx {
    /// Records request `id` for `change` by `requested_by` (state `requested`);
    /// [`StoreError::StationRequestOpen`] when its subject has an open request of its kind.
    pub async fn insert_station_request(
        &mut self,
        id: &str,
        change: &StationChange,
        requested_by: &OperatorId,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let json = serde_json::to_string(change)
            .map_err(|e| StoreError::Corrupt(format!("a station request's change: {e}")))?;
        sqlx::query(
            "INSERT INTO station_requests (id, kind, subject, change_json, state, requested_by, \
             requested_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id)
        .bind(change.kind())
        .bind(change.subject())
        .bind(&json)
        .bind(RequestState::Requested.as_str())
        .bind(requested_by.as_str())
        .bind(&now)
        .execute(self.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::StationRequestOpen {
                subject: change.subject(),
                kind: change.kind(),
            },
            _ => StoreError::Db {
                context: "recording a station request",
                source: e,
            },
        })?;
        Ok(())
    }

    /// A station request, read inside this transaction.
    pub async fn station_request(&mut self, id: &str) -> Result<StationRequestRecord, StoreError> {
        self.stored_request(id).await
    }

    /// Applies `event` to `r` (read in this transaction) through the domain's table — a refused
    /// move is [`StoreError::Request`], nothing written — lets `change` set the fields that go
    /// with it and name its audit record, writes the row back only if it is still in the state
    /// it was read in (else [`StoreError::RequestConflict`]) and appends the record (none when
    /// `change` gives none: the move's record is the change carried out, written by the caller).
    pub async fn transition_station_request(
        &mut self,
        actor: &Actor,
        r: &mut StationRequestRecord,
        event: &RequestEvent,
        change: impl FnOnce(&mut StationRequestRecord) -> Option<AuditEvent>,
    ) -> Result<RequestState, StoreError> {
        self.transition_request((r, event), actor, change).await
    }
}

impl Store {
    /// One station request.
    pub async fn station_request(
        &self,
        id: &str,
    ) -> Result<Option<StationRequestRecord>, StoreError> {
        self.stored_request(id).await
    }

    /// The open request (not done, rejected or cancelled) of `kind` about `subject`, if any.
    pub async fn open_station_request(
        &self,
        kind: &str,
        subject: &str,
    ) -> Result<Option<StationRequestRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM station_requests WHERE kind = $1 AND subject = $2 \
             AND state IN ('requested', 'approved', 'executing', 'failed')",
            StationRequestRecord::COLUMNS
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind)
            .bind(subject)
            .fetch_optional(self.pool())
            .await
            .ctx("reading an open station request")?
            .map(|r| StationRequestRecord::from_row(&r))
            .transpose()
    }

    /// Station requests, oldest first: only those in `state`, when given.
    pub async fn station_requests(
        &self,
        state: Option<RequestState>,
    ) -> Result<Vec<StationRequestRecord>, StoreError> {
        // An empty string never matches: one query text with or without the filter.
        let sql = format!(
            "SELECT {} FROM station_requests WHERE ($1 = '' OR state = $1) \
             ORDER BY requested_at, id",
            StationRequestRecord::COLUMNS
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.map(RequestState::as_str).unwrap_or_default())
            .fetch_all(self.pool())
            .await
            .ctx("listing station requests")?
            .iter()
            .map(StationRequestRecord::from_row)
            .collect()
    }
}
