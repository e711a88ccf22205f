//! The service desk: requests after a key was delivered, decided by a second operator
//! (four-eyes), then carried out — a PIN reset ([`pin_reset`]), a returned key retired
//! ([`retire`]), an order or one certificate revoked ([`revoke`], carried out as soon as it is
//! approved) — and a key reported lost or broken
//! ([`lost`], which needs no second operator: it only ever takes rights away, at once).
//!
//! A request moves through the domain's machine ([`crate::domain::service_request`]) by the
//! store's one writer ([`crate::store::Tx::transition_service_request`]): each move is one
//! transaction with its typed audit record, which names both operators.
//!
//! Design: approving a PIN reset does not touch the key; `pin-reset run` does, at the desk where
//! the key is plugged in. Approval and execution are separate because the approver need not be
//! at the desk, and a run that stops (a key pulled, a crash) is resumed by running it again.

use crate::station::argument::InvalidArgument;
mod at_approval;
mod error;
mod journal;
pub mod lost;
pub mod pin_reset;
pub mod reissue;
pub mod retire;
pub mod revoke;
pub mod so_pin;
pub mod unlock;

pub(crate) use at_approval::carry_out_in;
pub use error::ServiceDeskError;

use super::Station;
use crate::audit::event::{
    AuditEvent, ServiceCancelled, ServiceDecided, ServiceRequested, ServiceStarted,
};
use crate::domain::{OperatorId, OrderNo, OrderState, RequestEvent, RequestKind, TokenSerial};
use crate::store::{
    Binding, NewServiceRequest, RequestStepRecord, ServiceRequestFilter, ServiceRequestRecord, Tx,
};

/// The most characters of a reason, evidence or note.
const TEXT_MAX: usize = 500;

/// An operator named on the command line, parsed (`--operator`).
fn operator(name: &str) -> Result<OperatorId, ServiceDeskError> {
    OperatorId::parse(name).map_err(|e| {
        ServiceDeskError::Invalid(InvalidArgument {
            field: "--operator",
            message: e.to_string(),
        })
    })
}

/// A free text an operator gives: not empty, at most 500 characters, no control characters
/// other than line breaks.
fn text(field: &'static str, value: &str) -> Result<String, ServiceDeskError> {
    let t = value.trim();
    if t.is_empty() {
        return Err(ServiceDeskError::Invalid(InvalidArgument {
            field,
            message: "must not be empty".into(),
        }));
    }
    if t.chars().count() > TEXT_MAX || t.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ServiceDeskError::Invalid(InvalidArgument {
            field,
            message: format!("must be at most {TEXT_MAX} characters without control characters"),
        }));
    }
    Ok(t.to_string())
}

fn optional_text(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<String>, ServiceDeskError> {
    value.map(|v| text(field, v)).transpose()
}

/// What a desk request asks for ([`Station::request_desk`]).
#[derive(Debug, Clone, Copy)]
pub enum DeskAsk<'a> {
    /// A new PIN on a delivered key.
    PinReset,
    /// A returned key retired.
    Retire,
    /// A remote unlock, with the request code the key's software showed (`KSUR1-...`).
    Unlock {
        /// The request code.
        code: &'a str,
    },
}

/// Who asks for a desk request, why, and what the desk checked (`--operator`, `--reason`,
/// `--evidence`).
#[derive(Debug, Clone, Copy)]
pub struct DeskRequest<'a> {
    /// The operator making the request.
    pub requested_by: &'a str,
    /// Why (the customer's account).
    pub reason: &'a str,
    /// What the desk checked (identity of the caller, documents seen).
    pub evidence: &'a str,
}

/// A request with its execution journal (`pin-reset show`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestDetail {
    /// The request.
    #[serde(flatten)]
    pub request: ServiceRequestRecord,
    /// Its execution journal.
    pub steps: Vec<RequestStepRecord>,
}

