//! The one writer of both request tables: service requests (about an order's key) and station
//! requests (about the station: operators, API tokens, the OCSP signer).
//!
//! Both move through the same pure machine ([`RequestState::apply`], the four-eyes rule in it),
//! so reading one by id, applying a move and writing it back are written once here, over the
//! private [`StoredRequest`] trait that names each record's table, columns and audit subject.
//! A move writes the row back only if it is still in the state it was read in, and appends its
//! typed audit record in the caller's transaction.

use super::{Actor, AuditEntry, DbContext, Store, StoreError, Tx};
use crate::audit::AuditEvent;
use crate::clock::format_utc;
use crate::domain::{OperatorId, RequestEvent, RequestState};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Row};

/// The accessors of [`StoredRequest`] that read and write the fields every request record has
/// under the same names (`id`, `state`, `requested_by`, the decision, `updated_at`).
macro_rules! request_fields {
    () => {
        fn id(&self) -> &str {
            &self.id
        }

        fn state(&self) -> RequestState {
            self.state
        }

        fn state_mut(&mut self) -> &mut RequestState {
            &mut self.state
        }

        fn requested_by(&self) -> &OperatorId {
            &self.requested_by
        }

        fn decision(&self) -> (Option<&str>, Option<String>, Option<String>) {
            (
                self.decided_by.as_ref().map(OperatorId::as_str),
                self.decided_at.clone(),
                self.decision_note.clone(),
            )
        }

        fn updated_at_mut(&mut self) -> &mut String {
            &mut self.updated_at
        }
    };
}
pub(super) use request_fields;

/// A query being built, its arguments bound in order.
pub(super) type Bound<'q> = sqlx::query::Query<'q, Any, AnyArguments>;

/// A request record and the table it is stored in.
pub(super) trait StoredRequest: Sized {
    /// The table.
    const TABLE: &'static str;
    /// What one is called in messages (`service request`).
    const NOUN: &'static str;
    /// The context of a failed read (`reading a service request`).
    const READING: &'static str;
    /// The context of a failed write (`updating a service request`).
    const UPDATING: &'static str;
    /// The columns [`StoredRequest::from_row`] reads.
    const COLUMNS: &'static str;
    /// The `UPDATE` of the columns a move changes: `state`, `decided_by`, `decided_at` and
    /// `decision_note` as `$1`-`$4`, the values [`StoredRequest::bind_changes`] binds, then
    /// `updated_at`, `id` and the expected state.
    const UPDATE: &'static str;

    /// Reads one row of [`StoredRequest::COLUMNS`].
    fn from_row(r: &AnyRow) -> Result<Self, StoreError>;
    /// Binds the values of [`StoredRequest::UPDATE`] of this kind of record (after the
    /// decision, before `updated_at`).
    fn bind_changes<'q>(&self, q: Bound<'q>) -> Bound<'q>;
    /// Its id.
    fn id(&self) -> &str;
    /// Where it is.
    fn state(&self) -> RequestState;
    /// Where it is, to move.
    fn state_mut(&mut self) -> &mut RequestState;
    /// Who asked (the four-eyes rule refuses them as decider).
    fn requested_by(&self) -> &OperatorId;
    /// Who decided it, when, and their note.
    fn decision(&self) -> (Option<&str>, Option<String>, Option<String>);
    /// Its last change.
    fn updated_at_mut(&mut self) -> &mut String;
    /// The audit entry of `event` about this request.
    fn audit_entry(&self, event: AuditEvent) -> AuditEntry;
}

fn select_by_id<R: StoredRequest>() -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {} WHERE id = $1",
        R::COLUMNS,
        R::TABLE
    ))
}

impl Tx {
    /// Request `id`, read inside this transaction; [`StoreError::RequestNotFound`] when none.
    pub(super) async fn stored_request<R: StoredRequest>(
        &mut self,
        id: &str,
    ) -> Result<R, StoreError> {
        let row = sqlx::query(select_by_id::<R>())
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx(R::READING)?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?;
        R::from_row(&row)
    }

