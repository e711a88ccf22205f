//! Four-eyes on changes that are not about an order (issue 17, item 1): operator and role
//! changes, API tokens (an API token is an identity), and the CA's OCSP signer (a new
//! CA-certified key).
//!
//! Each is a station request ([`crate::domain::station_request`]) that moves through the
//! service desk's machine, [`crate::domain::RequestState::apply`], by the store's one writer
//! ([`crate::store::Tx::transition_station_request`]). An operator permitted the change asks
//! ([`Station::ask_change`]); a second, different one approves ([`Station::decide_change`]),
//! and the change is carried out at the approval, by the approver, in the approval's own
//! transaction: the request's moves (`approved`, `executing`, `done`), the change and its audit
//! record naming both operators ([`FourEyes`]). A change the station refuses at that point (a
//! name taken meanwhile, the last administrator) rolls the whole approval back: the request stays
//! `requested`, to be rejected or cancelled. A new credential or API token is drawn and written
//! only then, to the file the approver names; the request never holds a secret.
//!
//! Bootstrap ([`takes_effect_at_once`]): while the station has exactly one enabled
//! administrator, that administrator's changes of operators and API tokens take effect at once,
//! audited `bootstrap: true` — there is nobody to approve them. A CA operation always needs two.

use super::Station;
use super::api_tokens::{ApiTokenError, add_token_in, live_token_in, revoke_token_in};
use super::ocsp_signer::{MadeSigner, OcspSignerError, OcspSignerReport};
use super::operators::{OperatorChange, OperatorError, Provenance, add_in, change_in};
use crate::audit::event::{
    AuditEvent, FourEyes, StationRequestCancelled, StationRequestDecided, StationRequested,
};
use crate::domain::station_request::{ChangeFamily, StationChange, takes_effect_at_once};
use crate::domain::{OperatorRefused, OrderNo, RequestEvent, RequestState};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::station::argument::InvalidArgument;
use crate::store::{Actor, ApiTokenRecord, OperatorRecord, StationRequestRecord, StoreError, Tx};
use std::path::Path;

/// The most characters of a decision's note or reason.
const NOTE_MAX: usize = 500;

/// Errors asking for, deciding or carrying out a station request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FourEyesError {
    /// Refused (who acts, the four-eyes rule, the request's state), or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument is not acceptable (named).
    #[error(transparent)]
    Invalid(#[from] InvalidArgument),
    /// Carrying out an operator change failed (nothing was changed).
    #[error(transparent)]
    Operator(#[from] OperatorError),
    /// Carrying out an API token change failed (nothing was changed).
    #[error(transparent)]
    ApiToken(#[from] ApiTokenError),
    /// Making or recording the OCSP signer failed.
    #[error(transparent)]
    OcspSigner(#[from] OcspSignerError),
}

impl Coded for FourEyesError {
    fn code(&self) -> ErrorCode {
        match self {
            FourEyesError::Store(e) => e.code(),
            FourEyesError::Invalid(_) => ec::USAGE,
            FourEyesError::Operator(e) => e.code(),
            FourEyesError::ApiToken(e) => e.code(),
            FourEyesError::OcspSigner(e) => e.code(),
        }
    }
}

/// What a carried-out change made.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "made", rename_all = "snake_case")]
pub enum Carried {
    /// The operator account, as it now is.
    Operator(OperatorRecord),
    /// The API token, as it now is.
    ApiToken(ApiTokenRecord),
    /// The new OCSP signer.
    OcspSigner(OcspSignerReport),
}

/// What asking for a change did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Asked {
    /// It took effect at once (bootstrap: the station's only administrator made it).
    Done {
        /// What it made.
        carried: Carried,
    },
    /// It is a request, waiting for a second operator.
    Requested {
        /// The request.
        request: StationRequestRecord,
    },
}

/// The flag that names the file a change's new secret is written to.
fn out_flag(change: &StationChange) -> &'static str {
    match change.family() {
        ChangeFamily::ApiToken => "--out",
        ChangeFamily::Operator | ChangeFamily::Ca | ChangeFamily::Reinit => "--credential-out",
    }
}

/// A note or reason: trimmed, 1-500 characters, no control characters but line breaks.
fn note_text(field: &'static str, value: &str) -> Result<String, FourEyesError> {
    let t = value.trim();
    if t.is_empty()
        || t.chars().count() > NOTE_MAX
        || t.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(FourEyesError::Invalid(InvalidArgument {
            field,
            message: format!("1-{NOTE_MAX} characters without control characters"),
        }));
    }
    Ok(t.to_string())
}

