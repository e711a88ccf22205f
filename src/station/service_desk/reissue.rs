//! Reissue (补办, `keystation order reissue ORDER`): a new order under the original's identity —
//! company, form and documents carried over by hash, linked by `reissue_of` — for an order
//! whose key was reported lost or broken, or retired. It is Submitted, reviewed anew and
//! provisioned onto a new key like any order. See [`crate::domain::reissue`] for the rule and
//! the numbering (`ORIGINAL-B<n>`).
//!
//! Four-eyes (issue 17): `order reissue ORDER` by one operator only records a request (kind
//! `reissue`), refused at once when no reissue can be made; a second, different operator's
//! `reissue approve ID` makes the order at once (`service_desk/at_approval.rs`), `reissue run ID`
//! again after a failure.
//!
//! Making it is one transaction: what became of the original's key is read
//! (`key_dispositions`), a reissue still under way is refused, the next free number is taken,
//! the order stored, the request moved to `done` and `order.reissue_requested` audited with
//! both operators.

use super::at_approval::{after_approval, runnable_at_approval};
use super::{ServiceDeskError, carry_out_in, operator, record_request};
use crate::audit::event::{AuditEvent, FourEyes, ReissueRequested};
use crate::domain::reissue::{KeyDisposition, MAX_REISSUES, reissue_order_no, reissue_refusal};
use crate::domain::{Action, OrderNo, RequestKind};
use crate::station::Station;
use crate::station::renewal::is_open;
use crate::store::{AuditEntry, ServiceRequestRecord, Tx};

/// What `order reissue` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReissueReport {
    /// The new (reissue) order, Submitted.
    pub order_no: String,
    /// The order whose key it replaces.
    pub reissue_of: String,
    /// What became of that key (`lost`, `broken`, `retired`).
    pub disposition: String,
    /// Attachments carried over (by hash).
    pub attachments: usize,
    /// The four-eyes request carried out: who asked and who approved.
    pub four_eyes: FourEyes,
}

/// What became of `original`'s key, read in `tx`, when a reissue of it may be made now (an
/// unknown order is named as such).
async fn reissuable(tx: &mut Tx, original: &OrderNo) -> Result<KeyDisposition, ServiceDeskError> {
    let refused = |message: String| ServiceDeskError::ReissueRefused {
        order_no: original.to_string(),
        message,
    };
    tx.order_state(original).await?;
    let disposition = tx.key_disposition(original).await?;
    let open = tx
        .reissues_in_tx(original)
        .await?
        .into_iter()
        .find(|r| is_open(r.state))
        .map(|r| r.order_no);
    if let Some(why) = reissue_refusal(disposition, open.as_ref()) {
        return Err(refused(why));
    }
    disposition.ok_or_else(|| refused("no key disposition".into()))
}

impl Station {
    /// `order reissue ORDER`: records a request for the reissue order of `original`, refused
    /// at once when none may be made. Makes nothing: a second operator approves it.
    pub async fn request_reissue(
        &self,
        original: &OrderNo,
        requested_by: &str,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        let by = operator(requested_by)?;
        let actor = self.operator_actor(by.as_str(), Action::RenewOrder).await?;
        let mut tx = self.begin_write().await?;
        let disposition = reissuable(&mut tx, original).await?;
        let reason = format!(
            "the key was {}: a replacement order (补办)",
            disposition.as_str()
        );
        let evidence = "no detail given".to_string();
        let kind = RequestKind::Reissue;
        let id =
            record_request(&mut tx, &actor, kind, original, &by, reason, evidence, None).await?;
        let rec = tx.service_request(&id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// `reissue approve ID`: a second operator's approval (never the requester's), then the
    /// reissue order made at once by the approver. If making it fails, the approval stands and
    /// the request is `failed`: `reissue run ID` makes it later.
    pub async fn approve_reissue(
        &self,
        id: &str,
        approved_by: &str,
        note: Option<&str>,
    ) -> Result<ReissueReport, ServiceDeskError> {
        runnable_at_approval(self, id, RequestKind::Reissue, "approve").await?;
        self.decide_request(id, approved_by, true, note).await?;
        after_approval(
            id,
            RequestKind::Reissue,
            self.run_reissue(id, approved_by).await,
        )
    }

    /// `reissue run ID`: makes the reissue order of an approved request (or one that failed).
    /// The approver's authority carries it: a security officer, who decides requests.
    pub async fn run_reissue(&self, id: &str, by: &str) -> Result<ReissueReport, ServiceDeskError> {
        let actor = self.operator_actor(by, Action::DecideRequest).await?;
        let r = runnable_at_approval(self, id, RequestKind::Reissue, "run").await?;
        let made = self.reissue_order(&r.order_no, by, id).await;
        if let Err(e) = &made {
            super::record_failure(self, &actor, id, "reissue", e).await;
        }
        made
    }

    /// Makes the reissue order of `original`, carrying out approved request `request_id` in
    /// the same transaction (see the module docs).
    async fn reissue_order(
        &self,
        original: &OrderNo,
        by: &str,
        request_id: &str,
    ) -> Result<ReissueReport, ServiceDeskError> {
        let by = operator(by)?;
        let actor = self
            .operator_actor(by.as_str(), Action::DecideRequest)
            .await?;
        let refused = |message: String| ServiceDeskError::ReissueRefused {
            order_no: original.to_string(),
            message,
        };
        let mut tx = self.begin_write().await?;
        let disposition = reissuable(&mut tx, original).await?;
        let mut new_no = None;
        for n in 1..=MAX_REISSUES {
            let candidate = reissue_order_no(original, n).map_err(|e| refused(format!("{e}")))?;
            if !tx.order_exists(&candidate).await? {
                new_no = Some(candidate);
                break;
            }
        }
        let new_no = new_no.ok_or_else(|| {
            refused(format!(
                "every reissue number {original}-B1 .. -B{MAX_REISSUES} is taken"
            ))
        })?;
        let mut order = tx.order_in_tx(original).await?;
        order.order_no = new_no.clone();
        let attachments = tx.insert_reissue_order(original, &order).await?;
        let count = attachments.len();
        let four_eyes = carry_out_in(&mut tx, &actor, request_id).await?;
        tx.audit(
            &actor,
            AuditEntry::order(
                &new_no,
                AuditEvent::ReissueRequested(ReissueRequested {
                    original: original.to_string(),
                    disposition: disposition.as_str().to_string(),
                    operator: by.to_string(),
                    attachments,
                    four_eyes: Some(four_eyes.clone()),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(ReissueReport {
            order_no: new_no.to_string(),
            reissue_of: original.to_string(),
            disposition: disposition.as_str().to_string(),
            attachments: count,
            four_eyes,
        })
    }
}
