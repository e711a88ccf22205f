//! What `keystation ca ocsp-signer` / `ca approve ID` print about a new delegated OCSP signer.

use crate::station::four_eyes::Carried;

/// Prints the signer a carried-out `ca ocsp-signer` request made.
pub(super) fn print_signer(carried: &Carried) {
    let Carried::OcspSigner(report) = carried else {
        println!("{carried:?}");
        return;
    };
    println!("OCSP signer {} ({})", report.serial, report.subject);
    println!("  valid     {} to {}", report.not_before, report.not_after);
    println!("  sha256    {}", report.fingerprint);
    println!("  written   {}", report.certificate_file);
    if let Some(old) = &report.replaces {
        println!("  replaces  {old} (a running `keystation serve` switches within seconds)");
    }
}
