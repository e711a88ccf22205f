//! A request run's execution journal (`service_request_steps`), as the PIN reset and retire runs
//! keep it: which step comes next, a step journaled as started, a step journaled as done; and
//! the run itself ([`JournaledRun`]), which each kind gives only its parts and its steps.

use super::ServiceDeskError;
use crate::audit::AuditEvent;
use crate::audit::event::PinResetStepDone;
use crate::domain::{JournaledStep, OrderNo, OrderState, RequestKind, RequestState, TokenSerial};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::store::{Actor, AuditEntry, Binding, ServiceRequestRecord, StoreError, Tx};

/// The first step of `S` that the journal of request `id` does not record as done; `None` when
/// every step is done. A failed read is charged to the first step.
async fn next_step<S: JournaledStep + PartialEq>(
    station: &Station,
    id: &str,
) -> Result<Option<S>, (S, ServiceDeskError)> {
    let done: Vec<S> = station
        .store
        .request_steps(id)
        .await
        .map_err(|e| (S::FIRST, e.into()))?
        .iter()
        .filter(|s| s.status == "done")
        .filter_map(|s| S::STEPS.iter().copied().find(|k| k.name() == s.step))
        .collect();
    Ok(S::STEPS.iter().copied().find(|s| !done.contains(s)))
}

/// Journals `step` of request `id` as started, in its own transaction (a crash after it is
/// visible), then passes the failpoint `{run}.{step}.started`; returns how often the step has
/// been started.
async fn step_started<S: JournaledStep>(
    station: &Station,
    id: &str,
    run: &str,
    step: S,
) -> Result<i64, ServiceDeskError> {
    let mut tx = station.begin_write().await?;
    tx.request_step_started(id, step).await?;
    tx.commit().await?;
    crate::failpoint::check(&format!("{run}.{}.started", step.name()))?;
    Ok(station
        .store
        .request_steps(id)
        .await?
        .iter()
        .find(|s| s.step == step.name())
        .map_or(1, |s| s.runs))
}

/// Journals `step` of `request` (acting on token `serial`) as done with its audit record
/// (`event` of the step's facts), in `tx`.
async fn step_done_in<S: JournaledStep>(
    tx: &mut Tx,
    actor: &Actor,
    request: &ServiceRequestRecord,
    serial: &TokenSerial,
    (step, runs): (S, i64),
    event: fn(PinResetStepDone) -> AuditEvent,
) -> Result<(), StoreError> {
    tx.request_step_done(&request.id, step).await?;
    tx.audit(
        actor,
        AuditEntry {
            token_serial: Some(serial.clone()),
            ..AuditEntry::order(
                &request.order_no,
                event(PinResetStepDone {
                    request_id: request.id.clone(),
                    step: step.name().to_string(),
                    token_serial: serial.to_string(),
                    runs,
                }),
            )
        },
    )
    .await?;
    Ok(())
}

/// What a run of a request works with, whatever its kind (PIN reset, retire, unlock): the
/// station and its HSM, the operator who runs it, the request, the key's binding, the steps it
/// carried out and whether it resumes an earlier run.
pub(super) struct RunBase<'a> {
    pub(super) station: &'a Station,
    pub(super) hsm: &'a Hsm,
    pub(super) actor: Actor,
    pub(super) request: ServiceRequestRecord,
    pub(super) binding: Binding,
    pub(super) steps_run: Vec<&'static str>,
    pub(super) resumed: bool,
}

/// A kind of journaled request (PIN reset, retire): its steps, how each is carried out, and the
/// names of its failpoints and step records. The kind's value is what a run of it keeps beside
/// its base (retire: the certificates it revoked).
pub(super) trait JournaledKind: Sized {
    /// The kind's steps.
    type Step: JournaledStep + PartialEq;
    /// The prefix of its failpoints (`{RUN}.{step}.started`).
    const RUN: &'static str;
    /// The audit event of one of its steps done.
    const STEP_DONE: fn(PinResetStepDone) -> AuditEvent;

    /// Carries out `step` of `run`.
    async fn step(
        run: &mut JournaledRun<'_, Self>,
        step: Self::Step,
    ) -> Result<(), ServiceDeskError>;
}

/// A run of a journaled request of kind `K`: the steps of its kind not done yet, carried out in
/// order on the key `serial`, each journaled before and after.
pub(super) struct JournaledRun<'a, K> {
    pub(super) base: RunBase<'a>,
    pub(super) serial: TokenSerial,
    pub(super) kind: K,
}

