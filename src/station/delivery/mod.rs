//! PIN delivery, orchestrated: the outbox (queued with the order's state change), the worker
//! that sends ([`worker`]), the bank's status files ([`bank_import`]), and the operator's
//! actions (ship, retry, cancel).
//!
//! Exactly-once rules, in one place:
//! - a delivery is queued in the SAME transaction as the state change that calls for it
//!   (`keystation ship`, or the provisioning job's `finish` with `delivery.trigger =
//!   "on_provisioned"`); an order has at most one delivery that is not cancelled (unique index);
//! - the worker records `sending` (and, for the bank, the file name) BEFORE it contacts the
//!   channel; only `queued` deliveries are ever claimed, so a delivery in doubt (`sending` with no
//!   send in flight: a crash or a provider timeout) is never sent again blindly — the channel is
//!   asked, and only an authoritative "never got it" puts it back in the queue;
//! - on confirmation, in ONE transaction: delivery `confirmed`, order `PinDelivered`, the sealed
//!   PIN deleted, and an audit record with the receipt. Without the sealed PIN nothing can be
//!   sent again.
//!
//! # Security notes
//! The PIN is unsealed in the vault only to build one message (or to ask a provider about one),
//! lives in zeroizing memory while it is sent, and is written only into the channel's message
//! (spool file, HTTPS request, pain.001 memo). The database keeps the message's vault HMAC, never
//! the message; audit details, errors and logs carry masked destinations, ids and provider codes.

pub mod bank_import;
mod files;
pub mod operator;
mod station_copies;
pub mod worker;

pub use files::{DeliveryPaths, WorkerLock};
pub use operator::{RequeueReport, RetryReport};
pub use worker::{DeliveryChannels, RunEvent, RunReport};

use super::Station;
use crate::delivery::bank::{BankError, end_to_end_id};
use crate::delivery::sms::SmsError;
use crate::domain::delivery::{channel_name, mask_account, mask_phone};
use crate::domain::order::DeliveryChannel;
use crate::domain::{DeliveryEvent, Order, OrderEvent, OrderState};
use crate::store::{
    Actor, AuditEntry, DeliveryAudit, DeliveryFilter, DeliveryRecord, NewDelivery, Shipment,
    StoreError, Tx,
};
use crate::token::TokenError;
use serde_json::json;

/// Why a delivery operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The database failed (or refused a conflicting change).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault token failed.
    #[error("vault: {0}")]
    Token(#[from] TokenError),
    /// The HSM context could not be opened.
    #[error(transparent)]
    Hsm(#[from] crate::station::hsm::HsmError),
    /// A channel could not be set up from the configuration.
    #[error("SMS channel: {0}")]
    Sms(#[from] SmsError),
    /// A bank file could not be read as pain.002 / camt.054 (names the element, never a value).
    #[error("{path}: {source}")]
    BankFile {
        /// The file.
        path: String,
        /// Why.
        source: BankError,
    },
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A secret file (channel credential) is missing, too open or empty.
    #[error("secret file {path}: {reason}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A spool or bank directory is open to group or others.
    #[error(transparent)]
    NotPrivate(#[from] crate::private_files::NotPrivate),
    /// Another `deliver run` holds this station's worker lock.
    #[error("another `deliver run` is active for this station (lock {0})")]
    Locked(String),
    /// An argument is unusable (exit 2).
    #[error("{field}: {message}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The operation is refused in the current state (exit 2), with what to do instead.
    #[error("{0}")]
    Refused(String),
}

impl DeliveryError {
    /// True when the operator asked for something impossible (CLI exit 2), not a failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DeliveryError::Invalid { .. }
                | DeliveryError::Refused(_)
                | DeliveryError::BankFile { .. }
                | DeliveryError::Store(
                    StoreError::OrderNotFound(_)
                        | StoreError::DeliveryNotFound(_)
                        | StoreError::AlreadyShipped(_)
                        | StoreError::Illegal { .. }
                        | StoreError::StateConflict { .. }
                        | StoreError::DeliveryConflict { .. }
                )
        )
    }
}

/// Order states in which a PIN may be sent: the key exists and is not revoked.
pub(crate) fn order_is_deliverable(state: OrderState) -> bool {
    matches!(state, OrderState::Provisioned | OrderState::Shipped)
}

/// Where the PIN of `order` goes, masked: the legal representative's mobile or the corporate
/// account.
fn masked_destination(order: &Order) -> Result<String, StoreError> {
    match order.auth_method.delivery_channel() {
        DeliveryChannel::Sms => Ok(mask_phone(&order.legal_rep.mobile)),
        DeliveryChannel::BankTransfer => order
            .corporate_account
            .as_ref()
            .map(|a| mask_account(&a.account_number))
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "order {} uses corporate_transfer but has no corporate account",
                    order.order_no
                ))
            }),
    }
}

