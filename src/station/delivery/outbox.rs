//! The outbox: a delivery queued in the transaction of the state change that calls for it, and
//! confirmed in one transaction with the order, the sealed PIN and the receipt.

use super::notices::queue_notices;
use crate::audit::event::{AuditEvent, DeliveryConfirmed, DeliveryQueued, Receipt};
use crate::delivery::bank::end_to_end_id;
use crate::domain::delivery::{channel_name, mask_account, mask_phone};
use crate::domain::notification::{Notice, NoticeMedium};
use crate::domain::order::DeliveryChannel;
use crate::domain::{DeliveryEvent, Order, OrderEvent, OrderState};
use crate::store::{Actor, AuditEntry, DeliveryRecord, NewDelivery, StoreError, Tx};

/// Order states in which a PIN of generation `pin_generation` may be sent: the key exists and
/// is not revoked. The PIN set at provisioning (generation 0) goes before the order is
/// PinDelivered; a PIN reset's (generation 1 and on) replaces a delivered one, so its order is
/// PinDelivered.
pub(crate) fn order_is_deliverable(state: OrderState, pin_generation: i64) -> bool {
    if pin_generation == 0 {
        matches!(state, OrderState::Provisioned | OrderState::Shipped)
    } else {
        state == OrderState::PinDelivered
    }
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
/// audits it. `station_id` is the station that sealed the PIN (recorded; every station of the
/// installation reaches the vault and may send it).
pub(crate) async fn queue_delivery(
    tx: &mut Tx,
    actor: &Actor,
    order: &Order,
    station_id: &str,
) -> Result<String, StoreError> {
    queue_pin_delivery(tx, actor, order, station_id, 0).await
}

/// [`queue_delivery`] for the PIN of generation `pin_generation` (a PIN reset's; 0 is the PIN
/// set at provisioning). An order has at most one live delivery per generation.
pub(crate) async fn queue_pin_delivery(
    tx: &mut Tx,
    actor: &Actor,
    order: &Order,
    station_id: &str,
    pin_generation: i64,
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
        pin_generation,
    };
    tx.insert_delivery(&new).await?;
    tx.audit(
        actor,
        AuditEntry::order(
            &order.order_no,
            AuditEvent::DeliveryQueued(DeliveryQueued {
                delivery_id: id.clone(),
                channel: channel_name(channel).to_string(),
                destination: new.destination_masked.clone(),
                end_to_end_id: e2e.clone(),
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
///
/// The applicant's `pin_sent` notices (`media`) are queued in the same transaction.
pub(crate) async fn confirm_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    media: &[NoticeMedium],
    d: &mut DeliveryRecord,
    evidence: serde_json::Value,
) -> Result<(), StoreError> {
    let now = crate::clock::format_utc(tx.now());
    let order_state = tx.order_state(&d.order_no).await?;
    let order_note = if d.pin_generation > 0 && order_state == OrderState::PinDelivered {
        // A PIN reset's new PIN: the order was PinDelivered before and stays so.
        None
    } else if order_state.apply(OrderEvent::ConfirmPinDelivery).is_ok() {
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
        Some(AuditEvent::DeliveryConfirmed(DeliveryConfirmed {
            delivery_id: d.id.clone(),
            receipt: Receipt {
                channel: channel_name(d.channel).to_string(),
                destination: d.destination_masked.clone(),
                provider_id: d.provider_id.clone(),
                end_to_end_id: d.end_to_end_id.clone(),
                sent_at: d.sent_at.clone(),
                confirmed_at: now,
                message_hmac: d.message_hmac.clone(),
            },
            evidence,
            sealed_pin_destroyed: destroyed,
            order_note,
        }))
    })
    .await?;
    let order = tx.order_in_tx(&d.order_no).await?;
    let notice = Notice::PinSent {
        channel: channel_name(d.channel).to_string(),
        destination: d.destination_masked.clone(),
    };
    queue_notices(tx, actor, media, &order, &notice, Some(&d.id)).await?;
    tracing::info!(delivery = %d.id, order = %d.order_no, "delivery confirmed, sealed PIN destroyed");
    Ok(())
}
