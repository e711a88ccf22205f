//! Storage: orders, documents, journal, audit trail — the ONLY module that speaks SQL.
//!
//! One query text serves both backends through sqlx's `Any` driver (runtime-checked queries,
//! `$n` placeholders, which SQLite also understands); each backend has its own migrations,
//! embedded in the binary (`migrations/sqlite`, `migrations/postgres`). Timestamps are fixed-width
//! RFC 3339 UTC text and booleans 0/1 integers, so both backends store identical values.
//!
//! Invariants:
//! - every state change is ONE transaction together with its audit record ([`Tx::audit`]);
//! - every writing transaction first touches the `audit_head` row ([`Store::begin_write`]): that
//!   serialises writers on both backends and fixes the audit chain's order;
//! - nothing secret is ever written here: PINs only as vault-sealed blobs, destroyed once
//!   their delivery is confirmed; a delivered message only as its vault HMAC.

mod api_tokens;
mod attachments;
mod attempt_journal;
mod audit_log;
mod certificates;
mod company_keys;
mod crls;
mod delivery;
mod error;
mod escrow;
mod fleet;
mod lease;
mod notifications;
mod ocsp;
mod operators;
mod orders;
mod provision;
mod renewals;
mod requests;
mod retired;
mod revocations;
mod revoke_requests;
mod service_requests;
mod station_requests;
mod unlock;
mod webhooks;

pub use api_tokens::{ApiSubmission, ApiTokenRecord, NewApiToken};
pub use attachments::{AttachmentMeta, HashedBytes, KeptPicture, NewAttachment, StoredSealPicture};
pub use audit_log::AuditFilter;
pub use certificates::CertificateRecord;
pub use company_keys::CompanyOrder;
pub use crls::{CrlRecord, CrlSummary, NewCrl};
pub use delivery::{
    AttemptRecord, DeliveryFilter, DeliveryRecord, NewDelivery, SendMaterial, Shipment,
};
pub use error::{Retry, StoreError};
pub use escrow::EscrowedKey;
pub use fleet::{Installation, Registration, StateCount, StationRecord};
pub use lease::{LeaseRequest, LeaseTaken};
pub use notifications::{NewNotification, NoticeAttempt, NotificationRecord};
pub use ocsp::{IssuedStatus, OcspSignerRecord, StatusRevision};
pub use operators::{LoginSecrets, NewOperator, OperatorRecord};
pub use orders::{ChangedAfter, NewOrder, OrderRecord, OrderSummary, Review};
pub use provision::{Binding, StepRecord, StoredPin};
pub use renewals::RenewalLink;
pub use retired::RetiredToken;
pub use revocations::RevocationRecord;
pub use revoke_requests::RevokeRequestRecord;
pub use service_requests::{
    NewServiceRequest, RequestStepRecord, ServiceRequestFilter, ServiceRequestRecord,
};
pub use station_requests::StationRequestRecord;
pub use unlock::{PendingUnlock, SendRecord, SoPinGeneration, UnlockRecord};
pub use webhooks::WebhookEventRecord;

use crate::audit::{AuditEvent, AuditRecord, GENESIS_HASH};
use crate::clock::format_utc;
use crate::domain::{CertSerial, OrderNo, TokenSerial};
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use std::time::Duration;
use time::OffsetDateTime;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (embedded default).
    Sqlite,
    /// PostgreSQL server (several stations share one queue).
    Postgres,
}

/// Shorthand for mapping sqlx errors with a context.
pub(crate) trait DbContext<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| match source {
            // A stored identifier without its form (see [`id_column`]): corrupt data, as
            // [`stored_id`] reports it, not a database failure.
            sqlx::Error::ColumnDecode { index, source }
                if source.is::<crate::domain::InvalidIdentifier>() =>
            {
                StoreError::Corrupt(format!("{index}: {source}"))
            }
            source => StoreError::Db { context, source },
        })
    }
}

