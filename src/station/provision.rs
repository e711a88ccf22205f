//! Provisioning one approved order onto one token.
//!
//! Steps, each journaled in the database before (`started`) and after (`done`/`failed`) it runs,
//! with an audit record each time (grouped into five transactions per order, committed where a
//! crash must not lose what came before: see `durable_before`):
//!
//! 1. `claim` — the order's lease is taken (one live process per order, see [`super::lease`]),
//!    Approved/Failed → Provisioning; the order gets a token binding;
//! 2. `init_token` — `C_InitToken(label = order number, SO PIN)`; the SO PIN is derived in the
//!    vault as HMAC(vault key, token identity) and never stored. The identity is recorded BEFORE
//!    the token is touched: `serial:<serial>` for a blank token that already has a factory serial
//!    (real USB keys), `blank:<binding id>` for a blank slot without one (SoftHSM's uninitialised
//!    slot gets its serial only at `C_InitToken`); the binding later also records that serial,
//!    so the SO PIN of any token the station made can be re-derived from the database;
//! 3. `init_pin` — a user PIN from the OS CSPRNG (policy from config), set with `C_InitPIN`,
//!    sealed in the vault (AES-GCM, AAD = order + token) and stored only sealed;
//! 4. `generate_key` — the key pair, generated ON the token, private key non-extractable;
//! 5. `issue_certificate` — a CSR signed on the token, verified (proof of possession), the unit
//!    certificate issued by the CA key (in its own token). The serial is RESERVED in the database
//!    before the CA signs, so no signed certificate can ever be unknown to the station;
//! 6. `write_certificate` — the certificate written to the token under the key's `CKA_ID`;
//! 7. `write_seals` — GB/T 38540 seals as data objects (for orders with a seal service);
//! 8. `finish` — Provisioning → Provisioned.
//!
//! Recovery: if a run stops before `write_certificate` is done (crash, pulled token, error), the
//! next run starts a new attempt from `init_token`: the token is re-initialised (wiping the half
//! made key) and every certificate reserved or issued for the order but not on a token is revoked
//! (recorded in `revocations`), never left valid. After `write_certificate`, a re-run continues
//! with the remaining steps; `--reinit` forces the full restart (and revokes the certificate that
//! was on the token).

use super::Station;
use super::hsm::{Hsm, Lease};
use super::lease::{KeptLease, keeps_others_out, probe};
use crate::ca::csr::verify_csr;
use crate::ca::issuance::{cert_summary, issue_unit_certificate, serial_from_random};
use crate::domain::lease::{LeaseDecision, LeaseHolder, LeaseKind};
use crate::domain::{Order, OrderEvent, OrderState, Pin, SoPin};
use crate::failpoint::{InjectedFailure, check as failpoint};
use crate::store::{
    Actor, AuditEntry, Binding, CertificateRecord, LeaseRequest, Retry, StoreError, Tx,
};
use crate::token::vault::pin_aad;
use crate::token::{
    KeyPairInfo, Token, TokenError, TokenSelector, TokenSession, TokenSigner, Vault,
};
use rand::TryRngCore;
use rand::rngs::OsRng;
use serde_json::json;
use std::collections::HashSet;
use std::fmt;

/// The steps of a provisioning job, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Claim the order and bind a token.
    Claim,
    /// `C_InitToken`.
    InitToken,
    /// `C_InitPIN` + sealing.
    InitPin,
    /// `C_GenerateKeyPair`.
    GenerateKey,
    /// CSR on the token, certificate from the CA.
    IssueCertificate,
    /// Certificate onto the token.
    WriteCertificate,
    /// Seals onto the token.
    WriteSeals,
    /// Provisioned.
    Finish,
}

impl Step {
    /// Every step after the claim, in order.
    pub const AFTER_CLAIM: [Step; 7] = [
        Step::InitToken,
        Step::InitPin,
        Step::GenerateKey,
        Step::IssueCertificate,
        Step::WriteCertificate,
        Step::WriteSeals,
        Step::Finish,
    ];

    /// Journal name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Claim => "claim",
            Step::InitToken => "init_token",
            Step::InitPin => "init_pin",
            Step::GenerateKey => "generate_key",
            Step::IssueCertificate => "issue_certificate",
            Step::WriteCertificate => "write_certificate",
            Step::WriteSeals => "write_seals",
            Step::Finish => "finish",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Journaled as started.
    Started,
    /// Done.
    Done,
    /// Skipped (already done in this attempt).
    Skipped,
    /// Failed.
    Failed,
}

/// Live step output (CLI lines, progress bars, the workstation screen).
pub trait Progress: Send + Sync {
    /// A step of `order_no` changed phase.
    fn step(&self, order_no: &str, step: Step, phase: Phase);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str, _: Step, _: Phase) {}
}

/// Why provisioning did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// No such order.
    #[error("no order {0}")]
    NotFound(String),
    /// The order is not in a state that can be provisioned.
    #[error("order {order_no} is {state}: {hint}")]
    State {
        /// The order.
        order_no: String,
        /// Its state.
        state: OrderState,
        /// What to do.
        hint: &'static str,
    },
    /// Another station holds the order.
    #[error("order {order_no} is being provisioned by station {station}")]
    ClaimedElsewhere {
        /// The order.
        order_no: String,
        /// The other station.
        station: String,
    },
    /// Another process that may still run holds the order's lease (see [`super::lease`]).
    #[error(
        "order {order_no} is being provisioned by {holder}; run this again once that process has \
         ended (its lease runs to {expires_at} and is renewed while it works)"
    )]
    Held {
        /// The order.
        order_no: String,
        /// Who holds it.
        holder: String,
        /// Until when, unless renewed.
        expires_at: String,
    },
    /// The chosen token cannot be used for this order; nothing on it was changed.
    #[error("token {token} refused for order {order_no}: {reason}")]
    TokenRefused {
        /// The token.
        token: String,
        /// The order.
        order_no: String,
        /// Why.
        reason: String,
    },
    /// No blank token is present.
    #[error("no blank token present for order {0}: insert a blank USB key (or give --token)")]
    NoBlankToken(String),
    /// A step failed; the order is Failed and a re-run resumes it.
    #[error("order {order_no}, step {step}: {source}")]
    Step {
        /// The order.
        order_no: String,
        /// The step.
        step: Step,
        /// The cause.
        #[source]
        source: StepError,
    },
    /// The database failed outside a step.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cause of a failed step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A token operation failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The CA refused or failed.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Seal data could not be built.
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// An injected failure (tests).
    #[error(transparent)]
    Injected(#[from] InjectedFailure),
    /// The OS random generator failed.
    #[error("OS random generator: {0}")]
    Random(String),
    /// Inconsistent records.
    #[error("{0}")]
    Inconsistent(String),
}

