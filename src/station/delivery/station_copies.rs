//! The station's own copies of PIN messages, and when they go.
//!
//! A message carrying a PIN is written where its channel's agent collects it: an SMS into the
//! spool (`{delivery_id}.json`), a transfer into a pain.001 in the bank's outbound directory.
//! Until the agent has its own copy, that file IS the message and must stay. Once the delivery is
//! confirmed — the SMS agent's receipt `{delivery_id}.sent` is there, the bank's pain.002 or
//! camt.054 was imported — the agent has it, and the station's copy is overwritten and removed
//! ([`crate::private_files::erase_file`]): the clear PIN is then only where the channel put it.
//!
//! - A spool message goes when its delivery is confirmed, or cancelled (withdrawn before the
//!   agent took it: a requeued delivery must not leave an older copy to be sent too).
//! - A pain.001 goes when every transfer in it is settled (confirmed, cancelled, or failed by the
//!   bank's rejection), and only if it still carries one of their `EndToEndId`s: a file of that
//!   name that is someone else's is never touched.
//!
//! The removal follows the transaction that settled the delivery. A crash in between leaves the
//! copy for [`Station::sweep_station_copies`], which every `deliver run` starts with.

use super::error::DeliveryError;
use crate::delivery::sms::SpoolChannel;
use crate::domain::DeliveryState;
use crate::station::Station;
use std::path::Path;

/// Whether a delivery in `state` no longer needs its message file.
fn settled(state: DeliveryState) -> bool {
    matches!(
        state,
        DeliveryState::Confirmed | DeliveryState::Cancelled | DeliveryState::Failed
    )
}

/// Removes the spool message of `delivery_id`; logs what it did (never the content).
pub(super) fn remove_spool_message(spool: &SpoolChannel, delivery_id: &str) {
    match spool.remove_message(delivery_id) {
        Ok(true) => {
            tracing::info!(delivery = %delivery_id, "station copy of the SMS removed from the spool")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(delivery = %delivery_id, error = %e, "could not remove the station copy of the SMS; the next `deliver run` tries again")
        }
    }
}

impl Station {
    /// Removes the pain.001 `file` from `outbound` if every transfer in it is settled and it is
    /// ours (see the module docs). Returns whether it was removed.
    pub(super) async fn remove_settled_bank_file(
        &self,
        outbound: &Path,
        file: &str,
    ) -> Result<bool, DeliveryError> {
        if file.contains('/') || file.starts_with('.') {
            return Ok(false);
        }
        let deliveries = self.store.deliveries_in_bank_file(file).await?;
        if deliveries.is_empty() || !deliveries.iter().all(|d| settled(d.state)) {
            return Ok(false);
        }
        let path = outbound.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(false); // collected by the agent, or never written
        };
        let ours = deliveries.iter().any(|d| {
            d.end_to_end_id
                .as_ref()
                .is_some_and(|e2e| text.contains(&format!("<EndToEndId>{e2e}</EndToEndId>")))
        });
        drop(text);
        if !ours {
            tracing::warn!(file = %path.display(), "a bank file of this name does not carry its transfers: left alone");
            return Ok(false);
        }
        crate::private_files::erase_file(&path).map_err(|source| DeliveryError::Io {
            what: "removing the settled bank file",
            path: path.display().to_string(),
            source,
        })?;
        tracing::info!(file = %path.display(), "station copy of the settled pain.001 removed");
        Ok(true)
    }

    /// Removes every station copy whose delivery is settled: spool messages of confirmed or
    /// cancelled deliveries, pain.001 files whose transfers are all settled. Returns how many.
    pub(super) async fn sweep_station_copies(
        &self,
        spool: Option<&SpoolChannel>,
        outbound: &Path,
    ) -> Result<usize, DeliveryError> {
        let mut removed = 0;
        if let Some(spool) = spool {
            let ids = spool.message_ids().map_err(|source| DeliveryError::Io {
                what: "listing the spool directory",
                path: spool.dir().display().to_string(),
                source,
            })?;
            for id in ids {
                let Some(d) = self.store.delivery(&id).await? else {
                    continue; // not a delivery of this station's database: not ours to remove
                };
                if matches!(d.state, DeliveryState::Confirmed | DeliveryState::Cancelled)
                    && spool.remove_message(&id).unwrap_or(false)
                {
                    removed += 1;
                }
            }
        }
        let files: Vec<String> = match std::fs::read_dir(outbound) {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".xml") && !n.starts_with('.'))
                .collect(),
            Err(_) => Vec::new(),
        };
        for f in files {
            if self.remove_settled_bank_file(outbound, &f).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
