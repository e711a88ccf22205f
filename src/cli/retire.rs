//! `keystation retire ...`: the service desk's retirement of a returned key (退锁), four-eyes
//! like a PIN reset: requested by one operator, approved by a second, run at the desk.

use super::opts::DecideCmd;
use super::service_desk::{decide, print_request};
use super::{CliError, order_no_arg, output};
use crate::station::Station;
use clap::Subcommand;

/// `keystation retire ...`
#[derive(Debug, Subcommand)]
pub enum RetireCmd {
    /// Ask for a returned key to be retired (its order's key made and still bound to it).
    Request {
        /// Order number.
        order_no: String,
        /// Why (e.g. "company closed its account", "key returned").
        #[arg(long)]
        reason: String,
        /// What the desk checked, e.g. "营业执照原件 + 经办人身份证 + 退回的 USB key".
        #[arg(long)]
        evidence: String,
        /// Operator making the request.
        #[arg(long, value_name = "NAME")]
        operator: String,
    },
    /// approve, reject, cancel: a second operator's word on the request.
    #[command(flatten)]
    Decide(DecideCmd),
    /// Carry out an approved request with the key plugged in (resumes a stopped run): live
    /// certificates revoked (cessationOfOperation), the key wiped (`C_InitToken`), the binding
    /// closed. The key is then a blank key (`keystation provision ORDER --token SERIAL`).
    Run {
        /// Request id.
        id: String,
        /// Operator at the desk.
        #[arg(long, value_name = "NAME")]
        operator: String,
    },
    /// Show one request with its execution journal.
    Show {
        /// Request id.
        id: String,
    },
}

pub(super) async fn run(station: &Station, cmd: RetireCmd, json: bool) -> Result<(), CliError> {
    let r = match cmd {
        RetireCmd::Request {
            order_no,
            reason,
            evidence,
            operator,
        } => {
            let no = order_no_arg(&order_no)?;
            station
                .request_retire(&no, &operator, &reason, &evidence)
                .await?
        }
        RetireCmd::Decide(cmd) => decide(station, cmd).await?,
        RetireCmd::Run { id, operator } => {
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
            for s in &detail.steps {
                println!("step      {} {} (runs {})", s.step, s.status, s.runs);
            }
            return Ok(());
        }
    };
    if json {
        return output::json(&r);
    }
    print_request(&r);
    Ok(())
}
