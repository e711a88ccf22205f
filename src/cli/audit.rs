//! `keystation audit ...` handlers.

use super::opts::AuditCmd;
use super::{CliError, output};
use crate::audit::{verify_anchors, verify_chain};
use crate::domain::normalize;
use crate::station::Station;
use crate::store::AuditFilter;

pub(super) async fn run(station: &Station, cmd: AuditCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Verify => {
            let records = station.store.audit_records(&AuditFilter::default()).await?;
            let (head_seq, head_hash) = station.store.audit_head().await?;
            let anchors = station.store.anchors().await?;
            let spki = station
                .store
                .material("audit_anchor_spki")
                .await?
                .and_then(|h| hex::decode(h).ok());
            let result = verify_chain(&records, (head_seq, &head_hash))
                .map_err(|e| e.to_string())
                .and_then(|()| match &spki {
                    Some(k) => verify_anchors(&records, &anchors, k).map_err(|e| e.to_string()),
                    None if anchors.is_empty() => Ok(()),
                    None => Err("anchors exist but the station has no anchor key on record".into()),
                });
            let anchored = anchors.last().map(|a| a.seq).unwrap_or(0);
            match result {
                Ok(()) => {
                    if json {
                        output::json(&serde_json::json!({
                            "ok": true, "records": records.len(), "head": head_hash,
                            "anchors": anchors.len(), "last_anchored_seq": anchored,
                            "unanchored_records": head_seq - anchored,
                        }))?;
                    } else {
                        println!(
                            "audit trail intact: {} records, head {head_hash}; {} signed anchors, \
                             last at record {anchored} ({} records since)",
                            records.len(),
                            anchors.len(),
                            head_seq - anchored
                        );
                    }
                    Ok(())
                }
                Err(brk) => {
                    // One JSON document, in the failure shape every command uses.
                    let message = format!("audit trail broken: {brk}");
                    if json {
                        output::json(
                            &serde_json::json!({"ok": false, "error": "failure", "message": message}),
                        )?;
                    }
                    Err(CliError::Verdict(message))
                }
            }
        }
        AuditCmd::Anchor => {
            let hsm = super::provision::hsm_of(station)?;
            let anchor = station
                .anchor_audit(&hsm)
                .await
                .map_err(|e| CliError::Failure(e.into()))?;
            if json {
                return output::json(&anchor);
            }
            match anchor {
                Some(a) => println!("anchored audit record {} ({})", a.seq, a.head_hash),
                None => println!("the head is anchored already"),
            }
            Ok(())
        }
        AuditCmd::Show { order } => {
            let records = station
                .store
                .audit_records(&AuditFilter {
                    // Typed by an operator: same spelling rules as at intake.
                    order_no: order.as_deref().map(normalize::order_no),
                })
                .await?;
            if json {
                return output::json(&records);
            }
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.seq.to_string(),
                        r.at.clone(),
                        r.actor.clone(),
                        r.action.clone(),
                        r.order_no.clone().unwrap_or_default(),
                        r.details.clone(),
                    ]
                })
                .collect();
            output::table(&["SEQ", "AT", "ACTOR", "ACTION", "ORDER", "DETAILS"], &rows);
            Ok(())
        }
    }
}
