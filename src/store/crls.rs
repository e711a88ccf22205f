//! Certificate revocation lists: each one the installation issued, with its number.
//!
//! Invariant: a CRL number is allocated only by [`Tx::record_crl`], as one more than the largest
//! recorded, inside the transaction that records the CRL. That transaction holds the audit head
//! (see [`Store::begin_write`]), which serialises the writers of every station sharing the
//! database, so numbers never repeat and only grow; the primary key on `crls.number` refuses a
//! reused one all the same.

use super::revocations::RevocationRecord;
use super::{DbContext, Store, StoreError, Tx};
use crate::clock::format_utc;
use time::OffsetDateTime;

/// A recorded CRL.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CrlRecord {
    /// CRL number.
    pub number: i64,
    /// thisUpdate (RFC 3339 UTC).
    pub this_update: String,
    /// nextUpdate (RFC 3339 UTC).
    pub next_update: String,
    /// The signed CRL.
    pub der: Vec<u8>,
    /// The station that issued it.
    pub station_id: String,
    /// How many revoked certificates it lists.
    pub entries: i64,
}

/// A CRL as the history lists it (without its DER).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct CrlSummary {
    /// CRL number.
    pub number: i64,
    /// thisUpdate (RFC 3339 UTC).
    pub this_update: String,
    /// nextUpdate (RFC 3339 UTC).
    pub next_update: String,
    /// The station that issued it.
    pub station_id: String,
    /// How many revoked certificates it lists.
    pub entries: i64,
}

/// A CRL made for the number [`Tx::record_crl`] allocated.
#[derive(Debug, Clone)]
pub struct NewCrl {
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The signed CRL, carrying the allocated number.
    pub der: Vec<u8>,
    /// How many revoked certificates it lists.
    pub entries: i64,
}

impl Tx {
    /// Every revocation recorded, oldest first: what a full CRL lists.
    pub async fn all_revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError> {
        sqlx::query_as(
            "SELECT serial, order_no, reason, detail, revoked_at, revoked_by \
             FROM revocations ORDER BY revoked_at, serial",
        )
        .fetch_all(self.conn())
        .await
        .ctx("listing revocations for a CRL")
    }

    /// thisUpdate, nextUpdate and entries of the newest CRL, as this transaction sees them.
    pub async fn newest_crl_times(&mut self) -> Result<Option<(String, String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT this_update, next_update, entries FROM crls ORDER BY number DESC LIMIT 1",
        )
        .fetch_optional(self.conn())
        .await
        .ctx("reading the newest CRL")
    }

    /// Allocates the next CRL number, has `make` build and sign the CRL carrying it, and
    /// records that CRL as issued by `station_id` (see the module docs). An error of `make`
    /// records nothing; the caller's transaction is then dropped, not committed.
    pub async fn record_crl<E: From<StoreError>>(
        &mut self,
        station_id: &str,
        make: impl FnOnce(i64) -> Result<NewCrl, E>,
    ) -> Result<CrlRecord, E> {
        let (number,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(number), 0) + 1 FROM crls")
            .fetch_one(self.conn())
            .await
            .ctx("allocating a CRL number")?;
        let crl = make(number)?;
        let record = CrlRecord {
            number,
            this_update: format_utc(crl.this_update),
            next_update: format_utc(crl.next_update),
            der: crl.der,
            station_id: station_id.to_string(),
            entries: crl.entries,
        };
        sqlx::query(
            "INSERT INTO crls (number, this_update, next_update, der, station_id, entries) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.number)
        .bind(&record.this_update)
        .bind(&record.next_update)
        .bind(&record.der)
        .bind(&record.station_id)
        .bind(record.entries)
        .execute(self.conn())
        .await
        .ctx("recording a CRL")?;
        Ok(record)
    }
}

impl Store {
    /// The CRL with the largest number, if any was issued.
    pub async fn newest_crl(&self) -> Result<Option<CrlRecord>, StoreError> {
        sqlx::query_as(
            "SELECT number, this_update, next_update, der, station_id, entries \
             FROM crls ORDER BY number DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await
        .ctx("reading the newest CRL")
    }

    /// The CRLs issued, newest first, at most `limit`.
    pub async fn crl_history(&self, limit: i64) -> Result<Vec<CrlSummary>, StoreError> {
        sqlx::query_as(
            "SELECT number, this_update, next_update, station_id, entries \
             FROM crls ORDER BY number DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .ctx("listing CRLs")
    }

    /// How many revocations are recorded (they are never removed: a count above a CRL's
    /// `entries` means a revocation that CRL does not list).
    pub async fn revocation_count(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM revocations")
            .fetch_one(self.pool())
            .await
            .ctx("counting revocations")?;
        Ok(n)
    }
}
