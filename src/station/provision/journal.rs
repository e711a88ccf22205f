//! The job's database writes: each step's journal and audit records, group-committed where a
//! crash must not lose what came before ([`durable_before`]), every commit fenced by the order's
//! lease; and the pure decisions on what a new run continues, redoes or revokes.

use super::step::Step;
use crate::audit::event::{AuditEvent, CertificateRevoked, LeaseTakenOver};
use crate::domain::lease::{LeaseDecision, LeaseHolder, LeaseKind};
use crate::domain::{
    BindingId, CertSerial, CertificateStatus, Order, OrderEvent, OrderNo, OrderState, StepStatus,
    TokenSerial,
};
use crate::station::Station;
use crate::station::lease::probe;
use crate::store::{
    Actor, AuditEntry, Binding, CertificateRecord, LeaseRequest, Retry, StepRecord, StoreError, Tx,
};
use std::collections::HashSet;

/// Group commit. Every step's "started" and "done" records (with their audit records) are
/// written in order, but a transaction is committed only where a crash must not lose what came
/// before: before `init_token` (the token is about to be erased), before the CA signs (the
/// serial reservation, in `issue_certificate`), before `write_seals` (the certificate is on the
/// token: a re-run continues instead of revoking it), at `finish`, and with a failure record.
/// A crash between two of these points loses only records of work that the next attempt redoes
/// anyway (it restarts from `init_token`, re-initialising the token and revoking any reserved
/// certificate); the kill tests cover every failpoint in between. Five commits per order
/// instead of fifteen.
pub(super) fn durable_before(step: Step) -> bool {
    matches!(step, Step::InitToken | Step::WriteSeals)
}

/// A step's end, as the journal keeps it.
pub(super) struct StepEnd {
    pub(super) order_no: OrderNo,
    pub(super) attempt: i64,
    pub(super) step: Step,
    pub(super) status: StepStatus,
    pub(super) detail: Option<String>,
}

impl StepEnd {
    /// Journals this end in `tx`: the step's started row updated or, when its start is in the
    /// same transaction (`whole`), the row written once, started and finished at the
    /// transaction's instant.
    async fn write(&self, tx: &mut Tx, whole: bool) -> Result<(), StoreError> {
        let (no, name, detail) = (&self.order_no, self.step.name(), self.detail.as_deref());
        if whole {
            tx.step_recorded(no, self.attempt, name, self.status, detail)
                .await
        } else {
            tx.step_finished(no, self.attempt, name, self.status, detail)
                .await
        }
    }
}

/// One database write of the provisioning job. A step's writes and audit records are
/// committed together by [`commit`], which retries the whole transaction when the database
/// fails transiently (a restart, a lost connection, SQLite busy) — every write here can be
/// applied again.
pub(super) enum Write {
    /// Takes the order's lease (first in the claim transaction); a takeover is audited.
    TakeLease {
        order_no: OrderNo,
        lease_id: String,
        holder: Box<LeaseHolder>,
        ttl: time::Duration,
    },
    /// The order is still in the state the claim was decided on.
    ExpectState {
        order_no: OrderNo,
        state: OrderState,
    },
    StepStarted {
        order_no: OrderNo,
        attempt: i64,
        step: Step,
    },
    StepFinished(StepEnd),
    Transition {
        order_no: OrderNo,
        expected: Option<OrderState>,
        event: OrderEvent,
    },
    InsertBinding(Box<Binding>),
    /// A takeover that goes on on the same key: the binding moves to this station.
    BindingStation {
        binding_id: BindingId,
        station: String,
    },
    ReleaseBinding {
        binding_id: BindingId,
        reason: String,
    },
    /// The token's serial, with the SO PIN identity when it changes (see
    /// [`Tx::set_binding_serial`]).
    BindingSerial {
        binding_id: BindingId,
        serial: TokenSerial,
        identity: Option<String>,
    },
    /// A retired key (wiped at the desk) taken by this binding: reusable once.
    ReuseRetiredToken {
        binding_id: BindingId,
        serial: TokenSerial,
    },
    SealedPin {
        order_no: OrderNo,
        serial: TokenSerial,
        sealed: crate::domain::SealedPin,
    },
    BindingKey {
        binding_id: BindingId,
        key_id_hex: String,
        spki: Vec<u8>,
    },
    InsertCertificate(Box<CertificateRecord>),
    CertificateIssued(Box<CertificateRecord>),
    CertificateOnToken(CertSerial),
    /// The sealed escrow copy of a dual certificate's encryption key.
    EscrowKey {
        serial: CertSerial,
        order_no: OrderNo,
        public_point_hex: String,
        sealed: crate::domain::SealedKey,
    },
    RevokeCertificate {
        serial: CertSerial,
        order_no: OrderNo,
        detail: String,
        by: String,
    },
    QueueDelivery {
        order: Box<Order>,
        station_id: String,
    },
    /// An audit record, appended at its place in the transaction.
    Audit(Box<AuditEntry>),
    /// The approved reinit request `--reinit` consumed: `executing`, then `done` (the claim's
    /// record names its operators). Applied again after a transient failure: the transaction
    /// that moved it rolled back.
    CompleteStationRequest {
        id: String,
    },
}