/// Queues the PIN delivery of `order` inside `tx` (the outbox half of a state change) and
/// audits it. `station_id` is the station whose vault sealed the PIN: only it can send it.
pub(crate) async fn queue_delivery(
    tx: &mut Tx,
    actor: &Actor,
    order: &Order,
    station_id: &str,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let channel = order.auth_method.delivery_channel();
    let e2e = match channel {
        DeliveryChannel::BankTransfer => Some(end_to_end_id(&id)),
        DeliveryChannel::Sms => None,
    };
    let new = NewDelivery {
        id: id.clone(),
        order_no: order.order_no.clone(),
        station_id: station_id.to_string(),
        channel,
        destination_masked: masked_destination(order)?,
        end_to_end_id: e2e.clone(),
    };
    tx.insert_delivery(&new).await?;
    tx.audit(
        actor,
        AuditEntry::order(
            "delivery.queued",
            &order.order_no,
            json!({
                "delivery_id": id,
                "channel": channel_name(channel),
                "destination": new.destination_masked,
                "end_to_end_id": e2e,
            }),
        ),
    )
    .await?;
    Ok(id)
}

/// Confirms `d` (read in `tx`) in `tx`: delivery `confirmed`, order `PinDelivered`, sealed PIN
/// destroyed, receipt audited. `evidence` says what confirmed it.
///
/// If the order can no longer become PinDelivered (revoked while the message travelled), the
/// delivery is still confirmed (the company has the PIN) and the sealed PIN still destroyed; the
/// receipt notes the order's state.
pub(crate) async fn confirm_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    d: &mut DeliveryRecord,
    evidence: serde_json::Value,
) -> Result<(), StoreError> {
    let now = crate::clock::format_utc(tx.now());
    let order_state = tx.order_state(&d.order_no).await?;
    let order_note = if order_state.apply(OrderEvent::ConfirmPinDelivery).is_ok() {
        tx.transition(
            &d.order_no,
            Some(order_state),
            OrderEvent::ConfirmPinDelivery,
        )
        .await?;
        None
    } else {
        Some(format!(
            "order is {order_state}: its state is left unchanged"
        ))
    };
    let destroyed = tx.delete_sealed_pin(&d.order_no).await?;
    tx.transition_delivery(actor, d, DeliveryEvent::Confirm, |d| {
        d.confirmed_at = Some(now.clone());
        if d.sent_at.is_none() {
            d.sent_at = Some(now.clone());
        }
        d.last_error = None;
        Some(DeliveryAudit::new(
            "delivery.confirmed",
            json!({
                "delivery_id": d.id,
                "receipt": {
                    "channel": channel_name(d.channel),
                    "destination": d.destination_masked,
                    "provider_id": d.provider_id,
                    "end_to_end_id": d.end_to_end_id,
                    "sent_at": d.sent_at,
                    "confirmed_at": now,
                    "message_hmac": d.message_hmac,
                },
                "evidence": evidence,
                "sealed_pin_destroyed": destroyed,
                "order_note": order_note,
            }),
        ))
    })
    .await?;
    tracing::info!(delivery = %d.id, order = %d.order_no, "delivery confirmed, sealed PIN destroyed");
    Ok(())
}

