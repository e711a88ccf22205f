//! The claim of the next approved order, the way a batch takes its work when several stations
//! share one queue: no list is read beforehand, so no station ever tries an order another one
//! claimed meanwhile. One transaction picks the oldest approved order that no other claim is
//! picking (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite:
//! [`crate::store::Store::begin_claim_next`]) and writes the same claim as
//! [`Station::provision`] does for an order it is given.
//!
//! An approved order has never been claimed: no binding, no journal, no lease. What the claim
//! checks before it writes is only that a blank key is present here to take it; it reserves that
//! key for the job's `init_token`.

use super::claim::{ClaimPlan, Claimed};
use super::error::ProvisionError;
use super::journal::{Resume, apply_all};
use super::report::ProvisionReport;
use super::step::Progress;
use crate::domain::OrderState;
use crate::domain::lease::LeaseKind;
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::station::lease::KeptLease;
use crate::store::{Retry, StoreError};

impl Station {
    /// Claims the next approved order and provisions it; `None` when no approved order is left.
    /// [`ProvisionError::NoBlankToken`] (naming the oldest approved order) when one is left but
    /// no blank key is present: nothing was claimed.
    pub async fn provision_next(
        &self,
        hsm: &Hsm,
        progress: &dyn Progress,
    ) -> Result<Option<ProvisionReport>, ProvisionError> {
        let me = self.as_provisioning_operator().await?;
        match me.claim_next(hsm).await? {
            Some(claimed) => me.run_claimed(hsm, claimed, progress).await.map(Some),
            None => Ok(None),
        }
    }

    async fn claim_next(&self, hsm: &Hsm) -> Result<Option<Claimed>, ProvisionError> {
        let Some(blank) = self.reserve_blank(hsm, "(the next approved order)").await? else {
            let waiting = self.store.list_orders(Some(OrderState::Approved)).await?;
            return match waiting.into_iter().next() {
                Some(o) => Err(ProvisionError::NoBlankToken(o.order_no)),
                None => Ok(None),
            };
        };
        let actor = self.job_actor();
        let lease_id = uuid::Uuid::new_v4().to_string();
        let mut retry = Retry::new();
        // Secondary keys whose main key is no longer live: left Approved, passed over.
        let mut refused: Vec<crate::domain::OrderNo> = Vec::new();
        let claimed = loop {
            let r: Result<_, StoreError> = async {
                let (mut tx, picked) = self
                    .store
                    .begin_claim_next_except(self.clock.now(), &refused)
                    .await?;
                let Some(no) = picked else {
                    tx.commit().await?;
                    return Ok(None);
                };
                let order = tx.order_in_tx(&no).await?;
                // As for an order given by number: a secondary key whose main key is no
                // longer live is not claimed (this transaction rolls back) but passed over,
                // so that it does not hold up the queue; `provision ORDER` names the reason.
                tx.require_live_main_key(&order).await?;
                let binding = self.new_binding(&no);
                let resume = Resume::plan(0, &[], false, false);
                let plan = ClaimPlan {
                    state: OrderState::Approved,
                    binding: &binding,
                    insert_binding: true,
                    resume: &resume,
                    reinit: false,
                    lease_id: &lease_id,
                    four_eyes: None,
                };
                apply_all(&mut tx, &actor, &self.claim_writes(&plan, Vec::new())).await?;
                tx.commit().await?;
                Ok(Some((order, binding, resume)))
            }
            .await;
            if let Err(e @ StoreError::MainKey { order_no, .. }) = &r {
                tracing::warn!(order = %order_no, error = %e, "not claimed: left Approved");
                refused.push(order_no.clone());
                continue;
            }
            if retry.again(&r).await {
                continue;
            }
            break r?;
        };
        Ok(claimed.map(|(order, binding, resume)| {
            let lease = KeptLease::start(
                self,
                LeaseKind::Provision,
                order.order_no.as_str(),
                &lease_id,
            );
            Claimed {
                actor,
                order,
                binding,
                token: None,
                blank: Some(blank),
                resume,
                reinit: false,
                lease,
            }
        }))
    }
}