/// A seal failure is a step failure of the same kind: a token, CA, database or seal error keeps
/// its kind (a pulled token stays recognisable, see [`ProvisionError::token_removed`]); a missing
/// picture or maker certificate is inconsistent records.
impl From<super::seals::SealsError> for StepError {
    fn from(e: super::seals::SealsError) -> Self {
        use super::seals::SealsError as E;
        match e {
            E::Token(t) => StepError::Token(t),
            E::Ca(c) => StepError::Ca(c),
            E::Store(s) => StepError::Store(s),
            E::Seal(s) => StepError::Seal(s),
            other @ (E::MissingPicture { .. } | E::MakerCertificate(_)) => {
                StepError::Inconsistent(other.to_string())
            }
        }
    }
}

impl ProvisionError {
    /// True when the token was pulled out (the order waits for it, resumable).
    pub fn token_removed(&self) -> bool {
        matches!(self, ProvisionError::Step { source: StepError::Token(t), .. } if t.is_removed())
    }

    /// For a caller that listed the order as provisionable (a batch): true when another process
    /// or station has it (holds it, or moved it on since it was listed). Nothing was done, and
    /// nothing of this caller's failed.
    pub fn taken_elsewhere(&self) -> bool {
        matches!(
            self,
            ProvisionError::Held { .. }
                | ProvisionError::ClaimedElsewhere { .. }
                | ProvisionError::State { .. }
        )
    }

    /// The claim transaction found the lease held, or the order changed since it was read.
    fn at_claim(order_no: &str, e: StoreError) -> ProvisionError {
        match e {
            StoreError::LeaseHeld {
                holder, expires_at, ..
            } => ProvisionError::Held {
                order_no: order_no.to_string(),
                holder,
                expires_at,
            },
            StoreError::StateConflict { actual, .. } => ProvisionError::State {
                order_no: order_no.to_string(),
                state: actual,
                hint: not_provisionable(actual)
                    .unwrap_or("another process worked on it meanwhile; run this again"),
            },
            other => ProvisionError::Store(other),
        }
    }
}

/// Why an order in `state` cannot be provisioned; `None` when it can.
fn not_provisionable(state: OrderState) -> Option<&'static str> {
    match state {
        OrderState::Approved | OrderState::Failed | OrderState::Provisioning => None,
        OrderState::Submitted => Some("it must be approved first"),
        OrderState::Rejected => Some("it was rejected"),
        OrderState::Provisioned | OrderState::Shipped | OrderState::PinDelivered => {
            Some("it is already provisioned")
        }
        OrderState::Revoked => Some("its certificate was revoked"),
    }
}

/// What to provision.
#[derive(Debug, Clone, Default)]
pub struct ProvisionRequest {
    /// The order.
    pub order_no: String,
    /// The token (serial or label); default: the bound one, else the first blank token.
    pub token: Option<String>,
    /// Start the token over even where the journal would continue.
    pub reinit: bool,
}

/// The result of a provisioning run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProvisionReport {
    /// The order.
    pub order_no: String,
    /// Token serial.
    pub token_serial: String,
    /// Token label.
    pub token_label: String,
    /// Key algorithm.
    pub key_algorithm: String,
    /// CKA_ID, hex.
    pub key_id: String,
    /// Certificate serial, hex.
    pub certificate_serial: String,
    /// Certificate SHA-256 fingerprint.
    pub certificate_fingerprint: String,
    /// Certificate validity end.
    pub not_after: String,
    /// Seal labels written.
    pub seals: Vec<String>,
    /// Steps run in this invocation.
    pub steps_run: Vec<String>,
    /// Attempt number.
    pub attempt: i64,
    /// Certificates revoked by this run (superseded, never on a token).
    pub revoked: Vec<String>,
}

/// Serialises choosing a blank token and initialising it: a SoftHSM blank slot has no identity
/// until `C_InitToken`, so two workers must not pick the same one.
fn blank_token_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// Runs blocking token work without stalling the async runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], StepError> {
    let mut b = [0u8; N];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| StepError::Random(e.to_string()))?;
    Ok(b)
}

struct Job<'a> {
    station: &'a Station,
    hsm: &'a Hsm,
    progress: &'a dyn Progress,
    actor: Actor,
    order: Order,
    binding: Binding,
    attempt: i64,
    token: Option<Token>,
    so_pin: Option<SoPin>,
    pin: Option<Pin>,
    /// In a Mutex only to make the job `Sync` (cryptoki sessions are `Send`, not `Sync`); it is
    /// reached through `&mut self` (`get_mut`), never locked.
    vault: Option<std::sync::Mutex<Lease<'a, Vault>>>,
    /// A user session on the order's token, kept from `generate_key` to the end of the job
    /// (one login per job, not one per step).
    session: Option<TokenSession>,
    key: Option<KeyPairInfo>,
    cert: Option<CertificateRecord>,
    seals: Vec<String>,
    steps_run: Vec<String>,
    revoked: Vec<String>,
    /// Journal and audit records written but not yet committed (group commit, see
    /// [`durable_before`]).
    pending: Vec<Write>,
    /// The order's lease, renewed in the background and by each commit of the job.
    lease: KeptLease,
}

