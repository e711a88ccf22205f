//! `keystation unlock ...` handlers: remote unlock with an unlock authorisation code.

use super::service_desk::{decide, list_requests, print_request};
use super::unlock_opts::UnlockCmd;
use super::{CliError, order_no_arg, output};
use crate::domain::RequestKind;
use crate::station::Station;
use crate::station::service_desk::unlock::RunOptions;

pub(super) async fn unlock(station: &Station, cmd: UnlockCmd, json: bool) -> Result<(), CliError> {
    let r = match cmd {
        UnlockCmd::Request {
            order_no,
            code,
            reason,
            evidence,
            operator,
        } => {
            let no = order_no_arg(&order_no)?;
            station
                .request_unlock(&no, &code, &operator, &reason, &evidence)
                .await?
        }
        UnlockCmd::Decide(cmd) => decide(station, cmd).await?,
        UnlockCmd::Run {
            id,
            operator,
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
        UnlockCmd::List { order, state } => {
            return list_requests(station, RequestKind::Unlock, order, state, json).await;
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
            for s in &d.detail.steps {
                println!("step      {} {} (runs {})", s.step, s.status, s.runs);
            }
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
            if let Some(e) = &d.detail.request.last_error {
                println!("error     {e}");
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