    /// Applies `event` to `r` (read in this transaction) through the domain's table — a refused
    /// move is [`StoreError::Request`], nothing written — lets `change` set the fields that go
    /// with it and name its audit record, writes the row back only if it is still in the state
    /// it was read in (else [`StoreError::RequestConflict`]) and appends the record (none when
    /// `change` gives none). Returns the state `r` left.
    pub(super) async fn transition_request<R: StoredRequest, A: Into<Option<AuditEvent>>>(
        &mut self,
        (r, event): (&mut R, &RequestEvent),
        actor: &Actor,
        change: impl FnOnce(&mut R) -> A,
    ) -> Result<RequestState, StoreError> {
        let from = r.state();
        let to = from
            .apply(r.requested_by(), event)
            .map_err(|source| StoreError::Request {
                id: r.id().to_string(),
                source,
            })?;
        *r.state_mut() = to;
        let audit = change(r).into();
        if r.state() != to {
            return Err(StoreError::Corrupt(format!(
                "{} {} was moved to {} beside the state machine (expected {to})",
                R::NOUN,
                r.id(),
                r.state()
            )));
        }
        *r.updated_at_mut() = self.save_request(r, from).await?;
        self.audit_request(actor, r, audit).await?;
        Ok(from)
    }

    /// Writes `r` back if it is still in state `expected` (else
    /// [`StoreError::RequestConflict`]); returns the time written as its last change.
    pub(super) async fn save_request<R: StoredRequest>(
        &mut self,
        r: &R,
        expected: RequestState,
    ) -> Result<String, StoreError> {
        let now = format_utc(self.now());
        let (decided_by, decided_at, decision_note) = r.decision();
        let decided = sqlx::query(R::UPDATE)
            .bind(r.state().as_str())
            .bind(decided_by)
            .bind(decided_at)
            .bind(decision_note);
        let done = r
            .bind_changes(decided)
            .bind(&now)
            .bind(r.id())
            .bind(expected.as_str())
            .execute(self.conn())
            .await
            .ctx(R::UPDATING)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::RequestConflict {
                id: r.id().to_string(),
                expected,
            });
        }
        Ok(now)
    }

    /// Appends `audit`, if any, as a record about `r`.
    pub(super) async fn audit_request<R: StoredRequest>(
        &mut self,
        actor: &Actor,
        r: &R,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        if let Some(a) = audit {
            self.audit(actor, r.audit_entry(a)).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Request `id`, if there is one.
    pub(super) async fn stored_request<R: StoredRequest>(
        &self,
        id: &str,
    ) -> Result<Option<R>, StoreError> {
        sqlx::query(select_by_id::<R>())
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .ctx(R::READING)?
            .map(|r| R::from_row(&r))
            .transpose()
    }
}

/// Reads a request row's columns: required text, optional text, operators.
pub(super) struct RequestRow<'r, R> {
    row: &'r AnyRow,
    _record: std::marker::PhantomData<R>,
}

impl<'r, R: StoredRequest> RequestRow<'r, R> {
    pub(super) fn new(row: &'r AnyRow) -> Self {
        RequestRow {
            row,
            _record: std::marker::PhantomData,
        }
    }

    /// A required text column.
    pub(super) fn text(&self, c: &'static str) -> Result<String, StoreError> {
        self.row.try_get::<String, _>(c).ctx(R::READING)
    }

    /// An optional text column.
    pub(super) fn opt(&self, c: &'static str) -> Result<Option<String>, StoreError> {
        self.row.try_get::<Option<String>, _>(c).ctx(R::READING)
    }

    /// The `state` column.
    pub(super) fn state(&self) -> Result<RequestState, StoreError> {
        let state = self.text("state")?;
        RequestState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown request state {state:?}")))
    }

    /// The `requested_by` column.
    pub(super) fn requested_by(&self) -> Result<OperatorId, StoreError> {
        Self::operator("requested_by", &self.text("requested_by")?)
    }

    /// The `decided_by` column.
    pub(super) fn decided_by(&self) -> Result<Option<OperatorId>, StoreError> {
        self.opt("decided_by")?
            .map(|v| Self::operator("decided_by", &v))
            .transpose()
    }

    fn operator(column: &str, v: &str) -> Result<OperatorId, StoreError> {
        OperatorId::parse(v).map_err(|e| StoreError::Corrupt(format!("{}.{column}: {e}", R::TABLE)))
    }
}
