//! What a front reads: orders, an order with everything about it, the audit trail, deliveries
//! with their attempts. Read-only; every change goes through a command method.

use super::{
    AttemptRecord, Binding, CertificateRecord, DeliveryFilter, DeliveryRecord, OrderRecord,
    OrderSummary, Station,
};
use crate::audit::AuditRecord;
use crate::domain::secondary_key::{CompanyKey, arrange_company_keys};
use crate::domain::{CertSerial, CertificateStatus, KeyRole, OrderNo, OrderState, TokenSerial};
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
    /// The company's keys (every order with its USCC): each main key followed by the
    /// secondary keys that name it.
    pub company_keys: Vec<CompanyKeyView>,
    /// Its renewal orders (`order renew`), oldest first; `renewal_of` names the other way.
    pub renewals: Vec<crate::store::RenewalLink>,
    /// The order whose lost, broken or retired key this one replaces (`order reissue`).
    pub reissue_of: Option<OrderNo>,
    /// Its reissue orders, oldest first.
    pub reissues: Vec<crate::store::RenewalLink>,
    /// What became of its key, if it left service (lost, broken, retired).
    pub key_disposition: Option<crate::domain::reissue::KeyDisposition>,
}

/// One of a company's keys, as `order show` lists them together.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompanyKeyView {
    /// The order.
    pub order_no: OrderNo,
    /// Main or secondary key.
    pub key_role: KeyRole,
    /// The main-key order a secondary key names.
    pub main_order_no: Option<OrderNo>,
    /// The order's state.
    pub state: OrderState,
    /// The serial of the token bound to it now.
    pub token_serial: Option<TokenSerial>,
    /// Its certificates, oldest first, with their status.
    pub certificates: Vec<CompanyKeyCertificate>,
}

/// A certificate in [`CompanyKeyView`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompanyKeyCertificate {
    /// Serial, hex.
    pub serial: CertSerial,
    /// Where it stands.
    pub status: CertificateStatus,
    /// End of validity (RFC 3339).
    pub not_after: String,
}

impl CompanyKey for CompanyKeyView {
    fn order_no(&self) -> &str {
        &self.order_no
    }
    fn key_role(&self) -> KeyRole {
        self.key_role
    }
    fn main_order_no(&self) -> Option<&str> {
        self.main_order_no.as_deref()
    }
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
        self.store.order(order_no).await
    }

    /// One order with everything about it; [`StoreError::OrderNotFound`] when there is none.
    pub async fn order_details(&self, no: &OrderNo) -> Result<OrderDetails, StoreError> {
        let order_no = no;
        let record = self
            .store
            .order(order_no)
            .await?
            .ok_or_else(|| StoreError::OrderNotFound(order_no.clone()))?;
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
        let company_keys = self.company_keys(&record.order.company.uscc).await?;
        Ok(OrderDetails {
            company_keys,
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
            reissue_of: self.store.reissue_of(no).await?,
            reissues: self.store.reissues_of(no).await?,
            key_disposition: self.store.key_disposition_of(no).await?,
        })
    }

    /// The keys of the company with this USCC (see [`OrderDetails::company_keys`]).
    pub async fn company_keys(&self, uscc: &str) -> Result<Vec<CompanyKeyView>, StoreError> {
        let mut keys = Vec::new();
        for o in self.store.company_orders(uscc).await? {
            let no = o.order.order_no;
            let token_serial = self
                .store
                .active_binding(&no)
                .await?
                .and_then(|b| b.token_serial);
            let certificates = self
                .store
                .certificates_of_order(&no)
                .await?
                .into_iter()
                .map(|c| CompanyKeyCertificate {
                    serial: c.serial,
                    status: c.status,
                    not_after: c.not_after,
                })
                .collect();
            keys.push(CompanyKeyView {
                key_role: o.order.product.key_role,
                main_order_no: o.order.product.main_order_no,
                order_no: no,
                state: o.state,
                token_serial,
                certificates,
            });
        }
        Ok(arrange_company_keys(keys))
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

    /// Every certificate the CA issued (or reserved a serial for), as stored.
    pub async fn certificates(&self) -> Result<Vec<CertificateRecord>, StoreError> {
        self.store.all_certificates().await
    }
}
