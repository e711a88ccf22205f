//! `keystation audit ...` handlers.

use super::opts::AuditCmd;
use super::{CliError, output};
use crate::audit::verify_chain;
use crate::domain::normalize;
use crate::station::Station;
use crate::store::AuditFilter;

pub(super) async fn run(station: &Station, cmd: AuditCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Verify => {
            let records = station.store.audit_records(&AuditFilter::default()).await?;
            let (head_seq, head_hash) = station.store.audit_head().await?;
            match verify_chain(&records, (head_seq, &head_hash)) {
                Ok(()) => {
                    if json {
                        output::json(
                            &serde_json::json!({"ok": true, "records": records.len(), "head": head_hash}),
                        )?;
                    } else {
                        println!(
                            "audit trail intact: {} records, head {head_hash}",
                            records.len()
                        );
                    }
                    Ok(())
                }
                // With --json the failure is reported once, in the shape every command uses
                // (`{"error": "failure", "message": ...}`): stdout stays ONE JSON document.
                Err(brk) => Err(CliError::Failure(anyhow::anyhow!(
                    "audit trail broken: {brk}"
                ))),
            }
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
