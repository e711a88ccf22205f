//! What a four-eyes revocation request is to revoke, and how (migration 0016): kept beside its
//! `service_requests` row (kind `revoke` or `revoke_certificate`) from the request to its run.

use super::{DbContext, Store, StoreError, Tx, stored_id};
use crate::domain::CertSerial;
use sqlx::Row;
use sqlx::any::AnyRow;

/// What a revocation request revokes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevokeRequestRecord {
    /// The request.
    pub request_id: String,
    /// The one certificate (`cert revoke`); `None` for the whole order (`order revoke`).
    pub cert_serial: Option<CertSerial>,
    /// RFC 5280 reason name.
    pub crl_reason: String,
    /// The requester's free text.
    pub detail: Option<String>,
}

const COLUMNS: &str = "request_id, cert_serial, crl_reason, detail";

fn record(r: &AnyRow) -> Result<RevokeRequestRecord, StoreError> {
    let ctx = "reading a revocation request";
    Ok(RevokeRequestRecord {
        request_id: r.try_get("request_id").ctx(ctx)?,
        cert_serial: r
            .try_get::<Option<String>, _>("cert_serial")
            .ctx(ctx)?
            .map(|s| stored_id("revoke_requests.cert_serial", &s))
            .transpose()?,
        crl_reason: r.try_get("crl_reason").ctx(ctx)?,
        detail: r.try_get("detail").ctx(ctx)?,
    })
}

impl Tx {
    /// Records what request `r.request_id` (inserted in this transaction) is to revoke.
    pub async fn insert_revoke_request(
        &mut self,
        r: &RevokeRequestRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoke_requests (request_id, cert_serial, crl_reason, detail) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.request_id)
        .bind(r.cert_serial.as_ref().map(|s| s.as_str().to_string()))
        .bind(&r.crl_reason)
        .bind(r.detail.clone())
        .execute(self.conn())
        .await
        .ctx("recording a revocation request")?;
        Ok(())
    }

    /// What request `id` is to revoke, read inside this transaction.
    pub async fn revoke_request(&mut self, id: &str) -> Result<RevokeRequestRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM revoke_requests WHERE request_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a revocation request")?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?;
        record(&row)
    }
}

impl Store {
    /// What request `id` is to revoke, if it is a revocation request.
    pub async fn revoke_request(
        &self,
        id: &str,
    ) -> Result<Option<RevokeRequestRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM revoke_requests WHERE request_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .ctx("reading a revocation request")?
            .map(|r| record(&r))
            .transpose()
    }
}
