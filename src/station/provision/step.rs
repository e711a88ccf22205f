//! The steps of a provisioning job, where each one is, and how that is reported as it happens.

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
    /// SM2 dual certificate only: the encryption key pair made, escrowed, enveloped onto the
    /// token, its certificate issued and written (skipped, unjournaled, for other orders).
    DualCertificate,
    /// Certificate onto the token.
    WriteCertificate,
    /// Seals onto the token.
    WriteSeals,
    /// Provisioned.
    Finish,
}

impl Step {
    /// Every step after the claim, in order.
    pub const AFTER_CLAIM: [Step; 8] = [
        Step::InitToken,
        Step::InitPin,
        Step::GenerateKey,
        Step::IssueCertificate,
        Step::DualCertificate,
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
            Step::DualCertificate => "dual_certificate",
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