/// Refuses, before anything is recorded, a change the station would refuse when carrying it
/// out now (an operator unknown or taken, a token unknown or revoked).
async fn precheck_in(tx: &mut Tx, change: &StationChange) -> Result<(), FourEyesError> {
    match change {
        StationChange::OperatorAdd { operator, .. } => {
            if tx.operator_in_tx(operator).await?.is_some() {
                return Err(StoreError::from(OperatorRefused::Exists(operator.clone())).into());
            }
        }
        StationChange::OperatorDisable { operator }
        | StationChange::OperatorEnable { operator }
        | StationChange::OperatorRoles { operator, .. }
        | StationChange::ApiTokenAdd { operator, .. } => {
            if tx.operator_in_tx(operator).await?.is_none() {
                return Err(
                    StoreError::from(OperatorRefused::NotRegistered(operator.clone())).into(),
                );
            }
        }
        StationChange::ApiTokenRevoke { token_id } => {
            live_token_in(tx, *token_id).await?;
        }
        StationChange::Reinit { order_no, .. } => {
            tx.order_state(order_no).await?;
        }
        StationChange::OcspSigner => {}
    }
    Ok(())
}

/// Carries out an operator or API token change in `tx` (audited as `actor`, `how` it came to
/// be), writing a new secret to `out`; the caller commits, or erases `out` when it cannot.
async fn carry_out_in(
    station: &Station,
    tx: &mut Tx,
    actor: &Actor,
    change: &StationChange,
    out: Option<&Path>,
    how: &Provenance,
) -> Result<Carried, FourEyesError> {
    let need_out = || {
        out.ok_or_else(|| {
            FourEyesError::Invalid(InvalidArgument {
                field: out_flag(change),
                message: "the file the new secret is written to is required".into(),
            })
        })
    };
    let random = station.random.as_ref();
    let (name, op_change) = match change {
        StationChange::OperatorAdd { operator, roles } => {
            add_in(tx, actor, (operator, roles), random, need_out()?, how).await?;
            let added = tx.operator_in_tx(operator).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("operator {operator} was not stored"))
            })?;
            return Ok(Carried::Operator(added));
        }
        StationChange::ApiTokenAdd { operator, scopes } => {
            let added =
                add_token_in(tx, actor, (operator, scopes), random, need_out()?, how).await?;
            return Ok(Carried::ApiToken(added));
        }
        StationChange::ApiTokenRevoke { token_id } => {
            let revoked = revoke_token_in(tx, actor, *token_id, how).await?;
            return Ok(Carried::ApiToken(revoked));
        }
        StationChange::OcspSigner | StationChange::Reinit { .. } => {
            return Err(StoreError::Corrupt(format!(
                "a {} request is not carried out with operators' changes",
                change.kind()
            ))
            .into());
        }
        StationChange::OperatorDisable { operator } => (operator, OperatorChange::Disable),
        StationChange::OperatorEnable { operator } => (operator, OperatorChange::Enable),
        StationChange::OperatorRoles { operator, roles } => {
            (operator, OperatorChange::SetRoles(roles.clone()))
        }
    };
    Ok(Carried::Operator(
        change_in(tx, actor, name, op_change, how).await?,
    ))
}

