//! Reading the audit trail back (appending is [`super::Tx::audit`]), and its signed anchors.

use super::{DbContext, Store, StoreError, Tx};
use crate::audit::{Anchor, AuditRecord};
use sqlx::Row;
use sqlx::any::AnyRow;

const RECORD_COLUMNS: &str = "seq, at, actor, station_id, operation_id, action, order_no, \
                              token_serial, cert_serial, details, prev_hash, hash";
const ANCHOR_COLUMNS: &str = "seq, head_hash, at, actor, signature";
const HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";

fn record_of(r: AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        station_id: r.try_get("station_id")?,
        operation_id: r.try_get("operation_id")?,
        action: r.try_get("action")?,
        order_no: r.try_get("order_no")?,
        token_serial: r.try_get("token_serial")?,
        cert_serial: r.try_get("cert_serial")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn anchor_of(r: AnyRow) -> Result<Anchor, sqlx::Error> {
    Ok(Anchor {
        seq: r.try_get("seq")?,
        head_hash: r.try_get("head_hash")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        signature: r.try_get("signature")?,
    })
}

pub(super) fn head_of(r: AnyRow) -> Result<(i64, String), sqlx::Error> {
    Ok((r.try_get("seq")?, r.try_get("hash")?))
}

/// Which audit records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only records about this order.
    pub order_no: Option<crate::domain::OrderNo>,
}

impl Store {
    /// Audit records in chain order.
    pub async fn audit_records(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // An empty string never matches: one query text with and without the filter.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM audit_events WHERE ($1 = '' OR order_no = $1) ORDER BY seq"
        )))
        .bind(filter.order_no.as_ref().map_or("", |n| n.as_str()).to_string())
        .try_map(record_of)
        .fetch_all(self.pool())
        .await
        .ctx("reading the audit trail")
    }

    /// The stored head of the chain: (last seq, its hash).
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        sqlx::query(HEAD)
            .try_map(head_of)
            .fetch_one(self.pool())
            .await
            .ctx("reading the audit head")
    }

    /// Orders with no audit record at all (every order has at least its import's).
    pub async fn orders_without_audit(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "SELECT o.order_no FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM audit_events e WHERE e.order_no = o.order_no) ORDER BY o.order_no",
        )
        .try_map(|r: AnyRow| r.try_get("order_no"))
        .fetch_all(self.pool())
        .await
        .ctx("looking for orders without audit records")
    }
}

impl Store {
    /// Every anchor, in seq order.
    pub async fn anchors(&self) -> Result<Vec<Anchor>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq"
        )))
        .try_map(anchor_of)
        .fetch_all(self.pool())
        .await
        .ctx("reading audit anchors")
    }

    /// The newest signed anchor, if any.
    pub async fn latest_anchor(&self) -> Result<Option<Anchor>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq DESC LIMIT 1"
        )))
        .try_map(anchor_of)
        .fetch_optional(self.pool())
        .await
        .ctx("reading audit anchors")
    }
}

/// Anchoring runs in a writing transaction: it holds the audit head, so no record is appended
/// and no other station anchors meanwhile.
impl Tx {
    /// Audit records from `seq` on, in chain order (this transaction's own included).
    pub async fn audit_records_from(&mut self, seq: i64) -> Result<Vec<AuditRecord>, StoreError> {
        self.write_audit_records().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq"
        )))
        .bind(seq)
        .try_map(record_of)
        .fetch_all(self.conn())
        .await
        .ctx("reading the audit trail")
    }

    /// The signed anchor of record `seq`, if any.
    pub async fn anchor_at(&mut self, seq: i64) -> Result<Option<Anchor>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ANCHOR_COLUMNS} FROM audit_anchors WHERE seq = $1"
        )))
        .bind(seq)
        .try_map(anchor_of)
        .fetch_optional(self.conn())
        .await
        .ctx("reading audit anchors")
    }

    /// Records a signed anchor of the chain head (a second one for the same record is ignored).
    pub async fn insert_anchor(&mut self, a: &Anchor) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_anchors (seq, head_hash, at, actor, signature) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(a.seq)
        .bind(&a.head_hash)
        .bind(&a.at)
        .bind(&a.actor)
        .bind(&a.signature)
        .execute(self.conn())
        .await
        .ctx("recording an audit anchor")?;
        Ok(())
    }
}