impl Write {
    async fn apply(&self, tx: &mut Tx, actor: &Actor) -> Result<(), StoreError> {
        match self {
            Write::TakeLease {
                order_no,
                lease_id,
                holder,
                ttl,
            } => {
                let want = LeaseRequest {
                    kind: LeaseKind::Provision,
                    subject: order_no.as_str(),
                    lease_id,
                    holder,
                    ttl: *ttl,
                };
                let taken = tx.take_lease(&want, &probe).await?;
                tx.heartbeat(holder).await?;
                if let (LeaseDecision::TakeOver(reason), Some(previous)) =
                    (taken.decision, taken.previous)
                {
                    let entry = AuditEntry::order(
                        order_no,
                        AuditEvent::LeaseTakenOver(LeaseTakenOver {
                            reason,
                            previous: previous.holder,
                            previous_expires_at: crate::clock::format_utc(previous.expires_at),
                        }),
                    );
                    tx.audit(actor, entry).await?;
                }
                Ok(())
            }
            Write::ExpectState { order_no, state } => {
                let actual = tx.order_state(order_no).await?;
                if actual != *state {
                    return Err(StoreError::StateConflict {
                        order_no: order_no.clone(),
                        expected: *state,
                        actual,
                    });
                }
                Ok(())
            }
            Write::StepStarted {
                order_no,
                attempt,
                step,
            } => tx.step_started(order_no, *attempt, step.name()).await,
            Write::StepFinished(end) => end.write(tx, false).await,
            Write::Transition {
                order_no,
                expected,
                event,
            } => tx.transition(order_no, *expected, *event).await.map(|_| ()),
            Write::InsertBinding(b) => tx.insert_binding(b).await,
            Write::BindingStation {
                binding_id,
                station,
            } => tx.set_binding_station(binding_id, station).await,
            Write::ReleaseBinding { binding_id, reason } => {
                tx.release_binding(binding_id, reason).await
            }
            Write::BindingSerial {
                binding_id,
                serial,
                identity,
            } => {
                tx.set_binding_serial(binding_id, serial, identity.as_deref())
                    .await
            }
            Write::ReuseRetiredToken { binding_id, serial } => {
                if tx.reuse_retired_token(serial, binding_id).await? {
                    Ok(())
                } else {
                    // Another order took the retired key first (its binding holds the serial).
                    Err(StoreError::TokenInUse(serial.to_string()))
                }
            }
            Write::SealedPin {
                order_no,
                serial,
                sealed,
            } => tx.put_sealed_pin(order_no, serial, sealed).await,
            Write::BindingKey {
                binding_id,
                key_id_hex,
                spki,
            } => tx.set_binding_key(binding_id, key_id_hex, spki).await,
            Write::InsertCertificate(rec) => tx.insert_certificate(rec).await,
            Write::CertificateIssued(rec) => tx.certificate_issued(rec).await,
            Write::CertificateOnToken(serial) => tx.certificate_on_token(serial).await,
            Write::EscrowKey {
                serial,
                order_no,
                public_point_hex,
                sealed,
            } => {
                tx.put_escrowed_key(serial, order_no, public_point_hex, sealed)
                    .await
            }
            Write::RevokeCertificate {
                serial,
                order_no,
                detail,
                by,
            } => {
                tx.revoke_certificate(serial, order_no, "superseded", detail, by)
                    .await
            }
            Write::Audit(entry) => tx.audit(actor, (**entry).clone()).await.map(|_| ()),
            Write::CompleteStationRequest { id } => {
                let mut r = tx.station_request(id).await?;
                for event in [
                    crate::domain::RequestEvent::Start,
                    crate::domain::RequestEvent::Complete,
                ] {
                    tx.transition_station_request(actor, &mut r, &event, |_| None)
                        .await?;
                }
                Ok(())
            }
            Write::QueueDelivery { order, station_id } => {
                crate::station::delivery::queue_delivery(tx, actor, order, station_id)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// A job's hold on its order, checked by each of its commits (see [`super::lease`]).
pub(super) struct Fence<'a> {
    /// The order.
    pub order_no: &'a OrderNo,
    /// The job's lease.
    pub lease_id: &'a str,
    /// The job ends with this commit: the lease is released with it.
    pub release: bool,
}

/// Commits `writes` (audit records among them, in order) in one transaction, retrying it after
/// transient failures. With a `fence` the transaction first renews the job's lease, and fails
/// without writing anything when the lease is no longer the job's.
pub(super) async fn commit(
    station: &Station,
    actor: &Actor,
    writes: &[Write],
    fence: Option<Fence<'_>>,
) -> Result<(), StoreError> {
    let mut retry = Retry::new();
    loop {
        let r: Result<(), StoreError> = async {
            let mut tx = station.begin_write().await?;
            if let Some(f) = &fence {
                let kind = LeaseKind::Provision;
                tx.renew_lease(kind, f.order_no.as_str(), f.lease_id, station.lease_ttl())
                    .await?;
            }
            apply_all(&mut tx, actor, writes).await?;
            if let Some(f) = fence.as_ref().filter(|f| f.release) {
                tx.release_lease(LeaseKind::Provision, f.order_no.as_str(), f.lease_id)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        if retry.again(&r).await {
            continue;
        }
        return r;
    }
}

/// Applies `writes` in order inside `tx` (a transaction its caller began: the claim of the next
/// approved order picks it first). A step started and finished in the same transaction is
/// journaled by one statement ([`merge_steps`]).
pub(super) async fn apply_all(
    tx: &mut Tx,
    actor: &Actor,
    writes: &[Write],
) -> Result<(), StoreError> {
    for w in merge_steps(writes) {
        match w {
            Merged::One(w) => w.apply(tx, actor).await?,
            Merged::Step(end) => end.write(tx, true).await?,
        }
    }
    Ok(())
}

/// A write as [`apply_all`] applies it.
pub(super) enum Merged<'w> {
    One(&'w Write),
    /// A step started and finished in the same transaction: one journal row, written as
    /// finished (the transaction's one instant is both its start and its end).
    Step(&'w StepEnd),
}

/// `writes` in order, except that a step's start followed later in the same list by its finish
/// becomes one [`Merged::Step`] at the start's place, and the finish is dropped. All of it is
/// one transaction: what is committed is the same rows, with one statement fewer per step.
pub(super) fn merge_steps(writes: &[Write]) -> Vec<Merged<'_>> {
    let mut merged_finishes = HashSet::new();
    let mut out = Vec::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        if merged_finishes.contains(&i) {
            continue;
        }
        if let Write::StepStarted {
            order_no,
            attempt,
            step,
        } = w
        {
            let finish = writes
                .iter()
                .enumerate()
                .skip(i + 1)
                .find_map(|(j, f)| match f {
                    Write::StepFinished(end)
                        if end.order_no == *order_no
                            && end.attempt == *attempt
                            && end.step == *step =>
                    {
                        Some((j, end))
                    }
                    _ => None,
                });
            if let Some((j, end)) = finish {
                merged_finishes.insert(j);
                out.push(Merged::Step(end));
                continue;
            }
        }
        out.push(Merged::One(w));
    }
    out
}

/// The audit record of a certificate revoked as superseded.
pub(super) fn revoked_entry(c: &CertificateRecord, detail: &str) -> AuditEntry {
    AuditEntry {
        order_no: Some(c.order_no.clone()),
        token_serial: c.token_serial.clone(),
        cert_serial: Some(c.serial.clone()),
        event: AuditEvent::CertificateRevoked(CertificateRevoked {
            reason: "superseded".into(),
            detail: detail.to_string(),
            previous_status: c.status,
            order_state: None,
            four_eyes: None,
        }),
    }
}

/// Where a run picks up an order's journal: whether the latest attempt is continued (its steps
/// done are skipped) or a new attempt starts from `init_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resume {
    /// The attempt this run journals under.
    pub attempt: i64,
    /// The latest attempt is continued.
    pub continues: bool,
    /// The steps done in the latest attempt.
    done: HashSet<String>,
}

impl Resume {
    /// Decides from the latest attempt's journal (`last_attempt`, 0 when there is none). The
    /// attempt is continued only once its certificate is on the token (`write_certificate`
    /// done), for an order still bound to its token (`bound`), unless the token is started over
    /// (`reinit`). Before that point a new attempt redoes everything: the half-made token is
    /// wiped and a certificate that never reached it is revoked ([`superseded`]).
    pub fn plan(last_attempt: i64, journal: &[StepRecord], reinit: bool, bound: bool) -> Resume {
        let done: HashSet<String> = journal
            .iter()
            .filter(|s| s.status == StepStatus::Done)
            .map(|s| s.step.clone())
            .collect();
        let continues = !reinit && bound && done.contains(Step::WriteCertificate.name());
        let attempt = if continues {
            last_attempt
        } else {
            last_attempt + 1
        };
        Resume {
            attempt,
            continues,
            done,
        }
    }

    /// Whether `step` is skipped: done in the attempt being continued.
    pub fn skips(&self, step: Step) -> bool {
        self.continues && self.done.contains(step.name())
    }
}

/// Whether a new attempt revokes a certificate of its order found with `status`, and the detail
/// it records: one reserved or issued but never written to its token always (it would otherwise
/// stay valid on no token), the one on the token only when that token is started over
/// (`token_started_over`, `--reinit`); a revoked one is left as it is.
pub(super) fn superseded(
    status: CertificateStatus,
    token_started_over: bool,
) -> Option<&'static str> {
    match status {
        CertificateStatus::Reserved | CertificateStatus::Issued => {
            Some("issued (or reserved) but never written to its token; superseded by a new attempt")
        }
        CertificateStatus::OnToken if token_started_over => {
            Some("the token was started over (--reinit)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
