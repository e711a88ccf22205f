//! Provisioning records: token bindings, the step journal, sealed PINs (certificates are in
//! `certificates.rs`).

use super::orders::transition;
use super::{DbContext, Store, StoreError, Tx, id_column, opt_id_column};
use crate::clock::format_utc;
use crate::domain::{
    BindingId, OrderEvent, OrderNo, OrderState, SealedPin, StepStatus, TokenSerial,
};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A sealed PIN as the store keeps it: the blob and the token it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPin {
    /// The token the PIN opens (part of the blob's additional data).
    pub token_serial: TokenSerial,
    /// The blob.
    pub sealed: SealedPin,
}

/// An order's binding to a token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    /// Binding id (UUID).
    pub binding_id: BindingId,
    /// The order.
    pub order_no: OrderNo,
    /// The station that claimed it.
    pub station_id: String,
    /// What the token's SO PIN is derived from.
    pub so_identity: String,
    /// The token's serial, once known.
    pub token_serial: Option<TokenSerial>,
    /// The label given to the token (the order number).
    pub token_label: String,
    /// Key algorithm (config spelling).
    pub key_algorithm: String,
    /// CKA_ID of the key pair, hex.
    pub key_id: Option<String>,
    /// SubjectPublicKeyInfo of the key pair.
    #[serde(skip)]
    pub public_key: Option<Vec<u8>>,
    /// When bound.
    pub bound_at: String,
    /// A renewal onto the company's existing key: the original's binding this one continues
    /// on (the token is kept, not re-initialised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_from: Option<BindingId>,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepRecord {
    /// Attempt number (a restart from the beginning opens a new attempt).
    pub attempt: i64,
    /// Step name.
    pub step: String,
    /// Where the step stands.
    pub status: StepStatus,
    /// When started.
    pub started_at: String,
    /// When finished.
    pub finished_at: Option<String>,
    /// Error or facts.
    pub detail: Option<String>,
}

/// Reads the `status` column of `r` as a `T`; an unknown value is an error naming `column`.
/// (Written out rather than derived: sqlx's derived `try_from` loses the parse error's text.)
pub(super) fn parse_status<T>(r: &AnyRow, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.try_get("status")?;
    text.parse().map_err(|e: T::Err| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

impl sqlx::FromRow<'_, AnyRow> for Binding {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Binding {
            binding_id: id_column(r, "binding_id", "token_bindings.binding_id")?,
            order_no: id_column(r, "order_no", "token_bindings.order_no")?,
            station_id: r.try_get("station_id")?,
            so_identity: r.try_get("so_identity")?,
            token_serial: opt_id_column(r, "token_serial", "token_bindings.token_serial")?,
            token_label: r.try_get("token_label")?,
            key_algorithm: r.try_get("key_algorithm")?,
            key_id: r.try_get("key_id")?,
            public_key: r.try_get("public_key")?,
            bound_at: r.try_get("bound_at")?,
            kept_from: opt_id_column(r, "kept_from", "token_bindings.kept_from")?,
        })
    }
}

impl sqlx::FromRow<'_, AnyRow> for StepRecord {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(StepRecord {
            attempt: r.try_get("attempt")?,
            step: r.try_get("step")?,
            status: parse_status(r, "provision_steps.status")?,
            started_at: r.try_get("started_at")?,
            finished_at: r.try_get("finished_at")?,
            detail: r.try_get("detail")?,
        })
    }
}

/// A unique-index violation on token_bindings means the token (or the order) is already bound.
fn token_in_use(e: sqlx::Error, token: &str, context: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::TokenInUse(token.to_string())
        }
        _ => StoreError::Db { context, source: e },
    }
}

const BINDING_COLUMNS: &str = "binding_id, order_no, station_id, so_identity, token_serial, token_label, \
     key_algorithm, key_id, public_key, bound_at, kept_from";

impl Tx {
    /// Applies an order event inside this transaction (see `orders::transition`).
    pub async fn transition(
        &mut self,
        order_no: &OrderNo,
        expected: Option<OrderState>,
        event: OrderEvent,
    ) -> Result<OrderState, StoreError> {
        transition(self, order_no, expected, event).await
    }

