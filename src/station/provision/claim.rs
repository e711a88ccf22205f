//! The claim: what is checked before the order is touched (its state, a live holder of its
//! lease, the station it is bound to — another station's abandoned order is taken over, see
//! `takeover` — the token asked for or a blank one present), then one transaction that takes the
//! lease, moves the order to Provisioning, binds a token and journals the claim. Nothing is
//! written when a check fails. The claim of the next approved order (`next`) writes the same.

use super::error::ProvisionError;
use super::error::not_provisionable;
use super::journal::{Resume, StepEnd, Write, commit, revoked_entry};
use super::report::ProvisionRequest;
use super::step::Step;
use super::token_access::{Reserved, blank_tokens, blocking};
use crate::audit::event::{self, AuditEvent, LeaseTaken, TokenReleased};
use crate::domain::lease::LeaseKind;
use crate::domain::station_request::StationChange;
use crate::domain::{
    BindingId, CertificateStatus, Order, OrderEvent, OrderNo, OrderState, RequestState, StepStatus,
    TokenSerial,
};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::station::lease::{KeptLease, keeps_others_out};
use crate::store::{Actor, AuditEntry, Binding, StoreError};
use crate::token::{Token, TokenInfo, TokenSelector};

/// What a claim is about to write (see [`Station::claim_writes`]).
pub(super) struct ClaimPlan<'a> {
    /// The order's state as read before the claim.
    pub state: OrderState,
    /// Its binding (new, or the one it had).
    pub binding: &'a Binding,
    /// The binding is new.
    pub insert_binding: bool,
    /// Where the journal is picked up.
    pub resume: &'a Resume,
    /// `--reinit`.
    pub reinit: bool,
    /// The job's lease id.
    pub lease_id: &'a str,
    /// The approved reinit request consumed (`--reinit`), named in the claim's record.
    pub four_eyes: Option<event::FourEyes>,
}

/// What the claim hands to the job.
pub(super) struct Claimed {
    /// The job's actor, for every record of the run: the operator who provisions, from the
    /// console or the CLI ([`Station::job_actor`]).
    pub actor: Actor,
    /// The order as read before the claim.
    pub order: Order,
    /// The order's token binding (new, or the one it had).
    pub binding: Binding,
    /// The token asked for, already found.
    pub token: Option<Token>,
    /// The blank token that the claim found there for an order with no token yet, reserved
    /// for this job's `init_token` (which would otherwise list the slots again).
    pub blank: Option<Reserved>,
    /// Where the journal is picked up.
    pub resume: Resume,
    /// The token is started over even where the journal would continue.
    pub reinit: bool,
    /// The order's lease, now held and renewed in the background.
    pub lease: KeptLease,
}

