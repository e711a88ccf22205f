//! Certificate records: what the CA issued for an order, their status, their revocation.

use super::provision::parse_status;
use super::{DbContext, Store, StoreError, Tx, id_column, opt_id_column};
use crate::clock::format_utc;
use crate::domain::{
    BindingId, CertSerial, CertificatePurpose, CertificateStatus, OrderNo, TokenSerial,
};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateRecord {
    /// Serial, hex.
    pub serial: CertSerial,
    /// The order.
    pub order_no: OrderNo,
    /// The binding it was issued for.
    pub binding_id: BindingId,
    /// The token it is meant for.
    pub token_serial: Option<TokenSerial>,
    /// DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// SHA-256 fingerprint, hex.
    pub fingerprint_sha256: String,
    /// Validity start (RFC 3339).
    pub not_before: String,
    /// Validity end (RFC 3339).
    pub not_after: String,
    /// Where it stands.
    pub status: CertificateStatus,
    /// When issued.
    pub issued_at: String,
    /// What its key is for (signing, or the encryption key of a dual certificate).
    pub purpose: CertificatePurpose,
}

impl sqlx::FromRow<'_, AnyRow> for CertificateRecord {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(CertificateRecord {
            serial: id_column(r, "serial", "certificates.serial")?,
            order_no: id_column(r, "order_no", "certificates.order_no")?,
            binding_id: id_column(r, "binding_id", "certificates.binding_id")?,
            token_serial: opt_id_column(r, "token_serial", "certificates.token_serial")?,
            der: r.try_get("der")?,
            fingerprint_sha256: r.try_get("fingerprint_sha256")?,
            not_before: r.try_get("not_before")?,
            not_after: r.try_get("not_after")?,
            status: parse_status(r, "certificates.status")?,
            issued_at: r.try_get("issued_at")?,
            purpose: {
                let text: String = r.try_get("purpose")?;
                text.parse().map_err(|e| sqlx::Error::ColumnDecode {
                    index: "certificates.purpose".into(),
                    source: Box::new(e),
                })?
            },
        })
    }
}

const CERT_COLUMNS: &str = "serial, order_no, binding_id, token_serial, der, fingerprint_sha256, not_before, \
     not_after, status, issued_at, purpose";

impl Tx {
    /// Records an issued certificate (status `issued`, not yet on the token).
    pub async fn insert_certificate(&mut self, c: &CertificateRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO certificates (serial, order_no, binding_id, token_serial, der, fingerprint_sha256, \
             not_before, not_after, status, issued_at, purpose) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.serial.as_str())
        .bind(c.order_no.as_str())
        .bind(c.binding_id.as_str())
        .bind(c.token_serial.as_ref().map(TokenSerial::as_str))
        .bind(&c.der)
        .bind(&c.fingerprint_sha256)
        .bind(&c.not_before)
        .bind(&c.not_after)
        .bind(c.status.as_str())
        .bind(&c.issued_at)
        .bind(c.purpose.as_str())
        .execute(self.conn())
        .await
        .ctx("recording a certificate")?;
        Ok(())
    }

    /// Fills in a reserved certificate once the CA has signed it (status `issued`).
    pub async fn certificate_issued(&mut self, c: &CertificateRecord) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE certificates SET der = $1, fingerprint_sha256 = $2, not_before = $3, not_after = $4, \
             status = 'issued' WHERE serial = $5 AND status = 'reserved'",
        )
        .bind(&c.der)
        .bind(&c.fingerprint_sha256)
        .bind(&c.not_before)
        .bind(&c.not_after)
        .bind(c.serial.as_str())
        .execute(self.conn())
        .await
        .ctx("recording an issued certificate")?;
        Ok(())
    }

    /// Marks a certificate as written to its token.
    pub async fn certificate_on_token(&mut self, serial: &CertSerial) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE certificates SET status = 'on_token' WHERE serial = $1 AND status = 'issued'",
        )
        .bind(serial.as_str())
        .execute(self.conn())
        .await
        .ctx("marking a certificate on its token")?;
        Ok(())
    }

    /// Revokes a certificate: status + a revocations row.
    pub async fn revoke_certificate(
        &mut self,
        serial: &CertSerial,
        order_no: &OrderNo,
        reason: &str,
        detail: &str,
        by: &str,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query("UPDATE certificates SET status = 'revoked' WHERE serial = $1")
            .bind(serial.as_str())
            .execute(self.conn())
            .await
            .ctx("revoking a certificate")?;
        sqlx::query(
            "INSERT INTO revocations (serial, order_no, reason, detail, revoked_at, revoked_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (serial) DO NOTHING",
        )
        .bind(serial.as_str())
        .bind(order_no.as_str())
        .bind(reason)
        .bind(detail)
        .bind(&now)
        .bind(by)
        .execute(self.conn())
        .await
        .ctx("recording a revocation")?;
        Ok(())
    }

    /// Revokes each of `certs` (the certificates of `order_no`) not revoked yet, as
    /// [`Tx::revoke_certificate`] does; returns their serials, in the order given.
    pub async fn revoke_live_certificates(
        &mut self,
        certs: &[CertificateRecord],
        order_no: &OrderNo,
        reason: &str,
        detail: &str,
        by: &str,
    ) -> Result<Vec<CertSerial>, StoreError> {
        let mut revoked = Vec::new();
        for c in certs
            .iter()
            .filter(|c| c.status != CertificateStatus::Revoked)
        {
            self.revoke_certificate(&c.serial, order_no, reason, detail, by)
                .await?;
            revoked.push(c.serial.clone());
        }
        Ok(revoked)
    }

    /// The certificates of the order holding certificate `serial` (none when no certificate has
    /// that serial), read inside this transaction.
    pub async fn certificates_beside(
        &mut self,
        serial: &CertSerial,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE order_no = \
             (SELECT order_no FROM certificates WHERE serial = $1) ORDER BY issued_at, serial"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(serial.as_str())
            .fetch_all(self.conn())
            .await
            .ctx("reading certificates")
    }
}

impl Store {
    /// Certificates issued for an order, oldest first.
    pub async fn certificates_of_order(
        &self,
        order_no: &OrderNo,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE order_no = $1 ORDER BY issued_at, serial"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(order_no.as_str())
            .fetch_all(self.pool())
            .await
            .ctx("reading certificates")
    }

    /// Every certificate (for `check`).
    pub async fn all_certificates(&self) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates ORDER BY issued_at, serial");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .ctx("reading certificates")
    }
}
