//! A key reported lost (`keystation order lost ORDER`) or broken (`order lost ORDER --broken`):
//! its certificates revoked at once — keyCompromise when lost, cessationOfOperation when broken — through the revocation path of `order revoke` (one transaction, then an immediate CRL),
//! and in that same transaction its token binding closed and any open service request of the
//! order cancelled. No second operator is needed: the report only takes rights away, and waiting
//! would leave a lost key's certificate valid.

use super::{ServiceDeskError, operator, optional_text};
use crate::audit::event::{AuditEvent, OrderReportedLost, ServiceCancelled};
use crate::domain::reissue::KeyDisposition;
use crate::domain::{OperatorId, OrderNo, RequestEvent};
use crate::station::Station;
use crate::station::revoke::RevokeReport;
use crate::store::{Actor, AuditEntry, Binding, ServiceRequestFilter, StoreError, Tx};

/// The RFC 5280 reason of a lost key's revocation.
pub const LOST_KEY_REASON: &str = "keyCompromise";

/// The RFC 5280 reason of a broken key's revocation: the key is destroyed, nobody else holds
/// it, the certificate is simply no longer used.
pub const BROKEN_KEY_REASON: &str = "cessationOfOperation";

/// What reporting a key lost did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LostReport {
    /// The revocation (certificates, deliveries cancelled, CRL).
    #[serde(flatten)]
    pub revocation: RevokeReport,
    /// The binding closed.
    pub binding_closed: Option<String>,
    /// The lost key.
    pub token_serial: Option<String>,
    /// Service requests cancelled.
    pub requests_cancelled: Vec<String>,
    /// Reported broken (else lost).
    pub broken: bool,
}

/// What the revocation's transaction closes besides the certificates (read before it begins).
pub(crate) struct LostKey {
    pub(crate) operator: String,
    pub(crate) detail: Option<String>,
    pub(crate) binding: Option<Binding>,
    pub(crate) open_requests: Vec<String>,
    pub(crate) broken: bool,
}

/// Cancels, in `tx`, those of the requests `ids` that may still be cancelled (the key they
/// were for is gone), each with its audit record; returns the ids cancelled.
pub(crate) async fn cancel_requests_in(
    tx: &mut Tx,
    actor: &Actor,
    by: &OperatorId,
    ids: &[String],
    note: &str,
) -> Result<Vec<String>, StoreError> {
    let mut cancelled = Vec::new();
    for id in ids {
        let mut r = tx.service_request(id).await?;
        let event = RequestEvent::Cancel { by: by.clone() };
        if r.state.apply(&r.requested_by, &event).is_err() {
            continue;
        }
        tx.transition_service_request(actor, &mut r, &event, |r| {
            r.decision_note = Some(note.to_string());
            AuditEvent::ServiceCancelled(ServiceCancelled {
                request_id: r.id.clone(),
                kind: r.kind.as_str().to_string(),
                cancelled_by: by.to_string(),
                note: r.decision_note.clone(),
            })
        })
        .await?;
        cancelled.push(id.clone());
    }
    Ok(cancelled)
}

/// What [`LostKey::close_in`] closed.
pub(crate) struct LostClosed {
    pub(crate) binding_closed: Option<String>,
    pub(crate) token_serial: Option<String>,
    pub(crate) requests_cancelled: Vec<String>,
}

impl LostKey {
    /// In the revocation's transaction: the binding closed, open requests cancelled, the report
    /// audited.
    pub(crate) async fn close_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        order_no: &OrderNo,
    ) -> Result<LostClosed, StoreError> {
        let (what, disposition) = if self.broken {
            ("broken", KeyDisposition::Broken)
        } else {
            ("lost", KeyDisposition::Lost)
        };
        if let Some(b) = &self.binding {
            tx.release_binding(&b.binding_id, &format!("reported {what}"))
                .await?;
        }
        let by =
            OperatorId::parse(&self.operator).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.record_key_disposition(
            order_no,
            disposition,
            self.binding.as_ref().and_then(|b| b.token_serial.as_ref()),
            &by,
        )
        .await?;
        let note = format!("the key was reported {what}");
        let cancelled = cancel_requests_in(tx, actor, &by, &self.open_requests, &note).await?;
        let closed = LostClosed {
            binding_closed: self.binding.as_ref().map(|b| b.binding_id.to_string()),
            token_serial: self
                .binding
                .as_ref()
                .and_then(|b| b.token_serial.as_deref().map(str::to_string)),
            requests_cancelled: cancelled,
        };
        let report = OrderReportedLost {
            operator: self.operator.clone(),
            detail: self.detail.clone(),
            binding_id: closed.binding_closed.clone(),
            token_serial: closed.token_serial.clone(),
            requests_cancelled: closed.requests_cancelled.clone(),
        };
        let event = if self.broken {
            AuditEvent::OrderReportedBroken(report)
        } else {
            AuditEvent::OrderReportedLost(report)
        };
        tx.audit(
            actor,
            AuditEntry {
                token_serial: self.binding.as_ref().and_then(|b| b.token_serial.clone()),
                ..AuditEntry::order(order_no, event)
            },
        )
        .await?;
        Ok(closed)
    }
}

impl Station {
    /// `order lost ORDER [--broken]`: see the module docs.
    pub async fn report_lost(
        &self,
        order_no: &OrderNo,
        reported_by: &str,
        detail: Option<&str>,
        broken: bool,
    ) -> Result<LostReport, ServiceDeskError> {
        let by = operator(reported_by)?;
        let detail = optional_text("--detail", detail)?;
        let binding = self.store.active_binding(order_no).await?;
        let open_requests = self
            .store
            .service_requests(&ServiceRequestFilter {
                order_no: Some(order_no.clone()),
                state: None,
                kind: None,
            })
            .await?
            .into_iter()
            .filter(|r| r.state.is_open())
            .map(|r| r.id)
            .collect();
        let lost = LostKey {
            operator: by.to_string(),
            detail: detail.clone(),
            binding,
            open_requests,
            broken,
        };
        let (reason, default_detail) = if broken {
            (BROKEN_KEY_REASON, "key reported broken")
        } else {
            (LOST_KEY_REASON, "key reported lost")
        };
        let detail = detail.unwrap_or_else(|| default_detail.into());
        let (revocation, closed) = self
            .revoke_order_closing(
                order_no,
                (reason, Some(&detail)),
                by.as_str(),
                crate::station::revoke::Closing::Lost(&lost),
            )
            .await?;
        let closed = closed.ok_or_else(|| {
            ServiceDeskError::Inconsistent("the lost key's records were not closed".into())
        })?;
        Ok(LostReport {
            revocation,
            binding_closed: closed.binding_closed,
            token_serial: closed.token_serial,
            requests_cancelled: closed.requests_cancelled,
            broken,
        })
    }
}
