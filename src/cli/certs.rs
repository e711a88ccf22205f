//! `keystation cert ...` handlers.

use super::opts::CertCmd;
use super::{CliError, output};
use crate::station::Station;

pub(super) async fn run(station: &Station, cmd: CertCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        CertCmd::Revoke {
            serial,
            reason,
            detail,
            operator,
        } => {
            let serial = super::cert_serial_arg(&serial)?;
            let report = station
                .revoke_certificate(&serial, &reason, detail.as_deref(), &operator)
                .await?;
            if json {
                output::json(&report)?;
                return super::ca::after_revocation(Some(&report.crl), json);
            }
            println!(
                "certificate  {} revoked ({}; was {})",
                report.serial, report.reason, report.previous_status
            );
            println!(
                "order        {} (token {})",
                report.order_no,
                report.token_serial.as_deref().unwrap_or("-")
            );
            match report.still_live.as_slice() {
                [] => println!("still live   none"),
                live => println!(
                    "still live   {}",
                    live.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            super::ca::after_revocation(Some(&report.crl), json)
        }
    }
}