impl Station {
    /// Asks for `change` as the operator the credential proves (permitted the change's action):
    /// carried out at once while the station's only enabled administrator asks for an operator
    /// or API token change (bootstrap; its new secret written to `out`), else recorded as a
    /// request for a second, different operator (then `out` is refused: the approver writes it).
    pub async fn ask_change(
        &self,
        change: StationChange,
        out: Option<&Path>,
    ) -> Result<Asked, FourEyesError> {
        let (account, actor) = self.acting_operator(None, change.action()).await?;
        let mut tx = self.begin_write().await?;
        let administrators = tx.active_administrators().await?.len();
        if takes_effect_at_once(&change, administrators) {
            let how = Provenance {
                four_eyes: None,
                bootstrap: true,
            };
            let carried = carry_out_in(self, &mut tx, &actor, &change, out, &how).await?;
            return self.commit_or_erase(tx, out, Asked::Done { carried }).await;
        }
        if let Some(file) = out {
            return Err(FourEyesError::Invalid(InvalidArgument {
                field: out_flag(&change),
                message: format!(
                    "not written ({}): this change needs a second operator's approval, and the \
                     approver writes the new secret (`keystation {} approve ID {} FILE`)",
                    file.display(),
                    change.family().command(),
                    out_flag(&change)
                ),
            }));
        }
        precheck_in(&mut tx, &change).await?;
        let id = uuid::Uuid::new_v4().to_string();
        tx.insert_station_request(&id, &change, &account.name)
            .await?;
        tx.audit(
            &actor,
            crate::store::AuditEntry::new(AuditEvent::StationRequested(StationRequested {
                request_id: id.clone(),
                kind: change.kind().to_string(),
                summary: change.summary(),
                requested_by: account.name.to_string(),
            })),
        )
        .await?;
        let request = tx.station_request(&id).await?;
        tx.commit().await?;
        Ok(Asked::Requested { request })
    }

    /// Commits `tx`; when it cannot, erases the secret file `out` it wrote.
    async fn commit_or_erase<T>(
        &self,
        tx: Tx,
        out: Option<&Path>,
        done: T,
    ) -> Result<T, FourEyesError> {
        if let Err(e) = tx.commit().await {
            if let Some(file) = out {
                let _ = crate::private_files::erase_file(file);
            }
            return Err(e.into());
        }
        Ok(done)
    }

