//! `keystation operator ...` handlers: the station resolves the acting administrator from the
//! credential and does the change; this prints what it did.

use super::opts::OperatorCmd;
use super::station_requests;
use super::{CliError, output};
use crate::domain::OperatorId;
use crate::domain::operator::{parse_roles, roles_text};
use crate::domain::password::Password;
use crate::domain::station_request::{ChangeFamily, StationChange};
use crate::station::OperatorRecord;
use crate::station::Station;
use crate::station::four_eyes::Carried;
use std::path::Path;

pub(super) async fn run(station: &Station, cmd: OperatorCmd, json: bool) -> Result<(), CliError> {
    let roles_arg = |flag: &str, text: &str| {
        parse_roles(text).map_err(|e| CliError::usage(format!("{flag}: {e}")))
    };
    let record = match cmd {
        OperatorCmd::List => {
            let all = station.operators().await?;
            return output::listing(
                &all,
                json,
                &["NAME", "ROLES", "STATE", "ADDED BY", "ADDED AT"],
                |o| {
                    vec![
                        o.name.to_string(),
                        roles_text(&o.roles),
                        if o.enabled { "enabled" } else { "disabled" }.into(),
                        o.created_by.clone(),
                        o.created_at.clone(),
                    ]
                },
            );
        }
        OperatorCmd::Add {
            name,
            role,
            credential_out,
        } => {
            let change = StationChange::OperatorAdd {
                operator: name_arg(&name)?,
                roles: roles_arg("--role", &role)?,
            };
            let out = credential_out.as_deref();
            let asked = station.ask_change(change, out).await?;
            return station_requests::asked(&asked, json, |c| print_carried(c, out));
        }
        OperatorCmd::Approve {
            id,
            credential_out,
            note,
        } => {
            let out = credential_out.as_deref();
            return station_requests::approve(
                station,
                ChangeFamily::Operator,
                (&id, note.as_deref()),
                out,
                json,
                |c| print_carried(c, out),
            )
            .await;
        }
        OperatorCmd::Decide(cmd) => {
            return station_requests::decide(station, ChangeFamily::Operator, cmd, json).await;
        }
        OperatorCmd::Disable { name } => {
            let change = StationChange::OperatorDisable {
                operator: name_arg(&name)?,
            };
            let asked = station.ask_change(change, None).await?;
            return station_requests::asked(&asked, json, |c| print_carried(c, None));
        }
        OperatorCmd::Enable { name } => {
            let change = StationChange::OperatorEnable {
                operator: name_arg(&name)?,
            };
            let asked = station.ask_change(change, None).await?;
            return station_requests::asked(&asked, json, |c| print_carried(c, None));
        }
        OperatorCmd::Role { name, set } => {
            let change = StationChange::OperatorRoles {
                operator: name_arg(&name)?,
                roles: roles_arg("--set", &set)?,
            };
            let asked = station.ask_change(change, None).await?;
            return station_requests::asked(&asked, json, |c| print_carried(c, None));
        }
        OperatorCmd::Password { name } => {
            let text = super::pin_input::new_secret("new console password")?;
            let record = station
                .set_console_password(&name, Password::from_secret(text))
                .await?;
            if !json {
                println!("operator {}: console password set", record.name);
                return Ok(());
            }
            record
        }
        OperatorCmd::Totp { name } => {
            let hsm = station.open_hsm().await?;
            let enrolled = station.enrol_totp(&hsm, &name).await?;
            // Shown once, to the operator at their terminal, for their authenticator app: the
            // station keeps the secret only sealed by the vault.
            if json {
                return output::json(&serde_json::json!({
                    "operator": enrolled.operator.to_string(),
                    "secret": enrolled.secret_base32.as_str(),
                    "uri": enrolled.uri.as_str(),
                }));
            }
            println!(
                "operator {}: TOTP enrolled. Add it to the authenticator app now; it is not shown again.",
                enrolled.operator
            );
            println!("secret: {}", enrolled.secret_base32.as_str());
            println!("uri: {}", enrolled.uri.as_str());
            return Ok(());
        }
    };
    if json {
        return output::json(&record);
    }
    print_record(&record);
    Ok(())
}

/// The `NAME` argument, parsed.
fn name_arg(name: &str) -> Result<OperatorId, CliError> {
    OperatorId::parse(name).map_err(|e| CliError::usage(format!("NAME: {e}")))
}

/// What a carried-out operator change made (`out`: where an added operator's credential went).
fn print_carried(carried: &Carried, out: Option<&Path>) {
    match (carried, out) {
        (Carried::Operator(added), Some(file)) => println!(
            "operator {} added ({}); credential written to {} (mode 0600): hand it to them",
            added.name,
            roles_text(&added.roles),
            file.display()
        ),
        (Carried::Operator(record), None) => print_record(record),
        (other, _) => println!("{other:?}"),
    }
}

fn print_record(record: &OperatorRecord) {
    println!(
        "operator {}: {} ({})",
        record.name,
        if record.enabled {
            "enabled"
        } else {
            "disabled"
        },
        roles_text(&record.roles)
    );
}
