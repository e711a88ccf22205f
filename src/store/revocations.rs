//! Revocations as the station recorded them (the read side: a revocation is written by the
//! transaction that decides it, through `Tx::revoke_certificate`). The station consults them
//! wherever it judges a certificate, so that a certificate it revoked is never reported valid.

use super::{DbContext, Store, StoreError, id_column};
use crate::domain::{CertSerial, OrderNo};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A recorded revocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevocationRecord {
    /// Certificate serial, hex.
    pub serial: CertSerial,
    /// The order it was issued for.
    pub order_no: OrderNo,
    /// RFC 5280 reason name.
    pub reason: String,
    /// Free text the revoker gave.
    pub detail: Option<String>,
    /// When (RFC 3339 UTC).
    pub revoked_at: String,
    /// Who: an operator's name, or the station.
    pub revoked_by: String,
}

impl sqlx::FromRow<'_, AnyRow> for RevocationRecord {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(RevocationRecord {
            serial: id_column(r, "serial", "revocations.serial")?,
            order_no: id_column(r, "order_no", "revocations.order_no")?,
            reason: r.try_get("reason")?,
            detail: r.try_get("detail")?,
            revoked_at: r.try_get("revoked_at")?,
            revoked_by: r.try_get("revoked_by")?,
        })
    }
}

impl Store {
    /// The revocation of the certificate with `serial`, if the station revoked it.
    pub async fn revocation(
        &self,
        serial: &CertSerial,
    ) -> Result<Option<RevocationRecord>, StoreError> {
        sqlx::query_as(
            "SELECT serial, order_no, reason, detail, revoked_at, revoked_by \
             FROM revocations WHERE serial = $1",
        )
        .bind(serial.as_str())
        .fetch_optional(self.pool())
        .await
        .ctx("reading a revocation")
    }
}
