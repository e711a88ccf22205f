//! Reissue (补办, `keystation order reissue ORDER`): a new order under the original's identity —
//! company, form and documents carried over by hash, linked by `reissue_of` — for an order
//! whose key was reported lost or broken, or retired. It is Submitted, reviewed anew and
//! provisioned onto a new key like any order. See [`crate::domain::reissue`] for the rule and
//! the numbering (`ORIGINAL-B<n>`).
//!
//! Making it is one transaction: what became of the original's key is read
//! (`key_dispositions`), a reissue still under way is refused, the next free number is taken,
//! the order stored and `order.reissue_requested` audited.

use super::{ServiceDeskError, operator};
use crate::audit::event::{AuditEvent, ReissueRequested};
use crate::domain::OrderNo;
use crate::domain::reissue::{MAX_REISSUES, reissue_order_no, reissue_refusal};
use crate::station::Station;
use crate::station::renewal::is_open;
use crate::store::AuditEntry;

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
}

impl Station {
    /// Makes the reissue order of `original` (see the module docs).
    pub async fn reissue_order(
        &self,
        original: &OrderNo,
        by: &str,
    ) -> Result<ReissueReport, ServiceDeskError> {
        let by = operator(by)?;
        let actor = self
            .operator_actor(by.as_str(), crate::domain::Action::RenewOrder)
            .await?;
        let refused = |message: String| ServiceDeskError::ReissueRefused {
            order_no: original.to_string(),
            message,
        };
        let mut tx = self.store.begin_write(self.clock.now()).await?;
        // An unknown order is named as such.
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
        let disposition = disposition.ok_or_else(|| refused("no key disposition".into()))?;
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
        tx.audit(
            &actor,
            AuditEntry::order(
                &new_no,
                AuditEvent::ReissueRequested(ReissueRequested {
                    original: original.to_string(),
                    disposition: disposition.as_str().to_string(),
                    operator: by.to_string(),
                    attachments,
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
        })
    }
}
