//! Station requests (migration 0021): four-eyes on changes that are not about an order —
//! operators, API tokens, the CA's OCSP signer ([`crate::domain::station_request`]).
//!
//! A request moves like a service request: a writer reads it inside its transaction, then
//! [`Tx::transition_station_request`] applies the domain's one table
//! ([`crate::domain::RequestState::apply`], the four-eyes rule in it), writes the row back only
//! if it is still in the state that was read, and appends the move's typed audit record — all in
//! the caller's transaction. The change is stored as typed JSON; nothing secret is stored.

use super::{Actor, AuditEntry, DbContext, Store, StoreError, Tx};
use crate::audit::AuditEvent;
use crate::clock::format_utc;
use crate::domain::station_request::StationChange;
use crate::domain::{OperatorId, RequestEvent, RequestState};
use sqlx::Row;
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

const COLUMNS: &str = "id, change_json, state, requested_by, requested_at, decided_by, \
     decided_at, decision_note, updated_at";

fn record(r: &AnyRow) -> Result<StationRequestRecord, StoreError> {
    let get = |c: &'static str| -> Result<Option<String>, StoreError> {
        r.try_get::<Option<String>, _>(c)
            .ctx("reading a station request")
    };
    let req = |c: &'static str| -> Result<String, StoreError> {
        r.try_get::<String, _>(c).ctx("reading a station request")
    };
    let operator = |column: &str, v: String| {
        OperatorId::parse(&v).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    };
    let state = req("state")?;
    Ok(StationRequestRecord {
        id: req("id")?,
        change: serde_json::from_str(&req("change_json")?)
            .map_err(|e| StoreError::Corrupt(format!("station_requests.change_json: {e}")))?,
        state: RequestState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown request state {state:?}")))?,
        requested_by: operator("station_requests.requested_by", req("requested_by")?)?,
        requested_at: req("requested_at")?,
        decided_by: get("decided_by")?
            .map(|v| operator("station_requests.decided_by", v))
            .transpose()?,
        decided_at: get("decided_at")?,
        decision_note: get("decision_note")?,
        updated_at: req("updated_at")?,
    })
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
        let sql = format!("SELECT {COLUMNS} FROM station_requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a station request")?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?;
        record(&row)
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
        let from = r.state;
        let to = from
            .apply(&r.requested_by, event)
            .map_err(|source| StoreError::Request {
                id: r.id.clone(),
                source,
            })?;
        r.state = to;
        let audit = change(r);
        if r.state != to {
            return Err(StoreError::Corrupt(format!(
                "station request {} was moved to {} beside the state machine (expected {to})",
                r.id, r.state
            )));
        }
        let now = format_utc(self.now());
        let done = sqlx::query(
            "UPDATE station_requests SET state = $1, decided_by = $2, decided_at = $3, \
             decision_note = $4, updated_at = $5 WHERE id = $6 AND state = $7",
        )
        .bind(r.state.as_str())
        .bind(r.decided_by.as_ref().map(OperatorId::as_str))
        .bind(&r.decided_at)
        .bind(&r.decision_note)
        .bind(&now)
        .bind(&r.id)
        .bind(from.as_str())
        .execute(self.conn())
        .await
        .ctx("updating a station request")?;
        if done.rows_affected() != 1 {
            return Err(StoreError::RequestConflict {
                id: r.id.clone(),
                expected: from,
            });
        }
        r.updated_at = now;
        if let Some(a) = audit {
            self.audit(actor, AuditEntry::new(a)).await?;
        }
        Ok(from)
    }
}

impl Store {
    /// One station request.
    pub async fn station_request(
        &self,
        id: &str,
    ) -> Result<Option<StationRequestRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM station_requests WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .ctx("reading a station request")?
            .map(|r| record(&r))
            .transpose()
    }

    /// The open request (not done, rejected or cancelled) of `kind` about `subject`, if any.
    pub async fn open_station_request(
        &self,
        kind: &str,
        subject: &str,
    ) -> Result<Option<StationRequestRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM station_requests WHERE kind = $1 AND subject = $2 \
             AND state IN ('requested', 'approved', 'executing', 'failed')"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind)
            .bind(subject)
            .fetch_optional(self.pool())
            .await
            .ctx("reading an open station request")?
            .map(|r| record(&r))
            .transpose()
    }

    /// Station requests, oldest first: only those in `state`, when given.
    pub async fn station_requests(
        &self,
        state: Option<RequestState>,
    ) -> Result<Vec<StationRequestRecord>, StoreError> {
        // An empty string never matches: one query text with or without the filter.
        let sql = format!(
            "SELECT {COLUMNS} FROM station_requests WHERE ($1 = '' OR state = $1) \
             ORDER BY requested_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.map(RequestState::as_str).unwrap_or_default())
            .fetch_all(self.pool())
            .await
            .ctx("listing station requests")?
            .iter()
            .map(record)
            .collect()
    }
}
