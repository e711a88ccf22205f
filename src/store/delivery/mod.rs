//! PIN delivery records: shipments, the delivery outbox and its attempt journal.
//!
//! A delivery changes like an order does: writers read it inside their transaction, then
//! [`Tx::transition_delivery`] applies the domain's state machine
//! ([`crate::domain::DeliveryState::apply`]), the fields that go with the move and its audit
//! record, and writes the row back only if it is still in the state that was read (optimistic
//! check on top of the writer serialisation of [`Store::begin_write`]). Fields that change
//! without a move (when the delivery is due next, what the operator reads) go through
//! [`Tx::update_delivery`], which keeps the state as it is. Nothing else writes a delivery.
//!
//! Rooms: `transition` (a delivery's moves: the one writer of a row after it is queued),
//! `attempts` (the attempt journal); here the records, queueing, and the reads.

mod attempts;
mod transition;

pub use attempts::AttemptRecord;

use super::orders::parse_state;
use super::{DbContext, Store, StoreError, StoredPin, Tx, id_column, stored_id};
use crate::clock::format_utc;
use crate::domain::DeliveryState;
use crate::domain::delivery::{channel_name, parse_channel};
use crate::domain::order::DeliveryChannel;
use crate::domain::{Order, OrderNo, OrderState, SealedPin};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::HashMap;

/// What a send reads of one order: the order as imported, its state, and its sealed PIN.
#[derive(Debug, Clone)]
pub struct SendMaterial {
    /// The normalised order (its destination and company name).
    pub order: Order,
    /// Its state now (a send goes only to an order that may still receive its PIN).
    pub state: OrderState,
    /// The PIN to send, sealed; `None` once destroyed (or never stored).
    pub sealed: Option<StoredPin>,
}

/// A key handed to a courier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shipment {
    /// The order.
    pub order_no: OrderNo,
    /// The courier's tracking number.
    pub tracking_no: String,
    /// The courier.
    pub carrier: Option<String>,
    /// When.
    pub shipped_at: String,
    /// Who recorded it.
    pub shipped_by: String,
}

/// One PIN delivery as stored (nothing secret: the destination is masked, the message is only
/// its HMAC).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRecord {
    /// UUID; also the SMS `OutId` and spool file name.
    pub id: String,
    /// The order.
    pub order_no: OrderNo,
    /// The station whose vault sealed the PIN (only it can send it).
    pub station_id: String,
    /// SMS or bank transfer.
    #[serde(serialize_with = "ser_channel")]
    pub channel: DeliveryChannel,
    /// Where it is.
    pub state: DeliveryState,
    /// `138****8000` or `****1234`.
    pub destination_masked: String,
    /// Sends since queued (or since the last operator retry).
    pub attempts: i64,
    /// Not before this time (RFC 3339).
    pub next_attempt_at: String,
    /// The provider's reference (BizId, gateway id, spool file, bank file).
    pub provider_id: Option<String>,
    /// Bank: `EndToEndId`.
    pub end_to_end_id: Option<String>,
    /// Bank: `MsgId` (= `PmtInfId`) of the pain.001 carrying it.
    pub bank_message_id: Option<String>,
    /// Bank: file name in the outbound directory.
    pub bank_file: Option<String>,
    /// The last error, for the operator.
    pub last_error: Option<String>,
    /// Vault HMAC of the message (the receipt).
    pub message_hmac: Option<String>,
    /// When the current / last send began.
    pub sending_at: Option<String>,
    /// When the channel took it.
    pub sent_at: Option<String>,
    /// When confirmed.
    pub confirmed_at: Option<String>,
    /// Why cancelled.
    pub cancel_reason: Option<String>,
    /// The delivery that replaced this one (`--force-new-transfer`).
    pub superseded_by: Option<String>,
    /// Which of the order's PINs it carries: 0 = the PIN set at provisioning, n = the PIN of
    /// the n-th PIN reset.
    pub pin_generation: i64,
    /// When queued.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

fn ser_channel<S: serde::Serializer>(c: &DeliveryChannel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(channel_name(*c))
}

/// A delivery to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// UUID.
    pub id: String,
    /// The order.
    pub order_no: OrderNo,
    /// The station whose vault sealed the PIN.
    pub station_id: String,
    /// The channel.
    pub channel: DeliveryChannel,
    /// Masked destination.
    pub destination_masked: String,
    /// Bank: the transfer's `EndToEndId`.
    pub end_to_end_id: Option<String>,
    /// Which of the order's PINs it carries (0 = the PIN set at provisioning).
    pub pin_generation: i64,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this order's.
    pub order_no: Option<OrderNo>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
}

const COLUMNS: &str = "id, order_no, station_id, channel, state, destination_masked, attempts, \
     next_attempt_at, provider_id, end_to_end_id, bank_message_id, bank_file, last_error, \
     message_hmac, sending_at, sent_at, confirmed_at, cancel_reason, superseded_by, created_at, \
     updated_at, pin_generation";

