//! Retiring a returned key (退锁) at the desk: `keystation retire request ORDER` by one operator,
//! `retire approve ID` by a second, `retire run ID` with the key plugged in.
//!
//! Steps ([`RetireStep`]), each journaled before and after it runs, so that a run stopped
//! anywhere (an error, a pulled key, a crash) is resumed by running it again:
//! 1. `revoke`: the order's live certificates revoked `cessationOfOperation` through the
//!    revocation path of `order revoke` (one transaction, then a CRL). An order already revoked
//!    has nothing live: the step does nothing, so a crash after the revocation committed repeats
//!    nothing.
//! 2. `wipe`: the SO PIN re-derived in the vault ([`super::so_pin::current_so_pin`], generation-aware), `C_InitToken` with the label
//!    [`RETIRED_LABEL`]: every object on the key is gone. `C_InitToken` keeps the SO PIN, so a
//!    repeat after a crash does the same again.
//! 3. `close`: ONE transaction closes the binding, records the key's disposition (`retired`) and
//!    the retired key (with the SO identity its SO PIN still derives from), journals the step and
//!    completes the request.
//!
//! A retired key is then a blank key for a new order: `keystation provision ORDER --token SERIAL`
//! takes it (the new binding adopts the retired key's SO identity, and its `init_token` step
//! re-initialises it under the order's label).
//!
//! Failpoints (test builds): `retire.<step>.started`, `retire.<step>.before_done`,
//! `retire.close.before_commit`.

use super::journal::{JournaledKind, JournaledRun};
use super::lost::cancel_requests_in;
use super::{ServiceDeskError, operator};
use crate::audit::event::{AuditEvent, PinResetStepDone, TokenRetired};
use crate::domain::reissue::KeyDisposition;
use crate::domain::{OrderNo, OrderState, RequestEvent, RequestKind, RetireStep, TokenSerial};
use crate::station::Station;
use crate::station::hsm::{Hsm, blocking};
use crate::store::{Actor, Binding, RetiredToken, ServiceRequestFilter, ServiceRequestRecord, Tx};
use crate::token::TokenSelector;

/// The label a retired key gets.
pub const RETIRED_LABEL: &str = "keystation-retired";

/// The RFC 5280 reason of a returned key's certificates: no longer needed, no suspicion that
/// the key was compromised.
pub const RETIRED_KEY_REASON: &str = "cessationOfOperation";

/// What `retire run` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetireReport {
    /// The request.
    pub request_id: String,
    /// Its order.
    pub order_no: String,
    /// The key wiped.
    pub token_serial: String,
    /// The label it has now.
    pub label: &'static str,
    /// The binding closed.
    pub binding_closed: String,
    /// True when this run continued an earlier one (crashed, or failed).
    pub resumed: bool,
    /// The steps this run carried out.
    pub steps_run: Vec<&'static str>,
    /// Certificates this run revoked (cessationOfOperation).
    pub certificates_revoked: Vec<String>,
}

/// Refuses an order whose key cannot be retired; returns the bound key's serial.
pub(super) fn check_retirable(
    order_no: &OrderNo,
    state: OrderState,
    binding: Option<&Binding>,
) -> Result<TokenSerial, ServiceDeskError> {
    let refused = |message: String| ServiceDeskError::RetireRefused {
        order_no: order_no.to_string(),
        message,
    };
    if !matches!(
        state,
        OrderState::Provisioned
            | OrderState::Shipped
            | OrderState::PinDelivered
            | OrderState::Revoked
            | OrderState::Failed
    ) {
        return Err(refused(format!(
            "the order is {state}: only a key that was made (Provisioned, Shipped, \
             PinDelivered, Failed or Revoked) is retired"
        )));
    }
    binding
        .filter(|b| b.order_no == *order_no)
        .and_then(|b| b.token_serial.clone())
        .ok_or_else(|| {
            refused(
                "no key is bound to the order (reported lost or broken, retired, or released): \
                 there is no key of it to retire"
                    .into(),
            )
        })
}

/// A retirement, as a kind of journaled run: the certificates it revoked.
struct Retire {
    revoked: Vec<String>,
}

type Run<'a> = JournaledRun<'a, Retire>;

impl Station {
    /// `retire run ID`: carries out (or resumes) an approved retirement. See the module docs.
    pub async fn run_retire(
        &self,
        hsm: &Hsm,
        id: &str,
        run_by: &str,
    ) -> Result<RetireReport, ServiceDeskError> {
        let base = self
            .open_run(hsm, run_by, async |actor: &Actor| {
                self.start_retire(actor, id).await
            })
            .await?;
        let serial = base.binding.token_serial.clone().ok_or_else(|| {
            ServiceDeskError::Inconsistent(format!("request {id} runs without a key serial"))
        })?;
        let mut run = Run {
            base,
            serial,
            kind: Retire {
                revoked: Vec::new(),
            },
        };
        run.carry_out().await?;
        let base = run.base;
        Ok(RetireReport {
            request_id: base.request.id.clone(),
            order_no: base.request.order_no.to_string(),
            token_serial: run.serial.to_string(),
            label: RETIRED_LABEL,
            binding_closed: base.binding.binding_id.to_string(),
            resumed: base.resumed,
            steps_run: base.steps_run,
            certificates_revoked: run.kind.revoked,
        })
    }

