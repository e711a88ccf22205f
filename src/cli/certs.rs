//! `keystation cert ...` handlers.

use super::CliError;
use super::opts::CertCmd;
use crate::station::Station;

pub(super) async fn run(station: &Station, cmd: CertCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        CertCmd::Revoke {
            serial,
            revocation: a,
        } => {
            let serial = super::cert_serial_arg(&serial)?;
            let r = station
                .request_certificate_revoke(&serial, &a.reason, a.detail.as_deref(), &a.operator)
                .await?;
            super::at_approval::requested(&r, json)
        }
    }
}
