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

mod audit_log;
mod company_keys;
mod crls;
mod delivery;
mod fleet;
mod lease;
mod notifications;
mod ocsp;
mod operators;
mod orders;
mod provision;
mod renewals;
mod retired;
mod revocations;
mod service_requests;
mod unlock;

pub use audit_log::AuditFilter;
pub use company_keys::CompanyOrder;
pub use crls::{CrlRecord, CrlSummary, NewCrl};
pub use delivery::{AttemptRecord, DeliveryFilter, DeliveryRecord, NewDelivery, Shipment};
pub use fleet::{Installation, Registration, StateCount, StationRecord};
pub use lease::{LeaseRequest, LeaseTaken};
pub use notifications::{NewNotification, NoticeAttempt, NotificationRecord};
pub use ocsp::{IssuedStatus, OcspSignerRecord, StatusRevision};
pub use operators::{NewOperator, OperatorRecord};
pub use orders::{AttachmentMeta, NewAttachment, NewOrder, OrderRecord, OrderSummary, Review};
pub use provision::{Binding, CertificateRecord, StepRecord, StoredPin};
pub use renewals::RenewalLink;
pub use retired::RetiredToken;
pub use revocations::RevocationRecord;
pub use service_requests::{
    NewServiceRequest, RequestStepRecord, ServiceRequestFilter, ServiceRequestRecord,
};
pub use unlock::{PendingUnlock, SendRecord, SoPinGeneration, UnlockRecord};

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

/// Storage errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error during `context`.
    #[error("database error while {context}: {source}")]
    Db {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An order with this number already exists.
    #[error("order {0} already exists")]
    DuplicateOrder(OrderNo),
    /// No order with this number.
    #[error("no order {0}")]
    OrderNotFound(OrderNo),
    /// The order changed under us (another operator or station acted first).
    #[error("order {order_no} is {actual}, not {expected}: another operator or station changed it")]
    StateConflict {
        /// The order.
        order_no: OrderNo,
        /// The state we acted on.
        expected: crate::domain::OrderState,
        /// The state it is in now.
        actual: crate::domain::OrderState,
    },
    /// The domain refused the transition.
    #[error("order {order_no}: {source}")]
    Illegal {
        /// The order.
        order_no: OrderNo,
        /// Why.
        source: crate::domain::order::IllegalTransition,
    },
    /// The token is already bound to another order (or the order to another token).
    #[error("token {0} is already bound to an order")]
    TokenInUse(String),
    /// The order has a shipment already.
    #[error("order {0} was already shipped")]
    AlreadyShipped(OrderNo),
    /// The order already has a delivery that is not cancelled.
    #[error("order {0} already has a PIN delivery")]
    DeliveryExists(OrderNo),
    /// No delivery with this id.
    #[error("no delivery {0}")]
    DeliveryNotFound(String),
    /// The delivery changed under us (another worker or operator acted first).
    #[error("delivery {id} is no longer {expected}: another worker or operator changed it")]
    DeliveryConflict {
        /// The delivery.
        id: String,
        /// The state we acted on.
        expected: crate::domain::DeliveryState,
    },
    /// Stored data that does not parse (a bug or tampering); names what.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another process that may still run holds the job's lease.
    #[error("{subject} is being worked on by {holder} (its lease runs to {expires_at})")]
    LeaseHeld {
        /// The job's subject (the order number).
        subject: String,
        /// Who holds it.
        holder: String,
        /// Until when, unless renewed.
        expires_at: String,
    },
    /// The database already holds an installation (its material is never overwritten).
    #[error(
        "this database already holds an installation: a new station joins it (init with the \
         installation's station PIN and its HSM) instead of creating another"
    )]
    InstallationExists,
    /// The installation already has a station of this id.
    #[error("the installation already has a station {0}: give this one another --station-id")]
    StationExists(String),
    /// The job's lease is no longer its own (it expired and another process took it over).
    #[error("the lease on {subject} was lost: another process took the job over")]
    LeaseLost {
        /// The job's subject (the order number).
        subject: String,
    },
    /// No service request with this id.
    #[error("no service request {0}")]
    RequestNotFound(String),
    /// The order has an open request of this kind already.
    #[error("order {order_no} already has an open {kind} request: decide, run or cancel it first")]
    RequestOpen {
        /// The order.
        order_no: String,
        /// The kind.
        kind: crate::domain::RequestKind,
    },
    /// The domain refused the request's move (the four-eyes rule, or its state).
    #[error("service request {id}: {source}")]
    Request {
        /// The request.
        id: String,
        /// Why.
        source: crate::domain::RequestError,
    },
    /// A secondary key without its company's live main key (approval or provisioning refused).
    #[error("order {order_no} is refused: {source}")]
    MainKey {
        /// The secondary-key order.
        order_no: OrderNo,
        /// Why (names the main-key order).
        source: crate::domain::secondary_key::MainKeyRefusal,
    },
    /// An unlock request code was used for a request before.
    #[error(
        "this unlock request code was used for a request already: the customer runs `keystation-unlock request` again for a new one"
    )]
    UnlockCodeUsed,
    /// The request changed under us (another operator or run acted first).
    #[error("service request {id} is no longer {expected}: another operator or run changed it")]
    RequestConflict {
        /// The request.
        id: String,
        /// The state we acted on.
        expected: crate::domain::RequestState,
    },
    /// The operator may not act (unregistered, disabled, without the role, bad credential).
    #[error(transparent)]
    Operator(#[from] crate::domain::OperatorRefused),
}

