//! `keystation pin-reset ...` and `keystation order lost` handlers: the service desk.

use super::opts::{DecideCmd, PinResetCmd};
use super::{CliError, order_no_arg, output};
use crate::domain::{RequestKind, RequestState};
use crate::station::{ServiceRequestFilter, ServiceRequestRecord, Station};

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

/// `... list [--order ORDER] [--state STATE]`: the requests of `kind`.
pub(super) async fn list_requests(
    station: &Station,
    kind: RequestKind,
    order: Option<String>,
    state: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let states = RequestState::ALL.map(RequestState::as_str);
    let state = CliError::state_filter(state, RequestState::parse, "a request state", &states)?;
    let list = station
        .service_requests(&ServiceRequestFilter {
            order_no: order.as_deref().map(order_no_arg).transpose()?,
            state,
            kind: Some(kind),
        })
        .await?;
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
        PinResetCmd::Request {
            order_no,
            reason,
            evidence,
            operator,
        } => {
            let no = order_no_arg(&order_no)?;
            station
                .request_pin_reset(&no, &operator, &reason, &evidence)
                .await?
        }
        PinResetCmd::Decide(cmd) => decide(station, cmd).await?,
        PinResetCmd::Run { id, operator } => {
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
        PinResetCmd::List { order, state } => {
            return list_requests(station, RequestKind::PinReset, order, state, json).await;
        }
        PinResetCmd::Show { id } => {
            let detail = station.service_request(&id).await?;
            if json {
                return output::json(&detail);
            }
            print_request(&detail.request);
            println!("reason    {}", detail.request.reason);
            println!("evidence  {}", detail.request.evidence);
            for s in &detail.steps {
                println!("step      {} {} (runs {})", s.step, s.status, s.runs);
            }
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
