//! `keystation unlock ...` handlers: remote unlock with an unlock authorisation code.

use super::opts::RunArgs;
use super::service_desk::{
    decide, list_requests, print_last_error, print_record, print_request, print_steps,
};
use super::unlock_opts::UnlockCmd;
use super::{CliError, order_no_arg, output};
use crate::domain::RequestKind;
use crate::station::Station;
use crate::station::service_desk::DeskAsk;
use crate::station::service_desk::unlock::RunOptions;

pub(super) async fn unlock(station: &Station, cmd: UnlockCmd, json: bool) -> Result<(), CliError> {
    let r = match cmd {
        UnlockCmd::Request { desk: a, code } => {
            let no = order_no_arg(&a.order_no)?;
            station
                .request_desk(DeskAsk::Unlock { code: &code }, &no, &a.asked())
                .await?
        }
        UnlockCmd::Decide(cmd) => decide(station, cmd).await?,
        UnlockCmd::Run {
            run: RunArgs { id, operator },
            resend,
            valid_hours,
        } => {
            let hsm = station.open_hsm().await?;
            let options = RunOptions {
                resend,
                valid_hours,
            };
            let report = station.run_unlock(&hsm, &id, &operator, options).await?;
            if json {
                return output::json(&report);
            }
            println!(
                "{} done: the unlock code for key {} (order {}) went to {}{}",
                report.request_id,
                report.token_serial,
                report.order_no,
                report.destination_masked,
                if report.resumed { " (resumed)" } else { "" }
            );
            println!(
                "valid until {}; once the customer's tool reports success: `keystation unlock \
                 confirm {} --operator NAME`",
                report.expires_at, report.request_id
            );
            return Ok(());
        }
        UnlockCmd::Confirm { id, operator, note } => {
            let c = station
                .confirm_unlock(&id, &operator, note.as_deref())
                .await?;
            if json {
                return output::json(&c);
            }
            println!(
                "{id} confirmed: key {} has SO PIN generation {}",
                c.token_serial, c.generation
            );
            return Ok(());
        }
        UnlockCmd::List(args) => {
            let kind = Some(RequestKind::Unlock);
            return list_requests(station, kind, |_| true, args, json).await;
        }
        UnlockCmd::Show { id } => {
            let d = station.unlock_detail(&id).await?;
            if json {
                return output::json(&d);
            }
            print_request(&d.detail.request);
            println!("key       {}", d.unlock.token_serial);
            println!("reason    {}", d.detail.request.reason);
            println!("evidence  {}", d.detail.request.evidence);
            print_steps(&d.detail.steps);
            println!(
                "code      {} (sends {}){}",
                d.unlock.send_state,
                d.unlock.sends,
                d.unlock
                    .expires_at
                    .as_ref()
                    .map(|e| format!(", expires {e}"))
                    .unwrap_or_default()
            );
            print_last_error(&d.detail.request);
            return Ok(());
        }
    };
    print_record(&r, json)
}
