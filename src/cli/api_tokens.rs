//! `keystation api-token ...` handlers: the station resolves the acting administrator from the
//! credential and does the change; this prints what it did (never a token).

use super::opts::ApiTokenCmd;
use super::station_requests;
use super::{CliError, output};
use crate::domain::OperatorId;
use crate::domain::api::{parse_scopes, scopes_text};
use crate::domain::station_request::{ChangeFamily, StationChange};
use crate::station::ApiTokenRecord;
use crate::station::Station;
use crate::station::four_eyes::Carried;
use std::path::Path;

pub(super) async fn run(station: &Station, cmd: ApiTokenCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        ApiTokenCmd::List => {
            let all = station.api_tokens().await?;
            if json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.operator.to_string(),
                        scopes_text(&t.scopes),
                        match &t.revoked_at {
                            Some(at) => format!("revoked {at}"),
                            None => "active".into(),
                        },
                        t.created_by.clone(),
                        t.created_at.clone(),
                    ]
                })
                .collect();
            output::table(
                &["ID", "OPERATOR", "SCOPES", "STATE", "ADDED BY", "ADDED AT"],
                &rows,
            );
            Ok(())
        }
        ApiTokenCmd::Add {
            operator,
            scope,
            out,
        } => {
            let scopes =
                parse_scopes(&scope).map_err(|e| CliError::usage(format!("--scope: {e}")))?;
            let operator = OperatorId::parse(&operator)
                .map_err(|e| CliError::usage(format!("--operator: {e}")))?;
            let out = out.as_deref();
            let change = StationChange::ApiTokenAdd { operator, scopes };
            let asked = station.ask_change(change, out).await?;
            station_requests::asked(&asked, json, |c| print_carried(c, out))
        }
        ApiTokenCmd::Approve { id, out, note } => {
            let out = out.as_deref();
            station_requests::approve(
                station,
                ChangeFamily::ApiToken,
                (&id, note.as_deref()),
                out,
                json,
                |c| print_carried(c, out),
            )
            .await
        }
        ApiTokenCmd::Decide(cmd) => {
            station_requests::decide(station, ChangeFamily::ApiToken, cmd, json).await
        }
        ApiTokenCmd::Revoke { id } => {
            let change = StationChange::ApiTokenRevoke { token_id: id };
            let asked = station.ask_change(change, None).await?;
            station_requests::asked(&asked, json, |c| print_carried(c, None))
        }
    }
}

/// What a carried-out token change made (`out`: where an added token went).
fn print_carried(carried: &Carried, out: Option<&Path>) {
    match (carried, out) {
        (Carried::ApiToken(added), Some(file)) => println!(
            "API token {} added for operator {} ({}); written to {} (mode 0600): hand it to the \
             client",
            added.id,
            added.operator,
            scopes_text(&added.scopes),
            file.display()
        ),
        (Carried::ApiToken(record), None) => print_record(record),
        (other, _) => println!("{other:?}"),
    }
}

fn print_record(record: &ApiTokenRecord) {
    println!(
        "API token {} of operator {}: {}",
        record.id,
        record.operator,
        if record.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        }
    );
}