impl Station {
    /// Provisions (or resumes) one order. See the module docs.
    pub async fn provision(
        &self,
        hsm: &Hsm,
        req: &ProvisionRequest,
        progress: &dyn Progress,
    ) -> Result<ProvisionReport, ProvisionError> {
        let no = req.order_no.as_str();
        let rec = self
            .store
            .order(no)
            .await?
            .ok_or_else(|| ProvisionError::NotFound(no.to_string()))?;
        if let Some(hint) = not_provisionable(rec.state) {
            return Err(ProvisionError::State {
                order_no: no.to_string(),
                state: rec.state,
                hint,
            });
        }
        // A look at the lease before anything else: a live holder's order is refused before
        // its tokens are even listed. The claim transaction decides for good.
        if let Some(l) = self.store.lease(LeaseKind::Provision, no).await? {
            if keeps_others_out(&l, self.clock.now()) {
                return Err(ProvisionError::Held {
                    order_no: no.to_string(),
                    holder: l.holder.to_string(),
                    expires_at: crate::clock::format_utc(l.expires_at),
                });
            }
        }
        let existing = self.store.active_binding(no).await?;
        if let Some(b) = &existing {
            if b.station_id != self.config.station.id {
                return Err(ProvisionError::ClaimedElsewhere {
                    order_no: no.to_string(),
                    station: b.station_id.clone(),
                });
            }
        }
        let mut existing = existing;
        let mut token = None;
        // Writes that must commit with the claim (releasing a binding being replaced).
        let mut claim_writes = Vec::new();
        if let Some(sel) = &req.token {
            let t = blocking(|| hsm.module().find(&TokenSelector::either(sel))).map_err(|e| {
                ProvisionError::TokenRefused {
                    token: sel.clone(),
                    order_no: no.to_string(),
                    reason: e.to_string(),
                }
            })?;
            let moving = existing.as_ref().is_some_and(|b| {
                b.token_serial.is_some()
                    && b.token_serial.as_deref() != Some(t.info().serial.as_str())
            });
            if moving && req.reinit {
                // The order's token is lost or broken: start over on another one. The old
                // binding is released and its certificates revoked (they are on no usable token).
                self.check_token_usable(&t, no, None).await?;
                if let Some(old) = existing.take() {
                    claim_writes = self
                        .release_binding(
                            &old,
                            &format!("replaced by token {}", t.info().display_name()),
                        )
                        .await?;
                }
            } else {
                self.check_token_usable(&t, no, existing.as_ref()).await?;
            }
            token = Some(t);
        } else if existing.as_ref().is_none_or(|b| b.token_serial.is_none()) {
            // Nothing bound yet: refuse early, before the order is claimed, when no blank
            // token is there (the init step re-selects under the blank-token lock anyway). The
            // lock is held for the look too: another worker's C_InitToken in progress must not
            // make the slot list look blank-less.
            let _guard = blank_token_lock().lock().await;
            // A token labelled for this order can only exist after an earlier claim (a crash
            // inside C_InitToken): without a binding there is nothing to look for.
            let mine = existing.is_some()
                && blocking(|| hsm.module().find(&[TokenSelector::Label(no.to_string())])).is_ok();
            let blank = blocking(|| hsm.module().first_blank())
                .map_err(|e| ProvisionError::Step {
                    order_no: no.to_string(),
                    step: Step::Claim,
                    source: e.into(),
                })?
                .is_some();
            if !mine && !blank {
                return Err(ProvisionError::NoBlankToken(no.to_string()));
            }
        }

        let actor = self.station_actor();
        let (last_attempt, journal) = self.store.journal(no).await?;
        let done: HashSet<String> = journal
            .iter()
            .filter(|s| s.status == "done")
            .map(|s| s.step.clone())
            .collect();
        let continue_journal =
            !req.reinit && existing.is_some() && done.contains(Step::WriteCertificate.name());
        let attempt = if continue_journal {
            last_attempt
        } else {
            last_attempt + 1
        };

        // Claim: state, binding and journal in one transaction.
        let insert_binding = existing.is_none();
        let binding = match existing {
            Some(b) => b,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                Binding {
                    so_identity: format!("blank:{id}"),
                    binding_id: id,
                    order_no: no.to_string(),
                    station_id: self.config.station.id.clone(),
                    token_serial: None,
                    token_label: no.to_string(),
                    key_algorithm: self.config.product.key_algorithm.as_str().to_string(),
                    key_id: None,
                    public_key: None,
                    bound_at: crate::clock::format_utc(self.clock.now()),
                }
            }
        };
        let holder = self.lease_holder();
        let lease_id = uuid::Uuid::new_v4().to_string();
        let claimed = AuditEntry {
            action: "provision.claimed".into(),
            order_no: Some(no.to_string()),
            token_serial: binding.token_serial.clone(),
            details: json!({
                "attempt": attempt,
                "binding_id": binding.binding_id,
                "so_identity": binding.so_identity,
                "resume": continue_journal,
                "reinit": req.reinit,
                "lease": {"lease_id": lease_id, "holder": holder},
            }),
            ..AuditEntry::default()
        };
        // The claim: the lease first (refused while a live process holds it), then the order
        // as it was read (another process may have moved it on since), then the rest.
        let mut writes = vec![
            Write::TakeLease {
                order_no: no.to_string(),
                lease_id: lease_id.clone(),
                holder: Box::new(holder),
                ttl: self.lease_ttl(),
            },
            Write::ExpectState {
                order_no: no.to_string(),
                state: rec.state,
            },
        ];
        writes.append(&mut claim_writes);
        if rec.state != OrderState::Provisioning {
            writes.push(Write::Transition {
                order_no: no.to_string(),
                expected: Some(rec.state),
                event: OrderEvent::Claim,
            });
        }
        if insert_binding {
            writes.push(Write::InsertBinding(Box::new(binding.clone())));
        }
        writes.push(Write::StepStarted {
            order_no: no.to_string(),
            attempt,
            step: Step::Claim,
        });
        writes.push(Write::StepFinished {
            order_no: no.to_string(),
            attempt,
            step: Step::Claim,
            status: "done",
            detail: None,
        });
        writes.push(Write::Audit(Box::new(claimed)));
        commit(self, &actor, &writes, None)
            .await
            .map_err(|e| ProvisionError::at_claim(no, e))?;
        let lease = KeptLease::start(self, LeaseKind::Provision, no, &lease_id);
        progress.step(no, Step::Claim, Phase::Done);

