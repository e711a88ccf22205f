//! `keystation ca ocsp-signer [--json]`: a new delegated OCSP signer for the installation.

use super::{CliError, output};
use crate::station::Station;

pub(super) async fn signer(station: &Station, json: bool) -> Result<(), CliError> {
    let report = station.renew_ocsp_signer().await?;
    if json {
        return output::json(&report);
    }
    println!("OCSP signer {} ({})", report.serial, report.subject);
    println!("  valid     {} to {}", report.not_before, report.not_after);
    println!("  sha256    {}", report.fingerprint);
    println!("  written   {}", report.certificate_file);
    if let Some(old) = &report.replaces {
        println!("  replaces  {old} (a running `keystation serve` switches within seconds)");
    }
    Ok(())
}