/// What `keystation ship` asks for.
#[derive(Debug, Clone)]
pub struct ShipRequest {
    /// The order.
    pub order_no: String,
    /// The courier's tracking number.
    pub tracking_no: String,
    /// The courier.
    pub carrier: Option<String>,
    /// The operator recording it (default: the station).
    pub operator: Option<String>,
}

/// What `keystation ship` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShipReport {
    /// The order.
    pub order_no: String,
    /// Its state now.
    pub state: OrderState,
    /// The shipment.
    pub shipment: Shipment,
    /// The delivery queued with it, if any.
    pub delivery_id: Option<String>,
}

pub(super) fn check_label(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), DeliveryError> {
    if value.trim().is_empty() {
        return Err(DeliveryError::Invalid {
            field,
            message: "must not be empty".into(),
        });
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(DeliveryError::Invalid {
            field,
            message: format!("must be at most {max} characters without control characters"),
        });
    }
    Ok(())
}

impl Station {
    /// `keystation ship`: Provisioned -> Shipped (PinDelivered stays PinDelivered), the
    /// shipment, and — when the order has no delivery yet and its PIN is still sealed — the
    /// delivery, all in one transaction with its audit record.
    ///
    /// With `delivery.trigger = "on_shipped"` this is where deliveries are queued. With
    /// `"on_provisioned"` the provisioning job queued it already; an order provisioned before
    /// the trigger was switched gets its delivery here, so no order is ever left without one.
    /// An order whose delivery was cancelled by an operator does not get a new one.
    pub async fn ship(&self, req: &ShipRequest) -> Result<ShipReport, DeliveryError> {
        check_label("--tracking", &req.tracking_no, 64)?;
        if let Some(c) = &req.carrier {
            check_label("--carrier", c, 64)?;
        }
        let actor = match &req.operator {
            Some(op) => {
                check_label("--operator", op, 64)?;
                self.operator_actor(op)
            }
            None => self.station_actor(),
        };
        let no = req.order_no.as_str();
        let vault_station = self
            .store
            .active_binding(no)
            .await?
            .map(|b| b.station_id)
            .unwrap_or_else(|| self.config.station.id.clone());
        let mut tx = self.store.begin_write(self.clock.now()).await?;
        let from = tx.order_state(no).await?;
        let to = tx.transition(no, Some(from), OrderEvent::Ship).await?;
        let shipment = Shipment {
            order_no: no.to_string(),
            tracking_no: req.tracking_no.trim().to_string(),
            carrier: req.carrier.as_ref().map(|c| c.trim().to_string()),
            shipped_at: crate::clock::format_utc(tx.now()),
            shipped_by: actor.name.clone(),
        };
        tx.insert_shipment(&shipment).await?;
        let mut delivery_id = None;
        if to == OrderState::Shipped
            && tx.delivery_count(no).await? == 0
            && tx.has_sealed_pin(no).await?
        {
            let order = tx.order_in_tx(no).await?;
            delivery_id = Some(queue_delivery(&mut tx, &actor, &order, &vault_station).await?);
        }
        tx.audit(
            &actor,
            AuditEntry::order(
                "order.shipped",
                no,
                json!({
                    "tracking_no": shipment.tracking_no,
                    "carrier": shipment.carrier,
                    "from": from,
                    "delivery_id": delivery_id,
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(ShipReport {
            order_no: no.to_string(),
            state: to,
            shipment,
            delivery_id,
        })
    }

    /// Deliveries for `deliver status`.
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, DeliveryError> {
        Ok(self.store.deliveries(filter).await?)
    }
}
