//! `keystation provision` handler.

use super::opts::ProvisionArgs;
use super::{CliError, output};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::station::provision::{Phase, Progress, ProvisionError, ProvisionRequest, Step};

/// One line per step on stderr (stdout stays for the result).
struct StepLines;

impl Progress for StepLines {
    fn step(&self, order_no: &str, step: Step, phase: Phase) {
        let what = match phase {
            Phase::Started => "...",
            Phase::Done => "done",
            Phase::Skipped => "already done",
            Phase::Failed => "FAILED",
        };
        eprintln!("[{order_no}] {step:<18} {what}");
    }
}

pub(super) fn hsm_of(station: &Station) -> Result<Hsm, CliError> {
    tokio::task::block_in_place(|| Hsm::open(station.config.clone()))
        .map_err(|e| CliError::Failure(e.into()))
}

pub(super) async fn run(
    station: &Station,
    args: &ProvisionArgs,
    json: bool,
) -> Result<(), CliError> {
    let hsm = hsm_of(station)?;
    let req = ProvisionRequest {
        order_no: args.order_no.clone(),
        token: args.token.clone(),
        reinit: args.reinit,
    };
    let report = station
        .provision(&hsm, &req, &StepLines)
        .await
        .map_err(|e| match e {
            ProvisionError::NotFound(_)
            | ProvisionError::State { .. }
            | ProvisionError::TokenRefused { .. }
            | ProvisionError::ClaimedElsewhere { .. }
            | ProvisionError::NoBlankToken(_) => CliError::Usage(e.to_string()),
            other => CliError::Failure(other.into()),
        })?;
    if json {
        return output::json(&report);
    }
    println!("order        {}", report.order_no);
    println!(
        "token        serial {} (label {})",
        report.token_serial, report.token_label
    );
    println!(
        "key          {} CKA_ID {}",
        report.key_algorithm, report.key_id
    );
    println!(
        "certificate  serial {} valid to {}",
        report.certificate_serial, report.not_after
    );
    println!("             sha256 {}", report.certificate_fingerprint);
    if !report.seals.is_empty() {
        println!("seals        {}", report.seals.join(", "));
    }
    for r in &report.revoked {
        println!("revoked      {r} (issued in an interrupted attempt, never on a token)");
    }
    Ok(())
}