impl Station {
    /// Claims `req`'s order for a provisioning run (see the module docs).
    pub(super) async fn claim(
        &self,
        hsm: &Hsm,
        req: &ProvisionRequest,
    ) -> Result<Claimed, ProvisionError> {
        let no = &req.order_no;
        let rec = self
            .store
            .order(no)
            .await?
            .ok_or_else(|| ProvisionError::NotFound(no.clone()))?;
        if let Some(hint) = not_provisionable(rec.state) {
            return Err(ProvisionError::State {
                order_no: no.clone(),
                state: rec.state,
                hint,
            });
        }
        // `--reinit` wipes a token keystation initialised and revokes its certificate: only with
        // a reinit request a second operator approved, consumed by this claim's transaction.
        let reinit_request = match req.reinit {
            true => Some(self.approved_reinit(no).await?),
            false => None,
        };
        // A secondary key that has not started yet: its main key must still be live (checked
        // at approval, again here before any token is touched). One under way is finished.
        if rec.state == OrderState::Approved {
            let mut tx = self.begin_write().await?;
            tx.require_live_main_key(&rec.order).await?;
            drop(tx);
        }
        // A look at the lease before anything else: a live holder's order is refused before
        // its tokens are even listed. The claim transaction decides for good.
        if let Some(l) = self.store.lease(LeaseKind::Provision, no.as_str()).await? {
            if keeps_others_out(&l, self.clock.now()) {
                return Err(ProvisionError::Held {
                    order_no: no.clone(),
                    holder: l.holder.to_string(),
                    expires_at: crate::clock::format_utc(l.expires_at),
                });
            }
        }
        let mut existing = self.store.active_binding(no).await?;
        // Writes that must commit with the claim (a takeover, a binding being replaced).
        let mut claim_writes = Vec::new();
        if let Some(b) = existing.take() {
            if b.station_id == self.config.station.id {
                existing = Some(b);
            } else {
                // Another station's order, whose job is not live any more (the look above).
                let taken = self.take_over(hsm, b, rec.state, req.reinit).await?;
                claim_writes = taken.writes;
                existing = taken.binding;
            }
        }
        let mut token = None;
        let mut blank = None;
        let mut kept = None;
        if let Some(sel) = &req.token {
            let t = blocking(|| hsm.module().find(&TokenSelector::either(sel))).map_err(|e| {
                ProvisionError::TokenRefused {
                    token: sel.clone(),
                    order_no: no.clone(),
                    reason: e.to_string(),
                }
            })?;
            // A renewal onto the company's existing key, brought to the desk.
            let at_desk = match &existing {
                None => self.renewal_key_at_desk(no, &t).await?,
                Some(_) => None,
            };
            let moving = existing.as_ref().is_some_and(|b| {
                b.token_serial.is_some()
                    && b.token_serial.as_deref() != Some(t.info().serial.as_str())
            });
            if let Some(original) = at_desk {
                kept = Some(self.keep_key_for_renewal(no, &original, &mut claim_writes));
            } else if moving && req.reinit {
                // The order's token is lost or broken: start over on another one. The old
                // binding is released and its certificates revoked (they are on no usable token).
                self.check_token_usable(&t, no, None).await?;
                if let Some(old) = existing.take() {
                    let reason = format!("replaced by token {}", t.info().display_name());
                    claim_writes.extend(self.release_binding(&old, &reason).await?);
                }
            } else {
                self.check_token_usable(&t, no, existing.as_ref()).await?;
            }
            token = Some(t);
        } else if existing.as_ref().is_none_or(|b| b.token_serial.is_none()) {
            // Nothing bound yet: refuse early, before the order is claimed, when no blank
            // token is there (the init step reserves one anyway).
            // A token labelled for this order can only exist after an earlier claim (a crash
            // inside C_InitToken): without a binding there is nothing to look for.
            let mine = existing.is_some()
                && blocking(|| hsm.module().find(&[TokenSelector::Label(no.to_string())])).is_ok();
            if !mine {
                blank = Some(
                    self.reserve_blank(hsm, no.as_str())
                        .await?
                        .ok_or_else(|| ProvisionError::NoBlankToken(no.clone()))?,
                );
            }
        }

        let actor = self.job_actor();
        let (last_attempt, journal) = self.store.journal(no).await?;
        let resume = Resume::plan(last_attempt, &journal, req.reinit, existing.is_some());
        let insert_binding = existing.is_none();
        let binding = existing.or(kept).unwrap_or_else(|| self.new_binding(no));
        let lease_id = uuid::Uuid::new_v4().to_string();
        let four_eyes = reinit_request.map(|(id, four_eyes)| {
            claim_writes.push(Write::CompleteStationRequest { id });
            four_eyes
        });
        let claim = ClaimPlan {
            state: rec.state,
            binding: &binding,
            insert_binding,
            resume: &resume,
            reinit: req.reinit,
            lease_id: &lease_id,
            four_eyes,
        };
        let writes = self.claim_writes(&claim, claim_writes);
        commit(self, &actor, &writes, None)
            .await
            .map_err(|e| ProvisionError::at_claim(no, e))?;
        let lease = KeptLease::start(self, LeaseKind::Provision, no.as_str(), &lease_id);
        Ok(Claimed {
            actor,
            order: rec.order,
            binding,
            token,
            blank,
            resume,
            reinit: req.reinit,
            lease,
        })
    }

    /// The approved reinit request of order `no` (its id, and both operators), or
    /// [`ProvisionError::ReinitNotApproved`].
    async fn approved_reinit(
        &self,
        no: &OrderNo,
    ) -> Result<(String, event::FourEyes), ProvisionError> {
        let change = StationChange::Reinit {
            order_no: no.clone(),
            token_serial: None,
        };
        let open = self
            .store
            .open_station_request(change.kind(), &change.subject())
            .await?;
        match open {
            Some(r) if r.state == RequestState::Approved => {
                let approved_by = r.decided_by.clone().ok_or_else(|| {
                    StoreError::Corrupt(format!("request {} is approved by nobody", r.id))
                })?;
                let four_eyes = event::FourEyes {
                    request_id: r.id.clone(),
                    requested_by: r.requested_by.to_string(),
                    approved_by: approved_by.to_string(),
                };
                Ok((r.id, four_eyes))
            }
            other => Err(ProvisionError::ReinitNotApproved {
                order_no: no.clone(),
                pending: other.map(|r| format!("request {} is {}", r.id, r.state)),
            }),
        }
    }

