//! Anchoring the audit trail: the chain head signed by the vault's anchor key.
//!
//! Called after every job that opens the HSM (provisioning, batches, deliveries, init) and by
//! `keystation audit anchor` (for a cron job), so the unsigned tail of the trail stays short.

use super::Station;
use super::hsm::Hsm;
use crate::audit::{Anchor, anchor_message};
use crate::clock::format_utc;
use crate::store::StoreError;

/// Errors of anchoring.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

impl Station {
    /// Signs the current chain head unless it is anchored already; returns the new anchor.
    pub async fn anchor_audit(&self, hsm: &Hsm) -> Result<Option<Anchor>, AnchorError> {
        let (seq, head_hash) = self.store.audit_head().await?;
        if seq == 0 || self.store.anchors().await?.iter().any(|a| a.seq == seq) {
            return Ok(None);
        }
        let at = format_utc(self.clock.now());
        let msg = anchor_message(seq, &head_hash, &at);
        let signature = tokio::task::block_in_place(|| hsm.vault()?.sign_anchor(&msg))?;
        let anchor = Anchor {
            seq,
            head_hash,
            at,
            actor: format!("station:{}", self.config.station.id),
            signature: hex::encode(signature),
        };
        self.store.insert_anchor(&anchor).await?;
        Ok(Some(anchor))
    }
}
