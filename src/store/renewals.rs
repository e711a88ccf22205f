//! Renewal orders: the link to the order they renew (`orders.renewal_of`, migration 0012) and
//! the copy of the original's form and attachments. Attachments are copied by reference: the new
//! rows name the same content-addressed blobs, nothing is uploaded again.

use super::{DbContext, Store, StoreError, Tx, id_column, opt_id_column};
use crate::audit::event::AttachmentHash;
use crate::clock::format_utc;
use crate::domain::{Order, OrderNo, OrderState};
use sqlx::Row;

/// The renewal orders of `$1`, oldest first.
const RENEWALS_OF: &str =
    "SELECT order_no, state FROM orders WHERE renewal_of = $1 ORDER BY submitted_at, order_no";

/// The order `$1` renews (NULL when it is no renewal).
const RENEWAL_OF: &str = "SELECT renewal_of FROM orders WHERE order_no = $1";

/// How a new order made from another is linked to it.
#[derive(Debug, Clone, Copy)]
enum LinkedBy {
    /// `renewal_of`.
    Renewal,
    /// `reissue_of`.
    Reissue,
}

/// A renewal (or reissue) order of some order, as `order show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenewalLink {
    /// The renewal order.
    pub order_no: OrderNo,
    /// Its state.
    pub state: OrderState,
}