/// An identifier read from a row, parsed: a value without its type's form (a bug or tampering)
/// is [`StoreError::Corrupt`] naming the column, e.g. `orders.order_no`.
pub fn stored_id<T>(column: &str, value: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = crate::domain::InvalidIdentifier>,
{
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// The placeholders `$first, $first+1, ...` (`count` of them) of an `IN (...)` list: only they
/// are formatted into a statement's text, the values are bound.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads column `name` of `r` as an identifier. A value without the identifier's form is a
/// decode error naming `column` (`table.column`), which [`DbContext::ctx`] turns into
/// [`StoreError::Corrupt`] as [`stored_id`] does.
pub(crate) fn id_column<T>(r: &AnyRow, name: &str, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr<Err = crate::domain::InvalidIdentifier>,
{
    let text: String = r.try_get(name)?;
    decode_id(&text, column)
}

/// [`id_column`] for a nullable column.
pub(crate) fn opt_id_column<T>(
    r: &AnyRow,
    name: &str,
    column: &str,
) -> Result<Option<T>, sqlx::Error>
where
    T: std::str::FromStr<Err = crate::domain::InvalidIdentifier>,
{
    let text: Option<String> = r.try_get(name)?;
    text.map(|t| decode_id(&t, column)).transpose()
}

fn decode_id<T>(text: &str, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr<Err = crate::domain::InvalidIdentifier>,
{
    text.parse().map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

/// The station's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Who does something, at which station and as part of which operation; goes into every audit
/// record.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Operator name, or `station:<id>` for automated work.
    pub name: String,
    /// The station whose process acts (none only for tools outside a station).
    pub station_id: Option<String>,
    /// Operation id (one per CLI invocation or job).
    pub operation_id: String,
}

/// An audit record to append (seq, hashes and time are filled in by the store).
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// What happened; encoded into the record's action and details by [`AuditEvent::encode`].
    pub event: AuditEvent,
    /// Order concerned.
    pub order_no: Option<OrderNo>,
    /// Token concerned.
    pub token_serial: Option<TokenSerial>,
    /// Certificate concerned.
    pub cert_serial: Option<CertSerial>,
}

impl AuditEntry {
    /// An entry about nothing in particular (the station, a bank file).
    pub fn new(event: AuditEvent) -> Self {
        AuditEntry {
            event,
            order_no: None,
            token_serial: None,
            cert_serial: None,
        }
    }

    /// An entry about an order.
    pub fn order(order_no: &OrderNo, event: AuditEvent) -> Self {
        AuditEntry {
            order_no: Some(order_no.clone()),
            ..AuditEntry::new(event)
        }
    }
}

/// A writing transaction that holds the audit head.
///
/// The head is read once, when the row is taken, and kept here: records appended in the
/// transaction chain to it in memory and wait in it; at [`Tx::commit`] (or before the
/// transaction reads the trail) they are inserted together, up to 64 rows
/// per statement, and the head row is written once, at commit. A transaction dropped without
/// commit loses its records with everything else it wrote.
pub struct Tx {
    inner: Transaction<'static, Any>,
    now: OffsetDateTime,
    /// The chain's head as this transaction sees it: (last seq, its hash).
    head: (i64, String),
    /// Records appended and not yet inserted, in chain order.
    unwritten: Vec<AuditRecord>,
    /// True once a record was appended: the head row is written at commit.
    head_moved: bool,
}

/// Most audit records one `INSERT` carries (12 parameters each: far below SQLite's and
/// PostgreSQL's limits on the parameters of a statement).
const AUDIT_ROWS_PER_INSERT: usize = 64;

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// Takes the audit head row in `inner` (the writers' lock, see the module docs) and reads
    /// the head.
    async fn locked(
        mut inner: Transaction<'static, Any>,
        now: OffsetDateTime,
    ) -> Result<Tx, StoreError> {
        let head =
            sqlx::query("UPDATE audit_head SET touched_at = $1 WHERE id = 1 RETURNING seq, hash")
                .bind(format_utc(now))
                .try_map(audit_log::head_of)
                .fetch_one(&mut *inner)
                .await
                .ctx("locking the audit head")?;
        Ok(Tx {
            inner,
            now,
            head,
            unwritten: Vec::new(),
            head_moved: false,
        })
    }

    /// Appends an audit record inside this transaction, chained to the current head.
    pub async fn audit(&mut self, actor: &Actor, entry: AuditEntry) -> Result<i64, StoreError> {
        let (prev_seq, prev_hash) = self.head.clone();
        let (action, details) = entry.event.encode().map_err(|e| {
            StoreError::Corrupt(format!(
                "the details of a {} record do not encode: {e}",
                entry.event.action()
            ))
        })?;
        let mut rec = AuditRecord {
            seq: prev_seq + 1,
            at: format_utc(self.now),
            actor: actor.name.clone(),
            station_id: actor.station_id.clone(),
            operation_id: actor.operation_id.clone(),
            action,
            order_no: entry.order_no.map(String::from),
            token_serial: entry.token_serial.map(String::from),
            cert_serial: entry.cert_serial.map(String::from),
            details,
            prev_hash,
            hash: String::new(),
        };
        rec.hash = rec.compute_hash();
        self.head = (rec.seq, rec.hash.clone());
        self.head_moved = true;
        self.unwritten.push(rec);
        Ok(self.head.0)
    }

    /// The head of the chain, as this transaction sees it (its own records included).
    pub fn audit_head(&self) -> (i64, String) {
        self.head.clone()
    }

    /// Inserts the records appended and not yet inserted.
    async fn write_audit_records(&mut self) -> Result<(), StoreError> {
        let records = std::mem::take(&mut self.unwritten);
        for rows in records.chunks(AUDIT_ROWS_PER_INSERT) {
            insert_audit_records(&mut self.inner, rows).await?;
        }
        Ok(())
    }

    /// Inserts the records appended, writes the head row if it moved, then commits.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        self.write_audit_records().await?;
        if self.head_moved {
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(self.head.0)
                .bind(&self.head.1)
                .execute(&mut *self.inner)
                .await
                .ctx("advancing the audit head")?;
        }
        self.inner.commit().await.ctx("committing")
    }

    /// The transaction's timestamp (one instant for everything it writes).
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }
}