impl Station {
    /// `pin-reset request`, `retire request`, `unlock request`: records a desk request on an
    /// order's key, refused unless the order allows it:
    /// - a PIN reset: the order is PinDelivered (an undelivered PIN is retried, not reset), its
    ///   key is bound, and no PIN of it is still on its way;
    /// - a retirement: the order's key was made and is still bound to it (E-RETIRE-REFUSED);
    /// - an unlock: as a PIN reset, and the code was made on that key and never used for a
    ///   request before.
    pub async fn request_desk(
        &self,
        ask: DeskAsk<'_>,
        order_no: &OrderNo,
        by: &DeskRequest<'_>,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        match ask {
            DeskAsk::PinReset => {
                let check = async |tx: &mut Tx, state, binding: Option<&Binding>| {
                    let kind = RequestKind::PinReset;
                    pin_reset::check_order_resettable(tx, order_no, state, binding, kind).await?;
                    Ok(None)
                };
                self.intake_request(RequestKind::PinReset, order_no, by, check, nothing_more)
                    .await
            }
            DeskAsk::Retire => {
                let check = async |_: &mut Tx, state, binding: Option<&Binding>| {
                    retire::check_retirable(order_no, state, binding)?;
                    Ok(binding.and_then(|b| b.token_serial.clone()))
                };
                self.intake_request(RequestKind::Retire, order_no, by, check, nothing_more)
                    .await
            }
            DeskAsk::Unlock { code } => self.request_unlock(order_no, code, by).await,
        }
    }

    /// A request's intake, as each kind's `request` command does it: the requester, reason and
    /// evidence checked, then in one transaction the order `check`ed (its state and binding),
    /// the request of `kind` recorded, its audit record naming the token `check` returns, and
    /// what `record_more` keeps beside it (given its id and that token).
    async fn intake_request(
        &self,
        kind: RequestKind,
        order_no: &OrderNo,
        asked: &DeskRequest<'_>,
        check: impl AsyncFnOnce(
            &mut Tx,
            OrderState,
            Option<&Binding>,
        ) -> Result<Option<TokenSerial>, ServiceDeskError>,
        record_more: impl AsyncFnOnce(
            &mut Tx,
            &str,
            Option<&TokenSerial>,
        ) -> Result<(), ServiceDeskError>,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        let by = operator(asked.requested_by)?;
        let reason = text("--reason", asked.reason)?;
        let evidence = text("--evidence", asked.evidence)?;
        let binding = self.store.active_binding(order_no).await?;
        let actor = self
            .operator_actor(by.as_str(), crate::domain::Action::RequestService)
            .await?;
        let mut tx = self.begin_write().await?;
        let state = tx.order_state(order_no).await?;
        let token = check(&mut tx, state, binding.as_ref()).await?;
        let id = record_request(
            &mut tx,
            &actor,
            kind,
            order_no,
            &by,
            reason,
            evidence,
            token.clone(),
        )
        .await?;
        record_more(&mut tx, &id, token.as_ref()).await?;
        let rec = tx.service_request(&id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// `pin-reset approve ID` / `reject ID`: a second operator's decision. The requester's own
    /// decision is refused ([`crate::domain::RequestError::SameOperator`]), nothing written.
    pub async fn decide_request(
        &self,
        id: &str,
        decided_by: &str,
        approve: bool,
        note: Option<&str>,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        let by = operator(decided_by)?;
        let note = if approve {
            optional_text("--note", note)?
        } else {
            Some(text("--reason", note.unwrap_or_default())?)
        };
        let actor = self
            .operator_actor(by.as_str(), crate::domain::Action::DecideRequest)
            .await?;
        let mut tx = self.begin_write().await?;
        let mut r = tx.service_request(id).await?;
        let event = if approve {
            RequestEvent::Approve { by: by.clone() }
        } else {
            RequestEvent::Reject { by: by.clone() }
        };
        let now = crate::clock::format_utc(tx.now());
        tx.transition_service_request(&actor, &mut r, &event, |r| {
            r.decided_by = Some(by.clone());
            r.decided_at = Some(now);
            r.decision_note = note.clone();
            AuditEvent::ServiceDecided(ServiceDecided {
                request_id: r.id.clone(),
                kind: r.kind.as_str().to_string(),
                approved: approve,
                requested_by: r.requested_by.to_string(),
                decided_by: by.to_string(),
                note,
            })
        })
        .await?;
        tx.commit().await?;
        Ok(r)
    }

    /// `pin-reset cancel ID`: withdraws a request not yet carried out (or given up after a
    /// failure).
    pub async fn cancel_request(
        &self,
        id: &str,
        cancelled_by: &str,
        note: Option<&str>,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        let by = operator(cancelled_by)?;
        let note = optional_text("--note", note)?;
        let actor = self
            .operator_actor(by.as_str(), crate::domain::Action::CancelRequest)
            .await?;
        let mut tx = self.begin_write().await?;
        let mut r = tx.service_request(id).await?;
        tx.transition_service_request(
            &actor,
            &mut r,
            &RequestEvent::Cancel { by: by.clone() },
            |r| {
                r.decision_note = note.clone();
                AuditEvent::ServiceCancelled(ServiceCancelled {
                    request_id: r.id.clone(),
                    kind: r.kind.as_str().to_string(),
                    cancelled_by: by.to_string(),
                    note,
                })
            },
        )
        .await?;
        tx.commit().await?;
        Ok(r)
    }

    /// `pin-reset list`: requests, oldest first.
    pub async fn service_requests(
        &self,
        filter: &ServiceRequestFilter,
    ) -> Result<Vec<ServiceRequestRecord>, ServiceDeskError> {
        Ok(self.store.service_requests(filter).await?)
    }

    /// `pin-reset show ID`: a request and its execution journal.
    pub async fn service_request(&self, id: &str) -> Result<RequestDetail, ServiceDeskError> {
        let request = self
            .store
            .service_request(id)
            .await?
            .ok_or_else(|| crate::store::StoreError::RequestNotFound(id.to_string()))?;
        let steps = self.store.request_steps(id).await?;
        Ok(RequestDetail { request, steps })
    }
}

/// What a kind without rows of its own keeps beside a new request: nothing.
async fn nothing_more(
    _: &mut Tx,
    _: &str,
    _: Option<&TokenSerial>,
) -> Result<(), ServiceDeskError> {
    Ok(())
}

/// Records a new request of `kind` (state `requested`) with its `service.requested` audit
/// record, in `tx`; returns its id.
#[allow(clippy::too_many_arguments)]
async fn record_request(
    tx: &mut Tx,
    actor: &crate::store::Actor,
    kind: RequestKind,
    order_no: &OrderNo,
    by: &OperatorId,
    reason: String,
    evidence: String,
    token_serial: Option<TokenSerial>,
) -> Result<String, ServiceDeskError> {
    let id = uuid::Uuid::new_v4().to_string();
    tx.insert_service_request(&NewServiceRequest {
        id: id.clone(),
        kind,
        order_no: order_no.clone(),
        requested_by: by.clone(),
        reason: reason.clone(),
        evidence: evidence.clone(),
    })
    .await?;
    tx.audit(
        actor,
        crate::store::AuditEntry {
            token_serial,
            ..crate::store::AuditEntry::order(
                order_no,
                AuditEvent::ServiceRequested(ServiceRequested {
                    request_id: id.clone(),
                    kind: kind.as_str().to_string(),
                    requested_by: by.to_string(),
                    reason,
                    evidence,
                }),
            )
        },
    )
    .await?;
    Ok(id)
}

/// Request `id` is of `kind`, not of the kind the command given `verb` handles: refused, naming
/// the command that does.
fn other_kind(id: &str, kind: RequestKind, verb: &str) -> ServiceDeskError {
    ServiceDeskError::Invalid(InvalidArgument {
        field: "ID",
        message: format!(
            "request {id} is a {kind} request: `keystation {} {verb} {id}` handles it",
            command_of(kind)
        ),
    })
}

/// The CLI command of a kind's requests, for hints.
fn command_of(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::PinReset => "pin-reset",
        RequestKind::Unlock => "unlock",
        RequestKind::Retire => "retire",
        RequestKind::Revoke | RequestKind::RevokeCertificate => "revoke",
        RequestKind::Reissue => "reissue",
    }
}

