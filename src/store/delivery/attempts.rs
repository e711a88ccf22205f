//! The attempt journal of a delivery: each contact with a channel, started before it and
//! finished after it, so an interrupted one is visible.

use super::super::attempt_journal::DELIVERY_ATTEMPTS;
use super::super::{DbContext, Store, StoreError, Tx};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One contact with a channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRecord {
    /// Position in the delivery's journal, from 1.
    pub seq: i64,
    /// `send`, `file`, `query`, `recover`, `import`.
    pub kind: String,
    /// Written before the contact.
    pub started_at: String,
    /// Written after it (absent: the process stopped in between).
    pub finished_at: Option<String>,
    /// What happened.
    pub outcome: Option<String>,
    /// The provider's reference, when it gave one.
    pub provider_id: Option<String>,
    /// Why it failed (never the message).
    pub error: Option<String>,
}

fn attempt(r: &AnyRow) -> Result<AttemptRecord, sqlx::Error> {
    Ok(AttemptRecord {
        seq: r.try_get("seq")?,
        kind: r.try_get("kind")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        outcome: r.try_get("outcome")?,
        provider_id: r.try_get("provider_id")?,
        error: r.try_get("error")?,
    })
}

impl Tx {
    /// Journals the start of a contact with the channel; returns its sequence number.
    pub async fn attempt_started(
        &mut self,
        delivery_id: &str,
        kind: &str,
    ) -> Result<i64, StoreError> {
        self.journal_attempt_started(&DELIVERY_ATTEMPTS, delivery_id, Some(kind))
            .await
    }

    /// Journals the end of a contact.
    pub async fn attempt_finished(
        &mut self,
        delivery_id: &str,
        seq: i64,
        outcome: &str,
        provider_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.journal_attempt_finished(
            &DELIVERY_ATTEMPTS,
            (delivery_id, seq),
            outcome,
            provider_id,
            error,
        )
        .await
    }

    /// Journals a finished contact in one go (queries, restart checks, imports).
    pub async fn attempt_record(
        &mut self,
        delivery_id: &str,
        kind: &str,
        outcome: &str,
        provider_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<i64, StoreError> {
        let seq = self.attempt_started(delivery_id, kind).await?;
        self.attempt_finished(delivery_id, seq, outcome, provider_id, error)
            .await?;
        Ok(seq)
    }
}

impl Store {
    /// The attempt journal of a delivery.
    pub async fn delivery_attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        sqlx::query(
            "SELECT seq, kind, started_at, finished_at, outcome, provider_id, error \
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .ctx("reading delivery attempts")?
        .iter()
        .map(attempt)
        .collect::<Result<Vec<_>, _>>()
        .ctx("reading delivery attempts")
    }
}