fn delivery(r: &AnyRow) -> Result<DeliveryRecord, StoreError> {
    let get = |c: &'static str| -> Result<Option<String>, StoreError> {
        r.try_get::<Option<String>, _>(c).ctx("reading a delivery")
    };
    let req = |c: &'static str| -> Result<String, StoreError> {
        r.try_get::<String, _>(c).ctx("reading a delivery")
    };
    let channel = req("channel")?;
    let state = req("state")?;
    Ok(DeliveryRecord {
        id: req("id")?,
        order_no: stored_id("deliveries.order_no", &req("order_no")?)?,
        station_id: req("station_id")?,
        channel: parse_channel(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery channel {channel:?}")))?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery state {state:?}")))?,
        destination_masked: req("destination_masked")?,
        attempts: r.try_get("attempts").ctx("reading a delivery")?,
        next_attempt_at: req("next_attempt_at")?,
        provider_id: get("provider_id")?,
        end_to_end_id: get("end_to_end_id")?,
        bank_message_id: get("bank_message_id")?,
        bank_file: get("bank_file")?,
        last_error: get("last_error")?,
        message_hmac: get("message_hmac")?,
        sending_at: get("sending_at")?,
        sent_at: get("sent_at")?,
        confirmed_at: get("confirmed_at")?,
        cancel_reason: get("cancel_reason")?,
        superseded_by: get("superseded_by")?,
        pin_generation: r.try_get("pin_generation").ctx("reading a delivery")?,
        created_at: req("created_at")?,
        updated_at: req("updated_at")?,
    })
}

fn parse_order_state(s: &str) -> Result<OrderState, StoreError> {
    OrderState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown order state {s:?}")))
}

impl Tx {
    /// The current state of an order, read inside this transaction.
    pub async fn order_state(&mut self, order_no: &OrderNo) -> Result<OrderState, StoreError> {
        let row = sqlx::query("SELECT state FROM orders WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("reading an order state")?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
        parse_order_state(
            &row.try_get::<String, _>("state")
                .ctx("reading an order state")?,
        )
    }

    /// The order itself, read inside this transaction.
    pub async fn order_in_tx(&mut self, order_no: &OrderNo) -> Result<Order, StoreError> {
        let row = sqlx::query("SELECT order_json FROM orders WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("reading an order")?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
        let json: String = row.try_get("order_json").ctx("reading an order")?;
        serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("order {order_no}: {e}")))
    }

    /// Records a shipment; [`StoreError::AlreadyShipped`] if the order has one.
    pub async fn insert_shipment(&mut self, s: &Shipment) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO shipments (order_no, tracking_no, carrier, shipped_at, shipped_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(s.order_no.as_str())
        .bind(&s.tracking_no)
        .bind(&s.carrier)
        .bind(&s.shipped_at)
        .bind(&s.shipped_by)
        .execute(self.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::AlreadyShipped(s.order_no.clone())
            }
            _ => StoreError::Db {
                context: "recording a shipment",
                source: e,
            },
        })?;
        Ok(())
    }

    /// How many deliveries (in any state) an order has.
    pub async fn delivery_count(&mut self, order_no: &OrderNo) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_one(self.conn())
            .await
            .ctx("counting deliveries")?;
        row.try_get::<i64, _>("n").ctx("counting deliveries")
    }

    /// Whether an order still has its sealed PIN.
    pub async fn has_sealed_pin(&mut self, order_no: &OrderNo) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT order_no FROM sealed_pins WHERE order_no = $1")
            .bind(order_no.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("looking for a sealed PIN")?;
        Ok(row.is_some())
    }

    /// Destroys an order's sealed PIN (delivery confirmed, or certificate revoked).
    pub async fn delete_sealed_pin(&mut self, order_no: &OrderNo) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sealed_pins WHERE order_no = $1")
            .bind(order_no.as_str())
            .execute(self.conn())
            .await
            .ctx("destroying a sealed PIN")?;
        Ok(done.rows_affected() > 0)
    }

    /// Queues a delivery (state `queued`, due now). An order has at most one delivery per PIN
    /// generation that is not cancelled: a second one is [`StoreError::DeliveryExists`].
    pub async fn insert_delivery(&mut self, d: &NewDelivery) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO deliveries (id, order_no, station_id, channel, state, destination_masked, \
             attempts, next_attempt_at, end_to_end_id, created_at, updated_at, pin_generation) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $7, $7, $9)",
        )
        .bind(&d.id)
        .bind(d.order_no.as_str())
        .bind(&d.station_id)
        .bind(channel_name(d.channel))
        .bind(DeliveryState::Queued.as_str())
        .bind(&d.destination_masked)
        .bind(&now)
        .bind(&d.end_to_end_id)
        .bind(d.pin_generation)
        .execute(self.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::DeliveryExists(d.order_no.clone())
            }
            _ => StoreError::Db {
                context: "queuing a delivery",
                source: e,
            },
        })?;
        Ok(())
    }

    /// A delivery, read inside this transaction.
    pub async fn delivery(&mut self, id: &str) -> Result<DeliveryRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a delivery")?
            .ok_or_else(|| StoreError::DeliveryNotFound(id.to_string()))?;
        delivery(&row)
    }
}