/// Moves request `r` to `executing` (from `approved`, or `failed` to resume) in `tx`, its last
/// error cleared, fixing the key it acts on when `serial` names one; its `service.started`
/// record names the operator who runs it and the state it left.
async fn start_in(
    tx: &mut Tx,
    actor: &crate::store::Actor,
    r: &mut ServiceRequestRecord,
    serial: Option<&TokenSerial>,
) -> Result<(), crate::store::StoreError> {
    let from = r.state.as_str().to_string();
    let run_by = actor.name.clone();
    let serial = serial.map(TokenSerial::to_string);
    tx.transition_service_request(actor, r, &RequestEvent::Start, |r| {
        if serial.is_some() {
            r.token_serial.clone_from(&serial);
        }
        r.last_error = None;
        AuditEvent::ServiceStarted(ServiceStarted {
            request_id: r.id.clone(),
            kind: r.kind.as_str().to_string(),
            token_serial: serial,
            run_by,
            from,
        })
    })
    .await?;
    Ok(())
}

/// Records that a run of request `id` stopped at `step` (the request `failed`: a later run
/// resumes it). A kind carried out at approval ([`RequestKind::runs_at_approval`]) fails from
/// `approved` (or `failed` again) through `executing`, as carrying it out would have moved it.
/// Best effort: if even this cannot be written, the request stays `executing` (or `approved`),
/// which a run resumes (or carries out) the same way.
async fn record_failure(
    station: &Station,
    actor: &crate::store::Actor,
    id: &str,
    step: &str,
    e: &ServiceDeskError,
) {
    let r: Result<(), crate::store::StoreError> = async {
        let mut tx = station.begin_write().await?;
        let mut r = tx.service_request(id).await?;
        if r.kind.runs_at_approval()
            && matches!(
                r.state,
                crate::domain::RequestState::Approved | crate::domain::RequestState::Failed
            )
        {
            start_in(&mut tx, actor, &mut r, None).await?;
        }
        if r.state != crate::domain::RequestState::Executing {
            return Ok(());
        }
        let error = e.to_string();
        tx.transition_service_request(actor, &mut r, &RequestEvent::Fail, |r| {
            r.last_error = Some(error.clone());
            AuditEvent::ServiceFailed(crate::audit::event::ServiceFailed {
                request_id: r.id.clone(),
                kind: r.kind.as_str().to_string(),
                step: step.to_string(),
                error,
            })
        })
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(err) = r {
        tracing::error!(request = %id, error = %err, "could not record the failed run");
    }
}

/// Why an order's key is not one the desk can reset (or unlock, by `kind`), or `None`.
fn not_resettable(state: OrderState, kind: RequestKind) -> Option<String> {
    let (instead, done) = match kind {
        RequestKind::Unlock => ("unlocking the key", "is unlocked"),
        _ => ("resetting the PIN", "has its PIN reset"),
    };
    match state {
        OrderState::PinDelivered => None,
        OrderState::Provisioned | OrderState::Shipped => Some(format!(
            "the order is {state}: its first PIN is not delivered yet — retry or requeue that \
             delivery (`keystation deliver ...`) instead of {instead}"
        )),
        other => Some(format!(
            "the order is {other}: only a delivered key (PinDelivered) {done}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlock_refusal_speaks_of_unlocking_and_a_reset_refusal_of_the_reset() {
        assert_eq!(
            not_resettable(OrderState::PinDelivered, RequestKind::Unlock),
            None
        );
        for state in OrderState::ALL {
            if state == OrderState::PinDelivered {
                continue;
            }
            let unlock = not_resettable(state, RequestKind::Unlock).unwrap_or_default();
            let reset = not_resettable(state, RequestKind::PinReset).unwrap_or_default();
            assert!(
                unlock.contains("unlocked") || unlock.contains("unlocking"),
                "{unlock}"
            );
            assert!(!unlock.contains("reset"), "{unlock}");
            assert!(reset.contains("reset"), "{reset}");
        }
    }
}
