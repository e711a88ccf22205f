//! `keystation ship`: the shipment, and the delivery it queues; `deliver status`'s listing.

use super::error::{DeliveryError, check_label};
use super::outbox::queue_delivery;
use crate::audit::event::{AuditEvent, OrderShipped};
use crate::domain::notification::Notice;
use crate::domain::{OrderEvent, OrderNo, OrderState};
use crate::station::Station;
use crate::store::{AuditEntry, DeliveryFilter, DeliveryRecord, Shipment};

/// What `keystation ship` asks for.
#[derive(Debug, Clone)]
pub struct ShipRequest {
    /// The order.
    pub order_no: OrderNo,
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
    pub order_no: OrderNo,
    /// Its state now.
    pub state: OrderState,
    /// The shipment.
    pub shipment: Shipment,
    /// The delivery queued with it, if any.
    pub delivery_id: Option<String>,
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
        if let Some(op) = &req.operator {
            check_label("--operator", op, 64)?;
        }
        let actor = self
            .acting_operator(req.operator.as_deref(), crate::domain::Action::ShipOrder)
            .await?
            .1;
        let no = &req.order_no;
        let vault_station = self
            .store
            .active_binding(no)
            .await?
            .map(|b| b.station_id)
            .unwrap_or_else(|| self.config.station.id.clone());
        let mut tx = self.begin_write().await?;
        let from = tx.order_state(no).await?;
        let to = tx.transition(no, Some(from), OrderEvent::Ship).await?;
        let shipment = Shipment {
            order_no: no.clone(),
            tracking_no: req.tracking_no.trim().to_string(),
            carrier: req.carrier.as_ref().map(|c| c.trim().to_string()),
            shipped_at: crate::clock::format_utc(tx.now()),
            shipped_by: actor.name.clone(),
        };
        tx.insert_shipment(&shipment).await?;
        let order = tx.order_in_tx(no).await?;
        let notice = Notice::Shipped {
            carrier: shipment.carrier.clone(),
            tracking_no: shipment.tracking_no.clone(),
        };
        self.queue_notices_in(&mut tx, &actor, &order, &notice)
            .await?;
        let mut delivery_id = None;
        if to == OrderState::Shipped
            && tx.delivery_count(no).await? == 0
            && tx.has_sealed_pin(no).await?
        {
            delivery_id = Some(queue_delivery(&mut tx, &actor, &order, &vault_station).await?);
        }
        tx.audit(
            &actor,
            AuditEntry::order(
                no,
                AuditEvent::OrderShipped(OrderShipped {
                    tracking_no: shipment.tracking_no.clone(),
                    carrier: shipment.carrier.clone(),
                    from,
                    delivery_id: delivery_id.clone(),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(ShipReport {
            order_no: no.clone(),
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
