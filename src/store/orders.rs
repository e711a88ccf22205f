//! Orders: intake, reading, review and state transitions. Their documents and seal pictures:
//! [`super::attachments`].

use super::attachments::{NewAttachment, Written, insert_attachments};
use super::{Actor, AuditEntry, DbContext, Store, StoreError, Tx, stored_id};
use crate::audit::event::{AuditEvent, OrderImported, Reviewed};
use crate::clock::format_utc;
use crate::domain::OrderNo;
use crate::domain::order::{Order, OrderEvent, OrderState};
use crate::domain::validate::Violation;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashSet;

/// A validated order ready to be stored.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The normalised order.
    pub order: Order,
    /// Warnings shown at import.
    pub warnings: Vec<Violation>,
    /// Recorded reason of a USCC checksum override.
    pub uscc_override_reason: Option<String>,
    /// Documents and seal pictures.
    pub attachments: Vec<NewAttachment>,
}

/// A review decision.
#[derive(Debug, Clone)]
pub struct Review {
    /// Approve or reject.
    pub event: OrderEvent,
    /// Reviewing operator.
    pub operator: String,
    /// Reason (required for a rejection).
    pub reason: Option<String>,
}

/// An order as stored, with its life so far.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderRecord {
    /// The normalised order.
    pub order: Order,
    /// Current state.
    pub state: OrderState,
    /// Import time.
    pub submitted_at: String,
    /// Last change.
    pub updated_at: String,
    /// Reviewing operator.
    pub reviewed_by: Option<String>,
    /// Review time.
    pub reviewed_at: Option<String>,
    /// Review reason.
    pub review_reason: Option<String>,
    /// USCC checksum override reason.
    pub uscc_override_reason: Option<String>,
    /// Warnings recorded at import.
    pub warnings: serde_json::Value,
    /// Attachments.
    pub attachments: Vec<super::AttachmentMeta>,
    /// The order this one renews (a renewal order, `order renew`).
    pub renewal_of: Option<String>,
}

/// A line of an order listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderSummary {
    /// Order number.
    pub order_no: OrderNo,
    /// State.
    pub state: OrderState,
    /// Company name.
    pub company_name: String,
    /// USCC.
    pub uscc: String,
    /// Auth method (PIN channel).
    pub auth_method: String,
    /// Import time.
    pub submitted_at: String,
    /// Last change.
    pub updated_at: String,
}

/// Where a page of [`Store::orders_changed`] starts: after this order, changed at this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedAfter {
    /// The last change of the last order of the previous page.
    pub updated_at: String,
    /// That order.
    pub order_no: OrderNo,
}

pub(super) fn parse_state(s: &str) -> Result<OrderState, StoreError> {
    OrderState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown order state {s:?}")))
}

fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Store {
    /// Stores new orders in ONE transaction (all or nothing), each with an `order.imported`
    /// audit record. A number that already exists fails the whole batch with
    /// [`StoreError::DuplicateOrder`].
    pub async fn insert_orders(
        &self,
        orders: &[NewOrder],
        actor: &Actor,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(now).await?;
        // What this transaction already stored: orders of one import share documents.
        let mut stored = Written::default();
        for new in orders {
            insert_order(&mut tx, new, actor, &mut stored).await?;
        }
        crate::failpoint!("import.before_commit");
        tx.commit().await
    }

    /// Order numbers among `order_nos` that already exist, in the order given; one query per
    /// 500 numbers.
    pub async fn existing_orders(&self, order_nos: &[OrderNo]) -> Result<Vec<OrderNo>, StoreError> {
        let mut stored = HashSet::new();
        for chunk in order_nos.chunks(500) {
            let sql = format!(
                "SELECT order_no FROM orders WHERE order_no IN ({})",
                super::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for no in chunk {
                query = query.bind(no.as_str());
            }
            for row in query
                .fetch_all(self.pool())
                .await
                .ctx("looking up order numbers")?
            {
                stored.insert(
                    row.try_get::<String, _>("order_no")
                        .ctx("looking up order numbers")?,
                );
            }
        }
        Ok(order_nos
            .iter()
            .filter(|no| stored.contains(no.as_str()))
            .cloned()
            .collect())
    }

    /// One order with its attachments' metadata.
    pub async fn order(&self, order_no: &OrderNo) -> Result<Option<OrderRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT order_json, state, submitted_at, updated_at, reviewed_by, reviewed_at, \
             review_reason, uscc_override_reason, warnings_json, renewal_of FROM orders WHERE order_no = $1",
        )
        .bind(order_no.as_str())
        .fetch_optional(self.pool())
        .await
        .ctx("reading an order")?
        else {
            return Ok(None);
        };
        let get = |c: &'static str| -> Result<Option<String>, StoreError> {
            row.try_get::<Option<String>, _>(c).ctx("reading an order")
        };
        let json = get("order_json")?.unwrap_or_default();
        let order: Order = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("order {order_no}: {e}")))?;
        let warnings = serde_json::from_str(&get("warnings_json")?.unwrap_or_default())
            .unwrap_or(serde_json::Value::Array(vec![]));
        let attachments = sqlx::query_as(
            "SELECT a.role, a.kind, a.file_name, a.media_type, a.sha256, b.size \
             FROM attachments a JOIN blobs b ON b.sha256 = a.sha256 \
             WHERE a.order_no = $1 ORDER BY a.role, a.kind",
        )
        .bind(order_no.as_str())
        .fetch_all(self.pool())
        .await
        .ctx("reading attachments")?;
        Ok(Some(OrderRecord {
            order,
            state: parse_state(&get("state")?.unwrap_or_default())?,
            submitted_at: get("submitted_at")?.unwrap_or_default(),
            updated_at: get("updated_at")?.unwrap_or_default(),
            reviewed_by: get("reviewed_by")?,
            reviewed_at: get("reviewed_at")?,
            review_reason: get("review_reason")?,
            uscc_override_reason: get("uscc_override_reason")?,
            warnings,
            attachments,
            renewal_of: get("renewal_of")?,
        }))
    }

    /// Orders, optionally in one state, oldest first (FIFO).
    pub async fn list_orders(
        &self,
        state: Option<OrderState>,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        // An empty string never matches: one query text with and without the filter.
        sqlx::query(
            "SELECT order_no, state, company_name, uscc, auth_method, submitted_at, updated_at \
             FROM orders WHERE ($1 = '' OR state = $1) ORDER BY submitted_at, order_no",
        )
        .bind(state.map(OrderState::as_str).unwrap_or_default())
        .fetch_all(self.pool())
        .await
        .ctx("listing orders")?
        .iter()
        .map(summary)
        .collect()
    }

    /// At most `limit` orders, optionally in one state, last changed at or after `since`
    /// (stored form, [`format_utc`]; all: empty), in the order they last changed; a page starts
    /// after `after`.
    pub async fn orders_changed(
        &self,
        state: Option<OrderState>,
        since: &str,
        after: Option<&ChangedAfter>,
        limit: u32,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        // Empty strings never restrict: one query text with and without each filter.
        sqlx::query(
            "SELECT order_no, state, company_name, uscc, auth_method, submitted_at, updated_at \
             FROM orders WHERE ($1 = '' OR state = $1) AND updated_at >= $2 \
             AND (updated_at > $3 OR (updated_at = $3 AND order_no > $4)) \
             ORDER BY updated_at, order_no LIMIT $5",
        )
        .bind(state.map(OrderState::as_str).unwrap_or_default())
        .bind(since)
        .bind(after.map(|a| a.updated_at.as_str()).unwrap_or_default())
        .bind(after.map(|a| a.order_no.as_str()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .ctx("listing changed orders")?
        .iter()
        .map(summary)
        .collect()
    }

    /// Records a review decision (approve / reject) with its audit record.
    pub async fn review(
        &self,
        order_no: &OrderNo,
        review: &Review,
        actor: &Actor,
        now: time::OffsetDateTime,
    ) -> Result<OrderState, StoreError> {
        let mut tx = self.begin_write(now).await?;
        let to = transition(&mut tx, order_no, None, review.event).await?;
        tx.record_review(order_no, review).await?;
        let reviewed = Reviewed {
            approved: review.event == OrderEvent::Approve,
            operator: review.operator.clone(),
            reason: review.reason.clone(),
        };
        tx.audit(
            actor,
            AuditEntry::order(order_no, AuditEvent::Reviewed(reviewed)),
        )
        .await?;
        tx.commit().await?;
        Ok(to)
    }
}

impl Tx {
    /// Records who reviewed an order, when and why (approval or rejection).
    pub async fn record_review(
        &mut self,
        order_no: &OrderNo,
        review: &Review,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE orders SET reviewed_by = $1, reviewed_at = $2, review_reason = $3 WHERE order_no = $4",
        )
        .bind(&review.operator)
        .bind(format_utc(self.now()))
        .bind(&review.reason)
        .bind(order_no.as_str())
        .execute(self.conn())
        .await
        .ctx("recording a review")?;
        Ok(())
    }
}

