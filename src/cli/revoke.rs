//! `keystation revoke ...`: the second operator's side of a revocation. `order revoke` and
//! `cert revoke` only request one; `revoke approve` (a different operator) carries it out.

use super::service_desk::{Decision, decide, print_request};
use super::{CliError, order_no_arg, output};
use crate::domain::RequestState;
use crate::station::service_desk::revoke::RevokeRun;
use crate::station::{ServiceRequestFilter, ServiceRequestRecord, Station};
use clap::Subcommand;

/// `keystation revoke ...`
#[derive(Debug, Subcommand)]
pub enum RevokeCmd {
    /// Approve a revocation request and carry it out at once: a second operator, never the one
    /// who made it. The certificate(s) are revoked and a new CRL issued.
    Approve {
        /// Request id (as `order revoke` / `cert revoke` printed it).
        id: String,
        /// Approving operator.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// A note recorded with the approval.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a revocation request: a second operator, with the reason. Nothing is revoked.
    Reject {
        /// Request id.
        id: String,
        /// Rejecting operator.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a revocation request not carried out (or give up one whose revocation failed).
    Cancel {
        /// Request id.
        id: String,
        /// Operator withdrawing it.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
    /// Carry out an approved revocation whose revocation failed (after the cause is fixed).
    Run {
        /// Request id.
        id: String,
        /// Operator carrying it out.
        #[arg(long, value_name = "NAME")]
        operator: String,
    },
    /// List revocation requests (of orders and of single certificates), oldest first.
    List {
        /// Only this order's.
        #[arg(long)]
        order: Option<String>,
        /// Only requests in this state (requested, approved, done, ...).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one revocation request.
    Show {
        /// Request id.
        id: String,
    },
}

/// What `order revoke` / `cert revoke` print: the pending request, and who must act next.
pub(super) fn requested(r: &ServiceRequestRecord, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(r);
    }
    print_request(r);
    println!(
        "nothing is revoked yet: a second, different operator approves it with \
         `keystation revoke approve {} --operator NAME`",
        r.id
    );
    Ok(())
}

pub(super) async fn run(station: &Station, cmd: RevokeCmd, json: bool) -> Result<(), CliError> {
    let r = match cmd {
        RevokeCmd::Approve { id, operator, note } => {
            let done = station
                .approve_revoke(&id, &operator, note.as_deref())
                .await?;
            return carried_out(&done, json);
        }
        RevokeCmd::Run { id, operator } => {
            let done = station.run_revoke(&id, &operator).await?;
            return carried_out(&done, json);
        }
        RevokeCmd::Reject {
            id,
            operator,
            reason,
        } => decide(station, &id, &operator, Decision::Reject(reason)).await?,
        RevokeCmd::Cancel { id, operator, note } => {
            decide(station, &id, &operator, Decision::Cancel(note)).await?
        }
        RevokeCmd::List { order, state } => {
            let states = RequestState::ALL.map(RequestState::as_str);
            let state =
                CliError::state_filter(state, RequestState::parse, "a request state", &states)?;
            let list: Vec<_> = station
                .service_requests(&ServiceRequestFilter {
                    order_no: order.as_deref().map(order_no_arg).transpose()?,
                    state,
                    kind: None,
                })
                .await?
                .into_iter()
                .filter(|r| r.kind.is_revocation())
                .collect();
            if json {
                return output::json(&list);
            }
            list.iter().for_each(print_request);
            return Ok(());
        }
        RevokeCmd::Show { id } => {
            let detail = station.service_request(&id).await?;
            if json {
                return output::json(&detail);
            }
            print_request(&detail.request);
            println!("reason    {}", detail.request.reason);
            println!("detail    {}", detail.request.evidence);
            if let Some(e) = &detail.request.last_error {
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
