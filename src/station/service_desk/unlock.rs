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

use super::{ServiceDeskError, operator, optional_text, record_request, text};
use crate::audit::event::{
    AuditEvent, UnlockCodeSend, UnlockCodeSent, UnlockConfirmed, UnlockGenerationReserved,
};
use crate::clock::format_utc;
use crate::delivery::email::OutgoingEmail;
use crate::delivery::sms::SendOutcome;
use crate::domain::delivery::mask_email;
use crate::domain::{OrderNo, RequestEvent, RequestKind, RequestState, UnlockStep};
use crate::station::Station;
use crate::station::hsm::{Hsm, blocking};
use crate::store::{Actor, AuditEntry, Binding, SendRecord, ServiceRequestRecord, StoreError};
use crate::unlock::code::{UnlockRequestCode, UnlockSecrets, seal_authorisation};

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
    /// `unlock request ORDER --code KSUR1-...`: records a remote unlock request. Refused unless
    /// the order's key is delivered and bound, the code was made on that key, and the code was
    /// never used for a request before.
    pub async fn request_unlock(
        &self,
        order_no: &OrderNo,
        code: &str,
        requested_by: &str,
        reason: &str,
        evidence: &str,
    ) -> Result<ServiceRequestRecord, ServiceDeskError> {
        let by = operator(requested_by)?;
        let code = UnlockRequestCode::decode(code)?;
        let reason = text("--reason", reason)?;
        let evidence = text("--evidence", evidence)?;
        let binding = self.store.active_binding(order_no).await?;
        let actor = self.operator_actor(by.as_str());
        let mut tx = self.store.begin_write(self.clock.now()).await?;
        let state = tx.order_state(order_no).await?;
        let serial =
            super::pin_reset::check_order_resettable(&mut tx, order_no, state, binding.as_ref())
                .await?;
        if serial.as_str() != code.token_serial {
            return Err(ServiceDeskError::UnlockSerial {
                order_no: order_no.to_string(),
                code_serial: code.token_serial,
                bound_serial: serial.to_string(),
            });
        }
        let order = tx.order_in_tx(order_no).await?;
        if order.handler.email.trim().is_empty() {
            return Err(ServiceDeskError::UnlockNoEmail {
                order_no: order_no.to_string(),
                message: "the order has no handler's e-mail address for the unlock code".into(),
            });
        }
        let id = record_request(
            &mut tx,
            &actor,
            RequestKind::Unlock,
            order_no,
            &by,
            reason,
            evidence,
            Some(serial.clone()),
        )
        .await?;
        tx.insert_unlock_request(
            &id,
            serial.as_str(),
            &hex::encode(code.request_nonce),
            &hex::encode(code.ephemeral_public),
        )
        .await?;
        let rec = tx.service_request(&id).await?;
        tx.commit().await?;
        Ok(rec)
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
        let by = operator(run_by)?;
        if options.valid_hours == 0 || options.valid_hours > MAX_VALID_HOURS {
            return Err(ServiceDeskError::Invalid {
                field: "--valid-hours",
                message: format!("must be 1-{MAX_VALID_HOURS}"),
            });
        }
        let actor = self.operator_actor(by.as_str());
        let (request, binding, resumed) =
            self.start_request(&actor, id, RequestKind::Unlock).await?;
        let mut run = Run {
            station: self,
            hsm,
            actor,
            request,
            binding,
            options,
            steps_run: Vec::new(),
        };
        match run.steps().await {
            Ok(()) => run.report(resumed).await,
            Err((step, e)) => {
                super::record_failure(self, &run.actor, id, step.as_str(), &e).await;
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
        let binding = self.bound_key(&r).await?;
        let actor = self.operator_actor(by.as_str());
        let mut tx = self.store.begin_write(self.clock.now()).await?;
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
        let unlock =
            self.store
                .unlock_request(id)
                .await?
                .ok_or_else(|| ServiceDeskError::Invalid {
                    field: "ID",
                    message: format!(
                        "request {id} is a {} request, not an unlock",
                        detail.request.kind
                    ),
                })?;
        Ok(UnlockDetail { detail, unlock })
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

struct Run<'a> {
    station: &'a Station,
    hsm: &'a Hsm,
    actor: Actor,
    request: ServiceRequestRecord,
    binding: Binding,
    options: RunOptions,
    steps_run: Vec<&'static str>,
}

fn fp(name: &str) -> Result<(), ServiceDeskError> {
    crate::failpoint::check(name)?;
    Ok(())
}

impl Run<'_> {
    fn id(&self) -> &str {
        &self.request.id
    }

    async fn steps(&mut self) -> Result<(), (UnlockStep, ServiceDeskError)> {
        loop {
            let done: Vec<UnlockStep> = self
                .station
                .store
                .request_steps(self.id())
                .await
                .map_err(|e| (UnlockStep::ReserveGeneration, e.into()))?
                .iter()
                .filter(|s| s.status == "done")
                .filter_map(|s| UnlockStep::parse(&s.step))
                .collect();
            let Some(step) = UnlockStep::next(&done) else {
                return Ok(());
            };
            let r = match step {
                UnlockStep::ReserveGeneration => self.reserve_generation().await,
                UnlockStep::SendCode => self.send_code().await,
            };
            r.map_err(|e| (step, e))?;
            self.steps_run.push(step.as_str());
        }
    }

    fn entry(&self, serial: &str, event: AuditEvent) -> AuditEntry {
        AuditEntry {
            token_serial: crate::store::stored_id("unlock_requests.token_serial", serial).ok(),
            ..AuditEntry::order(&self.request.order_no, event)
        }
    }

    async fn reserve_generation(&mut self) -> Result<(), ServiceDeskError> {
        let step = UnlockStep::ReserveGeneration;
        let mut tx = self
            .station
            .store
            .begin_write(self.station.clock.now())
            .await?;
        tx.request_step_started(self.id(), step.as_str()).await?;
        tx.commit().await?;
        fp(&format!("unlock.{step}.started"))?;
        let mut tx = self
            .station
            .store
            .begin_write(self.station.clock.now())
            .await?;
        let serial = tx.unlock_request(self.id()).await?.token_serial;
        let g = tx
            .reserve_so_pin_generation(&self.binding.so_identity, self.id())
            .await?;
        let next = g.pending.ok_or_else(|| {
            ServiceDeskError::Inconsistent(
                "no pending SO PIN generation after reserving one".into(),
            )
        })?;
        tx.request_step_done(self.id(), step.as_str()).await?;
        let event = AuditEvent::UnlockGenerationReserved(UnlockGenerationReserved {
            request_id: self.id().to_string(),
            token_serial: serial.clone(),
            current_generation: g.current,
            next_generation: next,
        });
        tx.audit(&self.actor, self.entry(&serial, event)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn send_code(&mut self) -> Result<(), ServiceDeskError> {
        let step = UnlockStep::SendCode;
        let id = self.id().to_string();
        let u = self
            .station
            .store
            .unlock_request(&id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.clone()))?;
        let masked_before = u.destination_masked.clone().unwrap_or_default();
        if u.send_state == "sending" {
            // A run stopped while the server was (maybe) being contacted.
            let reason = "the run stopped while the code was being sent".to_string();
            self.record_send(
                &u.token_serial,
                u.sends,
                &masked_before,
                SendRecord::InDoubt(reason.clone()),
            )
            .await?;
            if !self.options.resend {
                return Err(ServiceDeskError::UnlockInDoubt { id, reason });
            }
        } else if u.send_state == "in_doubt" && !self.options.resend {
            return Err(ServiceDeskError::UnlockInDoubt {
                id,
                reason: u
                    .last_error
                    .unwrap_or_else(|| "the outcome is unknown".into()),
            });
        }
        let no = self.request.order_no.clone();
        let channel =
            crate::station::delivery::email_channel(&self.station.config)?.ok_or_else(|| {
                ServiceDeskError::UnlockNoEmail {
                    order_no: no.to_string(),
                    message:
                        "no [delivery.email] is configured: the unlock code goes by e-mail only"
                            .into(),
                }
            })?;
        let order = self
            .station
            .store
            .order(&no)
            .await?
            .ok_or_else(|| StoreError::OrderNotFound(no.clone()))?
            .order;
        let to = order.handler.email.clone();
        let masked = mask_email(&to);
        let request = UnlockRequestCode {
            token_serial: u.token_serial.clone(),
            ephemeral_public: hex_array(&u.ephemeral_public, "ephemeral_public")?,
            request_nonce: hex_array(&u.request_nonce, "request_nonce")?,
        };
        let now = self.station.clock.now();
        let expires = now + time::Duration::hours(i64::from(self.options.valid_hours));
        let expires_text = format_utc(expires);
        let expires_unix = u64::try_from(expires.unix_timestamp()).unwrap_or(0);
        let g = self
            .station
            .store
            .so_pin_generation(&self.binding.so_identity)
            .await?;
        let identity = self.binding.so_identity.clone();
        let (code, next) = blocking(|| -> Result<(String, u32), ServiceDeskError> {
            let (current_so_pin, next_so_pin, next) =
                super::so_pin::unlock_pair(self.hsm, &identity, &g)?;
            let secrets = UnlockSecrets {
                current_so_pin,
                next_so_pin,
            };
            Ok((seal_authorisation(&request, expires_unix, &secrets)?, next))
        })?;
        let send = u.sends + 1;
        // Claim before contacting the server: a crash from here on is in doubt, never resent.
        {
            let mut tx = self.station.store.begin_write(now).await?;
            tx.request_step_started(&id, step.as_str()).await?;
            tx.record_unlock_send(
                &id,
                &SendRecord::Sending {
                    destination_masked: masked.clone(),
                    expires_at: expires_text.clone(),
                },
            )
            .await?;
            let event = AuditEvent::UnlockCodeSend(UnlockCodeSend {
                request_id: id.clone(),
                state: "sending".into(),
                send,
                destination_masked: masked.clone(),
                reason: None,
            });
            tx.audit(&self.actor, self.entry(&u.token_serial, event))
                .await?;
            tx.commit().await?;
        }
        fp("unlock.send_code.before_send")?;
        let mail = OutgoingEmail {
            id: format!("unlock-{id}-{send}"),
            to,
            subject: format!("【解锁授权码】订单 {no} 的 USB Key（{}）", u.token_serial),
            body: body(
                &order.handler.name,
                &no,
                &u.token_serial,
                &code,
                &expires_text,
            ),
        };
        let outcome = channel.send(&mail).await;
        drop(mail);
        fp("unlock.send_code.after_send")?;
        match outcome {
            SendOutcome::Accepted { .. } => {
                let mut tx = self
                    .station
                    .store
                    .begin_write(self.station.clock.now())
                    .await?;
                tx.record_unlock_send(&id, &SendRecord::Sent).await?;
                tx.request_step_done(&id, step.as_str()).await?;
                let mut r = tx.service_request(&id).await?;
                let serial = u.token_serial.clone();
                let event = UnlockCodeSent {
                    request_id: id.clone(),
                    token_serial: serial,
                    destination_masked: masked,
                    expires_at: expires_text,
                    send,
                    next_generation: next,
                };
                tx.transition_service_request(&self.actor, &mut r, &RequestEvent::Complete, |r| {
                    r.last_error = None;
                    AuditEvent::UnlockCodeSent(event)
                })
                .await?;
                crate::failpoint!("unlock.send_code.before_commit");
                tx.commit().await?;
                self.request = r;
                Ok(())
            }
            SendOutcome::Retryable { reason } | SendOutcome::Permanent { reason } => {
                self.record_send(
                    &u.token_serial,
                    send,
                    &masked,
                    SendRecord::Failed(reason.clone()),
                )
                .await?;
                Err(ServiceDeskError::UnlockSend { id, reason })
            }
            SendOutcome::Unknown { reason } => {
                self.record_send(
                    &u.token_serial,
                    send,
                    &masked,
                    SendRecord::InDoubt(reason.clone()),
                )
                .await?;
                Err(ServiceDeskError::UnlockInDoubt { id, reason })
            }
        }
    }

    /// Records a failed or in-doubt send with its audit record.
    async fn record_send(
        &self,
        serial: &str,
        send: i64,
        masked: &str,
        record: SendRecord,
    ) -> Result<(), ServiceDeskError> {
        let (state, reason) = match &record {
            SendRecord::Failed(r) => ("failed", r.clone()),
            SendRecord::InDoubt(r) => ("in_doubt", r.clone()),
            SendRecord::Sending { .. } | SendRecord::Sent => {
                return Err(ServiceDeskError::Inconsistent(
                    "record_send is for failed and in-doubt sends".into(),
                ));
            }
        };
        let mut tx = self
            .station
            .store
            .begin_write(self.station.clock.now())
            .await?;
        tx.record_unlock_send(self.id(), &record).await?;
        let event = AuditEvent::UnlockCodeSend(UnlockCodeSend {
            request_id: self.id().to_string(),
            state: state.into(),
            send,
            destination_masked: masked.to_string(),
            reason: Some(reason),
        });
        tx.audit(&self.actor, self.entry(serial, event)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn report(&self, resumed: bool) -> Result<UnlockReport, ServiceDeskError> {
        let id = self.id().to_string();
        let u = self
            .station
            .store
            .unlock_request(&id)
            .await?
            .ok_or_else(|| StoreError::RequestNotFound(id.clone()))?;
        let g = self
            .station
            .store
            .so_pin_generation(&self.binding.so_identity)
            .await?;
        Ok(UnlockReport {
            request_id: id,
            order_no: self.request.order_no.to_string(),
            token_serial: u.token_serial,
            resumed,
            steps_run: self.steps_run.clone(),
            destination_masked: u.destination_masked.unwrap_or_default(),
            expires_at: u.expires_at.unwrap_or_default(),
            sends: u.sends,
            next_generation: g.pending.unwrap_or(g.current),
        })
    }
}

fn hex_array<const N: usize>(s: &str, column: &str) -> Result<[u8; N], ServiceDeskError> {
    hex::decode(s)
        .ok()
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(|| {
            StoreError::Corrupt(format!("unlock_requests.{column} is not {N} hex bytes")).into()
        })
}

/// The e-mail's text. The code alone opens nothing: it is encrypted to the waiting tool.
fn body(handler: &str, no: &OrderNo, serial: &str, code: &str, expires: &str) -> String {
    format!(
        "{handler} 您好：\n\n\
         订单 {no} 的 USB Key（序列号 {serial}）的解锁授权码如下。请将整行粘贴到仍在等待的 \
         keystation-unlock 程序中，然后按提示两次输入新的 PIN：\n\n\
         {code}\n\n\
         有效期至 {expires}（UTC）。此授权码只能由发起本次申请的那一次 keystation-unlock \
         使用；仅凭本邮件无法解锁 Key。如非本人申请，请联系我们的服务台。\n"
    )
}
