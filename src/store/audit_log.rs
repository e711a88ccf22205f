//! Reading the audit trail back (appending is [`super::Tx::audit`]).

use super::{DbContext, Store, StoreError};
use crate::audit::{Anchor, AuditRecord};
use sqlx::Row;

/// Which audit records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only records about this order.
    pub order_no: Option<String>,
}

impl Store {
    /// Audit records in chain order.
    pub async fn audit_records(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = match &filter.order_no {
            Some(no) => sqlx::query(
                "SELECT seq, at, actor, operation_id, action, order_no, token_serial, cert_serial, \
                     details, prev_hash, hash FROM audit_events WHERE order_no = $1 ORDER BY seq",
            )
            .bind(no)
            .fetch_all(self.pool())
            .await,
            None => sqlx::query(
                "SELECT seq, at, actor, operation_id, action, order_no, token_serial, cert_serial, \
                     details, prev_hash, hash FROM audit_events ORDER BY seq",
            )
            .fetch_all(self.pool())
            .await,
        }
        .ctx("reading the audit trail")?;
        rows.iter()
            .map(|r| -> Result<AuditRecord, sqlx::Error> {
                Ok(AuditRecord {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    operation_id: r.try_get("operation_id")?,
                    action: r.try_get("action")?,
                    order_no: r.try_get("order_no")?,
                    token_serial: r.try_get("token_serial")?,
                    cert_serial: r.try_get("cert_serial")?,
                    details: r.try_get("details")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading the audit trail")
    }

    /// The stored head of the chain: (last seq, its hash).
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .ctx("reading the audit head")?;
        Ok((
            r.try_get("seq").ctx("reading the audit head")?,
            r.try_get("hash").ctx("reading the audit head")?,
        ))
    }
}

impl Store {
    /// Records a signed anchor of the chain head.
    pub async fn insert_anchor(&self, a: &Anchor) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_anchors (seq, head_hash, at, actor, signature) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(a.seq)
        .bind(&a.head_hash)
        .bind(&a.at)
        .bind(&a.actor)
        .bind(&a.signature)
        .execute(self.pool())
        .await
        .ctx("recording an audit anchor")?;
        Ok(())
    }

    /// Every anchor, in seq order.
    pub async fn anchors(&self) -> Result<Vec<Anchor>, StoreError> {
        sqlx::query("SELECT seq, head_hash, at, actor, signature FROM audit_anchors ORDER BY seq")
            .fetch_all(self.pool())
            .await
            .ctx("reading audit anchors")?
            .iter()
            .map(|r| -> Result<Anchor, sqlx::Error> {
                Ok(Anchor {
                    seq: r.try_get("seq")?,
                    head_hash: r.try_get("head_hash")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    signature: r.try_get("signature")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .ctx("reading audit anchors")
    }
}