/// Applies `event` to an order inside `tx`: reads the state, asks the domain for the next one,
/// and writes it only if nobody changed the order meanwhile. `expected`, when given, must be the
/// current state (callers that decided on a state they read earlier). Every change queues its
/// order API webhook event in the same transaction (`webhooks`), keyed by the version
/// it makes, so each change is pushed at most once.
pub(crate) async fn transition(
    tx: &mut Tx,
    order_no: &OrderNo,
    expected: Option<OrderState>,
    event: OrderEvent,
) -> Result<OrderState, StoreError> {
    let row = sqlx::query("SELECT state, version FROM orders WHERE order_no = $1")
        .bind(order_no.as_str())
        .fetch_optional(tx.conn())
        .await
        .ctx("reading an order state")?
        .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
    let from = parse_state(
        &row.try_get::<String, _>("state")
            .ctx("reading an order state")?,
    )?;
    if let Some(expected) = expected {
        if expected != from {
            return Err(StoreError::StateConflict {
                order_no: order_no.clone(),
                expected,
                actual: from,
            });
        }
    }
    let to = from.apply(event).map_err(|source| StoreError::Illegal {
        order_no: order_no.clone(),
        source,
    })?;
    let done = sqlx::query(
        "UPDATE orders SET state = $1, updated_at = $2, version = version + 1 \
         WHERE order_no = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(format_utc(tx.now()))
    .bind(order_no.as_str())
    .bind(from.as_str())
    .execute(tx.conn())
    .await
    .ctx("changing an order state")?;
    if done.rows_affected() != 1 {
        return Err(StoreError::StateConflict {
            order_no: order_no.clone(),
            expected: from,
            actual: from,
        });
    }
    // The API's webhook hears of every change, once (keyed by the version it made).
    let version: i64 = row.try_get("version").ctx("reading an order state")?;
    super::webhooks::queue_webhook_event(tx, order_no, version + 1, from, to).await?;
    Ok(to)
}

pub(super) async fn insert_order(
    tx: &mut Tx,
    new: &NewOrder,
    actor: &Actor,
    stored: &mut Written,
) -> Result<(), StoreError> {
    let o = &new.order;
    let now = format_utc(tx.now());
    let json = serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let warnings =
        serde_json::to_string(&new.warnings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO orders (order_no, state, auth_method, company_name, uscc, order_json, \
         warnings_json, uscc_override_reason, submitted_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(o.order_no.as_str())
    .bind(OrderState::Submitted.as_str())
    .bind(enum_name(&o.auth_method))
    .bind(&o.company.name)
    .bind(&o.company.uscc)
    .bind(json)
    .bind(warnings)
    .bind(&new.uscc_override_reason)
    .bind(&now)
    .bind(&now)
    .execute(tx.conn())
    .await
    // The primary key refuses a number stored already (the whole transaction then rolls back).
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::DuplicateOrder(o.order_no.clone())
        }
        _ => StoreError::Db {
            context: "inserting an order",
            source: e,
        },
    })?;
    let hashes = insert_attachments(tx, &o.order_no, &new.attachments, stored).await?;
    tx.audit(
        actor,
        AuditEntry::order(
            &o.order_no,
            AuditEvent::OrderImported(OrderImported {
                uscc: o.company.uscc.clone(),
                auth_method: enum_name(&o.auth_method),
                uscc_override_reason: new.uscc_override_reason.clone(),
                warnings: new.warnings.iter().map(|w| w.code.to_string()).collect(),
                attachments: hashes,
            }),
        ),
    )
    .await?;
    Ok(())
}

fn summary(r: &AnyRow) -> Result<OrderSummary, StoreError> {
    let get = |c: &'static str| -> Result<String, StoreError> {
        r.try_get::<String, _>(c).ctx("listing orders")
    };
    Ok(OrderSummary {
        order_no: stored_id("orders.order_no", &get("order_no")?)?,
        state: parse_state(&get("state")?)?,
        company_name: get("company_name")?,
        uscc: get("uscc")?,
        auth_method: get("auth_method")?,
        submitted_at: get("submitted_at")?,
        updated_at: get("updated_at")?,
    })
}
