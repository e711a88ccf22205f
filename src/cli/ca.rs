//! `keystation ca ...` handlers: the issuing CA's own work (its CRLs; its OCSP signer in
//! [`super::ocsp`]), and what the revocation
//! commands print about the CRL that follows a revocation.

use super::error::io_error;
use super::opts::{ApproveArgs, CaCmd};
use super::{CliError, output};
use crate::domain::station_request::{ChangeFamily, StationChange};
use crate::station::Station;
use crate::station::crl::{CrlOutcome, CrlReport};
use crate::station::error_code as ec;
use crate::station::hsm::pem_text;

pub(super) async fn run(station: &Station, cmd: CaCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        CaCmd::Crl { out } => {
            let hsm = station.open_hsm().await?;
            let report = station.issue_crl(&hsm, station.now()).await?;
            if let Some(out) = &out {
                // PEM: what `openssl crl -in` and `openssl verify -CRLfile` read as they are.
                std::fs::write(out, pem_text("X509 CRL", &report.der))
                    .map_err(|e| io_error(format!("writing {}", out.display()), e))?;
            }
            if json {
                return output::json(&report);
            }
            print_crl(&report);
            if let Some(out) = &out {
                println!("copy (PEM)   {}", out.display());
            }
            Ok(())
        }
        CaCmd::OcspSigner => {
            let asked = station.ask_change(StationChange::OcspSigner, None).await?;
            super::station_requests::asked(&asked, json, super::ocsp::print_signer)
        }
        CaCmd::Approve(ApproveArgs { id, note }) => {
            super::station_requests::approve(
                station,
                ChangeFamily::Ca,
                (&id, note.as_deref()),
                None,
                json,
                super::ocsp::print_signer,
            )
            .await
        }
        CaCmd::Decide(cmd) => {
            super::station_requests::decide(station, ChangeFamily::Ca, cmd, json).await
        }
    }
}

fn print_crl(r: &CrlReport) {
    println!(
        "CRL          number {} ({} revoked certificates)",
        r.number, r.entries
    );
    println!("valid        {} to {}", r.this_update, r.next_update);
    println!("published    {} (served as {})", r.path.display(), r.url);
}

/// What a revocation command says about the CRL that followed its revocation.
pub(super) fn after_revocation(crl: Option<&CrlOutcome>, json: bool) -> Result<(), CliError> {
    after_change(crl, "the revocation is recorded and stands", json)
}

/// What a command says about the CRL that followed its change (`done`: that change, which
/// stands whatever became of the CRL): nothing more than its number when it was issued and
/// published, and a failure (exit 1, after the command's own report) when it could not be
/// issued.
pub(super) fn after_change(
    crl: Option<&CrlOutcome>,
    done: &str,
    json: bool,
) -> Result<(), CliError> {
    match crl {
        None => Ok(()),
        Some(CrlOutcome::Issued(r)) => {
            if !json {
                println!(
                    "CRL          number {} published at {}",
                    r.number,
                    r.path.display()
                );
            }
            Ok(())
        }
        Some(CrlOutcome::Failed { error }) => Err(CliError::verdict(
            ec::CRL_NOT_ISSUED,
            format!(
                "{done}, but no CRL was issued: {error}; run `keystation ca crl` to issue and \
                 publish it"
            ),
        )),
    }
}
