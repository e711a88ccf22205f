//! Taking over another station's abandoned order (rules: [`crate::domain::takeover`]): where
//! its journal stopped, whether its key is within this station's reach, and the writes that
//! commit with the claim — the binding moved here, or released with its certificates revoked —
//! with an audit record naming the station it was taken from and why.
//!
//! The claim only gets here once the order's lease keeps nobody out (its holder is gone, or its
//! lease expired: [`crate::station::lease`]); the claim transaction takes that lease for good,
//! so of two stations taking over one order, one claims it and the other is refused.

use super::error::ProvisionError;
use super::journal::Write;
use super::step::Step;
use super::token_access::blocking;
use crate::audit::event::{AuditEvent, OrderTakenOver};
use crate::domain::takeover::{JournalPoint, Takeover, decide};
use crate::domain::{OrderState, StepStatus};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::store::{AuditEntry, Binding, StepRecord};
use crate::token::{TokenError, TokenSelector};

/// What a takeover writes with the claim, and the binding the job goes on with (none: a new
/// binding at this station).
pub(super) struct TakenOver {
    pub binding: Option<Binding>,
    pub writes: Vec<Write>,
}

/// Where the latest attempt's journal stopped, as far as the key is concerned.
pub(super) fn journal_point(journal: &[StepRecord]) -> JournalPoint {
    let done = |step: Step| {
        journal
            .iter()
            .any(|s| s.step == step.name() && s.status == StepStatus::Done)
    };
    if done(Step::WriteCertificate) {
        JournalPoint::CertificateOnKey
    } else if journal.iter().any(|s| s.step == Step::InitToken.name()) {
        JournalPoint::KeyTouched
    } else {
        JournalPoint::NothingOnKey
    }
}

impl Station {
    /// Takes over order `b.order_no` (in `state`), bound to another station (see the module
    /// docs); `start_over`: `--reinit`. Refused ([`ProvisionError::ClaimedElsewhere`]) for an
    /// order that failed at its station and is not started over.
    pub(super) async fn take_over(
        &self,
        hsm: &Hsm,
        mut b: Binding,
        state: OrderState,
        start_over: bool,
    ) -> Result<TakenOver, ProvisionError> {
        let no = b.order_no.clone();
        let me = self.config.station.id.clone();
        let (_, journal) = self.store.journal(&no).await?;
        let point = journal_point(&journal);
        let in_reach = key_in_reach(hsm, &b)?;
        let decision = decide(&b.station_id, &me, state, point, in_reach, start_over);
        let entry = AuditEntry {
            token_serial: b.token_serial.clone(),
            ..AuditEntry::order(
                &no,
                AuditEvent::OrderTakenOver(OrderTakenOver {
                    from_station: b.station_id.clone(),
                    decision,
                    journal_point: point,
                    key_in_reach: in_reach,
                    binding_id: b.binding_id.to_string(),
                    order_state: state,
                }),
            )
        };
        match decision {
            Takeover::Own => Ok(TakenOver {
                binding: Some(b),
                writes: Vec::new(),
            }),
            Takeover::Refuse => Err(ProvisionError::ClaimedElsewhere {
                order_no: no,
                station: b.station_id,
            }),
            Takeover::ResumeHere => {
                let writes = vec![
                    Write::BindingStation {
                        binding_id: b.binding_id.clone(),
                        station: me.clone(),
                    },
                    Write::Audit(Box::new(entry)),
                ];
                b.station_id = me;
                Ok(TakenOver {
                    binding: Some(b),
                    writes,
                })
            }
            Takeover::Rebind | Takeover::KeyLost => {
                let key = b
                    .token_serial
                    .as_deref()
                    .map_or_else(|| "its key".to_string(), |s| format!("key {s}"));
                let reason = format!(
                    "taken over by station {me}: {key} stayed at station {} and is out of reach",
                    b.station_id
                );
                let mut writes = vec![Write::Audit(Box::new(entry))];
                writes.extend(self.release_binding(&b, &reason).await?);
                Ok(TakenOver {
                    binding: None,
                    writes,
                })
            }
        }
    }
}

/// Whether the key bound by `b` is present at this station (by serial; by the order's label
/// when the abandoned job was cut inside `C_InitToken`, before the serial was recorded).
fn key_in_reach(hsm: &Hsm, b: &Binding) -> Result<bool, ProvisionError> {
    let selectors = match &b.token_serial {
        Some(serial) => vec![TokenSelector::Serial(serial.clone())],
        None => vec![TokenSelector::Label(b.order_no.to_string())],
    };
    match blocking(|| hsm.module().find(&selectors)) {
        Ok(_) => Ok(true),
        Err(TokenError::NotFound(_)) => Ok(false),
        Err(e) => Err(ProvisionError::Step {
            order_no: b.order_no.to_string(),
            step: Step::Claim,
            source: e.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: Step, status: StepStatus) -> StepRecord {
        StepRecord {
            attempt: 1,
            step: step.name().to_string(),
            status,
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            detail: None,
        }
    }

    #[test]
    fn the_journal_says_what_reached_the_key() {
        assert_eq!(journal_point(&[]), JournalPoint::NothingOnKey);
        let claimed = [record(Step::Claim, StepStatus::Done)];
        assert_eq!(journal_point(&claimed), JournalPoint::NothingOnKey);
        // C_InitToken may have run as soon as its step was started.
        let init = [
            record(Step::Claim, StepStatus::Done),
            record(Step::InitToken, StepStatus::Started),
        ];
        assert_eq!(journal_point(&init), JournalPoint::KeyTouched);
        let written = [
            record(Step::Claim, StepStatus::Done),
            record(Step::InitToken, StepStatus::Done),
            record(Step::WriteCertificate, StepStatus::Started),
        ];
        assert_eq!(journal_point(&written), JournalPoint::KeyTouched);
        let on_key = [
            record(Step::InitToken, StepStatus::Done),
            record(Step::WriteCertificate, StepStatus::Done),
            record(Step::WriteSeals, StepStatus::Started),
        ];
        assert_eq!(journal_point(&on_key), JournalPoint::CertificateOnKey);
    }
}