    /// For a renewal order `no` provisioned with `t`: the original's binding when `t` is the
    /// original's key (the company brought it to the desk), else `None`.
    async fn renewal_key_at_desk(
        &self,
        no: &OrderNo,
        t: &Token,
    ) -> Result<Option<Binding>, ProvisionError> {
        let Some(original) = self.store.renewal_of(no).await? else {
            return Ok(None);
        };
        let Ok(serial) = TokenSerial::parse(&t.info().serial) else {
            return Ok(None);
        };
        Ok(self
            .store
            .binding_of_token(&serial)
            .await?
            .filter(|b| b.order_no == original))
    }

    /// The renewal `no` continues on `original`'s key: the original's binding is released
    /// (its certificate stays valid until the renewal's is on the key; the writes go with the
    /// claim) and the renewal's binding inherits the key, its label and its SO identity.
    fn keep_key_for_renewal(
        &self,
        no: &OrderNo,
        original: &Binding,
        writes: &mut Vec<Write>,
    ) -> Binding {
        let reason = format!("renewed on the same key by order {no}");
        writes.push(Write::ReleaseBinding {
            binding_id: original.binding_id.clone(),
            reason: reason.clone(),
        });
        writes.push(Write::Audit(Box::new(AuditEntry {
            token_serial: original.token_serial.clone(),
            ..AuditEntry::order(
                &original.order_no,
                AuditEvent::TokenReleased(TokenReleased {
                    binding_id: original.binding_id.to_string(),
                    reason,
                }),
            )
        })));
        Binding {
            so_identity: original.so_identity.clone(),
            token_serial: original.token_serial.clone(),
            token_label: original.token_label.clone(),
            kept_from: Some(original.binding_id.clone()),
            ..self.new_binding(no)
        }
    }

    /// A new binding of order `no` to a token not chosen yet, at this station.
    pub(super) fn new_binding(&self, no: &OrderNo) -> Binding {
        let id = BindingId::from_uuid(uuid::Uuid::new_v4());
        Binding {
            so_identity: format!("blank:{id}"),
            binding_id: id,
            order_no: no.clone(),
            station_id: self.config.station.id.clone(),
            token_serial: None,
            token_label: no.to_string(),
            key_algorithm: self.config.product.key_algorithm.as_str().to_string(),
            key_id: None,
            public_key: None,
            bound_at: crate::clock::format_utc(self.clock.now()),
            kept_from: None,
        }
    }

    /// The claim transaction's writes: the lease first (refused while a live process holds it),
    /// then the order as it was read (another process may have moved it on since), `before`
    /// (a takeover, a binding replaced), the state change, the binding, the journal and the
    /// claim's audit record.
    pub(super) fn claim_writes(&self, c: &ClaimPlan<'_>, before: Vec<Write>) -> Vec<Write> {
        let no = &c.binding.order_no;
        let holder = self.lease_holder();
        let claimed = AuditEntry {
            token_serial: c.binding.token_serial.clone(),
            ..AuditEntry::order(
                no,
                AuditEvent::Claimed(event::Claimed {
                    attempt: c.resume.attempt,
                    binding_id: c.binding.binding_id.to_string(),
                    so_identity: c.binding.so_identity.clone(),
                    resume: c.resume.continues,
                    reinit: c.reinit,
                    lease: LeaseTaken {
                        lease_id: c.lease_id.to_string(),
                        holder: holder.clone(),
                    },
                    four_eyes: c.four_eyes.clone(),
                }),
            )
        };
        let mut writes = vec![
            Write::TakeLease {
                order_no: no.clone(),
                lease_id: c.lease_id.to_string(),
                holder: Box::new(holder),
                ttl: self.lease_ttl(),
            },
            Write::ExpectState {
                order_no: no.clone(),
                state: c.state,
            },
        ];
        writes.extend(before);
        if c.state != OrderState::Provisioning {
            writes.push(Write::Transition {
                order_no: no.clone(),
                expected: Some(c.state),
                event: OrderEvent::Claim,
            });
        }
        if c.insert_binding {
            writes.push(Write::InsertBinding(Box::new(c.binding.clone())));
        }
        writes.push(Write::StepStarted {
            order_no: no.clone(),
            attempt: c.resume.attempt,
            step: Step::Claim,
        });
        writes.push(Write::StepFinished(StepEnd {
            order_no: no.clone(),
            attempt: c.resume.attempt,
            step: Step::Claim,
            status: StepStatus::Done,
            detail: None,
        }));
        writes.push(Write::Audit(Box::new(claimed)));
        writes
    }

