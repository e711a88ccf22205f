//! `keystation api-token ...` handlers: the station resolves the acting administrator from the
//! credential and does the change; this prints what it did (never a token).

use super::opts::ApiTokenCmd;
use super::{CliError, output};
use crate::domain::api::{parse_scopes, scopes_text};
use crate::station::Station;

pub(super) async fn run(station: &Station, cmd: ApiTokenCmd, json: bool) -> Result<(), CliError> {
    let record = match cmd {
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
            return Ok(());
        }
        ApiTokenCmd::Add {
            operator,
            scope,
            out,
        } => {
            let scopes =
                parse_scopes(&scope).map_err(|e| CliError::usage(format!("--scope: {e}")))?;
            let added = station.add_api_token(&operator, scopes, &out).await?;
            if !json {
                println!(
                    "API token {} added for operator {} ({}); written to {} (mode 0600): hand it \
                     to the client",
                    added.id,
                    added.operator,
                    scopes_text(&added.scopes),
                    out.display()
                );
                return Ok(());
            }
            added
        }
        ApiTokenCmd::Revoke { id } => station.revoke_api_token(id).await?,
    };
    if json {
        return output::json(&record);
    }
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
    Ok(())
}
