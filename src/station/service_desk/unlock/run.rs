//! `unlock run`: the journaled steps (see the parent module's docs).

use super::{RunOptions, UnlockReport};
use crate::audit::event::{AuditEvent, UnlockCodeSend, UnlockCodeSent, UnlockGenerationReserved};
use crate::clock::format_utc;
use crate::delivery::email::OutgoingEmail;
use crate::delivery::sms::SendOutcome;
use crate::domain::delivery::mask_email;
use crate::domain::unlock_mail::UnlockMail;
use crate::domain::{RequestEvent, UnlockStep};
use crate::station::hsm::blocking;
use crate::station::service_desk::journal::RunBase;
use crate::station::service_desk::{ServiceDeskError, so_pin};
use crate::store::{AuditEntry, SendRecord, SoPinGeneration, StoreError, UnlockRecord};
use crate::unlock::code::{UnlockRequestCode, UnlockSecrets, seal_authorisation};
/// One run of an approved unlock request.
pub(super) struct Run<'a> {
    pub(super) base: RunBase<'a>,
    pub(super) options: RunOptions,
}

fn fp(name: &str) -> Result<(), ServiceDeskError> {
    crate::failpoint::check(name)?;
    Ok(())
}

impl Run<'_> {
    fn id(&self) -> &str {
        &self.base.request.id
    }

    /// The SO PIN generations of the run's key (current, and the one a code in flight carries).
    async fn so_pin_generation(&self) -> Result<SoPinGeneration, StoreError> {
        let store = &self.base.station.store;
        store
            .so_pin_generation(&self.base.binding.so_identity)
            .await
    }

    /// The run's unlock request (its code and the sending of it).
    async fn unlock_record(&self) -> Result<UnlockRecord, ServiceDeskError> {
        let id = self.id();
        let u = self.base.station.store.unlock_request(id).await?;
        Ok(u.ok_or_else(|| StoreError::RequestNotFound(id.to_string()))?)
    }

    pub(super) async fn steps(&mut self) -> Result<(), (UnlockStep, ServiceDeskError)> {
        loop {
            let done: Vec<UnlockStep> = self
                .base
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
            self.base.steps_run.push(step.as_str());
        }
    }

    fn entry(&self, serial: &str, event: AuditEvent) -> AuditEntry {
        AuditEntry {
            token_serial: crate::store::stored_id("unlock_requests.token_serial", serial).ok(),
            ..AuditEntry::order(&self.base.request.order_no, event)
        }
    }

    async fn reserve_generation(&mut self) -> Result<(), ServiceDeskError> {
        let step = UnlockStep::ReserveGeneration;
        let mut tx = self.base.station.begin_write().await?;
        tx.request_step_started(self.id(), step).await?;
        tx.commit().await?;
        fp(&format!("unlock.{step}.started"))?;
        let mut tx = self.base.station.begin_write().await?;
        let serial = tx.unlock_request(self.id()).await?.token_serial;
        let g = tx
            .reserve_so_pin_generation(&self.base.binding.so_identity, self.id())
            .await?;
        let next = g.pending.ok_or_else(|| {
            ServiceDeskError::Inconsistent(
                "no pending SO PIN generation after reserving one".into(),
            )
        })?;
        tx.request_step_done(self.id(), step).await?;
        let event = AuditEvent::UnlockGenerationReserved(UnlockGenerationReserved {
            request_id: self.id().to_string(),
            token_serial: serial.clone(),
            current_generation: g.current,
            next_generation: next,
        });
        tx.audit(&self.base.actor, self.entry(&serial, event))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn send_code(&mut self) -> Result<(), ServiceDeskError> {
        let step = UnlockStep::SendCode;
        let id = self.id().to_string();
        let u = self.unlock_record().await?;
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
        let no = self.base.request.order_no.clone();
        let channel = crate::station::delivery::email_channel(&self.base.station.config)?
            .ok_or_else(|| ServiceDeskError::UnlockNoEmail {
                order_no: no.to_string(),
                message: "no [delivery.email] is configured: the unlock code goes by e-mail only"
                    .into(),
            })?;
        let order = self
            .base
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
        let now = self.base.station.clock.now();
        let expires = now + time::Duration::hours(i64::from(self.options.valid_hours));
        let expires_text = format_utc(expires);
        let expires_unix = u64::try_from(expires.unix_timestamp()).unwrap_or(0);
        let g = self.so_pin_generation().await?;
        let identity = self.base.binding.so_identity.clone();
        let (code, next) = blocking(|| -> Result<(String, u32), ServiceDeskError> {
            let (current_so_pin, next_so_pin, next) =
                so_pin::unlock_pair(self.base.hsm, &identity, &g)?;
            let secrets = UnlockSecrets {
                current_so_pin,
                next_so_pin,
            };
            Ok((seal_authorisation(&request, expires_unix, &secrets)?, next))
        })?;
        let send = u.sends + 1;
        // Claim before contacting the server: a crash from here on is in doubt, never resent.
        {
            let mut tx = self.base.station.store.begin_write(now).await?;
            tx.request_step_started(&id, step).await?;
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
            tx.audit(&self.base.actor, self.entry(&u.token_serial, event))
                .await?;
            tx.commit().await?;
        }
        fp("unlock.send_code.before_send")?;
        let templates = self
            .base
            .station
            .config
            .delivery
            .email
            .as_ref()
            .map(|e| e.templates.clone())
            .unwrap_or_default();
        let (subject, body) = templates
            .render(&UnlockMail {
                code: &code,
                expires_at: &expires_text,
                order_no: no.as_str(),
                token_serial: &u.token_serial,
            })
            .map_err(|e| ServiceDeskError::Inconsistent(e.to_string()))?;
        let mail = OutgoingEmail {
            id: format!("unlock-{id}-{send}"),
            to,
            subject,
            body,
        };
        let outcome = channel.send(&mail).await;
        drop(mail);
        fp("unlock.send_code.after_send")?;
        let (record, error) = match outcome {
            SendOutcome::Accepted { .. } => {
                let mut tx = self.base.station.begin_write().await?;
                tx.record_unlock_send(&id, &SendRecord::Sent).await?;
                tx.request_step_done(&id, step).await?;
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
                tx.transition_service_request(
                    &self.base.actor,
                    &mut r,
                    &RequestEvent::Complete,
                    |r| {
                        r.last_error = None;
                        AuditEvent::UnlockCodeSent(event)
                    },
                )
                .await?;
                crate::failpoint!("unlock.send_code.before_commit");
                tx.commit().await?;
                self.base.request = r;
                return Ok(());
            }
            SendOutcome::Retryable { reason } | SendOutcome::Permanent { reason } => (
                SendRecord::Failed(reason.clone()),
                ServiceDeskError::UnlockSend { id, reason },
            ),
            SendOutcome::Unknown { reason } => (
                SendRecord::InDoubt(reason.clone()),
                ServiceDeskError::UnlockInDoubt { id, reason },
            ),
        };
        self.record_send(&u.token_serial, send, &masked, record)
            .await?;
        Err(error)
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
        let mut tx = self.base.station.begin_write().await?;
        tx.record_unlock_send(self.id(), &record).await?;
        let event = AuditEvent::UnlockCodeSend(UnlockCodeSend {
            request_id: self.id().to_string(),
            state: state.into(),
            send,
            destination_masked: masked.to_string(),
            reason: Some(reason),
        });
        tx.audit(&self.base.actor, self.entry(serial, event))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn report(&self) -> Result<UnlockReport, ServiceDeskError> {
        let id = self.id().to_string();
        let u = self.unlock_record().await?;
        let g = self.so_pin_generation().await?;
        Ok(UnlockReport {
            request_id: id,
            order_no: self.base.request.order_no.to_string(),
            token_serial: u.token_serial,
            resumed: self.base.resumed,
            steps_run: self.base.steps_run.clone(),
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