    /// The writes releasing a binding whose token is being replaced (or was left at another
    /// station): its certificates are revoked. They commit with the claim, under its lease.
    pub(super) async fn release_binding(
        &self,
        b: &Binding,
        reason: &str,
    ) -> Result<Vec<Write>, ProvisionError> {
        let actor = self.job_actor();
        let certs = self.store.certificates_of_order(&b.order_no).await?;
        let mut writes = Vec::new();
        for c in certs
            .iter()
            .filter(|c| c.binding_id == b.binding_id && c.status != CertificateStatus::Revoked)
        {
            writes.push(Write::RevokeCertificate {
                serial: c.serial.clone(),
                order_no: b.order_no.clone(),
                detail: reason.to_string(),
                by: actor.name.clone(),
            });
            writes.push(Write::Audit(Box::new(revoked_entry(c, reason))));
        }
        writes.push(Write::ReleaseBinding {
            binding_id: b.binding_id.clone(),
            reason: reason.to_string(),
        });
        writes.push(Write::Audit(Box::new(AuditEntry {
            token_serial: b.token_serial.clone(),
            ..AuditEntry::order(
                &b.order_no,
                AuditEvent::TokenReleased(TokenReleased {
                    binding_id: b.binding_id.to_string(),
                    reason: reason.to_string(),
                }),
            )
        })));
        Ok(writes)
    }

    /// A blank token for the order `what` to claim, reserved for its job: one that is free, or
    /// the one that another worker's C_InitToken in progress will leave (SoftHSM shows its next
    /// blank slot only after it), which is waited for rather than taken for "no blank token".
    /// `None` when no token is blank and none is being initialised.
    pub(super) async fn reserve_blank(
        &self,
        hsm: &Hsm,
        what: &str,
    ) -> Result<Option<Reserved>, ProvisionError> {
        blank_tokens()
            .reserve(hsm.module())
            .await
            .map_err(|e| ProvisionError::Step {
                order_no: what.to_string(),
                step: Step::Claim,
                source: e.into(),
            })
    }

    /// Refuses a token that belongs to another order, or that the station did not make (see
    /// [`token_refusal`]).
    pub(super) async fn check_token_usable(
        &self,
        t: &Token,
        order_no: &OrderNo,
        binding: Option<&Binding>,
    ) -> Result<(), ProvisionError> {
        let info = t.info();
        // A blank serial (a token not initialised yet) or one no binding can hold is unbound.
        let bound_to = match TokenSerial::parse(&info.serial) {
            Err(_) => None,
            Ok(serial) => self
                .store
                .binding_of_token(&serial)
                .await?
                .map(|other| other.order_no),
        };
        // A returned key retired at the desk (wiped, bound to nobody) is a blank key for an order
        // that has no key yet: its SO identity is adopted by the `init_token` step.
        if bound_to.is_none() && binding.is_none_or(|b| b.token_serial.is_none()) {
            if let Ok(serial) = TokenSerial::parse(&info.serial) {
                if self.store.available_retired_token(&serial).await?.is_some() {
                    return Ok(());
                }
            }
        }
        match token_refusal(info, order_no, binding, bound_to.as_ref()) {
            None => Ok(()),
            Some(reason) => Err(ProvisionError::TokenRefused {
                token: info.display_name(),
                order_no: order_no.clone(),
                reason,
            }),
        }
    }
}

/// Why the token `info` may not be provisioned for `order_no` (whose binding is `binding`, and
/// which the token's own binding, if any, names as `bound_to`); `None` when it may. A token of
/// another order is refused, as is a token other than the one the order is bound to, and an
/// initialised token the station did not make for this order: it is never erased.
fn token_refusal(
    info: &TokenInfo,
    order_no: &OrderNo,
    binding: Option<&Binding>,
    bound_to: Option<&OrderNo>,
) -> Option<String> {
    if let Some(other) = bound_to.filter(|other| *other != order_no) {
        return Some(format!("it is bound to order {other}"));
    }
    if let Some(serial) = binding.and_then(|b| b.token_serial.as_ref()) {
        if serial != &info.serial {
            return Some(format!(
                "order {order_no} is bound to token {serial}; re-insert that token, or start \
                 over on this one with --reinit (the old token's certificate is revoked)"
            ));
        }
    }
    if info.initialized {
        let ours = binding.is_some_and(|b| {
            b.token_serial.as_deref() == Some(info.serial.as_str())
                || (b.token_serial.is_none() && *order_no == info.label.as_str())
        });
        if !ours {
            return Some(format!(
                "it is initialised (label {:?}) and was not made for this order by this station; \
                 the station will not erase it",
                info.label
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