    /// Journals a step as started (a new row, or a retried step restarted).
    pub async fn step_started(
        &mut self,
        order_no: &OrderNo,
        attempt: i64,
        step: &str,
    ) -> Result<(), StoreError> {
        self.step_recorded(order_no, attempt, step, StepStatus::Started, None)
            .await
    }

    /// Journals a step as finished (`done` or `failed`).
    pub async fn step_finished(
        &mut self,
        order_no: &OrderNo,
        attempt: i64,
        step: &str,
        status: StepStatus,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "UPDATE provision_steps SET status = $1, finished_at = $2, detail = $3 \
             WHERE order_no = $4 AND attempt = $5 AND step = $6",
        )
        .bind(status.as_str())
        .bind(&now)
        .bind(detail)
        .bind(order_no.as_str())
        .bind(attempt)
        .bind(step)
        .execute(self.conn())
        .await
        .ctx("journaling a step end")?;
        Ok(())
    }

    /// Writes a step's row (new, or replacing a retried step's) as `status` at this
    /// transaction's instant: started, with no end and no detail; or started and finished then,
    /// in one statement (what [`Tx::step_started`] then [`Tx::step_finished`] would leave).
    pub async fn step_recorded(
        &mut self,
        order_no: &OrderNo,
        attempt: i64,
        step: &str,
        status: StepStatus,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let finished_at = (status != StepStatus::Started).then_some(now.as_str());
        sqlx::query(
            "INSERT INTO provision_steps (order_no, attempt, step, status, started_at, \
             finished_at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (order_no, attempt, step) DO UPDATE SET status = $4, started_at = $5, \
             finished_at = $6, detail = $7",
        )
        .bind(order_no.as_str())
        .bind(attempt)
        .bind(step)
        .bind(status.as_str())
        .bind(now.as_str())
        .bind(finished_at)
        .bind(detail)
        .execute(self.conn())
        .await
        .ctx("journaling a step")?;
        Ok(())
    }

    /// Creates an order's binding.
    pub async fn insert_binding(&mut self, b: &Binding) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO token_bindings (binding_id, order_no, station_id, so_identity, token_serial, \
             token_label, key_algorithm, key_id, public_key, bound_at, kept_from) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(b.binding_id.as_str())
        .bind(b.order_no.as_str())
        .bind(&b.station_id)
        .bind(&b.so_identity)
        .bind(b.token_serial.as_ref().map(TokenSerial::as_str))
        .bind(&b.token_label)
        .bind(&b.key_algorithm)
        .bind(&b.key_id)
        .bind(&b.public_key)
        .bind(&b.bound_at)
        .bind(b.kept_from.as_ref().map(BindingId::as_str))
        .execute(self.conn())
        .await
        .map_err(|e| {
            let token = b
                .token_serial
                .as_ref()
                .map_or(b.order_no.as_str(), TokenSerial::as_str);
            token_in_use(e, token, "binding a token")
        })?;
        Ok(())
    }

    /// Releases an order's active binding (rollback, or a token that gave up).
    pub async fn release_binding(
        &mut self,
        binding_id: &BindingId,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "UPDATE token_bindings SET released_at = $1, release_reason = $2 \
             WHERE binding_id = $3 AND released_at IS NULL",
        )
        .bind(&now)
        .bind(reason)
        .bind(binding_id.as_str())
        .execute(self.conn())
        .await
        .ctx("releasing a binding")?;
        Ok(())
    }

    /// Records the serial a token got or has, and with it the SO PIN identity when the token's
    /// SO PIN derives from something new (a blank token's factory serial, a retired key's
    /// identity), which is recorded before the token is initialised; `None` keeps the
    /// binding's identity (SoftHSM: the serial comes at `C_InitToken`).
    pub async fn set_binding_serial(
        &mut self,
        binding_id: &BindingId,
        serial: &TokenSerial,
        so_identity: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE token_bindings SET token_serial = $1, so_identity = COALESCE($2, so_identity) \
             WHERE binding_id = $3",
        )
        .bind(serial.as_str())
        .bind(so_identity)
        .bind(binding_id.as_str())
        .execute(self.conn())
        .await
        .map_err(|e| token_in_use(e, serial.as_str(), "recording a token serial"))?;
        Ok(())
    }

    /// Records the key pair generated on the token.
    pub async fn set_binding_key(
        &mut self,
        binding_id: &BindingId,
        key_id_hex: &str,
        spki_der: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE token_bindings SET key_id = $1, public_key = $2 WHERE binding_id = $3")
            .bind(key_id_hex)
            .bind(spki_der)
            .bind(binding_id.as_str())
            .execute(self.conn())
            .await
            .ctx("recording a key pair")?;
        Ok(())
    }

    /// Stores (or replaces) the vault-sealed user PIN of an order.
    pub async fn put_sealed_pin(
        &mut self,
        order_no: &OrderNo,
        token_serial: &TokenSerial,
        sealed: &SealedPin,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO sealed_pins (order_no, token_serial, sealed, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (order_no) DO UPDATE SET token_serial = $2, sealed = $3, created_at = $4",
        )
        .bind(order_no.as_str())
        .bind(token_serial.as_str())
        .bind(&sealed.0)
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("storing a sealed PIN")?;
        Ok(())
    }

    /// Writes a station material fact (CA certificate fingerprint, key labels).
    pub async fn put_material(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO station_material (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = $2",
        )
        .bind(name)
        .bind(value)
        .execute(self.conn())
        .await
        .ctx("recording station material")?;
        Ok(())
    }
}