impl crate::error_code::Coded for StoreError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            StoreError::Db { .. } => ec::DB,
            StoreError::Migrate(_) => ec::DB_MIGRATION,
            StoreError::DuplicateOrder(_) => ec::ORDER_EXISTS,
            StoreError::OrderNotFound(_) => ec::ORDER_NOT_FOUND,
            StoreError::StateConflict { .. } => ec::ORDER_CHANGED,
            StoreError::Illegal { .. } => ec::ORDER_TRANSITION,
            StoreError::TokenInUse(_) => ec::TOKEN_IN_USE,
            StoreError::AlreadyShipped(_) => ec::ORDER_SHIPPED,
            StoreError::DeliveryExists(_) => ec::DELIVERY_EXISTS,
            StoreError::DeliveryNotFound(_) => ec::DELIVERY_NOT_FOUND,
            StoreError::DeliveryConflict { .. } => ec::DELIVERY_CHANGED,
            StoreError::Corrupt(_) => ec::STORE_CORRUPT,
            StoreError::LeaseHeld { .. } => ec::LEASE_HELD,
            StoreError::LeaseLost { .. } => ec::LEASE_LOST,
            StoreError::StationExists(_) => ec::STATION_EXISTS,
            StoreError::InstallationExists => ec::INSTALLATION_EXISTS,
            StoreError::RequestNotFound(_) => ec::REQUEST_NOT_FOUND,
            StoreError::RequestOpen { .. } => ec::REQUEST_OPEN,
            StoreError::UnlockCodeUsed => ec::UNLOCK_CODE_USED,
            StoreError::Request {
                source: crate::domain::RequestError::SameOperator { .. },
                ..
            } => ec::REQUEST_SAME_OPERATOR,
            StoreError::Request { .. } => ec::REQUEST_TRANSITION,
            StoreError::MainKey { .. } => ec::MAIN_KEY_NOT_LIVE,
            StoreError::RequestConflict { .. } => ec::REQUEST_CHANGED,
            StoreError::Operator(e) => e.code(),
        }
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

impl StoreError {
    /// True for failures that go away by themselves: the database restarting or unreachable for
    /// a moment, a lost connection, SQLite busy or locked, a serialisation conflict. A whole
    /// transaction may be retried after one of these ([`Retry`]).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db { source, .. } => transient(source),
            _ => false,
        }
    }
}

fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, connection
            // exceptions, serialisation failure, deadlock.
            Some("57P01" | "57P02" | "57P03" | "08000" | "08001" | "08003" | "08004" | "08006" | "40001" | "40P01")
            // SQLite: BUSY, LOCKED and their extended codes.
            | Some("5" | "6" | "261" | "262" | "517" | "773")
        ),
        _ => false,
    }
}

/// Retrying a whole transaction after a transient failure, for up to two minutes with backoff:
///
/// ```ignore
/// let mut retry = Retry::new();
/// loop {
///     let r = async { let mut tx = store.begin_write(now).await?; /* writes */ tx.commit().await }.await;
///     if retry.again(&r).await { continue; }
///     break r;
/// }
/// ```
///
/// The transaction is run again from the start, so it must only write what it can write again
/// (values computed before it). A commit whose acknowledgement is lost may be applied twice; every
/// write of the station is idempotent except the audit append, which then shows the step twice.
#[derive(Debug)]
pub struct Retry {
    started: std::time::Instant,
    delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry::new()
    }
}

impl Retry {
    /// How long a transient failure is retried.
    pub const FOR: Duration = Duration::from_secs(120);

    /// A fresh retry budget.
    pub fn new() -> Retry {
        Retry {
            started: std::time::Instant::now(),
            delay: Duration::from_millis(200),
        }
    }

    /// After a transient failure (and while the budget lasts): waits, then true — run again.
    pub async fn again<T>(&mut self, result: &Result<T, StoreError>) -> bool {
        match result {
            Err(e) if e.is_transient() && self.started.elapsed() < Self::FOR => {
                tracing::warn!(error = %e, "database unavailable; retrying the transaction");
                tokio::time::sleep(self.delay).await;
                self.delay = (self.delay * 2).min(Duration::from_secs(5));
                true
            }
            _ => false,
        }
    }
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
pub struct Tx {
    inner: Transaction<'static, Any>,
    now: OffsetDateTime,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Tx {
    /// Appends an audit record inside this transaction, chained to the current head.
    pub async fn audit(&mut self, actor: &Actor, entry: AuditEntry) -> Result<i64, StoreError> {
        let (prev_seq, prev_hash) = self.audit_head().await?;
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
        sqlx::query(
            "INSERT INTO audit_events (seq, at, actor, station_id, operation_id, action, order_no, \
             token_serial, cert_serial, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
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
        .bind(&rec.hash)
        .execute(&mut *self.inner)
        .await
        .ctx("appending an audit record")?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(rec.seq)
            .bind(&rec.hash)
            .execute(&mut *self.inner)
            .await
            .ctx("advancing the audit head")?;
        Ok(rec.seq)
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
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
        let mut inner = self.pool.begin().await.ctx("beginning a transaction")?;
        sqlx::query("UPDATE audit_head SET touched_at = $1 WHERE id = 1")
            .bind(format_utc(now))
            .execute(&mut *inner)
            .await
            .ctx("locking the audit head")?;
        Ok(Tx { inner, now })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The hash a fresh chain starts from (re-exported for tests and `audit verify`).
pub const EMPTY_CHAIN_HEAD: &str = GENESIS_HASH;

#[cfg(test)]
mod tests;
