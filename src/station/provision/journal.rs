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
    StepFinished {
        order_no: OrderNo,
        attempt: i64,
        step: Step,
        status: StepStatus,
        detail: Option<String>,
    },
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
    BindingIdentity {
        binding_id: BindingId,
        identity: String,
        serial: TokenSerial,
    },
    BindingSerial {
        binding_id: BindingId,
        serial: TokenSerial,
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
            Write::StepFinished {
                order_no,
                attempt,
                step,
                status,
                detail,
            } => {
                tx.step_finished(order_no, *attempt, step.name(), *status, detail.as_deref())
                    .await
            }
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
            Write::BindingIdentity {
                binding_id,
                identity,
                serial,
            } => tx.set_binding_identity(binding_id, identity, serial).await,
            Write::BindingSerial { binding_id, serial } => {
                tx.set_binding_serial(binding_id, serial).await
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
            let mut tx = station.store.begin_write(station.clock.now()).await?;
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
/// approved order picks it first).
pub(super) async fn apply_all(
    tx: &mut Tx,
    actor: &Actor,
    writes: &[Write],
) -> Result<(), StoreError> {
    for w in writes {
        w.apply(tx, actor).await?;
    }
    Ok(())
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
mod tests {
    use super::*;

    fn record(step: Step, status: StepStatus) -> StepRecord {
        StepRecord {
            attempt: 3,
            step: step.name().to_string(),
            status,
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            detail: None,
        }
    }

    /// The latest attempt's journal up to `last` done, then `last_status` for the step after.
    fn journal_through(last: Step, next_status: Option<StepStatus>) -> Vec<StepRecord> {
        let mut steps = vec![record(Step::Claim, StepStatus::Done)];
        let mut after = Step::AFTER_CLAIM.into_iter();
        for step in after.by_ref() {
            steps.push(record(step, StepStatus::Done));
            if step == last {
                break;
            }
        }
        if let (Some(status), Some(next)) = (next_status, after.next()) {
            steps.push(record(next, status));
        }
        steps
    }

    #[test]
    fn a_first_run_is_attempt_one_and_skips_nothing() {
        let r = Resume::plan(0, &[], false, false);
        assert_eq!((r.attempt, r.continues), (1, false));
        assert!(Step::AFTER_CLAIM.iter().all(|s| !r.skips(*s)));
    }

    #[test]
    fn once_the_certificate_is_on_the_token_the_attempt_continues_after_it() {
        let journal = journal_through(Step::WriteCertificate, Some(StepStatus::Failed));
        let r = Resume::plan(3, &journal, false, true);
        assert_eq!((r.attempt, r.continues), (3, true));
        let run: Vec<Step> = Step::AFTER_CLAIM
            .into_iter()
            .filter(|s| !r.skips(*s))
            .collect();
        assert_eq!(run, [Step::WriteSeals, Step::Finish]);
    }

    #[test]
    fn before_the_certificate_is_on_the_token_a_new_attempt_redoes_everything() {
        for last in [Step::InitToken, Step::IssueCertificate] {
            for next in [None, Some(StepStatus::Started), Some(StepStatus::Failed)] {
                let r = Resume::plan(3, &journal_through(last, next), false, true);
                assert_eq!((r.attempt, r.continues), (4, false), "{last} then {next:?}");
                assert!(Step::AFTER_CLAIM.iter().all(|s| !r.skips(*s)));
            }
        }
        // `write_certificate` started but not journaled as done: the certificate may not be on
        // the token, so it is not continued either.
        let r = Resume::plan(
            3,
            &journal_through(Step::IssueCertificate, Some(StepStatus::Started)),
            false,
            true,
        );
        assert!(!r.continues);
    }

    #[test]
    fn reinit_or_a_released_binding_starts_a_new_attempt() {
        let journal = journal_through(Step::WriteSeals, Some(StepStatus::Failed));
        for (reinit, bound) in [(true, true), (false, false), (true, false)] {
            let r = Resume::plan(3, &journal, reinit, bound);
            assert_eq!(
                (r.attempt, r.continues),
                (4, false),
                "reinit {reinit}, bound {bound}"
            );
        }
    }

    /// Group commit: the records are committed before the token is erased (`init_token`: the
    /// binding names the token being wiped) and before anything runs after the continuation
    /// point (`write_seals`: "the certificate is on the token" must be durable, or a crash would
    /// make the next run revoke the certificate on the token). No other step forces a commit.
    #[test]
    fn commits_come_before_the_token_is_erased_and_after_the_continuation_point() {
        let durable: Vec<Step> = Step::AFTER_CLAIM
            .into_iter()
            .filter(|s| durable_before(*s))
            .collect();
        assert_eq!(durable, [Step::InitToken, Step::WriteSeals]);
        let journal = journal_through(Step::WriteCertificate, None);
        let first_continued = Step::AFTER_CLAIM
            .into_iter()
            .find(|s| !Resume::plan(1, &journal, false, true).skips(*s));
        assert_eq!(first_continued.map(durable_before), Some(true));
    }

    #[test]
    fn a_new_attempt_revokes_what_never_reached_the_token() {
        for status in [CertificateStatus::Reserved, CertificateStatus::Issued] {
            for reinit in [false, true] {
                assert!(superseded(status, reinit).is_some(), "{status}");
            }
        }
        assert_eq!(superseded(CertificateStatus::OnToken, false), None);
        assert_eq!(
            superseded(CertificateStatus::OnToken, true),
            Some("the token was started over (--reinit)")
        );
        assert_eq!(superseded(CertificateStatus::Revoked, true), None);
    }
}