    /// Moves the request to `executing` (from `approved`, or `failed` to resume), fixing the key
    /// it acts on; a request found `executing` (a crashed run) is resumed as it is. Its binding
    /// is still open: `close`, which closes it, also completes the request.
    async fn start_retire(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<(ServiceRequestRecord, Binding, bool), ServiceDeskError> {
        self.start_run(
            actor,
            id,
            RequestKind::Retire,
            async |_: &mut Tx, order_no: &OrderNo, state, binding: Option<&Binding>| {
                check_retirable(order_no, state, binding)
            },
            |order_no| ServiceDeskError::RetireRefused {
                order_no,
                message: "no key is bound to the order any more".into(),
            },
        )
        .await
    }
}

impl JournaledKind for Retire {
    type Step = RetireStep;
    const RUN: &'static str = "retire";
    const STEP_DONE: fn(PinResetStepDone) -> AuditEvent = AuditEvent::RetireStepDone;

    async fn step(run: &mut Run<'_>, step: RetireStep) -> Result<(), ServiceDeskError> {
        match step {
            RetireStep::Revoke => run.revoke().await,
            RetireStep::Wipe => run.wipe().await,
            RetireStep::Close => run.close().await,
        }
    }
}

impl Run<'_> {
    async fn revoke(&mut self) -> Result<(), ServiceDeskError> {
        let step = RetireStep::Revoke;
        let runs = self.started(step).await?;
        let no = self.base.request.order_no.clone();
        let state = {
            let mut tx = self.base.station.begin_write().await?;
            let state = tx.order_state(&no).await?;
            tx.commit().await?;
            state
        };
        if state != OrderState::Revoked {
            let detail = format!("key returned and retired (request {})", self.id());
            let report = self
                .base
                .station
                .revoke_order(
                    &no,
                    RETIRED_KEY_REASON,
                    Some(&detail),
                    &self.base.actor.name,
                )
                .await?;
            self.kind.revoked = report
                .certificates
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        self.done(step, runs).await
    }

    async fn wipe(&mut self) -> Result<(), ServiceDeskError> {
        let step = RetireStep::Wipe;
        let runs = self.started(step).await?;
        let serial = self.serial.clone();
        // Generation-aware, like every SO login: refused while an unlock's rotation is unconfirmed.
        let so = super::so_pin::current_so_pin(
            &self.base.station.store,
            self.base.hsm,
            &self.base.binding.so_identity,
            serial.as_str(),
        )
        .await?;
        blocking(|| -> Result<(), ServiceDeskError> {
            let mut token = self
                .base
                .hsm
                .module()
                .find(&[TokenSelector::Serial(serial.clone())])?;
            token.init_token(&so, RETIRED_LABEL)?;
            let info = token.info();
            if info.serial != serial.as_str() || info.label != RETIRED_LABEL {
                return Err(ServiceDeskError::Inconsistent(format!(
                    "key {serial} reads serial {:?} label {:?} after C_InitToken",
                    info.serial, info.label
                )));
            }
            Ok(())
        })?;
        self.done(step, runs).await
    }

    async fn close(&mut self) -> Result<(), ServiceDeskError> {
        let step = RetireStep::Close;
        let runs = self.started(step).await?;
        let by = operator(&self.base.actor.name)?;
        // Other open requests of the order (a PIN reset) were for the key now wiped.
        let others: Vec<String> = self
            .base
            .station
            .store
            .service_requests(&ServiceRequestFilter {
                order_no: Some(self.base.request.order_no.clone()),
                state: None,
                kind: None,
            })
            .await?
            .into_iter()
            .filter(|o| o.id != self.base.request.id && o.state.is_open())
            .map(|o| o.id)
            .collect();
        let mut tx = self.base.station.begin_write().await?;
        let mut r = tx.service_request(self.id()).await?;
        let b = &self.base.binding;
        tx.release_binding(&b.binding_id, "retired (returned key wiped)")
            .await?;
        tx.record_key_disposition(
            &r.order_no,
            KeyDisposition::Retired,
            Some(&self.serial),
            &by,
        )
        .await?;
        tx.insert_retired_token(&RetiredToken {
            request_id: r.id.clone(),
            token_serial: self.serial.clone(),
            so_identity: b.so_identity.clone(),
            order_no: r.order_no.clone(),
            binding_id: b.binding_id.clone(),
            label: RETIRED_LABEL.to_string(),
            retired_at: crate::clock::format_utc(tx.now()),
        })
        .await?;
        let note = format!("the key was retired (request {})", r.id);
        cancel_requests_in(&mut tx, &self.base.actor, &by, &others, &note).await?;
        self.done_in(&mut tx, step, runs).await?;
        let serial = self.serial.to_string();
        let binding_id = b.binding_id.to_string();
        tx.transition_service_request(&self.base.actor, &mut r, &RequestEvent::Complete, |r| {
            r.last_error = None;
            AuditEvent::TokenRetired(TokenRetired {
                request_id: r.id.clone(),
                token_serial: serial,
                binding_id,
                label: RETIRED_LABEL.to_string(),
            })
        })
        .await?;
        crate::failpoint!("retire.close.before_commit");
        tx.commit().await?;
        self.base.request = r;
        Ok(())
    }
}
