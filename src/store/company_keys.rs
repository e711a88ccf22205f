//! A company's key orders: the facts the secondary-key rule decides on
//! ([`crate::domain::secondary_key`]), and the orders of one company (same USCC) for `order show`.

use super::{DbContext, Store, StoreError, Tx};
use crate::domain::secondary_key::{MainCertificate, MainKeyFacts, MainKeyRefusal};
use crate::domain::{CertificateStatus, Order, OrderNo, OrderState};
use sqlx::Row;

/// One order of a company, oldest first in [`Store::company_orders`].
#[derive(Debug, Clone)]
pub struct CompanyOrder {
    /// The order.
    pub order: Order,
    /// Its state.
    pub state: OrderState,
}

impl Tx {
    /// Decides, inside this transaction, whether `order` may get its key now: a secondary key
    /// needs its company's live main key ([`crate::domain::secondary_key::check_main_key`]).
    /// [`StoreError::MainKey`] names the order and why.
    pub async fn require_live_main_key(&mut self, order: &Order) -> Result<(), StoreError> {
        let facts = match &order.product.main_order_no {
            Some(main) => self.main_key_facts(main).await?,
            None => None,
        };
        let now = self.now();
        crate::domain::secondary_key::check_main_key(order, facts.as_ref(), now)
            .map(|_| ())
            .map_err(|source: MainKeyRefusal| StoreError::MainKey {
                order_no: order.order_no.clone(),
                source,
            })
    }

    /// What the store knows about the order `main` (`None`: no such order).
    pub async fn main_key_facts(
        &mut self,
        main: &OrderNo,
    ) -> Result<Option<MainKeyFacts>, StoreError> {
        let Some(row) = sqlx::query("SELECT order_json FROM orders WHERE order_no = $1")
            .bind(main.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("reading a main-key order")?
        else {
            return Ok(None);
        };
        let json: String = row.try_get("order_json").ctx("reading a main-key order")?;
        let order: Order = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("order {main}: {e}")))?;
        let bound_token: Option<String> = sqlx::query(
            "SELECT token_serial FROM token_bindings WHERE order_no = $1 AND released_at IS NULL",
        )
        .bind(main.as_str())
        .fetch_optional(self.conn())
        .await
        .ctx("reading a main key's binding")?
        .map(|r| r.try_get::<Option<String>, _>("token_serial"))
        .transpose()
        .ctx("reading a main key's binding")?
        .flatten();
        let rows = sqlx::query(
            "SELECT serial, status, not_after, token_serial FROM certificates WHERE order_no = $1 \
             ORDER BY issued_at, serial",
        )
        .bind(main.as_str())
        .fetch_all(self.conn())
        .await
        .ctx("reading a main key's certificates")?;
        let mut certificates = Vec::with_capacity(rows.len());
        for r in rows {
            let serial: String = r
                .try_get("serial")
                .ctx("reading a main key's certificates")?;
            let status: String = r
                .try_get("status")
                .ctx("reading a main key's certificates")?;
            let not_after: String = r
                .try_get("not_after")
                .ctx("reading a main key's certificates")?;
            let corrupt = |what: &str| {
                StoreError::Corrupt(format!("certificate {serial} of order {main}: {what}"))
            };
            certificates.push(MainCertificate {
                status: status
                    .parse::<CertificateStatus>()
                    .map_err(|e| corrupt(&e.to_string()))?,
                not_after: crate::clock::parse_utc(&not_after)
                    .ok_or_else(|| corrupt("not_after is no RFC 3339 time"))?,
                token_serial: r
                    .try_get("token_serial")
                    .ctx("reading a main key's certificates")?,
                serial,
            });
        }
        Ok(Some(MainKeyFacts {
            order_no: main.clone(),
            key_role: order.product.key_role,
            uscc: order.company.uscc,
            bound_token,
            certificates,
        }))
    }
}

impl Store {
    /// Every order of the company with this USCC, oldest first.
    pub async fn company_orders(&self, uscc: &str) -> Result<Vec<CompanyOrder>, StoreError> {
        let rows = sqlx::query(
            "SELECT order_no, order_json, state FROM orders WHERE uscc = $1 \
             ORDER BY submitted_at, order_no",
        )
        .bind(uscc)
        .fetch_all(self.pool())
        .await
        .ctx("listing a company's orders")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let no: String = r.try_get("order_no").ctx("listing a company's orders")?;
            let json: String = r.try_get("order_json").ctx("listing a company's orders")?;
            let state: String = r.try_get("state").ctx("listing a company's orders")?;
            out.push(CompanyOrder {
                order: serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("order {no}: {e}")))?,
                state: OrderState::parse(&state).ok_or_else(|| {
                    StoreError::Corrupt(format!("order {no}: unknown state {state:?}"))
                })?,
            });
        }
        Ok(out)
    }
}