        let mut job = Job {
            station: self,
            hsm,
            progress,
            actor,
            order: rec.order,
            binding,
            attempt,
            token,
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
            lease,
        };
        let result = job.run(continue_journal, req.reinit, &done).await;
        match result {
            Ok(()) => job.report(),
            Err((step, source)) => {
                progress.step(no, step, Phase::Failed);
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

    /// The writes releasing a binding whose token is being replaced: its certificates are
    /// revoked. They commit with the claim, under its lease.
    async fn release_binding(
        &self,
        b: &Binding,
        reason: &str,
    ) -> Result<Vec<Write>, ProvisionError> {
        let actor = self.station_actor();
        let certs = self.store.certificates_of_order(&b.order_no).await?;
        let mut writes = Vec::new();
        for c in certs
            .iter()
            .filter(|c| c.binding_id == b.binding_id && c.status != "revoked")
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
            action: "provision.token_released".into(),
            order_no: Some(b.order_no.clone()),
            token_serial: b.token_serial.clone(),
            details: json!({"binding_id": b.binding_id, "reason": reason}),
            ..AuditEntry::default()
        })));
        Ok(writes)
    }

    /// Refuses a token that belongs to another order, or that the station did not make.
    async fn check_token_usable(
        &self,
        t: &Token,
        order_no: &str,
        binding: Option<&Binding>,
    ) -> Result<(), ProvisionError> {
        let info = t.info();
        let refuse = |reason: String| ProvisionError::TokenRefused {
            token: info.display_name(),
            order_no: order_no.to_string(),
            reason,
        };
        if !info.serial.is_empty() {
            if let Some(other) = self.store.binding_of_token(&info.serial).await? {
                if other.order_no != order_no {
                    return Err(refuse(format!("it is bound to order {}", other.order_no)));
                }
            }
        }
        if let Some(b) = binding {
            if let Some(serial) = &b.token_serial {
                if serial != &info.serial {
                    return Err(refuse(format!(
                        "order {order_no} is bound to token {serial}; re-insert that token, or start \
                         over on this one with --reinit (the old token's certificate is revoked)"
                    )));
                }
            }
        }
        if info.initialized {
            let ours = binding.is_some_and(|b| {
                b.token_serial.as_deref() == Some(info.serial.as_str())
                    || (b.token_serial.is_none() && info.label == order_no)
            });
            if !ours {
                return Err(refuse(format!(
                    "it is initialised (label {:?}) and was not made for this order by this station; \
                     the station will not erase it",
                    info.label
                )));
            }
        }
        Ok(())
    }
}

type StepResult<T> = Result<T, (Step, StepError)>;

/// Group commit. Every step's "started" and "done" records (with their audit records) are
/// written in order, but a transaction is committed only where a crash must not lose what came
/// before: before `init_token` (the token is about to be erased), before the CA signs (the
/// serial reservation, in `issue_certificate`), before `write_seals` (the certificate is on the
/// token: a re-run continues instead of revoking it), at `finish`, and with a failure record.
/// A crash between two of these points loses only records of work that the next attempt redoes
/// anyway (it restarts from `init_token`, re-initialising the token and revoking any reserved
/// certificate); the kill tests cover every failpoint in between. Five commits per order
/// instead of fifteen.
fn durable_before(step: Step) -> bool {
    matches!(step, Step::InitToken | Step::WriteSeals)
}

/// One database write of the provisioning job. A step's writes and audit records are
/// committed together by [`commit`], which retries the whole transaction when the database
/// fails transiently (a restart, a lost connection, SQLite busy) — every write here can be
/// applied again.
enum Write {
    /// Takes the order's lease (first in the claim transaction); a takeover is audited.
    TakeLease {
        order_no: String,
        lease_id: String,
        holder: Box<LeaseHolder>,
        ttl: time::Duration,
    },
    /// The order is still in the state the claim was decided on.
    ExpectState {
        order_no: String,
        state: OrderState,
    },
    StepStarted {
        order_no: String,
        attempt: i64,
        step: Step,
    },
    StepFinished {
        order_no: String,
        attempt: i64,
        step: Step,
        status: &'static str,
        detail: Option<String>,
    },
    Transition {
        order_no: String,
        expected: Option<OrderState>,
        event: OrderEvent,
    },
    InsertBinding(Box<Binding>),
    ReleaseBinding {
        binding_id: String,
        reason: String,
    },
    BindingIdentity {
        binding_id: String,
        identity: String,
        serial: String,
    },
    BindingSerial {
        binding_id: String,
        serial: String,
    },
    SealedPin {
        order_no: String,
        serial: String,
        sealed: Vec<u8>,
    },
    BindingKey {
        binding_id: String,
        key_id_hex: String,
        spki: Vec<u8>,
    },
    InsertCertificate(Box<CertificateRecord>),
    CertificateIssued(Box<CertificateRecord>),
    CertificateOnToken(String),
    RevokeCertificate {
        serial: String,
        order_no: String,
        detail: String,
        by: String,
    },
    QueueDelivery {
        order: Box<Order>,
        station_id: String,
    },
    /// An audit record, appended at its place in the transaction.
    Audit(Box<AuditEntry>),
}

