//! `keystation audit ...` handlers.

use super::opts::AuditCmd;
use super::{CliError, order_no_arg, output};
use crate::station::Station;
use crate::station::anchor::AnchorOutcome;
use crate::station::error_code as ec;

/// Anchors the audit trail at the end of a command that may have changed state (it opens the
/// vault only when the head is not anchored yet). A failure is a warning, not the command's
/// failure: its own work is committed, and the next command or `keystation audit anchor`
/// anchors the same head. A refusal means the trail is broken; the warning says so.
pub(super) async fn anchor_after_change(station: &Station) {
    if let Err(e) = station.anchor_after_change().await {
        eprintln!("warning: the audit trail could not be anchored: {e}");
    }
}

pub(super) async fn run(station: &Station, cmd: AuditCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Verify => {
            let hsm = station.open_hsm().await?;
            let verdict = station.verify_audit(&hsm).await?;
            if let Some(problem) = &verdict.problem {
                // One JSON document, in the failure shape every command uses.
                let message = format!("audit trail broken: {problem}");
                if json {
                    output::json(&serde_json::json!({
                        "ok": false, "error": "failure", "code": ec::AUDIT_BROKEN,
                        "message": message, "operation_id": station.operation().id(),
                    }))?;
                }
                return Err(CliError::verdict(ec::AUDIT_BROKEN, message));
            }
            if json {
                return output::json(&verdict);
            }
            println!(
                "audit trail intact: {} records, head {}; {} signed anchors, last anchored record \
                 {} ({} records since); {}",
                verdict.records,
                verdict.head,
                verdict.anchors,
                verdict.last_anchored_seq,
                verdict.unanchored_records,
                match &verdict.hsm_anchor {
                    Some(h) => format!("the vault HSM holds the anchor of record {}", h.seq),
                    None => "the vault HSM holds no anchor yet (`keystation audit anchor` \
                             places one)"
                        .into(),
                }
            );
            Ok(())
        }
        AuditCmd::Anchor => {
            let hsm = station.open_hsm().await?;
            let outcome = station.anchor_audit(&hsm).await?;
            if json {
                return output::json(&outcome);
            }
            match outcome {
                AnchorOutcome::Anchored(a) => {
                    println!("anchored audit record {} ({})", a.seq, a.head_hash)
                }
                AnchorOutcome::NothingNew { seq, .. } => println!(
                    "nothing new to anchor: record {seq}, the head, is anchored already \
                     (signed, and held by the vault HSM)"
                ),
            }
            Ok(())
        }
        AuditCmd::Show { order } => {
            // Typed by an operator: same spelling rules as at intake.
            let order = order.as_deref().map(order_no_arg).transpose()?;
            let records = station.audit_records(order.as_ref()).await?;
            output::listing(
                &records,
                json,
                &["SEQ", "AT", "ACTOR", "ACTION", "ORDER", "DETAILS"],
                |r| {
                    vec![
                        r.seq.to_string(),
                        r.at.clone(),
                        r.actor.clone(),
                        r.action.clone(),
                        r.order_no.clone().unwrap_or_default(),
                        r.details.clone(),
                    ]
                },
            )
        }
    }
}
