//! Revocations as the station recorded them (the read side: a revocation is written by the
//! transaction that decides it, through `Tx::revoke_certificate`). The station consults them
//! wherever it judges a certificate, so that a certificate it revoked is never reported valid.

use super::{DbContext, Store, StoreError};

/// A recorded revocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RevocationRecord {
    /// Certificate serial, hex.
    pub serial: String,
    /// The order it was issued for.
    pub order_no: String,
    /// RFC 5280 reason name.
    pub reason: String,
    /// Free text the revoker gave.
    pub detail: Option<String>,
    /// When (RFC 3339 UTC).
    pub revoked_at: String,
    /// Who: an operator's name, or the station.
    pub revoked_by: String,
}

impl Store {
    /// The revocation of the certificate with `serial` (hex), if the station revoked it.
    pub async fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, StoreError> {
        sqlx::query_as(
            "SELECT serial, order_no, reason, detail, revoked_at, revoked_by \
             FROM revocations WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(self.pool())
        .await
        .ctx("reading a revocation")
    }
}
