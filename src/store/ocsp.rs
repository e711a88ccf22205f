//! What the OCSP responder reads: a certificate's status by serial, a cheap revision of
//! everything an answer depends on, and the installation's delegated OCSP signer (its
//! certificate and the CKA_ID of its key on the CA token, kept with the installation's material
//! so that every station of the installation answers with it).

use super::{DbContext, Store, StoreError, Tx};
use crate::domain::CertSerial;
use sqlx::Row;
use sqlx::any::AnyRow;

const SIGNER_CERT: &str = "ocsp_signer_cert";
const SIGNER_KEY_ID: &str = "ocsp_signer_key_id";

/// A certificate's status as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuedStatus {
    /// Issued (or its serial reserved for issuance) and not revoked.
    Live,
    /// Revoked: RFC 5280 reason name and revocation time (RFC 3339 UTC).
    Revoked {
        /// The reason name (`keyCompromise`, ...).
        reason: String,
        /// When.
        revoked_at: String,
    },
}

/// Changes when anything an OCSP answer says may have changed: a revocation, an issuance, a new
/// OCSP signer. Reading it is one small query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRevision {
    revocations: i64,
    certificates: i64,
    signer: Option<String>,
}

/// The installation's delegated OCSP signer as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspSignerRecord {
    /// Its certificate (DER).
    pub cert_der: Vec<u8>,
    /// The CKA_ID of its key pair on the CA token.
    pub key_id: Vec<u8>,
}

impl Store {
    /// The status of the certificate `serial` (lower-case hex); `None` when this CA never issued
    /// (nor reserved) that serial.
    pub async fn issued_status(
        &self,
        serial: &CertSerial,
    ) -> Result<Option<IssuedStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT c.status, r.reason, r.revoked_at FROM certificates c \
             LEFT JOIN revocations r ON r.serial = c.serial WHERE c.serial = $1",
        )
        .bind(serial.as_str())
        .fetch_optional(self.pool())
        .await
        .ctx("reading a certificate's status")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let reason: Option<String> = row.try_get(1).ctx("reading a certificate's status")?;
        let revoked_at: Option<String> = row.try_get(2).ctx("reading a certificate's status")?;
        Ok(Some(match (reason, revoked_at) {
            (Some(reason), Some(revoked_at)) => IssuedStatus::Revoked { reason, revoked_at },
            _ => {
                let status: String = row.try_get(0).ctx("reading a certificate's status")?;
                if status == "revoked" {
                    return Err(StoreError::Corrupt(format!(
                        "certificate {serial} is revoked without a revocation record"
                    )));
                }
                IssuedStatus::Live
            }
        }))
    }

    /// The current [`StatusRevision`].
    pub async fn status_revision(&self) -> Result<StatusRevision, StoreError> {
        let row: AnyRow = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM revocations), (SELECT COUNT(*) FROM certificates), \
             (SELECT value FROM station_material WHERE name = $1)",
        )
        .bind(SIGNER_KEY_ID)
        .fetch_one(self.pool())
        .await
        .ctx("reading the revocation revision")?;
        Ok(StatusRevision {
            revocations: row.try_get(0).ctx("reading the revocation revision")?,
            certificates: row.try_get(1).ctx("reading the revocation revision")?,
            signer: row.try_get(2).ctx("reading the revocation revision")?,
        })
    }

    /// The installation's OCSP signer, if one was made.
    pub async fn ocsp_signer(&self) -> Result<Option<OcspSignerRecord>, StoreError> {
        let cert = self.material(SIGNER_CERT).await?;
        let key_id = self.material(SIGNER_KEY_ID).await?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("the OCSP signer's {what}"));
        match (cert, key_id) {
            (None, None) => Ok(None),
            (Some(cert), Some(key_id)) => Ok(Some(OcspSignerRecord {
                cert_der: hex::decode(cert).map_err(|_| corrupt("certificate is not hex"))?,
                key_id: hex::decode(key_id).map_err(|_| corrupt("key id is not hex"))?,
            })),
            _ => Err(corrupt("material is recorded in part only")),
        }
    }
}

impl Tx {
    /// Records `signer` as the installation's OCSP signer, replacing the one before (renewal).
    pub async fn record_ocsp_signer(
        &mut self,
        signer: &OcspSignerRecord,
    ) -> Result<(), StoreError> {
        for (name, value) in [
            (SIGNER_CERT, hex::encode(&signer.cert_der)),
            (SIGNER_KEY_ID, hex::encode(&signer.key_id)),
        ] {
            sqlx::query(
                "INSERT INTO station_material (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(self.conn())
            .await
            .ctx("recording the OCSP signer")?;
        }
        Ok(())
    }
}
