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
            output::listing(
                &all,
                json,
                &["ID", "OPERATOR", "SCOPES", "STATE", "ADDED BY", "ADDED AT"],
                |t| {
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
                },
            )
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
            Ok(())
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
            Ok(())
        }
        ApiTokenCmd::WebhookEvents { order } => {
            let order = order
                .map(|o| o.parse::<crate::domain::OrderNo>())
                .transpose()
                .map_err(|e| CliError::usage(format!("--order: {e}")))?;
            let events = station.webhook_events(order.as_ref()).await?;
            output::listing(
                &events,
                json,
                &[
                    "EVENT",
                    "ORDER",
                    "SEQ",
                    "CHANGE",
                    "STATE",
                    "ATTEMPTS",
                    "LAST ERROR",
                ],
                |e| {
                    vec![
                        e.id.clone(),
                        e.order_no.to_string(),
                        e.sequence.to_string(),
                        format!("{} -> {}", e.from, e.to),
                        e.state.to_string(),
                        e.attempts.to_string(),
                        e.last_error.clone().unwrap_or_default(),
                    ]
                },
            )
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
            Ok(())
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