impl Store {
    /// The active binding of an order.
    pub async fn active_binding(&self, order_no: &OrderNo) -> Result<Option<Binding>, StoreError> {
        let sql = format!(
            "SELECT {BINDING_COLUMNS} FROM token_bindings WHERE order_no = $1 AND released_at IS NULL"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(order_no.as_str())
            .fetch_optional(self.pool())
            .await
            .ctx("reading a binding")
    }

    /// The active binding of a token, by serial.
    pub async fn binding_of_token(
        &self,
        serial: &TokenSerial,
    ) -> Result<Option<Binding>, StoreError> {
        let sql = format!(
            "SELECT {BINDING_COLUMNS} FROM token_bindings WHERE token_serial = $1 AND released_at IS NULL"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(serial.as_str())
            .fetch_optional(self.pool())
            .await
            .ctx("reading a binding")
    }

    /// Every active binding (for `token list` and `check`).
    pub async fn active_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        let sql = format!(
            "SELECT {BINDING_COLUMNS} FROM token_bindings WHERE released_at IS NULL ORDER BY bound_at"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .ctx("reading bindings")
    }

    /// The journal of an order's latest attempt (attempt 0 when none).
    pub async fn journal(&self, order_no: &OrderNo) -> Result<(i64, Vec<StepRecord>), StoreError> {
        let row = sqlx::query("SELECT MAX(attempt) AS a FROM provision_steps WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_one(self.pool())
            .await
            .ctx("reading the journal")?;
        let attempt: Option<i64> = row.try_get("a").ctx("reading the journal")?;
        let Some(attempt) = attempt else {
            return Ok((0, vec![]));
        };
        let steps = sqlx::query_as(
            "SELECT attempt, step, status, started_at, finished_at, detail FROM provision_steps \
             WHERE order_no = $1 AND attempt = $2 ORDER BY started_at, step",
        )
        .bind(order_no.as_str())
        .bind(attempt)
        .fetch_all(self.pool())
        .await
        .ctx("reading the journal")?;
        Ok((attempt, steps))
    }

    /// The sealed PIN of an order, with the token it opens.
    pub async fn sealed_pin(&self, order_no: &OrderNo) -> Result<Option<StoredPin>, StoreError> {
        sqlx::query("SELECT token_serial, sealed FROM sealed_pins WHERE order_no = $1")
            .bind(order_no.as_str())
            .try_map(|r: AnyRow| {
                Ok(StoredPin {
                    token_serial: id_column(&r, "token_serial", "sealed_pins.token_serial")?,
                    sealed: SealedPin(r.try_get("sealed")?),
                })
            })
            .fetch_optional(self.pool())
            .await
            .ctx("reading a sealed PIN")
    }

    /// A station material fact.
    pub async fn material(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT value FROM station_material WHERE name = $1")
            .bind(name)
            .try_map(|r: AnyRow| r.try_get("value"))
            .fetch_optional(self.pool())
            .await
            .ctx("reading station material")
    }
}