    /// Request `id`, refused untouched unless it is of `family` (its command decides it).
    async fn station_request_of(
        &self,
        id: &str,
        family: ChangeFamily,
    ) -> Result<StationRequestRecord, FourEyesError> {
        let r = self
            .store
            .station_request(id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?;
        if r.change.family() != family {
            return Err(FourEyesError::Invalid(InvalidArgument {
                field: "ID",
                message: format!(
                    "request {id} is a {} request: `keystation {} approve|reject|cancel {id}` \
                     decides it",
                    r.change.kind(),
                    r.change.family().command()
                ),
            }));
        }
        Ok(r)
    }

    /// `operator|api-token|ca approve ID` (`approve`) or `reject ID --reason` (not): the
    /// decision of a second operator permitted the change, never its requester
    /// ([`crate::domain::RequestError::SameOperator`], nothing written). An approval carries the
    /// change out in the same transaction, writing a new secret to `out`.
    pub async fn decide_change(
        &self,
        id: &str,
        family: ChangeFamily,
        approve: bool,
        note: Option<&str>,
        out: Option<&Path>,
    ) -> Result<(StationRequestRecord, Option<Carried>), FourEyesError> {
        let note = match (approve, note) {
            (true, n) => n.map(|n| note_text("--note", n)).transpose()?,
            (false, n) => Some(note_text("--reason", n.unwrap_or_default())?),
        };
        let read = self.station_request_of(id, family).await?;
        let (account, actor) = self
            .acting_operator(None, read.change.decide_action())
            .await?;
        let by = account.name.clone();
        let event = if approve {
            RequestEvent::Approve { by: by.clone() }
        } else {
            RequestEvent::Reject { by: by.clone() }
        };
        // Refused before any work (the CA's key): the requester's own decision, a settled one.
        read.state
            .apply(&read.requested_by, &event)
            .map_err(|source| StoreError::Request {
                id: id.to_string(),
                source,
            })?;
        if let (Some(file), false) = (out, approve && read.change.writes_secret()) {
            return Err(FourEyesError::Invalid(InvalidArgument {
                field: out_flag(&read.change),
                message: format!(
                    "not written ({}): a {} request makes no new secret",
                    file.display(),
                    read.change.kind()
                ),
            }));
        }
        if approve && read.change.writes_secret() && out.is_none() {
            return Err(FourEyesError::Invalid(InvalidArgument {
                field: out_flag(&read.change),
                message: "the approver writes the new secret to a file (it must not exist), to \
                          hand over"
                    .into(),
            }));
        }
        let made = match (&read.change, approve) {
            (StationChange::OcspSigner, true) => Some(self.make_ocsp_signer().await?),
            _ => None,
        };
        let mut tx = self.begin_write().await?;
        let mut r = tx.station_request(id).await?;
        let now = crate::clock::format_utc(tx.now());
        tx.transition_station_request(&actor, &mut r, &event, |r| {
            r.decided_by = Some(by.clone());
            r.decided_at = Some(now);
            r.decision_note = note.clone();
            Some(AuditEvent::StationRequestDecided(StationRequestDecided {
                request_id: r.id.clone(),
                kind: r.change.kind().to_string(),
                approved: approve,
                requested_by: r.requested_by.to_string(),
                decided_by: by.to_string(),
                note,
            }))
        })
        .await?;
        if !approve || !r.change.runs_at_approval() {
            // A rejection; or an approved reinit, which `provision --reinit` consumes.
            tx.commit().await?;
            return Ok((r, None));
        }
        // Carried out by the approver, now: its record names both operators.
        tx.transition_station_request(&actor, &mut r, &RequestEvent::Start, |_| None)
            .await?;
        let four_eyes = FourEyes {
            request_id: r.id.clone(),
            requested_by: r.requested_by.to_string(),
            approved_by: by.to_string(),
        };
        let carried = match &made {
            Some(made) => {
                Station::record_ocsp_signer_in(&mut tx, &actor, made, four_eyes).await?;
                None
            }
            None => {
                let how = Provenance {
                    four_eyes: Some(four_eyes),
                    bootstrap: false,
                };
                Some(carry_out_in(self, &mut tx, &actor, &r.change.clone(), out, &how).await?)
            }
        };
        tx.transition_station_request(&actor, &mut r, &RequestEvent::Complete, |_| None)
            .await?;
        let r = self.commit_or_erase(tx, out, r).await?;
        let carried = match (carried, made) {
            (Some(c), _) => c,
            (None, Some(made)) => Carried::OcspSigner(self.publish(&made)?),
            (None, None) => {
                return Err(StoreError::Corrupt(format!("request {id}: nothing was made")).into());
            }
        };
        Ok((r, Some(carried)))
    }

    /// The signer's certificate file written after its record committed.
    fn publish(&self, made: &MadeSigner) -> Result<OcspSignerReport, FourEyesError> {
        Ok(self.publish_ocsp_signer(made)?)
    }

    /// `operator|api-token|ca cancel ID`: an operator permitted the change (the requester
    /// too) withdraws a request not yet carried out.
    pub async fn cancel_change(
        &self,
        id: &str,
        family: ChangeFamily,
        note: Option<&str>,
    ) -> Result<StationRequestRecord, FourEyesError> {
        let note = note.map(|n| note_text("--note", n)).transpose()?;
        let read = self.station_request_of(id, family).await?;
        let (account, actor) = self
            .acting_operator(None, read.change.cancel_action())
            .await?;
        let mut tx = self.begin_write().await?;
        let mut r = tx.station_request(id).await?;
        let by = account.name.clone();
        tx.transition_station_request(
            &actor,
            &mut r,
            &RequestEvent::Cancel { by: by.clone() },
            |r| {
                r.decision_note = note.clone();
                Some(AuditEvent::StationRequestCancelled(
                    StationRequestCancelled {
                        request_id: r.id.clone(),
                        kind: r.change.kind().to_string(),
                        requested_by: r.requested_by.to_string(),
                        cancelled_by: by.to_string(),
                        note,
                    },
                ))
            },
        )
        .await?;
        tx.commit().await?;
        Ok(r)
    }

    /// `reinit request ORDER`: asks for the order's token to be started over by `provision
    /// ORDER --reinit` (a provisioner asks, a security officer approves); the request names the
    /// token bound to the order now, if any.
    pub async fn request_reinit(&self, order_no: &OrderNo) -> Result<Asked, FourEyesError> {
        let token_serial = self
            .store
            .active_binding(order_no)
            .await?
            .and_then(|b| b.token_serial);
        let change = StationChange::Reinit {
            order_no: order_no.clone(),
            token_serial,
        };
        self.ask_change(change, None).await
    }

    /// Station requests of `family` (every family when none), oldest first; only those in
    /// `state`, when given.
    pub async fn station_requests(
        &self,
        family: Option<ChangeFamily>,
        state: Option<RequestState>,
    ) -> Result<Vec<StationRequestRecord>, StoreError> {
        let all = self.store.station_requests(state).await?;
        Ok(all
            .into_iter()
            .filter(|r| family.is_none_or(|f| r.change.family() == f))
            .collect())
    }
}
