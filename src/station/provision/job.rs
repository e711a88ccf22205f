//! One provisioning run of one order: what it holds (the token, its session, the PIN while it
//! is needed, the records made so far), and the bookkeeping around every step — journaled as
//! started, as done, or as failed, with the order's lease checked at each commit.

use super::claim::Claimed;
use super::error::{ProvisionError, StepError};
use super::journal::{Fence, Resume, StepEnd, Write, commit, durable_before};
use super::report::{ProvisionReport, ProvisionRequest};
use super::step::{Phase, Progress, Step};
use super::token_access::{Reserved, blocking};
use crate::audit::event::{AuditEvent, ProvisionFailed, StepOutcome, StepStarted};
use crate::domain::{
    CertSerial, Order, OrderEvent, OrderNo, OrderState, Pin, SoPin, StepStatus, TokenSerial,
};
use crate::failpoint::check as failpoint;
use crate::station::Station;
use crate::station::hsm::{Hsm, Lease};
use crate::station::lease::KeptLease;
use crate::station::service_desk::ServiceDeskError;
use crate::store::{Actor, AuditEntry, Binding, CertificateRecord, StoreError};
use crate::token::{KeyPairInfo, Token, TokenSelector, TokenSession, Vault};

/// One run of one order, from the claim to `finish` or the failure record. Its fields are the
/// steps' working state ([`super::steps`]).
pub(super) struct Job<'a> {
    pub station: &'a Station,
    pub hsm: &'a Hsm,
    pub progress: &'a dyn Progress,
    pub actor: Actor,
    pub order: Order,
    pub binding: Binding,
    pub attempt: i64,
    /// Where the journal was picked up.
    pub resume: Resume,
    /// The token is started over (`--reinit`).
    pub reinit: bool,
    pub token: Option<Token>,
    /// The blank token the claim reserved, for `init_token` (released once it has run).
    pub blank: Option<Reserved>,
    pub so_pin: Option<SoPin>,
    pub pin: Option<Pin>,
    /// In a Mutex only to make the job `Sync` (cryptoki sessions are `Send`, not `Sync`); it is
    /// reached through `&mut self` (`get_mut`), never locked.
    pub vault: Option<std::sync::Mutex<Lease<'a, Vault>>>,
    /// A user session on the order's token, kept from `generate_key` to the end of the job
    /// (one login per job, not one per step).
    pub session: Option<TokenSession>,
    pub key: Option<KeyPairInfo>,
    pub cert: Option<CertificateRecord>,
    pub seals: Vec<String>,
    pub steps_run: Vec<String>,
    pub revoked: Vec<CertSerial>,
    /// Journal and audit records written but not yet committed (group commit, see
    /// [`durable_before`]).
    pub pending: Vec<Write>,
    /// The order's lease, renewed in the background and by each commit of the job.
    pub lease: KeptLease,
}

pub(super) type StepResult<T> = Result<T, (Step, StepError)>;

/// Names the step a failure belongs to.
pub(super) trait AtStep<T> {
    fn at(self, step: Step) -> StepResult<T>;
}

impl<T, E: Into<StepError>> AtStep<T> for Result<T, E> {
    fn at(self, step: Step) -> StepResult<T> {
        self.map_err(|e| (step, e.into()))
    }
}

impl<'a> Job<'a> {
    /// The job of a claimed order.
    pub fn new(
        station: &'a Station,
        hsm: &'a Hsm,
        progress: &'a dyn Progress,
        claimed: Claimed,
    ) -> Job<'a> {
        Job {
            station,
            hsm,
            progress,
            actor: claimed.actor,
            order: claimed.order,
            binding: claimed.binding,
            attempt: claimed.resume.attempt,
            resume: claimed.resume,
            reinit: claimed.reinit,
            token: claimed.token,
            blank: claimed.blank,
            so_pin: None,
            pin: None,
            vault: None,
            session: None,
            key: None,
            cert: None,
            seals: Vec::new(),
            steps_run: vec![Step::Claim.name().to_string()],
            revoked: Vec::new(),
            pending: Vec::new(),
            lease: claimed.lease,
        }
    }
}

