//! The attempt journals of the two outboxes (`delivery_attempts`, `notification_attempts`):
//! each contact with a channel or server is numbered from 1 under its delivery or notice,
//! journaled as started before it and as finished after it, so an interrupted one is visible.

use super::{DbContext, StoreError, Tx};
use crate::clock::format_utc;
use sqlx::Row;

/// One outbox's attempt journal: its table and the column naming the attempt's owner.
pub(super) struct AttemptJournal {
    table: &'static str,
    owner: &'static str,
    context: &'static str,
}

/// The deliveries' journal.
pub(super) const DELIVERY_ATTEMPTS: AttemptJournal = AttemptJournal {
    table: "delivery_attempts",
    owner: "delivery_id",
    context: "journaling a delivery attempt",
};

/// The notices' journal.
pub(super) const NOTIFICATION_ATTEMPTS: AttemptJournal = AttemptJournal {
    table: "notification_attempts",
    owner: "notification_id",
    context: "journaling a notification attempt",
};

impl Tx {
    /// Journals the start of a contact of `owner` in `journal` (of `kind`, where the journal
    /// keeps one); returns its sequence number.
    pub(super) async fn journal_attempt_started(
        &mut self,
        journal: &AttemptJournal,
        owner: &str,
        kind: Option<&str>,
    ) -> Result<i64, StoreError> {
        let AttemptJournal {
            table,
            owner: column,
            context,
        } = journal;
        let (kind_column, kind_value) = if kind.is_some() {
            (", kind", ", $3")
        } else {
            ("", "")
        };
        // The next number and the row in one statement: the transaction holds the audit head,
        // so no other writer numbers this owner's attempts meanwhile.
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({column}, seq, started_at{kind_column}) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2{kind_value} FROM {table} \
             WHERE {column} = $1 RETURNING seq"
        )))
        .bind(owner)
        .bind(format_utc(self.now()));
        if let Some(kind) = kind {
            insert = insert.bind(kind);
        }
        let row = insert.fetch_one(self.conn()).await.ctx(context)?;
        row.try_get::<i64, _>("seq").ctx(context)
    }

    /// Journals the end of contact `seq` of `owner` in `journal`.
    pub(super) async fn journal_attempt_finished(
        &mut self,
        journal: &AttemptJournal,
        (owner, seq): (&str, i64),
        outcome: &str,
        provider_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let AttemptJournal {
            table,
            owner: column,
            context,
        } = journal;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET finished_at = $3, outcome = $4, provider_id = $5, error = $6 \
             WHERE {column} = $1 AND seq = $2"
        )))
        .bind(owner)
        .bind(seq)
        .bind(format_utc(self.now()))
        .bind(outcome)
        .bind(provider_id)
        .bind(error)
        .execute(self.conn())
        .await
        .ctx(context)?;
        Ok(())
    }
}
