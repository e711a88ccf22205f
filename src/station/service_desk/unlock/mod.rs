//! Remote unlock at the service desk (`keystation unlock ...`): the key stays with the
//! customer; the station e-mails the handler an unlock authorisation code for the customer's
//! `keystation-unlock` ([`crate::unlock`]).
//!
//! `unlock request --code KSUR1-...` records the tool's request code (the key's serial, its
//! ephemeral public key, its nonce: all public) beside the four-eyes request; a second operator
//! approves; `unlock run ID` then, journaled step by step like a PIN reset:
//! 1. `reserve_generation`: the key's next SO PIN generation recorded as pending (an earlier
//!    code's unconfirmed one is carried again, so the key ends at it whichever state it is in);
//! 2. `send_code`: the current and next SO PIN derived in the vault, encrypted to the tool's key
//!    (bound to serial, request nonce and expiry), and e-mailed to the handler. The send is
//!    claimed (`sending`, audited) BEFORE the mail server is contacted; accepted, it completes
//!    the request in one transaction. A send whose outcome is unknown — a broken connection
//!    during the mail transaction, or a run that stopped while `sending` — is `in_doubt` and
//!    never repeated without `--resend`, which sends a fresh code for the same request (the
//!    waiting tool takes either).
//!
//! `unlock confirm ID` records that the customer's tool reported success: the pending
//! generation becomes current ([`super::so_pin`]).
//!
//! Failpoints (test builds): `unlock.<step>.started`, `unlock.send_code.before_send`,
//! `unlock.send_code.after_send`, `unlock.send_code.before_commit`.
//!
//! # Security notes
//! The code is never stored: it exists in the run's memory between sealing and sending. The
//! SO PINs exist in zeroizing memory between derivation and sealing. Journal, audit and errors
//! name the request, the key, the masked address and the expiry.

use super::{DeskRequest, ServiceDeskError, operator, optional_text};
use crate::audit::event::{AuditEvent, UnlockConfirmed};
use crate::domain::{OrderNo, RequestKind, RequestState, TokenSerial};
use crate::station::Station;
use crate::station::argument::InvalidArgument;
use crate::station::hsm::Hsm;
use crate::store::{Actor, AuditEntry, Binding, ServiceRequestRecord, StoreError, Tx};
use crate::unlock::code::UnlockRequestCode;

mod run;
use run::Run;

/// How long a code stays valid unless `--valid-hours` says otherwise.
pub const DEFAULT_VALID_HOURS: u32 = 48;
/// The longest validity.
pub const MAX_VALID_HOURS: u32 = 168;

/// What `unlock run` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnlockReport {
    /// The request.
    pub request_id: String,
    /// Its order.
    pub order_no: String,
    /// The key.
    pub token_serial: String,
    /// True when this run continued an earlier one.
    pub resumed: bool,
    /// The steps this run carried out.
    pub steps_run: Vec<&'static str>,
    /// Where the code went, masked.
    pub destination_masked: String,
    /// When it expires.
    pub expires_at: String,
    /// Contacts with the mail server for this request.
    pub sends: i64,
    /// The SO PIN generation the code rotates the key to.
    pub next_generation: u32,
}

/// An unlock request as `unlock show` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnlockDetail {
    /// The request and its journal.
    #[serde(flatten)]
    pub detail: super::RequestDetail,
    /// What the request code said, and the sending of the code.
    pub unlock: crate::store::UnlockRecord,
}

/// How `unlock run` is asked to send.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Send again although an earlier send may have reached the mail server.
    pub resend: bool,
    /// How long the code is valid.
    pub valid_hours: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            resend: false,
            valid_hours: DEFAULT_VALID_HOURS,
        }
    }
}

impl Station {
    /// `unlock request ORDER --code KSUR1-...` ([`Station::request_desk`]): the code decoded,
    /// then the intake, which keeps the code's nonce and key beside the request.
    pub(super) async fn request_unlock(
        &self,
        order_no: &OrderNo,
        code: &str,
        by: &DeskRequest<'_>,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        let code = UnlockRequestCode::decode(code)?;
        self.intake_request(
            RequestKind::Unlock,
            order_no,
            by,
            async |tx: &mut Tx, state, binding: Option<&Binding>| {
                let serial = super::pin_reset::check_order_resettable(
                    tx,
                    order_no,
                    state,
                    binding,
                    RequestKind::Unlock,
                )
                .await?;
                if serial.as_str() != code.token_serial {
                    return Err(ServiceDeskError::UnlockSerial {
                        order_no: order_no.to_string(),
                        code_serial: code.token_serial.clone(),
                        bound_serial: serial.to_string(),
                    });
                }
                let order = tx.order_in_tx(order_no).await?;
                if order.handler.email.trim().is_empty() {
                    return Err(ServiceDeskError::UnlockNoEmail {
                        order_no: order_no.to_string(),
                        message: "the order has no handler's e-mail address for the unlock code"
                            .into(),
                    });
                }
                Ok(Some(serial))
            },
            async |tx: &mut Tx, id: &str, serial: Option<&TokenSerial>| {
                let serial = serial.ok_or_else(|| {
                    ServiceDeskError::Inconsistent(format!("unlock request {id} names no key"))
                })?;
                tx.insert_unlock_request(
                    id,
                    serial.as_str(),
                    &hex::encode(code.request_nonce),
                    &hex::encode(code.ephemeral_public),
                )
                .await?;
                Ok(())
            },
        )
        .await
    }