impl Write {
    async fn apply(&self, tx: &mut Tx, actor: &Actor) -> Result<(), StoreError> {
        match self {
            Write::TakeLease {
                order_no,
                lease_id,
                holder,
                ttl,
            } => {
                let want = LeaseRequest {
                    kind: LeaseKind::Provision,
                    subject: order_no,
                    lease_id,
                    holder,
                    ttl: *ttl,
                };
                let taken = tx.take_lease(&want, &probe).await?;
                if let (LeaseDecision::TakeOver(reason), Some(previous)) =
                    (taken.decision, taken.previous)
                {
                    let entry = AuditEntry::order(
                        "provision.lease_taken_over",
                        order_no,
                        json!({
                            "reason": reason,
                            "previous": previous.holder,
                            "previous_expires_at": crate::clock::format_utc(previous.expires_at),
                        }),
                    );
                    tx.audit(actor, entry).await?;
                }
                Ok(())
            }
            Write::ExpectState { order_no, state } => {
                let actual = tx.order_state(order_no).await?;
                if actual != *state {
                    return Err(StoreError::StateConflict {
                        order_no: order_no.clone(),
                        expected: *state,
                        actual,
                    });
                }
                Ok(())
            }
            Write::StepStarted {
                order_no,
                attempt,
                step,
            } => tx.step_started(order_no, *attempt, step.name()).await,
            Write::StepFinished {
                order_no,
                attempt,
                step,
                status,
                detail,
            } => {
                tx.step_finished(order_no, *attempt, step.name(), status, detail.as_deref())
                    .await
            }
            Write::Transition {
                order_no,
                expected,
                event,
            } => tx.transition(order_no, *expected, *event).await.map(|_| ()),
            Write::InsertBinding(b) => tx.insert_binding(b).await,
            Write::ReleaseBinding { binding_id, reason } => {
                tx.release_binding(binding_id, reason).await
            }
            Write::BindingIdentity {
                binding_id,
                identity,
                serial,
            } => tx.set_binding_identity(binding_id, identity, serial).await,
            Write::BindingSerial { binding_id, serial } => {
                tx.set_binding_serial(binding_id, serial).await
            }
            Write::SealedPin {
                order_no,
                serial,
                sealed,
            } => tx.put_sealed_pin(order_no, serial, sealed).await,
            Write::BindingKey {
                binding_id,
                key_id_hex,
                spki,
            } => tx.set_binding_key(binding_id, key_id_hex, spki).await,
            Write::InsertCertificate(rec) => tx.insert_certificate(rec).await,
            Write::CertificateIssued(rec) => tx.certificate_issued(rec).await,
            Write::CertificateOnToken(serial) => tx.certificate_on_token(serial).await,
            Write::RevokeCertificate {
                serial,
                order_no,
                detail,
                by,
            } => {
                tx.revoke_certificate(serial, order_no, "superseded", detail, by)
                    .await
            }
            Write::Audit(entry) => tx.audit(actor, (**entry).clone()).await.map(|_| ()),
            Write::QueueDelivery { order, station_id } => {
                super::delivery::queue_delivery(tx, actor, order, station_id)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// A job's hold on its order, checked by each of its commits (see [`super::lease`]).
struct Fence<'a> {
    order_no: &'a str,
    lease_id: &'a str,
    /// The job ends with this commit: the lease is released with it.
    release: bool,
}

/// Commits `writes` (audit records among them, in order) in one transaction, retrying it after
/// transient failures. With a `fence` the transaction first renews the job's lease, and fails
/// without writing anything when the lease is no longer the job's.
async fn commit(
    station: &Station,
    actor: &Actor,
    writes: &[Write],
    fence: Option<Fence<'_>>,
) -> Result<(), StoreError> {
    let mut retry = Retry::new();
    loop {
        let r: Result<(), StoreError> = async {
            let mut tx = station.store.begin_write(station.clock.now()).await?;
            if let Some(f) = &fence {
                let kind = LeaseKind::Provision;
                tx.renew_lease(kind, f.order_no, f.lease_id, station.lease_ttl())
                    .await?;
            }
            for w in writes {
                w.apply(&mut tx, actor).await?;
            }
            if let Some(f) = fence.as_ref().filter(|f| f.release) {
                tx.release_lease(LeaseKind::Provision, f.order_no, f.lease_id)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        if retry.again(&r).await {
            continue;
        }
        return r;
    }
}

fn revoked_entry(c: &CertificateRecord, detail: &str) -> AuditEntry {
    AuditEntry {
        action: "certificate.revoked".into(),
        order_no: Some(c.order_no.clone()),
        token_serial: c.token_serial.clone(),
        cert_serial: Some(c.serial.clone()),
        details: json!({"reason": "superseded", "detail": detail, "previous_status": c.status}),
    }
}

trait AtStep<T> {
    fn at(self, step: Step) -> StepResult<T>;
}

impl<T, E: Into<StepError>> AtStep<T> for Result<T, E> {
    fn at(self, step: Step) -> StepResult<T> {
        self.map_err(|e| (step, e.into()))
    }
}

impl Job<'_> {
    fn no(&self) -> &str {
        &self.order.order_no
    }

    /// The job's lease for a commit (`last`: the job ends, the lease is released). A value of
    /// its own, not a method that commits: a job is not `Sync`, so `&self` must not be held
    /// across an await.
    fn fence(&self, last: bool) -> Option<Fence<'_>> {
        Some(Fence {
            order_no: &self.order.order_no,
            lease_id: self.lease.lease_id(),
            release: last,
        })
    }

    async fn run(
        &mut self,
        continue_journal: bool,
        reinit: bool,
        done: &HashSet<String>,
    ) -> StepResult<()> {
        if continue_journal {
            self.load_for_continuation().await?;
        } else {
            self.revoke_unwritten(reinit).await.at(Step::InitToken)?;
        }
        for step in Step::AFTER_CLAIM {
            if continue_journal && done.contains(step.name()) {
                self.progress.step(self.no(), step, Phase::Skipped);
                continue;
            }
            self.begin(step).await.at(step)?;
            match step {
                Step::InitToken => self.init_token().await,
                Step::InitPin => self.init_pin().await,
                Step::GenerateKey => self.generate_key().await,
                Step::IssueCertificate => self.issue_certificate().await,
                Step::WriteCertificate => self.write_certificate().await,
                Step::WriteSeals => self.write_seals().await,
                Step::Finish => self.finish().await,
                Step::Claim => Ok(()),
            }
            .at(step)?;
            self.steps_run.push(step.name().to_string());
            self.progress.step(self.no(), step, Phase::Done);
        }
        Ok(())
    }

    /// Journals `step` as started (and runs its `.started` failpoint).
    async fn begin(&mut self, step: Step) -> Result<(), StepError> {
        let no = self.no().to_string();
        if self.lease.lost() {
            return Err(StoreError::LeaseLost { subject: no }.into());
        }
        let entry = self.entry(
            &format!("provision.{step}.started"),
            json!({"attempt": self.attempt}),
        );
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
        self.progress.step(&no, step, Phase::Started);
        self.failpoint(&format!("provision.{step}.started"))
    }

    /// Commits the journal records waiting in `pending`, then `more`, in one transaction. On
    /// failure they stay pending (the failure record commits them with it).
    async fn flush(&mut self, more: Vec<Write>) -> Result<(), StoreError> {
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
    fn failpoint(&self, name: &str) -> Result<(), StepError> {
        failpoint(name)?;
        failpoint(&format!("{name}@{}", self.order.order_no))?;
        Ok(())
    }

    /// Journals `step` as done, with what `extra` records; committed with the next durable
    /// point (see [`durable_before`]).
    async fn done(
        &mut self,
        step: Step,
        details: serde_json::Value,
        extra: Option<Write>,
    ) -> Result<(), StepError> {
        self.failpoint(&format!("provision.{step}.before_done"))?;
        let finished = Write::StepFinished {
            order_no: self.no().to_string(),
            attempt: self.attempt,
            step,
            status: "done",
            detail: Some(details.to_string()),
        };
        let entry = self.entry(&format!("provision.{step}.done"), details);
        self.pending.extend(extra);
        self.pending
            .extend([finished, Write::Audit(Box::new(entry))]);
        Ok(())
    }

    fn entry(&self, action: &str, details: serde_json::Value) -> AuditEntry {
        AuditEntry {
            action: action.to_string(),
            order_no: Some(self.order.order_no.clone()),
            token_serial: self.binding.token_serial.clone(),
            cert_serial: self.cert.as_ref().map(|c| c.serial.clone()),
            details,
        }
    }

    async fn record_failure(&mut self, step: Step, err: &ProvisionError) {
        let no = self.no().to_string();
        let message = err.to_string();
        // The previous step's records first: that step did finish.
        let mut writes = std::mem::take(&mut self.pending);
        writes.extend([
            Write::StepFinished {
                order_no: no.clone(),
                attempt: self.attempt,
                step,
                status: "failed",
                detail: Some(message.clone()),
            },
            Write::Transition {
                order_no: no.clone(),
                expected: Some(OrderState::Provisioning),
                event: OrderEvent::Fail,
            },
        ]);
        let entry = self.entry(
            "provision.failed",
            json!({"step": step.name(), "error": message, "attempt": self.attempt,
                   "token_removed": err.token_removed()}),
        );
        writes.push(Write::Audit(Box::new(entry)));
        self.lease.stop_renewing();
        let result = commit(self.station, &self.actor, &writes, self.fence(true)).await;
        if let Err(e) = result {
            // The order stays Provisioning with the step "started": a re-run resumes it anyway.
            tracing::error!(order = %no, error = %e, "could not record the provisioning failure");
        }
    }

    fn vault(&mut self) -> Result<&Vault, StepError> {
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

    fn so_pin(&mut self) -> Result<&SoPin, StepError> {
        if self.so_pin.is_none() {
            let identity = self.binding.so_identity.clone();
            let so = blocking(|| {
                self.vault()?
                    .derive_so_pin(&identity)
                    .map_err(StepError::from)
            })?;
            self.so_pin = Some(so);
        }
        self.so_pin
            .as_ref()
            .ok_or_else(|| StepError::Inconsistent("SO PIN missing".into()))
    }

    /// The bound token, found by serial (or by label after a crash inside `C_InitToken`).
    fn bound_token(&mut self) -> Result<&mut Token, StepError> {
        if self.token.is_none() {
            let selectors = match &self.binding.token_serial {
                Some(s) => vec![TokenSelector::Serial(s.clone())],
                None => vec![TokenSelector::Label(self.order.order_no.clone())],
            };
            let t = blocking(|| self.hsm.module().find(&selectors))?;
            self.token = Some(t);
        }
        self.token
            .as_mut()
            .ok_or_else(|| StepError::Inconsistent("token missing".into()))
    }

    fn token_serial(&self) -> Result<String, StepError> {
        self.binding
            .token_serial
            .clone()
            .ok_or_else(|| StepError::Inconsistent("the binding has no token serial".into()))
    }

    /// The job's user session on the order's token (logged in once, checked before each use).
    fn user_session(&mut self) -> Result<&TokenSession, StepError> {
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

    fn user_pin(&mut self) -> Result<&Pin, StepError> {
        if self.pin.is_none() {
            return Err(StepError::Inconsistent("user PIN not available".into()));
        }
        self.pin
            .as_ref()
            .ok_or_else(|| StepError::Inconsistent("user PIN missing".into()))
    }

    /// Revokes certificates of this order that are reserved or issued but not on a token
    /// (`including_on_token`: also the one on the token, when the token is being started over).
    async fn revoke_unwritten(&mut self, including_on_token: bool) -> Result<(), StepError> {
        let certs = self.station.store.certificates_of_order(self.no()).await?;
        for c in certs {
            let revoke = match c.status.as_str() {
                "reserved" | "issued" => true,
                "on_token" => including_on_token,
                _ => false,
            };
            if !revoke {
                continue;
            }
            let no = self.no().to_string();
            let detail = if c.status == "on_token" {
                "the token was started over (--reinit)"
            } else {
                "issued (or reserved) but never written to its token; superseded by a new attempt"
            };
            let revoke = Write::RevokeCertificate {
                serial: c.serial.clone(),
                order_no: no.clone(),
                detail: detail.to_string(),
                by: self.actor.name.clone(),
            };
            let entry = Write::Audit(Box::new(revoked_entry(&c, detail)));
            commit(
                self.station,
                &self.actor,
                &[revoke, entry],
                self.fence(false),
            )
            .await?;
            self.revoked.push(c.serial);
        }
        Ok(())
    }

    async fn load_for_continuation(&mut self) -> StepResult<()> {
        let step = Step::WriteSeals;
        let serial = self.token_serial().at(step)?;
        let (sealed_serial, sealed) = self
            .station
            .store
            .sealed_pin(self.no())
            .await
            .at(step)?
            .ok_or_else(|| StepError::Inconsistent("no sealed PIN for a provisioned token".into()))
            .at(step)?;
        if sealed_serial != serial {
            return Err((
                step,
                StepError::Inconsistent("the sealed PIN belongs to another token".into()),
            ));
        }
        let aad = pin_aad(self.no(), &serial);
        let pin = blocking(|| {
            self.vault()?
                .unseal_pin(&crate::token::SealedPin(sealed), &aad)
                .map_err(StepError::from)
        })
        .at(step)?;
        self.pin = Some(pin);
        self.cert = self
            .station
            .store
            .certificates_of_order(self.no())
            .await
            .at(step)?
            .into_iter()
            .find(|c| c.status == "on_token");
        let alg = self.station.config.product.key_algorithm;
        let key_id = self
            .binding
            .key_id
            .clone()
            .ok_or_else(|| StepError::Inconsistent("the binding has no key id".into()))
            .at(step)?;
        let id = hex::decode(&key_id)
            .map_err(|_| StepError::Inconsistent("stored key id is not hex".into()))
            .at(step)?;
        let key = blocking(|| -> Result<KeyPairInfo, StepError> {
            Ok(self.user_session()?.public_key(&id, alg)?)
        })
        .at(step)?;
        self.key = Some(key);
        Ok(())
    }

    async fn init_token(&mut self) -> Result<(), StepError> {
        let _guard = blank_token_lock().lock().await;
        // Choose the token: the bound one, else the requested one, else the first blank.
        let token = match (&self.binding.token_serial, &self.token) {
            (Some(_), _) => self.bound_token()?.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => {
                // Only an earlier attempt can have left our label on a token (a crash inside
                // C_InitToken); the first attempt need not read every token's label.
                let mine = if self.attempt > 1 {
                    blocking(|| {
                        self.hsm
                            .module()
                            .find(&[TokenSelector::Label(self.order.order_no.clone())])
                    })
                } else {
                    Err(TokenError::NotFound(self.order.order_no.clone()))
                };
                match mine {
                    // A crash inside C_InitToken left our label on a token: it is ours.
                    Ok(t) => t,
                    Err(TokenError::NotFound(_)) => blocking(|| self.hsm.module().first_blank())?
                        .ok_or_else(|| {
                        StepError::Token(TokenError::NotFound(
                            "a blank token (insert a blank USB key)".into(),
                        ))
                    })?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        self.station
            .check_token_usable(&token, self.no(), Some(&self.binding))
            .await
            .map_err(|e| StepError::Inconsistent(e.to_string()))?;
        // A blank token with a factory serial: the SO PIN derives from that serial. Recorded
        // BEFORE the token is touched, so a crash inside C_InitToken can still re-derive it.
        if self.binding.token_serial.is_none()
            && !token.info().serial.is_empty()
            && token.info().is_blank()
        {
            let serial = token.info().serial.clone();
            let identity = format!("serial:{serial}");
            let write = Write::BindingIdentity {
                binding_id: self.binding.binding_id.clone(),
                identity: identity.clone(),
                serial: serial.clone(),
            };
            self.flush(vec![write]).await?;
            self.binding.so_identity = identity;
            self.binding.token_serial = Some(serial);
            self.so_pin = None;
        }
        self.token = Some(token);
        self.so_pin()?;
        self.failpoint("provision.init_token.before_init")?;
        let label = self.order.order_no.clone();
        let so = self
            .so_pin
            .take()
            .ok_or_else(|| StepError::Inconsistent("SO PIN missing".into()))?;
        let result = blocking(|| -> Result<String, StepError> {
            let t = self.bound_token()?;
            t.init_token(&so, &label)?;
            Ok(t.info().serial.clone())
        });
        self.so_pin = Some(so);
        let serial = result?;
        let binding_id = self.binding.binding_id.clone();
        self.binding.token_serial = Some(serial.clone());
        self.done(
            Step::InitToken,
            json!({"token_serial": serial, "label": label, "so_identity": self.binding.so_identity}),
            Some(Write::BindingSerial { binding_id, serial }),
        )
        .await
    }

    async fn init_pin(&mut self) -> Result<(), StepError> {
        let serial = self.token_serial()?;
        let policy = self.station.config.pin;
        let pin = Pin::generate(&policy, &mut OsRng.unwrap_err());
        self.so_pin()?;
        let so = self
            .so_pin
            .take()
            .ok_or_else(|| StepError::Inconsistent("SO PIN missing".into()))?;
        let r = blocking(|| -> Result<(), StepError> {
            let t = self.bound_token()?;
            let s = t.login_so(&so)?;
            s.init_user_pin(&pin)?;
            Ok(())
        });
        self.so_pin = Some(so);
        r?;
        let aad = pin_aad(self.no(), &serial);
        let sealed = blocking(|| self.vault()?.seal_pin(&pin, &aad).map_err(StepError::from))?;
        self.pin = Some(pin);
        let no = self.no().to_string();
        self.done(
            Step::InitPin,
            json!({"pin_length": policy.length, "alphabet": policy.alphabet, "sealed_bytes": sealed.0.len()}),
            Some(Write::SealedPin { order_no: no, serial, sealed: sealed.0 }),
        )
        .await
    }

    async fn generate_key(&mut self) -> Result<(), StepError> {
        let alg = self.station.config.product.key_algorithm;
        let id = random_bytes::<16>()?.to_vec();
        let label = self.order.order_no.clone();
        let key = blocking(|| -> Result<KeyPairInfo, StepError> {
            Ok(self.user_session()?.generate_key_pair(alg, &id, &label)?)
        })?;
        let binding_id = self.binding.binding_id.clone();
        let id_hex = hex::encode(&key.id);
        let spki = key.spki_der.clone();
        self.binding.key_id = Some(id_hex.clone());
        self.binding.public_key = Some(spki.clone());
        self.key = Some(key);
        self.done(
            Step::GenerateKey,
            json!({"algorithm": alg.as_str(), "key_id": id_hex, "extractable": false, "sensitive": true}),
            Some(Write::BindingKey { binding_id, key_id_hex: id_hex, spki }),
        )
        .await
    }

    async fn issue_certificate(&mut self) -> Result<(), StepError> {
        let serial_bytes = serial_from_random(random_bytes::<16>()?);
        let serial_hex = hex::encode(serial_bytes);
        let token_serial = self.token_serial()?;
        // Reserve the serial before the CA signs anything with it.
        let reserved = CertificateRecord {
            serial: serial_hex.clone(),
            order_no: self.no().to_string(),
            binding_id: self.binding.binding_id.clone(),
            token_serial: Some(token_serial),
            der: Vec::new(),
            fingerprint_sha256: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            status: "reserved".into(),
            issued_at: crate::clock::format_utc(self.station.clock.now()),
        };
        let entry = AuditEntry {
            cert_serial: Some(serial_hex.clone()),
            ..self.entry("certificate.serial_reserved", json!({}))
        };
        let write = Write::InsertCertificate(Box::new(reserved.clone()));
        self.flush(vec![write, Write::Audit(Box::new(entry))])
            .await?;
        let key = self
            .key
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no key pair".into()))?;
        let company = self.order.company.name.clone();
        let csr_der = blocking(|| -> Result<Vec<u8>, StepError> {
            self.user_session()?;
            let s = self
                .session
                .take()
                .ok_or_else(|| StepError::Inconsistent("token session missing".into()))?;
            let signer = TokenSigner::new(s, key.clone())?;
            let mut params = rcgen::CertificateParams::default();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, company.as_str());
            let csr = params.serialize_request(&signer);
            self.session = Some(signer.into_session());
            let csr = csr.map_err(|e| StepError::Inconsistent(format!("CSR on the token: {e}")))?;
            Ok(csr.der().to_vec())
        })?;
        let csr = verify_csr(&csr_der)?;
        if csr.spki_der != key.spki_der {
            return Err(StepError::Inconsistent(
                "the CSR's public key is not the token key's".into(),
            ));
        }
        let now = self.station.clock.now();
        let crl_url = self.station.config.ca.crl_url.clone();
        let order = self.order.clone();
        let cert_der = blocking(|| -> Result<Vec<u8>, StepError> {
            let ca = self.hsm.ca_signer()?;
            Ok(issue_unit_certificate(
                &order,
                &csr.spki_der,
                self.hsm.ca_cert_der(),
                &*ca,
                &serial_bytes,
                now,
                &crl_url,
            )?)
        })?;
        let summary = cert_summary(&cert_der)?;
        let mut rec = reserved;
        rec.der = cert_der;
        rec.fingerprint_sha256 = summary.sha256_fingerprint.clone();
        rec.not_before = crate::clock::format_utc(summary.not_before);
        rec.not_after = crate::clock::format_utc(summary.not_after);
        rec.status = "issued".into();
        self.cert = Some(rec.clone());
        self.done(
            Step::IssueCertificate,
            json!({"serial": rec.serial, "fingerprint_sha256": rec.fingerprint_sha256,
                   "not_before": rec.not_before, "not_after": rec.not_after, "subject": summary.subject}),
            Some(Write::CertificateIssued(Box::new(rec))),
        )
        .await
    }

    async fn write_certificate(&mut self) -> Result<(), StepError> {
        let cert = self
            .cert
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no certificate".into()))?;
        let key = self
            .key
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no key pair".into()))?;
        let label = self.order.order_no.clone();
        blocking(|| -> Result<(), StepError> {
            self.user_session()?
                .write_certificate(&key.id, &label, &cert.der)?;
            Ok(())
        })?;
        let serial = cert.serial.clone();
        if let Some(c) = self.cert.as_mut() {
            c.status = "on_token".into();
        }
        self.done(
            Step::WriteCertificate,
            json!({"serial": serial, "key_id": hex::encode(&key.id)}),
            Some(Write::CertificateOnToken(serial)),
        )
        .await
    }

    async fn write_seals(&mut self) -> Result<(), StepError> {
        let seals = match self.order.seals_on_key() {
            [] => Vec::new(),
            _ => {
                let cert = self
                    .cert
                    .clone()
                    .ok_or_else(|| StepError::Inconsistent("no certificate".into()))?;
                super::seals::build_order_seals(self.station, self.hsm, &self.order, &cert.der)
                    .await?
            }
        };
        let (labels, removed) = blocking(|| -> Result<(Vec<String>, usize), StepError> {
            let s = self.user_session()?;
            // Seals are the only data objects on a customer's token: whatever is there is a
            // previous attempt's (a crash inside this step) and is replaced, never duplicated.
            let removed = s.destroy_all(crate::token::objects::ObjectClassName::Data)?;
            let mut labels = Vec::new();
            for seal in &seals {
                let label = seal.label();
                s.write_data(crate::seal::SEAL_APPLICATION, &label, &seal.der, true)?;
                labels.push(label);
            }
            Ok((labels, removed))
        })?;
        self.seals = labels.clone();
        self.done(
            Step::WriteSeals,
            json!({"seals": labels, "replaced_data_objects": removed}),
            None,
        )
        .await
    }

    async fn finish(&mut self) -> Result<(), StepError> {
        let no = self.no().to_string();
        self.failpoint("provision.finish.before_done")?;
        // The last commit releases the lease: no renewal may come after it.
        self.lease.stop_renewing();
        let provisioned = self.entry(
            "order.provisioned",
            json!({"key_id": self.binding.key_id, "seals": self.seals, "attempt": self.attempt}),
        );
        let mut writes = std::mem::take(&mut self.pending);
        writes.extend([
            Write::StepFinished {
                order_no: no.clone(),
                attempt: self.attempt,
                step: Step::Finish,
                status: "done",
                detail: None,
            },
            Write::Transition {
                order_no: no.clone(),
                expected: Some(OrderState::Provisioning),
                event: OrderEvent::CompleteProvisioning,
            },
            Write::Audit(Box::new(provisioned)),
        ]);
        // Outbox: with `delivery.trigger = "on_provisioned"` the PIN delivery is queued in the
        // same transaction that makes the order Provisioned.
        if self.station.config.delivery.trigger == crate::config::DeliveryTrigger::OnProvisioned {
            writes.push(Write::QueueDelivery {
                order: Box::new(self.order.clone()),
                station_id: self.binding.station_id.clone(),
            });
        }
        commit(self.station, &self.actor, &writes, self.fence(true)).await?;
        Ok(())
    }

    fn report(&self) -> Result<ProvisionReport, ProvisionError> {
        let cert = self.cert.clone().unwrap_or(CertificateRecord {
            serial: String::new(),
            order_no: String::new(),
            binding_id: String::new(),
            token_serial: None,
            der: vec![],
            fingerprint_sha256: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            status: String::new(),
            issued_at: String::new(),
        });
        Ok(ProvisionReport {
            order_no: self.order.order_no.clone(),
            token_serial: self.binding.token_serial.clone().unwrap_or_default(),
            token_label: self.binding.token_label.clone(),
            key_algorithm: self.binding.key_algorithm.clone(),
            key_id: self.binding.key_id.clone().unwrap_or_default(),
            certificate_serial: cert.serial,
            certificate_fingerprint: cert.fingerprint_sha256,
            not_after: cert.not_after,
            seals: self.seals.clone(),
            steps_run: self.steps_run.clone(),
            attempt: self.attempt,
            revoked: self.revoked.clone(),
        })
    }
}
