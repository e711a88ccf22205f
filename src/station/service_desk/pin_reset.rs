//! Carrying out an approved PIN reset at the desk (`keystation pin-reset run ID`), with the key
//! plugged in.
//!
//! Steps, each journaled before and after it runs (`service_request_steps`), so that a run that
//! stops anywhere — an error, a pulled key, a crash — is resumed by running it again:
//! 1. `seal_pin`: a new user PIN from the station's random source, sealed in the vault at once
//!    and kept only sealed, with the request. A crash before this is recorded loses only a PIN
//!    that was never set anywhere; after it, every later run sets that SAME PIN.
//! 2. `init_pin`: the SO PIN re-derived in the vault from the binding's SO identity (at its
//!    current generation, [`super::so_pin`]), SO login,
//!    `C_InitPIN` with the sealed PIN, then a login with it as proof. Repeating it after a crash
//!    sets the same PIN again: the token is never left with a PIN nobody can learn, and the old
//!    PIN stops working at the first `C_InitPIN`.
//! 3. `queue_delivery`: ONE transaction moves the sealed PIN to the order's sealed PIN, queues
//!    its delivery by the order's channel (the outbox, exactly as at issuance, as the order's
//!    next PIN generation), journals the step and completes the request. Either all of it is
//!    committed or none: the delivery is queued exactly once, and the worker's own rules then
//!    send it at most once.
//!
//! Failpoints (test builds): `pin_reset.<step>.started`, `pin_reset.<step>.before_done`,
//! `pin_reset.queue_delivery.before_commit`.
//!
//! # Security notes
//! The new PIN exists in clear only in zeroizing memory: between drawing and sealing it, and
//! between unsealing it and `C_InitPIN` / the proving login. Journal, audit records and errors
//! name the request, the key's serial and the delivery, never the PIN.

use super::journal::{JournaledKind, JournaledRun};
use super::{ServiceDeskError, not_resettable};
use crate::audit::event::{AuditEvent, PinResetStepDone, ServiceCompleted};
use crate::domain::delivery::channel_name;
use crate::domain::{
    OrderNo, OrderState, Pin, PinResetStep, RequestEvent, RequestKind, TokenSerial,
};
use crate::station::Station;
use crate::station::hsm::{Hsm, blocking};
use crate::store::{Actor, Binding, ServiceRequestRecord, StoreError, Tx, stored_id};
use crate::token::TokenSelector;
use crate::token::vault::pin_aad;

/// What `pin-reset run` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PinResetReport {
    /// The request.
    pub request_id: String,
    /// Its order.
    pub order_no: String,
    /// The key whose PIN was reset.
    pub token_serial: String,
    /// True when this run continued an earlier one (crashed, or failed).
    pub resumed: bool,
    /// The steps this run carried out.
    pub steps_run: Vec<&'static str>,
    /// The delivery queued for the new PIN (`keystation deliver run` sends it).
    pub delivery_id: String,
    /// The order's PIN generation (1 = first reset).
    pub pin_generation: i64,
    /// `sms` or `bank`, as at issuance.
    pub channel: String,
    /// Where it goes, masked.
    pub destination_masked: String,
}

/// Refuses an order whose key the desk cannot reset (or unlock, by `kind`: the refusal is
/// worded for it); returns the bound key's serial.
pub(super) async fn check_order_resettable(
    tx: &mut Tx,
    order_no: &OrderNo,
    state: OrderState,
    binding: Option<&Binding>,
    kind: RequestKind,
) -> Result<TokenSerial, ServiceDeskError> {
    let refused = |message: String| ServiceDeskError::Refused {
        order_no: order_no.to_string(),
        message,
    };
    if let Some(why) = not_resettable(state, kind) {
        return Err(refused(why));
    }
    let Some(serial) = binding
        .filter(|b| b.order_no == order_no.as_str())
        .and_then(|b| b.token_serial.clone())
    else {
        return Err(refused(
            "no key is bound to the order (it was reported lost or released)".into(),
        ));
    };
    let unsettled = tx.unsettled_deliveries(order_no).await?;
    if !unsettled.is_empty() {
        let before = match kind {
            RequestKind::Unlock => "its key is unlocked",
            _ => "its PIN is reset",
        };
        return Err(refused(format!(
            "a PIN of this order is still on its way (delivery {}): wait until it is confirmed, \
             or cancel it, before {before}",
            unsettled.join(", ")
        )));
    }
    Ok(serial)
}

