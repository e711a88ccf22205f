//! `keystation revoke ...` and `keystation reissue ...`: the second operator's side of the
//! requests carried out at approval. `order revoke` and `cert revoke` only request a
//! revocation, `order reissue` a reissue order; `revoke approve` / `reissue approve` (a
//! different operator) carries it out.

use super::opts::{DecideCmd, RequestListArgs, RunArgs};
use super::service_desk::{decide, list_requests, print_last_error, print_record, print_request};
use super::{CliError, output};
use crate::domain::RequestKind;
use crate::station::service_desk::revoke::RevokeRun;
use crate::station::{ServiceRequestRecord, Station};
use clap::Subcommand;

/// `keystation revoke ...` / `keystation reissue ...`
#[derive(Debug, Subcommand)]
pub enum AtApprovalCmd {
    /// approve, reject, cancel: a second operator's word on the request.
    #[command(flatten)]
    Decide(DecideCmd),
    /// Carry out an approved request that failed (after the cause is fixed).
    Run(RunArgs),
    /// List the requests (revocations: of orders and of single certificates), oldest first.
    List(RequestListArgs),
    /// Show one request.
    Show {
        /// Request id.
        id: String,
    },
}

/// What `order revoke` / `cert revoke` / `order reissue` print: the pending request, and who
/// must act next.
pub(super) fn requested(r: &ServiceRequestRecord, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(r);
    }
    print_request(r);
    let (nothing, command) = if r.kind.is_revocation() {
        ("nothing is revoked yet", "revoke")
    } else {
        ("no order is made yet", "reissue")
    };
    println!(
        "{nothing}: a second, different operator approves it with \
         `keystation {command} approve {} --operator NAME`",
        r.id
    );
    Ok(())
}

/// [`run`], then the audit anchor moved when the command may have changed something.
pub(super) async fn run_anchored(
    station: &Station,
    family: RequestKind,
    cmd: AtApprovalCmd,
    json: bool,
) -> Result<(), CliError> {
    let changes = !matches!(cmd, AtApprovalCmd::List { .. } | AtApprovalCmd::Show { .. });
    let result = run(station, family, cmd, json).await;
    if changes {
        super::audit::anchor_after_change(station).await;
    }
    result
}

/// `keystation revoke|reissue ...`: the requests of `family` (`Revoke` for both revocation
/// kinds, or `Reissue`).
async fn run(
    station: &Station,
    family: RequestKind,
    cmd: AtApprovalCmd,
    json: bool,
) -> Result<(), CliError> {
    let revocation = family.is_revocation();
    let r = match cmd {
        AtApprovalCmd::Decide(DecideCmd::Approve { id, operator, note }) if revocation => {
            let done = station
                .approve_revoke(&id, &operator, note.as_deref())
                .await?;
            return carried_out(&done, json);
        }
        AtApprovalCmd::Decide(DecideCmd::Approve { id, operator, note }) => {
            let made = station
                .approve_reissue(&id, &operator, note.as_deref())
                .await?;
            return super::reissue::made(&made, json);
        }
        AtApprovalCmd::Run(RunArgs { id, operator }) if revocation => {
            let done = station.run_revoke(&id, &operator).await?;
            return carried_out(&done, json);
        }
        AtApprovalCmd::Run(RunArgs { id, operator }) => {
            let made = station.run_reissue(&id, &operator).await?;
            return super::reissue::made(&made, json);
        }
        AtApprovalCmd::Decide(cmd) => decide(station, cmd).await?,
        AtApprovalCmd::List(args) => {
            let keep = |r: &ServiceRequestRecord| {
                if revocation {
                    r.kind.is_revocation()
                } else {
                    r.kind == family
                }
            };
            return list_requests(station, None, keep, args, json).await;
        }
        AtApprovalCmd::Show { id } => {
            let detail = station.service_request(&id).await?;
            if json {
                return output::json(&detail);
            }
            print_request(&detail.request);
            println!("reason    {}", detail.request.reason);
            println!("detail    {}", detail.request.evidence);
            print_last_error(&detail.request);
            return Ok(());
        }
    };
    print_record(&r, json)
}

/// What an approved revocation did, and the CRL that followed it.
fn carried_out(done: &RevokeRun, json: bool) -> Result<(), CliError> {
    let r = &done.request;
    if json {
        output::json(done)?;
    } else {
        println!(
            "{} done: requested by {}, approved by {}",
            r.id,
            r.requested_by,
            r.decided_by.as_ref().map_or("?", |d| d.as_str())
        );
    }
    let reason = &done.revocation.crl_reason;
    if let Some(report) = &done.order {
        if !json {
            println!("{} Revoked (was {})", report.order_no, report.from);
            for c in &report.certificates {
                println!("certificate  {c} revoked ({reason})");
            }
            for d in &report.deliveries_cancelled {
                println!("delivery     {d} cancelled");
            }
            for d in &report.deliveries_in_flight {
                println!("delivery     {d} may already be out (sending/sent): check it");
            }
            if report.sealed_pin_destroyed {
                println!("sealed PIN   destroyed");
            }
        }
        return super::ca::after_revocation(report.crl.as_ref(), json);
    }
    if let Some(report) = &done.certificate {
        if !json {
            println!(
                "certificate  {} revoked ({reason}; was {})",
                report.serial, report.previous_status
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
        }
        return super::ca::after_revocation(Some(&report.crl), json);
    }
    Ok(())
}
