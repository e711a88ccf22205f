//! What a front reads: orders, an order with everything about it, the audit trail, deliveries
//! with their attempts. Read-only; every change goes through a command method.

use super::{
    AttemptRecord, Binding, CertificateRecord, DeliveryFilter, DeliveryRecord, OrderRecord,
    OrderSummary, Station,
};
use crate::audit::AuditRecord;
use crate::domain::{OrderNo, OrderState};
use crate::store::{AuditFilter, StoreError};

/// One order with its token, certificates, deliveries and history (`order show`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderDetails {
    /// The order as stored.
    #[serde(flatten)]
    pub record: OrderRecord,
    /// Its active token binding.
    pub token: Option<Binding>,
    /// Every certificate issued for it.
    pub certificates: Vec<CertificateRecord>,
    /// Its PIN deliveries.
    pub deliveries: Vec<DeliveryRecord>,
    /// Its audit records, in chain order.
    pub history: Vec<HistoryEntry>,
    /// Its renewal orders (`order renew`), oldest first; `renewal_of` names the other way.
    pub renewals: Vec<crate::store::RenewalLink>,
}

/// An audit record of an order, as `order show` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    /// Position in the chain.
    pub seq: i64,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
}

/// A delivery with its attempt log (`deliver status`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryStatus {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryRecord,
    /// Every attempt to send it.
    pub attempt_log: Vec<AttemptRecord>,
}

impl Station {
    /// Orders, optionally in one state, oldest first.
    pub async fn list_orders(
        &self,
        state: Option<OrderState>,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        self.store.list_orders(state).await
    }

    /// One order as stored.
    pub async fn order(&self, order_no: &OrderNo) -> Result<Option<OrderRecord>, StoreError> {
        self.store.order(order_no.as_str()).await
    }

    /// One order with everything about it; [`StoreError::OrderNotFound`] when there is none.
    pub async fn order_details(&self, no: &OrderNo) -> Result<OrderDetails, StoreError> {
        let order_no = no.as_str();
        let record = self
            .store
            .order(order_no)
            .await?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.to_string()))?;
        let history = self
            .audit_records(Some(no))
            .await?
            .into_iter()
            .map(|r| HistoryEntry {
                seq: r.seq,
                at: r.at,
                actor: r.actor,
                action: r.action,
            })
            .collect();
        Ok(OrderDetails {
            record,
            token: self.store.active_binding(order_no).await?,
            certificates: self.store.certificates_of_order(order_no).await?,
            deliveries: self
                .store
                .deliveries(&DeliveryFilter {
                    order_no: Some(no.clone()),
                    state: None,
                })
                .await?,
            history,
            renewals: self.store.renewals_of(no).await?,
        })
    }

    /// Audit records in chain order, all or one order's.
    pub async fn audit_records(
        &self,
        order_no: Option<&OrderNo>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.store
            .audit_records(&AuditFilter {
                order_no: order_no.cloned(),
            })
            .await
    }

    /// Deliveries with their attempt logs.
    pub async fn delivery_status(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryStatus>, StoreError> {
        let mut out = Vec::new();
        for delivery in self.store.deliveries(filter).await? {
            let attempt_log = self.store.delivery_attempts(&delivery.id).await?;
            out.push(DeliveryStatus {
                delivery,
                attempt_log,
            });
        }
        Ok(out)
    }
}