/// A PIN reset, as a kind of journaled run.
struct PinReset;

type Run<'a> = JournaledRun<'a, PinReset>;

impl Station {
    /// `pin-reset run ID`: carries out (or resumes) an approved PIN reset. See the module docs.
    /// A request still waiting for its second operator is refused
    /// ([`ServiceDeskError::NotRunnable`]) before anything is touched.
    pub async fn run_pin_reset(
        &self,
        hsm: &Hsm,
        id: &str,
        run_by: &str,
    ) -> Result<PinResetReport, ServiceDeskError> {
        let base = self
            .open_run(hsm, run_by, async |actor: &Actor| {
                self.start_request(actor, id, RequestKind::PinReset).await
            })
            .await?;
        let serial = base.request.token_serial.as_deref().ok_or_else(|| {
            ServiceDeskError::Inconsistent(format!("request {id} runs without a key serial"))
        })?;
        let serial = stored_id("service_requests.token_serial", serial)?;
        let mut run = Run {
            base,
            serial,
            kind: PinReset,
        };
        run.carry_out().await?;
        run.report().await
    }

    /// Moves the request to `executing` (from `approved`, or `failed` to resume), fixing the key
    /// it acts on; a request found `executing` (a crashed run) is resumed as it is. A request of
    /// another kind than `kind` is refused untouched.
    pub(super) async fn start_request(
        &self,
        actor: &Actor,
        id: &str,
        kind: RequestKind,
    ) -> Result<(ServiceRequestRecord, Binding, bool), ServiceDeskError> {
        self.start_run(
            actor,
            id,
            kind,
            async |tx: &mut Tx, order_no: &OrderNo, state, binding: Option<&Binding>| {
                check_order_resettable(tx, order_no, state, binding, kind).await
            },
            |order_no| ServiceDeskError::Refused {
                order_no,
                message: "no key is bound to the order (it was reported lost or released)".into(),
            },
        )
        .await
    }
}

impl JournaledKind for PinReset {
    type Step = PinResetStep;
    const RUN: &'static str = "pin_reset";
    const STEP_DONE: fn(PinResetStepDone) -> AuditEvent = AuditEvent::PinResetStepDone;

    async fn step(run: &mut Run<'_>, step: PinResetStep) -> Result<(), ServiceDeskError> {
        match step {
            PinResetStep::SealPin => run.seal_pin().await,
            PinResetStep::InitPin => run.init_pin().await,
            PinResetStep::QueueDelivery => run.queue_delivery().await,
        }
    }
}

