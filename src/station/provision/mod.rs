//! Provisioning one approved order onto one token.
//!
//! Steps, each journaled in the database before (`started`) and after (`done`/`failed`) it runs,
//! with an audit record each time (grouped into five transactions per order, committed where a
//! crash must not lose what came before: see [`journal::durable_before`]):
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

//! Rooms, in the order of the pipeline:
//! - [`claim`]: what is checked before the order is touched, the token chosen, and the claim
//!   transaction (lease, order state, binding, journal);
//! - [`job`]: one run's state, and the journal bookkeeping around every step;
//! - [`steps`]: what a new or continued attempt does first, then the seven steps after the claim;
//! - [`journal`]: the job's database writes, their group commit under the order's lease, and
//!   the pure decisions on what a new run continues, redoes or revokes;
//! - [`error`] and [`report`]: why a run stopped, and what was asked and done.

mod claim;
mod error;
mod job;
mod journal;
mod report;
mod steps;

pub use error::{ProvisionError, StepError};
pub use report::{ProvisionReport, ProvisionRequest};

use super::Station;
use super::hsm::Hsm;
use job::Job;
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

impl Station {
    /// Provisions (or resumes) one order. See the module docs.
    pub async fn provision(
        &self,
        hsm: &Hsm,
        req: &ProvisionRequest,
        progress: &dyn Progress,
    ) -> Result<ProvisionReport, ProvisionError> {
        let claimed = self.claim(hsm, req).await?;
        progress.step(&req.order_no, Step::Claim, Phase::Done);
        let mut job = Job::new(self, hsm, progress, claimed);
        match job.run().await {
            Ok(()) => Ok(job.report()),
            Err((step, source)) => {
                progress.step(&req.order_no, step, Phase::Failed);
                let err = ProvisionError::Step {
                    order_no: req.order_no.clone(),
                    step,
                    source,
                };
                job.record_failure(step, &err).await;
                Err(err)
            }
        }
    }
}
