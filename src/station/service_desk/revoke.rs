//! Four-eyes revocation (issue 17): `order revoke ORDER` and `cert revoke SERIAL` only record a
//! request (kind `revoke` / `revoke_certificate`, what to revoke kept beside it in
//! `revoke_requests`); nothing is revoked until a second, different operator approves it.
//!
//! Design: approving a revocation carries it out at once ([`Station::approve_revoke`]): unlike a
//! PIN reset, no key needs to be at the desk, only the CA, and a revocation left approved but
//! not done would keep a certificate the station decided to withdraw live for no reason. The
//! decision and the revocation are two transactions: the approval stands if the revocation then
//! fails (a busy database, the order changed meanwhile), the failure is recorded on the request
//! (`failed`, its error), and `revoke run ID` carries it out later — a revocation is one
//! transaction ([`crate::station::revoke`]), so there is no journal to resume, only the request.
//! The request moves to `done` in the revocation's own transaction, whose audit record names
//! both operators.

use super::at_approval::{after_approval, runnable_at_approval};
use super::{ServiceDeskError, operator, optional_text, record_request};
use crate::domain::{Action, CertSerial, OrderNo, RequestKind};
use crate::station::Station;
use crate::station::revoke::{
    CertificateRevokeReport, Closing, RevokeReport, check_reason_and_operator,
    revocable_certificate, revocable_order,
};
use crate::store::{RevokeRequestRecord, ServiceRequestRecord, StoreError};

/// What carrying out a revocation request did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevokeRun {
    /// The request, `done`.
    pub request: ServiceRequestRecord,
    /// What it revoked, and why.
    pub revocation: RevokeRequestRecord,
    /// The order's revocation (`order revoke`).
    pub order: Option<RevokeReport>,
    /// The one certificate's revocation (`cert revoke`).
    pub certificate: Option<CertificateRevokeReport>,
}

/// What the request is to revoke: the order, or one certificate of it.
enum Target<'a> {
    Order(&'a OrderNo),
    Certificate(&'a CertSerial),
}

impl Station {
    /// `order revoke ORDER --reason R`: records a request to revoke the order (its live
    /// certificates, its pending PIN delivery), refused at once when the order cannot be revoked.
    /// Revokes nothing: a second operator approves it ([`Station::approve_revoke`]).
    pub async fn request_order_revoke(
        &self,
        order_no: &OrderNo,
        reason: &str,
        detail: Option<&str>,
        requested_by: &str,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        self.intake_revoke(Target::Order(order_no), reason, detail, requested_by)
            .await
    }

    /// `cert revoke SERIAL --reason R`: records a request to revoke one certificate, refused at
    /// once for what `cert revoke` refuses (unknown or revoked serial, the only certificate on
    /// an order's token). Revokes nothing: a second operator approves it.
    pub async fn request_certificate_revoke(
        &self,
        serial: &CertSerial,
        reason: &str,
        detail: Option<&str>,
        requested_by: &str,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        self.intake_revoke(Target::Certificate(serial), reason, detail, requested_by)
            .await
    }

    async fn intake_revoke(
        &self,
        target: Target<'_>,
        reason: &str,
        detail: Option<&str>,
        requested_by: &str,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        check_reason_and_operator(reason, requested_by)?;
        let by = operator(requested_by)?;
        let detail = optional_text("--detail", detail)?;
        let actor = self.operator_actor(by.as_str(), Action::Revoke).await?;
        let mut tx = self.begin_write().await?;
        let (kind, order_no, token, cert_serial, what) = match target {
            Target::Order(no) => {
                let state = tx.order_state(no).await?;
                revocable_order(no, state)?;
                (
                    RequestKind::Revoke,
                    no.clone(),
                    None,
                    None,
                    reason.to_string(),
                )
            }
            Target::Certificate(serial) => {
                let (cert, _, _) = revocable_certificate(&mut tx, serial).await?;
                let what = format!("{reason} (certificate {serial})");
                let token = cert.token_serial.clone();
                (
                    RequestKind::RevokeCertificate,
                    cert.order_no,
                    token,
                    Some(serial.clone()),
                    what,
                )
            }
        };
        let evidence = detail
            .clone()
            .unwrap_or_else(|| "no detail given".to_string());
        let id =
            record_request(&mut tx, &actor, kind, &order_no, &by, what, evidence, token).await?;
        tx.insert_revoke_request(&RevokeRequestRecord {
            request_id: id.clone(),
            cert_serial,
            crl_reason: reason.to_string(),
            detail,
        })
        .await?;
        let rec = tx.service_request(&id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// `revoke approve ID`: a second operator's approval of a revocation request (never the
    /// requester's: [`crate::domain::RequestError::SameOperator`]), then the revocation carried
    /// out at once by the approver. If the revocation fails, the approval stands and the
    /// request is `failed`: `revoke run ID` carries it out later.
    pub async fn approve_revoke(
        &self,
        id: &str,
        approved_by: &str,
        note: Option<&str>,
    ) -> Result<RevokeRun, ServiceDeskError> {
        runnable_at_approval(self, id, RequestKind::Revoke, "approve").await?;
        self.decide_request(id, approved_by, true, note).await?;
        after_approval(
            id,
            RequestKind::Revoke,
            self.run_revoke(id, approved_by).await,
        )
    }

    /// `revoke run ID`: carries out an approved revocation request (or one whose revocation
    /// failed); refused for a request still waiting for its second operator.
    pub async fn run_revoke(
        &self,
        id: &str,
        operator: &str,
    ) -> Result<RevokeRun, ServiceDeskError> {
        let actor = self.operator_actor(operator, Action::Revoke).await?;
        let r = runnable_at_approval(self, id, RequestKind::Revoke, "run").await?;
        let revocation = self.store.revoke_request(id).await?.ok_or_else(|| {
            ServiceDeskError::Inconsistent(format!(
                "revocation request {id} has no record of what it revokes"
            ))
        })?;
        // The revocation's record says who decided it, beside its own words: relying parties
        // and `seal show` read it there.
        let detail = format!(
            "{} (requested by {}, approved by {})",
            revocation
                .detail
                .as_deref()
                .unwrap_or("revoked by an operator"),
            r.requested_by,
            r.decided_by.as_ref().map_or("?", |d| d.as_str()),
        );
        let why = (revocation.crl_reason.as_str(), Some(detail.as_str()));
        let outcome: Result<_, ServiceDeskError> = async {
            // A test makes the revocation fail here, after the approval committed.
            crate::failpoint::check("revoke.run")?;
            Ok(match &revocation.cert_serial {
                None => self
                    .revoke_order_closing(&r.order_no, why, operator, Closing::Request(id))
                    .await
                    .map(|(report, _)| (Some(report), None))?,
                Some(serial) => self
                    .revoke_certificate(serial, why, operator, id)
                    .await
                    .map(|report| (None, Some(report)))?,
            })
        }
        .await;
        let (order, certificate) = match outcome {
            Ok(done) => done,
            Err(e) => {
                super::record_failure(self, &actor, id, "revoke", &e).await;
                return Err(e);
            }
        };
        let request = self
            .store
            .service_request(id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?;
        Ok(RevokeRun {
            request,
            revocation,
            order,
            certificate,
        })
    }
}
