//! `keystation pin-reset ...` and `keystation order lost` handlers: the service desk.

use super::opts::{DecideCmd, PinResetCmd, RequestListArgs, RunArgs};
use super::{CliError, order_no_arg, output};
use crate::domain::{RequestKind, RequestState};
use crate::station::service_desk::DeskAsk;
use crate::station::{RequestStepRecord, ServiceRequestFilter, ServiceRequestRecord, Station};

pub(super) fn print_request(r: &ServiceRequestRecord) {
    println!(
        "{} {} {} {} requested by {}{}",
        r.id,
        r.kind,
        r.order_no,
        r.state,
        r.requested_by,
        r.decided_by
            .as_ref()
            .map(|d| format!(", decided by {d}"))
            .unwrap_or_default()
    );
}

/// A request as a command left it: JSON, or its line.
pub(super) fn print_record(r: &ServiceRequestRecord, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(r);
    }
    print_request(r);
    Ok(())
}

/// A request's execution journal, a line a step.
pub(super) fn print_steps(steps: &[RequestStepRecord]) {
    for s in steps {
        println!("step      {} {} (runs {})", s.step, s.status, s.runs);
    }
}

/// Why the request's last run failed, when it did.
pub(super) fn print_last_error(r: &ServiceRequestRecord) {
    if let Some(e) = &r.last_error {
        println!("error     {e}");
    }
}

/// `... approve|reject|cancel ID --operator NAME`: the request as it stands after it.
pub(super) async fn decide(
    station: &Station,
    cmd: DecideCmd,
) -> Result<ServiceRequestRecord, CliError> {
    Ok(match cmd {
        DecideCmd::Approve { id, operator, note } => {
            station
                .decide_request(&id, &operator, true, note.as_deref())
                .await?
        }
        DecideCmd::Reject {
            id,
            operator,
            reason,
        } => {
            station
                .decide_request(&id, &operator, false, Some(&reason))
                .await?
        }
        DecideCmd::Cancel { id, operator, note } => {
            station
                .cancel_request(&id, &operator, note.as_deref())
                .await?
        }
    })
}

/// `... list [--order ORDER] [--state STATE]`: the requests `keep` keeps of those of `kind`
/// (all kinds when `None`).
pub(super) async fn list_requests(
    station: &Station,
    kind: Option<RequestKind>,
    keep: impl Fn(&ServiceRequestRecord) -> bool,
    args: RequestListArgs,
    json: bool,
) -> Result<(), CliError> {
    let states = RequestState::ALL.map(RequestState::as_str);
    let state =
        CliError::state_filter(args.state, RequestState::parse, "a request state", &states)?;
    let mut list = station
        .service_requests(&ServiceRequestFilter {
            order_no: args.order.as_deref().map(order_no_arg).transpose()?,
            state,
            kind,
        })
        .await?;
    list.retain(keep);
    if json {
        return output::json(&list);
    }
    for r in &list {
        print_request(r);
    }
    Ok(())
}

pub(super) async fn pin_reset(
    station: &Station,
    cmd: PinResetCmd,
    json: bool,
) -> Result<(), CliError> {
    let r = match cmd {
        PinResetCmd::Request(a) => {
            let no = order_no_arg(&a.order_no)?;
            station
                .request_desk(DeskAsk::PinReset, &no, &a.asked())
                .await?
        }
        PinResetCmd::Decide(cmd) => decide(station, cmd).await?,
        PinResetCmd::Run(RunArgs { id, operator }) => {
            let hsm = station.open_hsm().await?;
            let report = station.run_pin_reset(&hsm, &id, &operator).await?;
            if json {
                return output::json(&report);
            }
            println!(
                "{} done: order {} key {} has a new PIN{}",
                report.request_id,
                report.order_no,
                report.token_serial,
                if report.resumed { " (resumed)" } else { "" }
            );
            println!(
                "PIN delivery {} queued ({} to {}, PIN generation {}): `keystation deliver run` sends it",
                report.delivery_id,
                report.channel,
                report.destination_masked,
                report.pin_generation
            );
            return Ok(());
        }
        PinResetCmd::List(args) => {
            let kind = Some(RequestKind::PinReset);
            return list_requests(station, kind, |_| true, args, json).await;
        }
        PinResetCmd::Show { id } => {
            let detail = station.service_request(&id).await?;
            if json {
                return output::json(&detail);
            }
            print_request(&detail.request);
            println!("reason    {}", detail.request.reason);
            println!("evidence  {}", detail.request.evidence);
            print_steps(&detail.steps);
            print_last_error(&detail.request);
            return Ok(());
        }
    };
    print_record(&r, json)
}

pub(super) async fn lost(
    station: &Station,
    order_no: &str,
    operator: &str,
    detail: Option<&str>,
    broken: bool,
    json: bool,
) -> Result<(), CliError> {
    let no = order_no_arg(order_no)?;
    let report = station.report_lost(&no, operator, detail, broken).await?;
    if json {
        output::json(&report)?;
        return super::ca::after_revocation(report.revocation.crl.as_ref(), json);
    }
    let (what, reason) = if broken {
        ("broken", "cessationOfOperation")
    } else {
        ("lost", "keyCompromise")
    };
    println!(
        "{no} reported {what}: Revoked (was {})",
        report.revocation.from
    );
    for c in &report.revocation.certificates {
        println!("certificate  {c} revoked ({reason})");
    }
    if let Some(b) = &report.binding_closed {
        println!(
            "token        binding {b} closed (key {})",
            report.token_serial.as_deref().unwrap_or("?")
        );
    }
    for r in &report.requests_cancelled {
        println!("request      {r} cancelled");
    }
    for d in &report.revocation.deliveries_cancelled {
        println!("delivery     {d} cancelled");
    }
    super::ca::after_revocation(report.revocation.crl.as_ref(), json)
}
