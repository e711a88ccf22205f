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
        ApiTokenCmd::WebhookSecret { out } => {
            station.write_webhook_secret(&out)?;
            if json {
                return output::json(&serde_json::json!({ "written": out }));
            }
            println!(
                "webhook key written to {} (mode 0600): name it in [api.webhook] secret_file \
                 and give the receiver a copy",
                out.display()
            );
            return Ok(());
        }
        ApiTokenCmd::WebhookSend => {
            let sender = station.webhook_sender()?;
            let run = station.webhook_send(sender.as_ref()).await?;
            if json {
                return output::json(&run);
            }
            if !run.configured {
                println!("no [api.webhook] configured: nothing sent");
            }
            for e in &run.events {
                println!(
                    "{} {} #{} {}: {}",
                    e.event_id, e.order_no, e.sequence, e.to, e.note
                );
            }
            return Ok(());
        }
        ApiTokenCmd::WebhookEvents { order } => {
            let order = order
                .map(|o| o.parse::<crate::domain::OrderNo>())
                .transpose()
                .map_err(|e| CliError::usage(format!("--order: {e}")))?;
            let events = station.webhook_events(order.as_ref()).await?;
            if json {
                return output::json(&events);
            }
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        e.id.clone(),
                        e.order_no.to_string(),
                        e.sequence.to_string(),
                        format!("{} -> {}", e.from, e.to),
                        e.state.to_string(),
                        e.attempts.to_string(),
                        e.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "EVENT",
                    "ORDER",
                    "SEQ",
                    "CHANGE",
                    "STATE",
                    "ATTEMPTS",
                    "LAST ERROR",
                ],
                &rows,
            );
            return Ok(());
        }
        ApiTokenCmd::WebhookRequeue { id } => {
            let e = station.requeue_webhook_event(&id).await?;
            if json {
                return output::json(&e);
            }
            println!(
                "webhook event {} of order {}: queued again",
                e.id, e.order_no
            );
            return Ok(());
        }
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
