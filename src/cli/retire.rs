//! `keystation retire ...`: the service desk's retirement of a returned key (退锁), four-eyes
//! like a PIN reset: requested by one operator, approved by a second, run at the desk.

use super::opts::{DecideCmd, DeskRequestArgs, RunArgs};
use super::service_desk::{decide, print_record, print_request, print_steps};
use super::{CliError, order_no_arg, output};
use crate::station::Station;
use crate::station::service_desk::DeskAsk;
use clap::Subcommand;

/// `keystation retire ...`
#[derive(Debug, Subcommand)]
pub enum RetireCmd {
    /// Ask for a returned key to be retired (its order's key made and still bound to it), e.g.
    /// `--reason "key returned" --evidence "营业执照原件 + 经办人身份证 + 退回的 USB key"`.
    Request(DeskRequestArgs),
    /// approve, reject, cancel: a second operator's word on the request.
    #[command(flatten)]
    Decide(DecideCmd),
    /// Carry out an approved request with the key plugged in (resumes a stopped run): live
    /// certificates revoked (cessationOfOperation), the key wiped (`C_InitToken`), the binding
    /// closed. The key is then a blank key (`keystation provision ORDER --token SERIAL`).
    Run(RunArgs),
    /// Show one request with its execution journal.
    Show {
        /// Request id.
        id: String,
    },
}

pub(super) async fn run(station: &Station, cmd: RetireCmd, json: bool) -> Result<(), CliError> {
    let r = match cmd {
        RetireCmd::Request(a) => {
            let no = order_no_arg(&a.order_no)?;
            station
                .request_desk(DeskAsk::Retire, &no, &a.asked())
                .await?
        }
        RetireCmd::Decide(cmd) => decide(station, cmd).await?,
        RetireCmd::Run(RunArgs { id, operator }) => {
            let hsm = station.open_hsm().await?;
            let report = station.run_retire(&hsm, &id, &operator).await?;
            if json {
                return output::json(&report);
            }
            println!(
                "{} done: order {} key {} wiped and labelled {}, binding {} closed{}",
                report.request_id,
                report.order_no,
                report.token_serial,
                report.label,
                report.binding_closed,
                if report.resumed { " (resumed)" } else { "" }
            );
            for c in &report.certificates_revoked {
                println!("certificate  {c} revoked (cessationOfOperation)");
            }
            println!(
                "the key is blank for a new order: `keystation provision ORDER --token {}`",
                report.token_serial
            );
            return Ok(());
        }
        RetireCmd::Show { id } => {
            let detail = station.service_request(&id).await?;
            if json {
                return output::json(&detail);
            }
            print_request(&detail.request);
            print_steps(&detail.steps);
            return Ok(());
        }
    };
    print_record(&r, json)
}
