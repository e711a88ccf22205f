//! `keystation order reissue ORDER`: a request for the replacement order (补办) of a key
//! reported lost or broken, or retired; a second operator's `reissue approve ID` makes it.

use super::{CliError, order_no_arg, output};
use crate::station::Station;
use crate::station::service_desk::reissue::ReissueReport;
use clap::Args;

/// `keystation order reissue ...`
#[derive(Debug, Args)]
pub struct ReissueArgs {
    /// The order whose key is gone.
    pub order_no: String,
    /// Operator requesting the reissue order.
    #[arg(long)]
    pub operator: String,
}

pub(super) async fn run(station: &Station, args: ReissueArgs, json: bool) -> Result<(), CliError> {
    let r = station
        .request_reissue(&order_no_arg(&args.order_no)?, &args.operator)
        .await?;
    super::at_approval::requested(&r, json)
}

/// What an approved reissue made.
pub(super) fn made(report: &ReissueReport, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(report);
    }
    println!(
        "{} Submitted: reissue of {} (its key {}), {} attachment(s) carried over; requested by \
         {}, approved by {}; review it with `keystation order approve {}`, then provision it \
         onto a new key",
        report.order_no,
        report.reissue_of,
        report.disposition,
        report.attachments,
        report.four_eyes.requested_by,
        report.four_eyes.approved_by,
        report.order_no
    );
    Ok(())
}
