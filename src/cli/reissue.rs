//! `keystation order reissue ORDER`: the replacement order (补办) for a key reported lost or
//! broken, or retired.

use super::{CliError, order_no_arg, output};
use crate::station::Station;
use clap::Args;

/// `keystation order reissue ...`
#[derive(Debug, Args)]
pub struct ReissueArgs {
    /// The order whose key is gone.
    pub order_no: String,
    /// Operator making the reissue order.
    #[arg(long)]
    pub operator: String,
}

pub(super) async fn run(station: &Station, args: ReissueArgs, json: bool) -> Result<(), CliError> {
    let report = station
        .reissue_order(&order_no_arg(&args.order_no)?, &args.operator)
        .await?;
    if json {
        return output::json(&report);
    }
    println!(
        "{} Submitted: reissue of {} (its key {}), {} attachment(s) carried over; review it \
         with `keystation order approve {}`, then provision it onto a new key",
        report.order_no, report.reissue_of, report.disposition, report.attachments, report.order_no
    );
    Ok(())
}
