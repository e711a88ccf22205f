//! `keystation operator ...` handlers: the station resolves the acting administrator from the
//! credential and does the change; this prints what it did.

use super::opts::OperatorCmd;
use super::{CliError, output};
use crate::domain::operator::{parse_roles, roles_text};
use crate::domain::password::Password;
use crate::station::Station;
use crate::station::operators::OperatorChange;

pub(super) async fn run(station: &Station, cmd: OperatorCmd, json: bool) -> Result<(), CliError> {
    let roles_arg = |flag: &str, text: &str| {
        parse_roles(text).map_err(|e| CliError::usage(format!("{flag}: {e}")))
    };
    let record = match cmd {
        OperatorCmd::List => {
            let all = station.operators().await?;
            if json {
                return output::json(&all);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|o| {
                    vec![
                        o.name.to_string(),
                        roles_text(&o.roles),
                        if o.enabled { "enabled" } else { "disabled" }.into(),
                        o.created_by.clone(),
                        o.created_at.clone(),
                    ]
                })
                .collect();
            output::table(&["NAME", "ROLES", "STATE", "ADDED BY", "ADDED AT"], &rows);
            return Ok(());
        }
        OperatorCmd::Add {
            name,
            role,
            credential_out,
        } => {
            let roles = roles_arg("--role", &role)?;
            let added = station.add_operator(&name, roles, &credential_out).await?;
            if !json {
                println!(
                    "operator {} added ({}); credential written to {} (mode 0600): hand it to them",
                    added.name,
                    roles_text(&added.roles),
                    credential_out.display()
                );
                return Ok(());
            }
            added
        }
        OperatorCmd::Disable { name } => {
            station
                .change_operator(&name, OperatorChange::Disable)
                .await?
        }
        OperatorCmd::Enable { name } => {
            station
                .change_operator(&name, OperatorChange::Enable)
                .await?
        }
        OperatorCmd::Role { name, set } => {
            let roles = roles_arg("--set", &set)?;
            station
                .change_operator(&name, OperatorChange::SetRoles(roles))
                .await?
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
    Ok(())
}