impl Tx {
    /// Whether an order numbered `order_no` exists, read inside this transaction.
    pub async fn order_exists(&mut self, order_no: &OrderNo) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM orders WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("looking up an order number")?;
        Ok(row.is_some())
    }

    /// The order `order_no` renews, if it is a renewal, read inside this transaction.
    pub async fn renewal_of_in_tx(
        &mut self,
        order_no: &OrderNo,
    ) -> Result<Option<OrderNo>, StoreError> {
        let row = sqlx::query(RENEWAL_OF)
            .bind(order_no.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("reading a renewal link")?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
        opt_id_column(&row, "renewal_of", "orders.renewal_of").ctx("reading a renewal link")
    }

    /// The renewal orders of `original`, read inside this transaction.
    pub async fn renewals_in_tx(
        &mut self,
        original: &OrderNo,
    ) -> Result<Vec<RenewalLink>, StoreError> {
        let rows = sqlx::query(RENEWALS_OF)
            .bind(original.as_str())
            .fetch_all(self.conn())
            .await
            .ctx("listing renewal orders")?;
        rows.iter().map(link).collect()
    }

    /// Stores `renewal` (the original's form under its new number) as a Submitted order that
    /// renews `original`, with the original's warnings, USCC override and attachments (the same
    /// blobs). Returns the attachments carried over. The caller audits.
    pub async fn insert_renewal_order(
        &mut self,
        original: &OrderNo,
        renewal: &Order,
    ) -> Result<Vec<AttachmentHash>, StoreError> {
        self.insert_linked_order(original, renewal, LinkedBy::Renewal)
            .await
    }

    /// Stores `reissue` (the original's form under its new number) as a Submitted order that
    /// replaces the lost, broken or retired key of `original` (`reissue_of`, migration 0014),
    /// like [`Tx::insert_renewal_order`]. The caller audits.
    pub async fn insert_reissue_order(
        &mut self,
        original: &OrderNo,
        reissue: &Order,
    ) -> Result<Vec<AttachmentHash>, StoreError> {
        self.insert_linked_order(original, reissue, LinkedBy::Reissue)
            .await
    }

    /// The reissue orders of `original`, read inside this transaction, oldest first.
    pub async fn reissues_in_tx(
        &mut self,
        original: &OrderNo,
    ) -> Result<Vec<RenewalLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT order_no, state FROM orders WHERE reissue_of = $1 \
             ORDER BY submitted_at, order_no",
        )
        .bind(original.as_str())
        .fetch_all(self.conn())
        .await
        .ctx("listing reissue orders")?;
        rows.iter().map(link).collect()
    }

    async fn insert_linked_order(
        &mut self,
        original: &OrderNo,
        renewal: &Order,
        linked_by: LinkedBy,
    ) -> Result<Vec<AttachmentHash>, StoreError> {
        let json =
            serde_json::to_string(renewal).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = format_utc(self.now());
        let column = match linked_by {
            LinkedBy::Renewal => "renewal_of",
            LinkedBy::Reissue => "reissue_of",
        };
        let sql = format!(
            "INSERT INTO orders (order_no, state, auth_method, company_name, uscc, order_json, \
             warnings_json, uscc_override_reason, submitted_at, updated_at, {column}) \
             SELECT $1, $2, auth_method, company_name, uscc, $3, warnings_json, \
             uscc_override_reason, $4, $4, order_no FROM orders WHERE order_no = $5"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(renewal.order_no.as_str())
            .bind(OrderState::Submitted.as_str())
            .bind(json)
            .bind(&now)
            .bind(original.as_str())
            .execute(self.conn())
            .await
            .ctx("inserting a renewal order")?;
        if done.rows_affected() != 1 {
            return Err(StoreError::OrderNotFound(original.clone()));
        }
        sqlx::query(
            "INSERT INTO attachments (order_no, role, kind, file_name, media_type, sha256) \
             SELECT $1, role, kind, file_name, media_type, sha256 FROM attachments \
             WHERE order_no = $2",
        )
        .bind(renewal.order_no.as_str())
        .bind(original.as_str())
        .execute(self.conn())
        .await
        .ctx("carrying attachments over to a renewal")?;
        let rows = sqlx::query(
            "SELECT role, kind, sha256 FROM attachments WHERE order_no = $1 ORDER BY role, kind",
        )
        .bind(renewal.order_no.as_str())
        .fetch_all(self.conn())
        .await
        .ctx("reading a renewal's attachments")?;
        rows.iter()
            .map(|r| {
                let get = |c: &'static str| {
                    r.try_get::<String, _>(c)
                        .ctx("reading a renewal's attachments")
                };
                Ok(AttachmentHash {
                    role: get("role")?,
                    kind: get("kind")?,
                    sha256: get("sha256")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The order `order_no` renews, if it is a renewal order.
    pub async fn renewal_of(&self, order_no: &OrderNo) -> Result<Option<OrderNo>, StoreError> {
        let row = sqlx::query(RENEWAL_OF)
            .bind(order_no.as_str())
            .fetch_optional(self.pool())
            .await
            .ctx("reading a renewal link")?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
        opt_id_column(&row, "renewal_of", "orders.renewal_of").ctx("reading a renewal link")
    }

    /// The order whose lost, broken or retired key `order_no` replaces, if it is a reissue.
    pub async fn reissue_of(&self, order_no: &OrderNo) -> Result<Option<OrderNo>, StoreError> {
        let row = sqlx::query("SELECT reissue_of FROM orders WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_optional(self.pool())
            .await
            .ctx("reading a reissue link")?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
        opt_id_column(&row, "reissue_of", "orders.reissue_of").ctx("reading a reissue link")
    }

    /// The reissue orders of `original`, oldest first.
    pub async fn reissues_of(&self, original: &OrderNo) -> Result<Vec<RenewalLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT order_no, state FROM orders WHERE reissue_of = $1 \
             ORDER BY submitted_at, order_no",
        )
        .bind(original.as_str())
        .fetch_all(self.pool())
        .await
        .ctx("listing reissue orders")?;
        rows.iter().map(link).collect()
    }

    /// The renewal orders of `original`.
    pub async fn renewals_of(&self, original: &OrderNo) -> Result<Vec<RenewalLink>, StoreError> {
        let rows = sqlx::query(RENEWALS_OF)
            .bind(original.as_str())
            .fetch_all(self.pool())
            .await
            .ctx("listing renewal orders")?;
        rows.iter().map(link).collect()
    }
}

fn link(r: &sqlx::any::AnyRow) -> Result<RenewalLink, StoreError> {
    let get = |c: &'static str| r.try_get::<String, _>(c).ctx("listing renewal orders");
    let state = get("state")?;
    Ok(RenewalLink {
        order_no: id_column(r, "order_no", "orders.order_no").ctx("listing renewal orders")?,
        state: OrderState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown order state {state:?}")))?,
    })
}
