//! Requests carried out at the station as soon as a second operator approved them, by the
//! approver ([`RequestKind::runs_at_approval`]: a revocation, a reissue order): no key needs to
//! be at the desk. The approval is its own transaction; the work and the request's move to `done`
//! are one more, whose audit record names both operators ([`FourEyes`]). Work that fails after
//! the approval leaves the request `failed` with its error, and the kind's `run` carries it out
//! later: the work is one transaction, so there is no journal to resume, only the request.

use super::ServiceDeskError;
use crate::audit::event::{AuditEvent, FourEyes, ServiceCompleted};
use crate::domain::{RequestEvent, RequestKind, RequestState};
use crate::station::Station;
use crate::store::{ServiceRequestRecord, Tx};

/// Moves approved request `id` — of a kind carried out at approval
/// ([`RequestKind::runs_at_approval`]) — to `done` in the transaction `tx` that carries it out
/// (through `executing`, with their audit records), and names both of its operators.
pub(crate) async fn carry_out_in(
    tx: &mut Tx,
    actor: &crate::store::Actor,
    id: &str,
) -> Result<FourEyes, crate::store::StoreError> {
    let mut r = tx.service_request(id).await?;
    let Some(approved_by) = r.decided_by.clone() else {
        return Err(crate::store::StoreError::Corrupt(format!(
            "request {id} is {} but names no approver",
            r.state
        )));
    };
    if r.state != RequestState::Executing {
        super::start_in(tx, actor, &mut r, None).await?;
    }
    tx.transition_service_request(actor, &mut r, &RequestEvent::Complete, |r| {
        AuditEvent::ServiceCompleted(ServiceCompleted {
            request_id: r.id.clone(),
            kind: r.kind.as_str().to_string(),
            delivery_id: None,
            pin_generation: None,
        })
    })
    .await?;
    Ok(FourEyes {
        request_id: r.id.clone(),
        requested_by: r.requested_by.to_string(),
        approved_by: approved_by.to_string(),
    })
}

/// Request `id` of a kind carried out at approval, refused untouched unless it is of `kind`
/// (or, for `revoke`, either revocation kind) and may be carried out now (`approved`, or
/// `failed` to try again).
pub(super) async fn runnable_at_approval(
    station: &Station,
    id: &str,
    family: RequestKind,
    verb: &str,
) -> Result<ServiceRequestRecord, ServiceDeskError> {
    let r = station
        .store
        .service_request(id)
        .await?
        .ok_or_else(|| crate::store::StoreError::RequestNotFound(id.to_string()))?;
    let same = if family.is_revocation() {
        r.kind.is_revocation()
    } else {
        r.kind == family
    };
    if !same {
        return Err(super::other_kind(id, r.kind, verb));
    }
    if verb == "run" {
        let hint = match r.state {
            RequestState::Approved | RequestState::Failed | RequestState::Executing => {
                return Ok(r);
            }
            RequestState::Requested => format!(
                "it needs a second, different operator's approval first \
                 (`keystation {} approve {id} --operator NAME`)",
                super::command_of(r.kind)
            ),
            _ => "it is settled; make a new request".to_string(),
        };
        return Err(ServiceDeskError::NotRunnable {
            id: id.to_string(),
            state: r.state,
            hint,
        });
    }
    Ok(r)
}

/// After its approval: `run`'s outcome, a failure saying that the approval stands and how the
/// request is carried out later.
pub(super) fn after_approval<T>(
    id: &str,
    kind: RequestKind,
    run: Result<T, ServiceDeskError>,
) -> Result<T, ServiceDeskError> {
    run.map_err(|cause| ServiceDeskError::ApprovedNotDone {
        id: id.to_string(),
        command: super::command_of(kind),
        cause: Box::new(cause),
    })
}