impl Store {
    /// One delivery.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .ctx("reading a delivery")?
            .map(|r| delivery(&r))
            .transpose()
    }

    /// Deliveries, oldest first.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        // Empty strings never match: one query text for every combination of filters.
        let sql = format!(
            "SELECT {COLUMNS} FROM deliveries WHERE ($1 = '' OR order_no = $1) \
             AND ($2 = '' OR state = $2) ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(
                filter
                    .order_no
                    .as_ref()
                    .map_or("", |n| n.as_str())
                    .to_string(),
            )
            .bind(filter.state.map(|s| s.as_str()).unwrap_or_default())
            .fetch_all(self.pool())
            .await
            .ctx("listing deliveries")?
            .iter()
            .map(delivery)
            .collect()
    }

    /// The deliveries whose transfer is in the bank file `file` (one, or a batch).
    pub async fn deliveries_in_bank_file(
        &self,
        file: &str,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE bank_file = $1 ORDER BY id");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(file)
            .fetch_all(self.pool())
            .await
            .ctx("listing the deliveries of a bank file")?
            .iter()
            .map(delivery)
            .collect()
    }

    /// Deliveries in `state` that are due at `now`, oldest first, whichever station queued them
    /// (every station of an installation may send any: they share the vault).
    pub async fn due_deliveries(
        &self,
        state: DeliveryState,
        now: time::OffsetDateTime,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deliveries WHERE state = $1 \
             AND next_attempt_at <= $2 ORDER BY next_attempt_at, created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(format_utc(now))
            .fetch_all(self.pool())
            .await
            .ctx("reading due deliveries")?
            .iter()
            .map(delivery)
            .collect()
    }

    /// The delivery of a transfer, by its `EndToEndId`.
    pub async fn delivery_by_end_to_end_id(
        &self,
        end_to_end_id: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE end_to_end_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(end_to_end_id)
            .fetch_optional(self.pool())
            .await
            .ctx("reading a delivery")?
            .map(|r| delivery(&r))
            .transpose()
    }

    /// The deliveries carried by one pain.001 (by its `MsgId`).
    pub async fn deliveries_by_bank_message(
        &self,
        message_id: &str,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM deliveries WHERE bank_message_id = $1 ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(message_id)
            .fetch_all(self.pool())
            .await
            .ctx("reading deliveries")?
            .iter()
            .map(delivery)
            .collect()
    }

    /// The shipment of an order.
    pub async fn shipment(&self, order_no: &OrderNo) -> Result<Option<Shipment>, StoreError> {
        let row = sqlx::query(
            "SELECT order_no, tracking_no, carrier, shipped_at, shipped_by FROM shipments \
             WHERE order_no = $1",
        )
        .bind(order_no.as_str())
        .fetch_optional(self.pool())
        .await
        .ctx("reading a shipment")?;
        row.map(|r| -> Result<Shipment, sqlx::Error> {
            Ok(Shipment {
                order_no: order_no.clone(),
                tracking_no: r.try_get("tracking_no")?,
                carrier: r.try_get("carrier")?,
                shipped_at: r.try_get("shipped_at")?,
                shipped_by: r.try_get("shipped_by")?,
            })
        })
        .transpose()
        .ctx("reading a shipment")
    }

    /// What the sends of a group need of their orders, in one read per 200 orders (one row
    /// per order, its sealed PIN joined). An order not found is absent from the map.
    pub async fn send_material(
        &self,
        order_nos: &[&OrderNo],
    ) -> Result<HashMap<OrderNo, SendMaterial>, StoreError> {
        let mut out = HashMap::with_capacity(order_nos.len());
        for chunk in order_nos.chunks(200) {
            let sql = format!(
                "SELECT o.order_no, o.order_json, o.state, p.token_serial, p.sealed \
                 FROM orders o LEFT JOIN sealed_pins p ON p.order_no = o.order_no \
                 WHERE o.order_no IN ({})",
                super::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for no in chunk {
                q = q.bind(no.as_str());
            }
            for r in q
                .fetch_all(self.pool())
                .await
                .ctx("reading orders to send")?
            {
                let (no, material) = send_material(&r)?;
                out.insert(no, material);
            }
        }
        Ok(out)
    }
}

fn send_material(r: &AnyRow) -> Result<(OrderNo, SendMaterial), StoreError> {
    let no: OrderNo = id_column(r, "order_no", "orders.order_no").ctx("reading orders to send")?;
    let json: String = r.try_get("order_json").ctx("reading orders to send")?;
    let order: Order =
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("order {no}: {e}")))?;
    let state = parse_state(
        &r.try_get::<String, _>("state")
            .ctx("reading orders to send")?,
    )?;
    let serial: Option<String> = r.try_get("token_serial").ctx("reading orders to send")?;
    let sealed = match serial {
        None => None,
        Some(_) => Some(StoredPin {
            token_serial: id_column(r, "token_serial", "sealed_pins.token_serial")
                .ctx("reading orders to send")?,
            sealed: SealedPin(r.try_get("sealed").ctx("reading orders to send")?),
        }),
    };
    Ok((
        no,
        SendMaterial {
            order,
            state,
            sealed,
        },
    ))
}
