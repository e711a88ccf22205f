//! The four-eyes requests of `operator`, `api-token` and `ca` (the station's
//! `four_eyes` module): what asking printed, an approval that carried the change out, a
//! rejection, a withdrawal, the listing. Never a secret: a new credential or token only goes
//! to the file the approver named.

use super::opts::{ApproveArgs, ChangeRequestCmd, ReinitCmd};
use super::{CliError, output};
use crate::domain::RequestState;
use crate::domain::station_request::ChangeFamily;
use crate::station::Station;
use crate::station::four_eyes::{Asked, Carried};
use std::path::Path;

/// The flag an approver names the new secret's file with.
fn out_flag(family: ChangeFamily) -> &'static str {
    match family {
        ChangeFamily::ApiToken => " --out FILE",
        ChangeFamily::Operator => " --credential-out FILE (for an add)",
        ChangeFamily::Ca | ChangeFamily::Reinit => "",
    }
}

/// Prints what asking for a change did: a request to approve, or (bootstrap) the change made,
/// `print_done` saying it.
pub(super) fn asked(
    asked: &Asked,
    json: bool,
    print_done: impl FnOnce(&Carried),
) -> Result<(), CliError> {
    match asked {
        Asked::Done { carried } => {
            if json {
                return carried_json(carried);
            }
            print_done(carried);
            println!(
                "(taken effect at once: this station has a single enabled administrator, so \
                 nobody else could approve it; audited as bootstrap)"
            );
            Ok(())
        }
        Asked::Requested { request } => {
            if json {
                return output::json(request);
            }
            let family = request.change.family();
            println!(
                "request {} recorded: {}; a second, different {} carries it out with \
                 `keystation {} approve {}{}`",
                request.id,
                request.change.summary(),
                match family {
                    ChangeFamily::Ca => "security officer or administrator",
                    ChangeFamily::Operator | ChangeFamily::ApiToken => "administrator",
                    ChangeFamily::Reinit => "security officer",
                },
                family.command(),
                request.id,
                out_flag(family)
            );
            Ok(())
        }
    }
}

/// The record a carried-out change made, as JSON (the same shape as before four-eyes).
fn carried_json(carried: &Carried) -> Result<(), CliError> {
    match carried {
        Carried::Operator(o) => output::json(o),
        Carried::ApiToken(t) => output::json(t),
        Carried::OcspSigner(r) => output::json(r),
    }
}

/// `... approve ID`: the approval, and what carrying it out made.
pub(super) async fn approve(
    station: &Station,
    family: ChangeFamily,
    (id, note): (&str, Option<&str>),
    out: Option<&Path>,
    json: bool,
    print_done: impl FnOnce(&Carried),
) -> Result<(), CliError> {
    let (request, carried) = station.decide_change(id, family, true, note, out).await?;
    if json {
        return output::json(&serde_json::json!({ "request": request, "carried": carried }));
    }
    let approved_by = request
        .decided_by
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let what = format!(
        "request {} approved by {approved_by} (asked by {})",
        request.id, request.requested_by
    );
    if !request.change.runs_at_approval() {
        println!(
            "{what}: {}; `keystation provision ... --reinit` carries it out (once)",
            request.change.summary()
        );
        return Ok(());
    }
    println!("{what} and carried out: {}", request.change.summary());
    if let Some(c) = &carried {
        print_done(c);
    }
    Ok(())
}

/// `... reject|cancel|requests`.
pub(super) async fn decide(
    station: &Station,
    family: ChangeFamily,
    cmd: ChangeRequestCmd,
    json: bool,
) -> Result<(), CliError> {
    let request = match cmd {
        ChangeRequestCmd::Reject { id, reason } => {
            station
                .decide_change(&id, family, false, Some(&reason), None)
                .await?
                .0
        }
        ChangeRequestCmd::Cancel { id, note } => {
            station.cancel_change(&id, family, note.as_deref()).await?
        }
        ChangeRequestCmd::Requests { state } => {
            let state = state
                .map(|s| {
                    RequestState::parse(&s)
                        .ok_or_else(|| CliError::usage(format!("--state: no state {s:?}")))
                })
                .transpose()?;
            let all = station.station_requests(Some(family), state).await?;
            return output::listing(
                &all,
                json,
                &[
                    "ID",
                    "STATE",
                    "CHANGE",
                    "ASKED BY",
                    "DECIDED BY",
                    "ASKED AT",
                ],
                |r| {
                    vec![
                        r.id.clone(),
                        r.state.to_string(),
                        r.change.summary(),
                        r.requested_by.to_string(),
                        r.decided_by
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        r.requested_at.clone(),
                    ]
                },
            );
        }
    };
    if json {
        return output::json(&request);
    }
    println!(
        "request {}: {} ({})",
        request.id,
        request.state,
        request.change.summary()
    );
    Ok(())
}

/// `keystation reinit ...`.
pub(super) async fn reinit(station: &Station, cmd: ReinitCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        ReinitCmd::Request { order_no } => {
            let order_no = super::order_no_arg(&order_no)?;
            let asked = station.request_reinit(&order_no).await?;
            self::asked(&asked, json, |_| {})
        }
        ReinitCmd::Approve(ApproveArgs { id, note }) => {
            approve(
                station,
                ChangeFamily::Reinit,
                (&id, note.as_deref()),
                None,
                json,
                |_| {},
            )
            .await
        }
        ReinitCmd::Decide(cmd) => decide(station, ChangeFamily::Reinit, cmd, json).await,
    }
}