impl<K: JournaledKind> JournaledRun<'_, K> {
    /// The request's id.
    pub(super) fn id(&self) -> &str {
        &self.base.request.id
    }

    /// Carries out the steps not done yet, in order; a failure names its step.
    async fn steps(&mut self) -> Result<(), (K::Step, ServiceDeskError)> {
        loop {
            let Some(step) = next_step::<K::Step>(self.base.station, self.id()).await? else {
                return Ok(());
            };
            K::step(self, step).await.map_err(|e| (step, e))?;
            self.base.steps_run.push(step.name());
        }
    }

    /// Journals `step` as started, in its own transaction (a crash after it is visible);
    /// returns how often it was started.
    pub(super) async fn started(&self, step: K::Step) -> Result<i64, ServiceDeskError> {
        step_started(self.base.station, self.id(), K::RUN, step).await
    }

    /// Journals `step` as done with its audit record, in `tx`.
    pub(super) async fn done_in(
        &self,
        tx: &mut Tx,
        step: K::Step,
        runs: i64,
    ) -> Result<(), StoreError> {
        let base = &self.base;
        let done = (step, runs);
        step_done_in(
            tx,
            &base.actor,
            &base.request,
            &self.serial,
            done,
            K::STEP_DONE,
        )
        .await
    }

    /// Passes the failpoint `{RUN}.{step}.before_done`, then journals `step` as done with its
    /// audit record in a transaction of its own.
    pub(super) async fn done(&self, step: K::Step, runs: i64) -> Result<(), ServiceDeskError> {
        crate::failpoint::check(&format!("{}.{}.before_done", K::RUN, step.name()))?;
        let station = self.base.station;
        let mut tx = station.begin_write().await?;
        self.done_in(&mut tx, step, runs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Carries out the steps not done yet; a failure is recorded on the request (`failed`,
    /// naming its step, for a later run to resume) and returned.
    pub(super) async fn carry_out(&mut self) -> Result<(), ServiceDeskError> {
        let Err((step, e)) = self.steps().await else {
            return Ok(());
        };
        let base = &self.base;
        super::record_failure(base.station, &base.actor, self.id(), step.name(), &e).await;
        Err(e)
    }
}

impl Station {
    /// Opens a run for operator `run_by`, who must be allowed to run requests: `start` moves
    /// the request to `executing` and gives it with the key's binding and whether the run
    /// resumes an earlier one.
    pub(super) async fn open_run<'a>(
        &'a self,
        hsm: &'a Hsm,
        run_by: &str,
        start: impl AsyncFnOnce(
            &Actor,
        )
            -> Result<(ServiceRequestRecord, Binding, bool), ServiceDeskError>,
    ) -> Result<RunBase<'a>, ServiceDeskError> {
        let by = super::operator(run_by)?;
        let actor = self
            .operator_actor(by.as_str(), crate::domain::Action::RunRequest)
            .await?;
        let (request, binding, resumed) = start(&actor).await?;
        Ok(RunBase {
            station: self,
            hsm,
            actor,
            request,
            binding,
            steps_run: Vec::new(),
            resumed,
        })
    }

    /// Moves request `id` of `kind` to `executing` (from `approved`, or `failed` to resume),
    /// fixing the key it acts on, which `check` gives from the order (its state and binding);
    /// a request found `executing` (a crashed run) is resumed as it is. A request of another
    /// kind is refused untouched. Returns the request, the order's binding (`unbound`, given
    /// the order, when it has none) and whether the run resumes an earlier one.
    pub(super) async fn start_run(
        &self,
        actor: &Actor,
        id: &str,
        kind: RequestKind,
        check: impl AsyncFnOnce(
            &mut Tx,
            &OrderNo,
            OrderState,
            Option<&Binding>,
        ) -> Result<TokenSerial, ServiceDeskError>,
        unbound: impl FnOnce(String) -> ServiceDeskError,
    ) -> Result<(ServiceRequestRecord, Binding, bool), ServiceDeskError> {
        let Some(found) = self.store.service_request(id).await? else {
            return Err(StoreError::RequestNotFound(id.to_string()).into());
        };
        if found.kind != kind {
            return Err(super::other_kind(id, found.kind, "run"));
        }
        let binding = self.store.active_binding(&found.order_no).await?;
        let mut tx = self.begin_write().await?;
        let mut r = tx.service_request(id).await?;
        let resumed = match r.state {
            RequestState::Executing => true,
            RequestState::Approved | RequestState::Failed => {
                let state = tx.order_state(&r.order_no).await?;
                let serial = check(&mut tx, &r.order_no, state, binding.as_ref()).await?;
                if r.token_serial.as_ref().is_some_and(|s| serial != *s) {
                    return Err(ServiceDeskError::Inconsistent(format!(
                        "request {id} began on key {} but the order is now bound to key {serial}",
                        r.token_serial.as_deref().unwrap_or_default()
                    )));
                }
                let resumed = r.state == RequestState::Failed;
                super::start_in(&mut tx, actor, &mut r, Some(&serial)).await?;
                resumed
            }
            other => {
                let hint = if other == RequestState::Requested {
                    format!(
                        "it needs a second, different operator's approval before it runs \
                         (`keystation {} approve {id} --operator NAME`)",
                        super::command_of(kind)
                    )
                } else {
                    "it is settled; make a new request".to_string()
                };
                return Err(ServiceDeskError::NotRunnable {
                    id: id.to_string(),
                    state: other,
                    hint,
                });
            }
        };
        tx.commit().await?;
        let binding = binding.ok_or_else(|| unbound(r.order_no.to_string()))?;
        Ok((r, binding, resumed))
    }
}