impl Job<'_> {
    pub fn no(&self) -> &OrderNo {
        &self.order.order_no
    }

    /// The job's lease for a commit (`last`: the job ends, the lease is released). A value of
    /// its own, not a method that commits: a job is not `Sync`, so `&self` must not be held
    /// across an await.
    pub fn fence(&self, last: bool) -> Option<Fence<'_>> {
        Some(Fence {
            order_no: &self.order.order_no,
            lease_id: self.lease.lease_id(),
            release: last,
        })
    }

    /// Runs the steps after the claim, skipping those a continued attempt has done.
    pub async fn run(&mut self) -> StepResult<()> {
        if self.resume.continues {
            self.load_for_continuation().await?;
        } else {
            self.revoke_unwritten(self.reinit)
                .await
                .at(Step::InitToken)?;
        }
        for step in Step::AFTER_CLAIM {
            if step == Step::DualCertificate && !self.station.config.product.dual_certificate {
                // Not a step of this station's orders: not journaled, not reported.
                continue;
            }
            if self.resume.skips(step) {
                if step == Step::InitToken {
                    // Not needed: other workers may take it.
                    self.blank = None;
                }
                self.progress.step(self.no().as_str(), step, Phase::Skipped);
                continue;
            }
            self.begin(step).await.at(step)?;
            match step {
                Step::InitToken => self.init_token().await,
                Step::InitPin => self.init_pin().await,
                Step::GenerateKey => self.generate_key().await,
                Step::IssueCertificate => self.issue_certificate().await,
                Step::DualCertificate => self.dual_certificate().await,
                Step::WriteCertificate => self.write_certificate().await,
                Step::WriteSeals => self.write_seals().await,
                Step::Finish => self.finish().await,
                Step::Claim => Ok(()),
            }
            .at(step)?;
            self.steps_run.push(step.name().to_string());
            self.progress.step(self.no().as_str(), step, Phase::Done);
        }
        Ok(())
    }

    /// Journals `step` as started (and runs its `.started` failpoint).
    pub async fn begin(&mut self, step: Step) -> Result<(), StepError> {
        let no = self.no().clone();
        if self.lease.lost() {
            return Err(StoreError::LeaseLost {
                subject: no.to_string(),
            }
            .into());
        }
        let entry = self.entry(AuditEvent::StepStarted(StepStarted {
            step: step.name().to_string(),
            attempt: self.attempt,
        }));
        self.pending.extend([
            Write::StepStarted {
                order_no: no.clone(),
                attempt: self.attempt,
                step,
            },
            Write::Audit(Box::new(entry)),
        ]);
        if durable_before(step) {
            self.flush(Vec::new()).await?;
        }
        self.progress.step(no.as_str(), step, Phase::Started);
        self.failpoint(&format!("provision.{step}.started"))
    }

    /// Commits the journal records waiting in `pending`, then `more`, in one transaction. On
    /// failure they stay pending (the failure record commits them with it).
    pub async fn flush(&mut self, more: Vec<Write>) -> Result<(), StoreError> {
        let mut writes = std::mem::take(&mut self.pending);
        let waiting = writes.len();
        writes.extend(more);
        let r = commit(self.station, &self.actor, &writes, self.fence(false)).await;
        if r.is_err() {
            writes.truncate(waiting);
            self.pending = writes;
        }
        r
    }

    /// A failpoint, also addressable for this order alone as `NAME@ORDER_NO` (batch tests fail
    /// exactly one order among many).
    pub fn failpoint(&self, name: &str) -> Result<(), StepError> {
        failpoint(name)?;
        failpoint(&format!("{name}@{}", self.order.order_no))?;
        Ok(())
    }

    /// Journals `step` as done, with what `extra` records; committed with the next durable
    /// point (see [`durable_before`]).
    pub async fn done(
        &mut self,
        step: Step,
        outcome: StepOutcome,
        extra: Option<Write>,
    ) -> Result<(), StepError> {
        debug_assert_eq!(step.name(), outcome.step_name());
        self.failpoint(&format!("provision.{step}.before_done"))?;
        let finished = Write::StepFinished(StepEnd {
            order_no: self.no().clone(),
            attempt: self.attempt,
            step,
            status: StepStatus::Done,
            detail: Some(
                outcome
                    .details()
                    .map_err(|e| {
                        StepError::Inconsistent(format!("the step's details do not encode: {e}"))
                    })?
                    .to_string(),
            ),
        });
        let entry = self.entry(AuditEvent::StepDone(outcome));
        self.pending.extend(extra);
        self.pending
            .extend([finished, Write::Audit(Box::new(entry))]);
        Ok(())
    }

    pub fn entry(&self, event: AuditEvent) -> AuditEntry {
        AuditEntry {
            event,
            order_no: Some(self.order.order_no.clone()),
            token_serial: self.binding.token_serial.clone(),
            cert_serial: self.cert.as_ref().map(|c| c.serial.clone()),
        }
    }

    pub async fn record_failure(&mut self, step: Step, err: &ProvisionError) {
        let no = self.no().clone();
        let message = err.to_string();
        // The previous step's records first: that step did finish.
        let mut writes = std::mem::take(&mut self.pending);
        writes.extend([
            Write::StepFinished(StepEnd {
                order_no: no.clone(),
                attempt: self.attempt,
                step,
                status: StepStatus::Failed,
                detail: Some(message.clone()),
            }),
            Write::Transition {
                order_no: no.clone(),
                expected: Some(OrderState::Provisioning),
                event: OrderEvent::Fail,
            },
        ]);
        let entry = self.entry(AuditEvent::ProvisionFailed(ProvisionFailed {
            step: step.name().to_string(),
            error: message,
            attempt: self.attempt,
            token_removed: err.token_removed(),
        }));
        writes.push(Write::Audit(Box::new(entry)));
        self.lease.stop_renewing();
        let result = commit(self.station, &self.actor, &writes, self.fence(true)).await;
        if let Err(e) = result {
            // The order stays Provisioning with the step "started": a re-run resumes it anyway.
            tracing::error!(order = %no, error = %e, "could not record the provisioning failure");
        }
    }

    pub fn vault(&mut self) -> Result<&Vault, StepError> {
        if self.vault.is_none() {
            let v = blocking(|| self.hsm.vault())?;
            self.vault = Some(std::sync::Mutex::new(v));
        }
        let v = self
            .vault
            .as_mut()
            .ok_or_else(|| StepError::Inconsistent("vault session missing".into()))?;
        Ok(v.get_mut().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` with the bound token's SO PIN (see `so_pin`) on a blocking thread; the PIN stays
    /// kept for the steps after it.
    pub async fn with_so_pin<T>(
        &mut self,
        f: impl FnOnce(&mut Self, &SoPin) -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        self.so_pin().await?;
        let so = self
            .so_pin
            .take()
            .ok_or_else(|| StepError::Inconsistent("SO PIN missing".into()))?;
        let r = blocking(|| f(self, &so));
        self.so_pin = Some(so);
        r
    }

    /// The bound token's SO PIN, at the generation the station records for its identity
    /// (a key unlocked remotely keeps its rotated SO PIN across `--reinit`).
    pub async fn so_pin(&mut self) -> Result<&SoPin, StepError> {
        if self.so_pin.is_none() {
            let identity = self.binding.so_identity.clone();
            let name = self
                .binding
                .token_serial
                .as_ref()
                .map_or_else(|| self.order.order_no.to_string(), ToString::to_string);
            let generation = crate::station::service_desk::so_pin::current_generation(
                &self.station.store,
                &identity,
                &name,
            )
            .await
            .map_err(|e| match e {
                ServiceDeskError::Store(s) => StepError::Store(s),
                ServiceDeskError::UnlockUnconfirmed {
                    token_serial,
                    request_id,
                } => StepError::UnlockUnconfirmed {
                    token_serial,
                    request_id,
                },
                other => StepError::Inconsistent(other.to_string()),
            })?;
            let so = blocking(|| {
                crate::station::service_desk::so_pin::so_pin_at(
                    self.vault()?,
                    &identity,
                    generation,
                )
                .map_err(StepError::from)
            })?;
            self.so_pin = Some(so);
        }
        self.so_pin
            .as_ref()
            .ok_or_else(|| StepError::Inconsistent("SO PIN missing".into()))
    }

    /// The bound token, found by serial (or by label after a crash inside `C_InitToken`).
    pub fn bound_token(&mut self) -> Result<&mut Token, StepError> {
        if self.token.is_none() {
            let selectors = match &self.binding.token_serial {
                Some(s) => vec![TokenSelector::Serial(s.clone())],
                None => vec![TokenSelector::Label(self.order.order_no.to_string())],
            };
            let t = blocking(|| self.hsm.module().find(&selectors))?;
            self.token = Some(t);
        }
        self.token
            .as_mut()
            .ok_or_else(|| StepError::Inconsistent("token missing".into()))
    }

    pub fn token_serial(&self) -> Result<TokenSerial, StepError> {
        self.binding
            .token_serial
            .clone()
            .ok_or_else(|| StepError::Inconsistent("the binding has no token serial".into()))
    }

    /// The job's user session on the order's token (logged in once, checked before each use).
    pub fn user_session(&mut self) -> Result<&TokenSession, StepError> {
        if !self
            .session
            .as_ref()
            .is_some_and(TokenSession::is_user_session)
        {
            self.session = None;
            let pin = Pin::from_secret(zeroize::Zeroizing::new(
                self.user_pin()?.expose_secret().to_string(),
            ));
            let s = self.bound_token()?.login_user(&pin)?;
            self.session = Some(s);
        }
        self.session
            .as_ref()
            .ok_or_else(|| StepError::Inconsistent("token session missing".into()))
    }

    pub fn user_pin(&mut self) -> Result<&Pin, StepError> {
        if self.pin.is_none() {
            return Err(StepError::Inconsistent("user PIN not available".into()));
        }
        self.pin
            .as_ref()
            .ok_or_else(|| StepError::Inconsistent("user PIN missing".into()))
    }

    /// What the run did.
    pub fn report(&self) -> ProvisionReport {
        let cert = self.cert.as_ref();
        let of_cert = |field: fn(&CertificateRecord) -> &String| {
            cert.map(|c| field(c).clone()).unwrap_or_default()
        };
        ProvisionReport {
            order_no: self.order.order_no.clone(),
            token_serial: self
                .binding
                .token_serial
                .as_deref()
                .unwrap_or_default()
                .to_string(),
            token_label: self.binding.token_label.clone(),
            key_algorithm: self.binding.key_algorithm.clone(),
            key_id: self.binding.key_id.clone().unwrap_or_default(),
            certificate_serial: self
                .cert
                .as_ref()
                .map(|c| c.serial.to_string())
                .unwrap_or_default(),
            certificate_fingerprint: of_cert(|c| &c.fingerprint_sha256),
            not_after: of_cert(|c| &c.not_after),
            seals: self.seals.clone(),
            steps_run: self.steps_run.clone(),
            attempt: self.attempt,
            revoked: self.revoked.clone(),
        }
    }
}

impl Station {
    /// Provisions (or resumes) one order. See the [`provision`](crate::station::provision)
    /// module docs.
    pub async fn provision(
        &self,
        hsm: &Hsm,
        req: &ProvisionRequest,
        progress: &dyn Progress,
    ) -> Result<ProvisionReport, ProvisionError> {
        let me = self.as_provisioning_operator().await?;
        let claimed = me.claim(hsm, req).await?;
        me.run_claimed(hsm, claimed, progress).await
    }

    /// Runs the job of an order just claimed, to `finish` or its failure record.
    pub(super) async fn run_claimed(
        &self,
        hsm: &Hsm,
        claimed: Claimed,
        progress: &dyn Progress,
    ) -> Result<ProvisionReport, ProvisionError> {
        let no = claimed.order.order_no.clone();
        progress.step(no.as_str(), Step::Claim, Phase::Done);
        let mut job = Job::new(self, hsm, progress, claimed);
        match job.run().await {
            Ok(()) => Ok(job.report()),
            Err((step, source)) => {
                progress.step(no.as_str(), step, Phase::Failed);
                let err = ProvisionError::Step {
                    order_no: no.to_string(),
                    step,
                    source,
                };
                job.record_failure(step, &err).await;
                Err(err)
            }
        }
    }
}
