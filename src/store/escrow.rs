//! The key-management escrow: the sealed copy of each encryption private key the station made
//! for an SM2 dual certificate, under its certificate's serial.

use super::{DbContext, Store, StoreError, Tx, id_column};
use crate::clock::format_utc;
use crate::domain::{CertSerial, OrderNo, SealedKey};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An escrowed encryption key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowedKey {
    /// The encryption certificate's serial.
    pub serial: CertSerial,
    /// The order.
    pub order_no: OrderNo,
    /// The public key, hex `04 ‖ x ‖ y`.
    pub public_point: String,
    /// The private key, sealed by the vault.
    pub sealed: SealedKey,
    /// When escrowed (RFC 3339).
    pub escrowed_at: String,
}

impl sqlx::FromRow<'_, AnyRow> for EscrowedKey {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(EscrowedKey {
            serial: id_column(r, "serial", "escrowed_keys.serial")?,
            order_no: id_column(r, "order_no", "escrowed_keys.order_no")?,
            public_point: r.try_get("public_point")?,
            sealed: SealedKey(r.try_get("sealed")?),
            escrowed_at: r.try_get("escrowed_at")?,
        })
    }
}

impl Tx {
    /// Escrows the sealed private key of encryption certificate `serial` (its row must exist).
    pub async fn put_escrowed_key(
        &mut self,
        serial: &CertSerial,
        order_no: &OrderNo,
        public_point_hex: &str,
        sealed: &SealedKey,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO escrowed_keys (serial, order_no, public_point, sealed, escrowed_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(serial.as_str())
        .bind(order_no.as_str())
        .bind(public_point_hex)
        .bind(&sealed.0)
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("escrowing an encryption key")?;
        Ok(())
    }
}

impl Store {
    /// The escrowed encryption keys of an order, oldest first.
    pub async fn escrowed_keys(&self, order_no: &OrderNo) -> Result<Vec<EscrowedKey>, StoreError> {
        sqlx::query_as(
            "SELECT serial, order_no, public_point, sealed, escrowed_at FROM escrowed_keys \
             WHERE order_no = $1 ORDER BY escrowed_at, serial",
        )
        .bind(order_no.as_str())
        .fetch_all(self.pool())
        .await
        .ctx("reading escrowed keys")
    }
}
