//! The last steps: `write_seals` (the order's GB/T 38540 seals as data objects) and `finish`
//! (Provisioned, with the PIN delivery queued in the same transaction when so configured, and
//! for a renewal order the original's certificates revoked as superseded, then a CRL).

use super::super::error::StepError;
use super::super::job::Job;
use super::super::journal::{StepEnd, Write, commit, revoked_entry};
use super::super::step::Step;
use super::super::token_access::blocking;
use crate::audit::event::{AuditEvent, OldKeyRemoved, OrderProvisioned, SealsWritten, StepOutcome};
use crate::config::DeliveryTrigger;
use crate::domain::{CertificateStatus, OrderEvent, OrderState, StepStatus};
use crate::station::crl::CrlOutcome;
use crate::station::seals::build_order_seals;
use crate::store::AuditEntry;
use crate::token::DataObject;

impl Job<'_> {
    pub(in super::super) async fn write_seals(&mut self) -> Result<(), StepError> {
        let seals = match self.order.seals_on_key() {
            [] => Vec::new(),
            _ => {
                let cert = self
                    .cert
                    .clone()
                    .ok_or_else(|| StepError::Inconsistent("no certificate".into()))?;
                build_order_seals(self.station, self.hsm, &self.order, &cert.der).await?
            }
        };
        let (labels, removed) = blocking(|| -> Result<(Vec<String>, usize), StepError> {
            let s = self.user_session()?;
            // Seals are the only data objects on a customer's token: whatever is there is a
            // previous attempt's (a crash inside this step) and is replaced, never duplicated.
            let removed = s.destroy_all(crate::token::objects::ObjectClassName::Data)?;
            let mut labels = Vec::new();
            for seal in &seals {
                let label = seal.label();
                s.write_data(&DataObject::private(
                    crate::seal::SEAL_APPLICATION,
                    &label,
                    &seal.der,
                ))?;
                labels.push(label);
            }
            Ok((labels, removed))
        })?;
        self.seals = labels.clone();
        self.done(
            Step::WriteSeals,
            StepOutcome::WriteSeals(SealsWritten {
                seals: labels,
                replaced_data_objects: removed,
            }),
            None,
        )
        .await
    }

    pub(in super::super) async fn finish(&mut self) -> Result<(), StepError> {
        let no = self.no().clone();
        self.failpoint("provision.finish.before_done")?;
        // Read before the pending records are taken: a failure here leaves them pending.
        let mut supersede = Vec::new();
        let superseded =
            supersede_renewed(self.station, &no, &self.actor.name, &mut supersede).await?;
        // The last commit releases the lease: no renewal may come after it.
        self.lease.stop_renewing();
        let provisioned = self.entry(AuditEvent::OrderProvisioned(OrderProvisioned {
            key_id: self.binding.key_id.clone(),
            seals: self.seals.clone(),
            attempt: self.attempt,
        }));
        let mut writes = std::mem::take(&mut self.pending);
        writes.extend([
            Write::StepFinished(StepEnd {
                order_no: no.clone(),
                attempt: self.attempt,
                step: Step::Finish,
                status: StepStatus::Done,
                detail: None,
            }),
            Write::Transition {
                order_no: no.clone(),
                expected: Some(OrderState::Provisioning),
                event: OrderEvent::CompleteProvisioning,
            },
            Write::Audit(Box::new(provisioned)),
        ]);
        // Outbox: with `delivery.trigger = "on_provisioned"` the PIN delivery is queued in the
        // same transaction that makes the order Provisioned.
        if self.station.config.delivery.trigger == DeliveryTrigger::OnProvisioned {
            writes.push(Write::QueueDelivery {
                order: Box::new(self.order.clone()),
                station_id: self.binding.station_id.clone(),
            });
        }
        writes.extend(supersede);
        commit(self.station, &self.actor, &writes, self.fence(true)).await?;
        if !superseded.is_empty() {
            self.revoked.extend(superseded);
            // The revocation stands whatever happens to this CRL: the serving loop's tick or
            // `keystation ca crl` lists it later.
            if let CrlOutcome::Failed { error } =
                self.station.crl_after(Some(self.hsm), "renewal").await
            {
                tracing::warn!(order_no = %no, %error, "no CRL after the renewal's revocation");
            }
        }
        if self.binding.kept_from.is_some() {
            self.remove_old_key().await?;
        }
        Ok(())
    }

    /// A renewal made on the company's existing key: once the commit above put the new
    /// certificate on record and revoked the old one, the old key pair and certificate are
    /// removed from the key. (A crash before this leaves them, revoked, beside the new ones;
    /// `provision ORDER` on the Provisioned renewal does not come back here.)
    async fn remove_old_key(&mut self) -> Result<(), StepError> {
        let key_id = self
            .binding
            .key_id
            .clone()
            .ok_or_else(|| StepError::Inconsistent("the renewal's key has no id".into()))?;
        let keep = hex::decode(&key_id)
            .map_err(|e| StepError::Inconsistent(format!("key id {key_id:?}: {e}")))?;
        let serial = self.token_serial()?;
        let removed = blocking(|| -> Result<usize, StepError> {
            Ok(self.user_session()?.destroy_keys_except(&keep)?)
        })?;
        let entry = AuditEntry {
            token_serial: Some(serial.clone()),
            ..self.entry(AuditEvent::OldKeyRemoved(OldKeyRemoved {
                token_serial: serial.to_string(),
                kept_key_id: key_id,
                objects: i64::try_from(removed).unwrap_or(i64::MAX),
            }))
        };
        commit(
            self.station,
            &self.actor,
            &[Write::Audit(Box::new(entry))],
            None,
        )
        .await?;
        Ok(())
    }
}

/// For a renewal order (`renewal_of`), the writes that revoke the original's certificates not
/// revoked yet as `superseded`, in the commit that records the new certificate on its token and
/// makes the renewal Provisioned; their serials. Read afresh on every run, so a run resumed after
/// a crash before that commit revokes them then. (A free function: a job is not `Sync`, so
/// `&self` must not be held across an await.)
async fn supersede_renewed(
    station: &crate::station::Station,
    no: &str,
    by: &str,
    writes: &mut Vec<Write>,
) -> Result<Vec<crate::domain::CertSerial>, StepError> {
    let order_no = crate::domain::OrderNo::parse(no)
        .map_err(|e| StepError::Inconsistent(format!("the job's order number: {e}")))?;
    let Some(original) = station.store.renewal_of(&order_no).await? else {
        return Ok(Vec::new());
    };
    let detail = format!("superseded by renewal order {no}");
    let mut serials = Vec::new();
    for c in station
        .store
        .certificates_of_order(&original)
        .await?
        .into_iter()
        .filter(|c| c.status != CertificateStatus::Revoked)
    {
        writes.push(Write::RevokeCertificate {
            serial: c.serial.clone(),
            order_no: original.clone(),
            detail: detail.clone(),
            by: by.to_string(),
        });
        writes.push(Write::Audit(Box::new(revoked_entry(&c, &detail))));
        serials.push(c.serial);
    }
    Ok(serials)
}
