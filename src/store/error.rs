//! The store's errors, and retrying a transaction after a transient one.

use crate::domain::OrderNo;
use std::time::Duration;

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
    /// The subject has an open station request of this kind already.
    #[error("{subject} already has an open {kind} request: approve, reject or cancel it first")]
    StationRequestOpen {
        /// What it is about (`operator:NAME`, `api_token:ID`, ...).
        subject: String,
        /// The kind.
        kind: &'static str,
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
            StoreError::RequestOpen { .. } | StoreError::StationRequestOpen { .. } => {
                ec::REQUEST_OPEN
            }
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