/// The `INSERT` of `rows` audit records (`$1`... numbered across the rows).
fn audit_insert_sql(rows: usize) -> String {
    const COLUMNS: usize = 12;
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", placeholders(r * COLUMNS + 1, COLUMNS)))
        .collect();
    format!(
        "INSERT INTO audit_events (seq, at, actor, station_id, operation_id, action, order_no, \
         token_serial, cert_serial, details, prev_hash, hash) VALUES {}",
        values.join(", ")
    )
}

/// Inserts `rows` in one statement.
async fn insert_audit_records(
    conn: &mut sqlx::AnyConnection,
    rows: &[AuditRecord],
) -> Result<(), StoreError> {
    // Built from a count only: no value reaches the text, every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(audit_insert_sql(rows.len())));
    for rec in rows {
        q = q
            .bind(rec.seq)
            .bind(&rec.at)
            .bind(&rec.actor)
            .bind(&rec.station_id)
            .bind(&rec.operation_id)
            .bind(&rec.action)
            .bind(&rec.order_no)
            .bind(&rec.token_serial)
            .bind(&rec.cert_serial)
            .bind(&rec.details)
            .bind(&rec.prev_hash)
            .bind(&rec.hash);
    }
    q.execute(conn).await.ctx("appending audit records")?;
    Ok(())
}

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL: readers never block the writer; FULL sync: a committed step survives
                    // a power cut; busy_timeout: a second writer waits instead of failing.
                    sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(url).await.ctx("connecting to the database")?;
        // Personal data: the database file (and the -wal / -shm SQLite derives from it) 0600.
        crate::private_files::restrict_sqlite_files(url).map_err(|e| {
            StoreError::Corrupt(format!("cannot restrict the database file's mode: {e}"))
        })?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("src/store/migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("src/store/migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a writing transaction: takes the audit head row first (see module docs).
    pub async fn begin_write(&self, now: OffsetDateTime) -> Result<Tx, StoreError> {
        let inner = self.pool.begin().await.ctx("beginning a transaction")?;
        Tx::locked(inner, now).await
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The hash a fresh chain starts from (re-exported for tests and `audit verify`).
pub const EMPTY_CHAIN_HEAD: &str = GENESIS_HASH;

#[cfg(test)]
mod tests;
