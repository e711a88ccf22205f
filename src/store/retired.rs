//! Keys that left service (migration 0014): what became of an order's key (`key_dispositions`:
//! lost, broken or retired) and the returned keys wiped at the desk (`retired_tokens`), each
//! reusable once as a blank key by a later order, which adopts its SO identity.

use super::{DbContext, Store, StoreError, Tx, stored_id};
use crate::clock::format_utc;
use crate::domain::reissue::KeyDisposition;
use crate::domain::{BindingId, OperatorId, OrderNo, TokenSerial};
use sqlx::Row;

/// What became of the key of order `$1`.
const DISPOSITION_OF: &str = "SELECT disposition FROM key_dispositions WHERE order_no = $1";

fn disposition(row: Option<sqlx::any::AnyRow>) -> Result<Option<KeyDisposition>, StoreError> {
    let Some(row) = row else { return Ok(None) };
    let d: String = row
        .try_get("disposition")
        .ctx("reading what became of a key")?;
    KeyDisposition::parse(&d)
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown key disposition {d:?}")))
}

/// A returned key wiped at the desk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetiredToken {
    /// The retire request that wiped it.
    pub request_id: String,
    /// The key.
    pub token_serial: TokenSerial,
    /// What its (unchanged) SO PIN is derived from.
    #[serde(skip)]
    pub so_identity: String,
    /// The order it served.
    pub order_no: OrderNo,
    /// That order's binding, closed.
    pub binding_id: BindingId,
    /// The label it was given.
    pub label: String,
    /// When.
    pub retired_at: String,
}

impl Tx {
    /// Records what became of `order_no`'s key (once: a second record is refused by the key).
    pub async fn record_key_disposition(
        &mut self,
        order_no: &OrderNo,
        disposition: KeyDisposition,
        token_serial: Option<&TokenSerial>,
        by: &OperatorId,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO key_dispositions (order_no, disposition, token_serial, recorded_by, \
             recorded_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(order_no.as_str())
        .bind(disposition.as_str())
        .bind(token_serial.map(TokenSerial::as_str))
        .bind(by.as_str())
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("recording what became of a key")?;
        Ok(())
    }

    /// What became of `order_no`'s key, if it left service, read inside this transaction.
    pub async fn key_disposition(
        &mut self,
        order_no: &OrderNo,
    ) -> Result<Option<KeyDisposition>, StoreError> {
        let row = sqlx::query(DISPOSITION_OF)
            .bind(order_no.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("reading what became of a key")?;
        disposition(row)
    }

    /// Records a wiped key as retired, available for reuse.
    pub async fn insert_retired_token(&mut self, t: &RetiredToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO retired_tokens (request_id, token_serial, so_identity, order_no, \
             binding_id, label, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.request_id)
        .bind(t.token_serial.as_str())
        .bind(&t.so_identity)
        .bind(t.order_no.as_str())
        .bind(t.binding_id.as_str())
        .bind(&t.label)
        .bind(&t.retired_at)
        .execute(self.conn())
        .await
        .ctx("recording a retired key")?;
        Ok(())
    }

    /// Marks the retired key `serial` as taken by `binding_id` (a new order's); false when no
    /// retired key with that serial was waiting.
    pub async fn reuse_retired_token(
        &mut self,
        serial: &TokenSerial,
        binding_id: &BindingId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE retired_tokens SET reused_by_binding = $1 \
             WHERE token_serial = $2 AND reused_by_binding IS NULL",
        )
        .bind(binding_id.as_str())
        .bind(serial.as_str())
        .execute(self.conn())
        .await
        .ctx("reusing a retired key")?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// What became of `order_no`'s key, if it left service.
    pub async fn key_disposition_of(
        &self,
        order_no: &OrderNo,
    ) -> Result<Option<KeyDisposition>, StoreError> {
        let row = sqlx::query(DISPOSITION_OF)
            .bind(order_no.as_str())
            .fetch_optional(self.pool())
            .await
            .ctx("reading what became of a key")?;
        disposition(row)
    }

    /// The retired key `serial` if it waits for reuse.
    pub async fn available_retired_token(
        &self,
        serial: &TokenSerial,
    ) -> Result<Option<RetiredToken>, StoreError> {
        let row = sqlx::query(
            "SELECT request_id, token_serial, so_identity, order_no, binding_id, label, \
             retired_at FROM retired_tokens WHERE token_serial = $1 AND reused_by_binding IS NULL",
        )
        .bind(serial.as_str())
        .fetch_optional(self.pool())
        .await
        .ctx("reading a retired key")?;
        let Some(r) = row else { return Ok(None) };
        let get = |c: &'static str| -> Result<String, StoreError> {
            r.try_get::<String, _>(c).ctx("reading a retired key")
        };
        Ok(Some(RetiredToken {
            request_id: get("request_id")?,
            token_serial: stored_id("retired_tokens.token_serial", &get("token_serial")?)?,
            so_identity: get("so_identity")?,
            order_no: stored_id("retired_tokens.order_no", &get("order_no")?)?,
            binding_id: stored_id("retired_tokens.binding_id", &get("binding_id")?)?,
            label: get("label")?,
            retired_at: get("retired_at")?,
        }))
    }
}
