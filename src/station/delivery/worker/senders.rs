//! One sender per delivery, whichever station it runs on: `deliver run` may run on every
//! station of an installation at once (the deliveries, the vault and the channels' directories
//! are the installation's).
//!
//! Claiming a queued delivery is a conditional move (`queued` -> `sending`) under the audit head,
//! so two workers never both claim it. What a second worker must never do is take a delivery
//! another one is sending *right now* for one in doubt, ask the channel, hear "never got it" (the
//! message is not written yet) and send it again. So the claim also takes the delivery's sender
//! lease ([`LeaseKind::Delivery`], subject the delivery id), renewed while the channel is
//! contacted and released by the transaction that records the outcome. A delivery found in
//! `sending` is resolved only by a worker that can take its lease: nobody holds it (the outcome
//! was unknown, or the sender released it), or its holder is gone (a killed `deliver run` on
//! this host) or let it expire (another host). A sender whose lease was taken from it records
//! nothing more about that delivery.

use super::*;
use crate::audit::event::DeliverySenderTakenOver;
use crate::domain::OrderNo;
use crate::domain::lease::{LeaseDecision, LeaseKind};
use crate::station::lease::{KeptLease, probe};
use crate::store::{AuditEntry, LeaseRequest};

impl Worker<'_> {
    /// Takes the sender lease on delivery `id` for `lease_id` inside `tx`; false when another
    /// sender that may still run holds it. Taking it over from a gone or expired sender is
    /// audited.
    pub(super) async fn take_sender(
        &mut self,
        tx: &mut Tx,
        id: &str,
        order_no: &OrderNo,
        lease_id: &str,
    ) -> Result<bool, DeliveryError> {
        let holder = self.station.lease_holder();
        let want = LeaseRequest {
            kind: LeaseKind::Delivery,
            subject: id,
            lease_id,
            holder: &holder,
            ttl: self.station.lease_ttl(),
        };
        let taken = match tx.take_lease(&want, &probe).await {
            Ok(taken) => taken,
            Err(StoreError::LeaseHeld { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if let (LeaseDecision::TakeOver(reason), Some(previous)) = (taken.decision, taken.previous)
        {
            let entry = AuditEntry::order(
                order_no,
                AuditEvent::DeliverySenderTakenOver(DeliverySenderTakenOver {
                    delivery_id: id.to_string(),
                    reason,
                    previous: previous.holder,
                    previous_expires_at: format_utc(previous.expires_at),
                }),
            );
            tx.audit(&self.actor, entry).await?;
        }
        Ok(true)
    }

    /// In the transaction recording an outcome: true when the sender lease on `id` is still
    /// `lease_id`'s, which is then released; false when another sender took it (nothing more
    /// may be recorded for this delivery by this one).
    pub(super) async fn release_sender(
        &self,
        tx: &mut Tx,
        id: &str,
        lease_id: &str,
    ) -> Result<bool, DeliveryError> {
        let ours = tx.release_lease(LeaseKind::Delivery, id, lease_id).await?;
        if !ours {
            tracing::warn!(delivery = %id, "another sender took this delivery over; its outcome here is not recorded");
        }
        Ok(ours)
    }

    /// Keeps the sender leases `lease_id` holds on `ids` while the channel is contacted.
    pub(super) fn keep_senders(&self, ids: Vec<String>, lease_id: &str) -> KeptLease {
        KeptLease::start_many(self.station, LeaseKind::Delivery, ids, lease_id)
    }

    /// A delivery in `sending`: resolved (by asking its channel, never by sending again) only
    /// under its sender lease, which no live sender holds; left alone otherwise.
    pub(super) async fn resolve_in_doubt(
        &mut self,
        d: DeliveryRecord,
    ) -> Result<(), DeliveryError> {
        let lease_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.station.store.begin_write(self.now()).await?;
        if !self
            .take_sender(&mut tx, &d.id, &d.order_no, &lease_id)
            .await?
        {
            tracing::debug!(delivery = %d.id, "in doubt, but another sender is on it");
            return Ok(());
        }
        tx.commit().await?;
        let id = d.id.clone();
        let kept = self.keep_senders(vec![id.clone()], &lease_id);
        let resolved = match d.channel {
            DeliveryChannel::BankTransfer => self.resolve_bank(d).await,
            DeliveryChannel::Sms => self.resolve_sms(d).await,
        };
        kept.stop_renewing();
        let mut tx = self.station.store.begin_write(self.now()).await?;
        self.release_sender(&mut tx, &id, &lease_id).await?;
        tx.commit().await?;
        resolved
    }
}