    /// `unlock run ID [--resend]`: carries out (or resumes) an approved unlock. See the module
    /// docs.
    pub async fn run_unlock(
        &self,
        hsm: &Hsm,
        id: &str,
        run_by: &str,
        options: RunOptions,
    ) -> Result<UnlockReport, ServiceDeskError> {
        if options.valid_hours == 0 || options.valid_hours > MAX_VALID_HOURS {
            return Err(ServiceDeskError::Invalid(InvalidArgument {
                field: "--valid-hours",
                message: format!("must be 1-{MAX_VALID_HOURS}"),
            }));
        }
        let base = self
            .open_run(hsm, run_by, async |actor: &Actor| {
                self.start_request(actor, id, RequestKind::Unlock).await
            })
            .await?;
        let mut run = Run { base, options };
        match run.steps().await {
            Ok(()) => run.report().await,
            Err((step, e)) => {
                super::record_failure(self, &run.base.actor, id, step.as_str(), &e).await;
                Err(e)
            }
        }
    }

    /// `unlock confirm ID`: the customer's tool reported success; the SO PIN generation its
    /// code carried becomes the key's current one.
    pub async fn confirm_unlock(
        &self,
        id: &str,
        confirmed_by: &str,
        note: Option<&str>,
    ) -> Result<UnlockConfirmed, ServiceDeskError> {
        let by = operator(confirmed_by)?;
        let _note = optional_text("--note", note)?;
        let Some(r) = self.store.service_request(id).await? else {
            return Err(StoreError::RequestNotFound(id.to_string()).into());
        };
        if r.kind != RequestKind::Unlock || r.state != RequestState::Done {
            return Err(ServiceDeskError::NotRunnable {
                id: id.to_string(),
                state: r.state,
                hint: format!(
                    "only a done unlock request (its code sent) is confirmed; this is a {} request",
                    r.kind
                ),
            });
        }
        let binding = self.unlocked_key(&r).await?;
        let actor = self
            .operator_actor(by.as_str(), crate::domain::Action::RunRequest)
            .await?;
        let mut tx = self.begin_write().await?;
        let serial = tx.unlock_request(id).await?.token_serial;
        let before = tx.confirm_so_pin_generation(&binding.so_identity).await?;
        let Some(generation) = before.pending else {
            return Err(ServiceDeskError::Refused {
                order_no: r.order_no.to_string(),
                message: format!(
                    "key {serial} has no unconfirmed unlock code (its SO PIN is at generation {})",
                    before.current
                ),
            });
        };
        let event = UnlockConfirmed {
            request_id: id.to_string(),
            token_serial: serial.clone(),
            confirmed_by: by.to_string(),
            generation,
        };
        tx.audit(
            &actor,
            AuditEntry {
                token_serial: crate::store::stored_id("unlock_requests.token_serial", &serial).ok(),
                ..AuditEntry::order(&r.order_no, AuditEvent::UnlockConfirmed(event.clone()))
            },
        )
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    /// `unlock show ID`: the request, its journal and the sending of its code.
    pub async fn unlock_detail(&self, id: &str) -> Result<UnlockDetail, ServiceDeskError> {
        let detail = self.service_request(id).await?;
        let unlock = self.store.unlock_request(id).await?.ok_or_else(|| {
            ServiceDeskError::Invalid(InvalidArgument {
                field: "ID",
                message: format!(
                    "request {id} is a {} request, not an unlock",
                    detail.request.kind
                ),
            })
        })?;
        Ok(UnlockDetail { detail, unlock })
    }

    /// The key an unlock code was sent for, by the serial in its request code: the order's
    /// binding, or the one of a renewal onto the same key that took it over meanwhile (it keeps
    /// the key's SO identity, hence its pending generation).
    async fn unlocked_key(&self, r: &ServiceRequestRecord) -> Result<Binding, ServiceDeskError> {
        let serial = self
            .store
            .unlock_request(&r.id)
            .await?
            .and_then(|u| TokenSerial::parse(&u.token_serial).ok());
        if let Some(serial) = serial
            && let Some(b) = self.store.binding_of_token(&serial).await?
        {
            return Ok(b);
        }
        self.bound_key(r).await
    }

    async fn bound_key(&self, r: &ServiceRequestRecord) -> Result<Binding, ServiceDeskError> {
        self.store
            .active_binding(&r.order_no)
            .await?
            .ok_or_else(|| ServiceDeskError::Refused {
                order_no: r.order_no.to_string(),
                message: "no key is bound to the order (it was reported lost or released)".into(),
            })
    }
}