impl Run<'_> {
    fn aad(&self) -> Vec<u8> {
        pin_aad(self.base.request.order_no.as_str(), &self.serial)
    }

    async fn seal_pin(&mut self) -> Result<(), ServiceDeskError> {
        let step = PinResetStep::SealPin;
        let runs = self.started(step).await?;
        let policy = self.base.station.config.pin;
        let aad = self.aad();
        let sealed = {
            let pin = Pin::generate(&policy, &mut self.base.station.random.rng());
            blocking(|| self.base.hsm.vault()?.seal_pin(&pin, &aad))?
        };
        crate::failpoint::check(&format!("pin_reset.{step}.before_done"))?;
        let mut tx = self.base.station.begin_write().await?;
        // A PIN sealed by an earlier run of this step stays the one: this one is dropped.
        tx.set_pending_pin(self.id(), &sealed).await?;
        self.done_in(&mut tx, step, runs).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn init_pin(&mut self) -> Result<(), ServiceDeskError> {
        let step = PinResetStep::InitPin;
        let runs = self.started(step).await?;
        let sealed = {
            let mut tx = self.base.station.begin_write().await?;
            let sealed = tx.pending_pin(self.id()).await?;
            tx.commit().await?;
            sealed.ok_or_else(|| {
                ServiceDeskError::Inconsistent(format!(
                    "request {}: seal_pin is journaled done but no sealed PIN is kept",
                    self.id()
                ))
            })?
        };
        let aad = self.aad();
        let identity = self.base.binding.so_identity.clone();
        let serial = self.serial.clone();
        let so = super::so_pin::current_so_pin(
            &self.base.station.store,
            self.base.hsm,
            &identity,
            serial.as_str(),
        )
        .await?;
        blocking(|| -> Result<(), ServiceDeskError> {
            let pin = self.base.hsm.vault()?.unseal_pin(&sealed, &aad)?;
            let mut token = self
                .base
                .hsm
                .module()
                .find(&[TokenSelector::Serial(serial)])?;
            token.reset_user_pin(&so, &pin)?;
            Ok(())
        })?;
        self.done(step, runs).await
    }

    async fn queue_delivery(&mut self) -> Result<(), ServiceDeskError> {
        let step = PinResetStep::QueueDelivery;
        let runs = self.started(step).await?;
        let no = self.base.request.order_no.clone();
        let mut tx = self.base.station.begin_write().await?;
        let mut r = tx.service_request(self.id()).await?;
        let state = tx.order_state(&no).await?;
        check_order_resettable(
            &mut tx,
            &no,
            state,
            Some(&self.base.binding),
            RequestKind::PinReset,
        )
        .await?;
        let sealed = tx.pending_pin(self.id()).await?.ok_or_else(|| {
            ServiceDeskError::Inconsistent(format!(
                "request {}: its new PIN is set but no sealed copy is kept",
                self.id()
            ))
        })?;
        let generation = tx.next_pin_generation(&no).await?;
        tx.put_sealed_pin(&no, &self.serial, &sealed).await?;
        tx.clear_pending_pin(self.id()).await?;
        let order = tx.order_in_tx(&no).await?;
        let station_id = self.base.station.config.station.id.clone();
        let delivery_id = crate::station::delivery::queue_pin_delivery(
            &mut tx,
            &self.base.actor,
            &order,
            &station_id,
            generation,
        )
        .await?;
        self.done_in(&mut tx, step, runs).await?;
        tx.transition_service_request(&self.base.actor, &mut r, &RequestEvent::Complete, |r| {
            r.delivery_id = Some(delivery_id.clone());
            r.pin_generation = Some(generation);
            r.last_error = None;
            AuditEvent::ServiceCompleted(ServiceCompleted {
                request_id: r.id.clone(),
                kind: r.kind.as_str().to_string(),
                delivery_id: Some(delivery_id),
                pin_generation: Some(generation),
            })
        })
        .await?;
        crate::failpoint!("pin_reset.queue_delivery.before_commit");
        tx.commit().await?;
        self.base.request = r;
        Ok(())
    }

    async fn report(&self) -> Result<PinResetReport, ServiceDeskError> {
        let request = match self.base.station.store.service_request(self.id()).await? {
            Some(r) => r,
            None => return Err(StoreError::RequestNotFound(self.id().to_string()).into()),
        };
        let delivery_id = request.delivery_id.clone().ok_or_else(|| {
            ServiceDeskError::Inconsistent(format!(
                "request {} is done without a delivery",
                request.id
            ))
        })?;
        let Some(d) = self.base.station.store.delivery(&delivery_id).await? else {
            return Err(StoreError::DeliveryNotFound(delivery_id).into());
        };
        Ok(PinResetReport {
            request_id: request.id.clone(),
            order_no: request.order_no.to_string(),
            token_serial: self.serial.to_string(),
            resumed: self.base.resumed,
            steps_run: self.base.steps_run.clone(),
            delivery_id,
            pin_generation: d.pin_generation,
            channel: channel_name(d.channel).to_string(),
            destination_masked: d.destination_masked,
        })
    }
}
