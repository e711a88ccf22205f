//! `keystation audit verify`: the trail against its hash chain, every signed anchor, and the
//! anchor the vault HSM holds.
//!
//! The chain alone shows edits, deletions and re-orderings; the signed anchors show a chain
//! re-hashed end to end; the vault's anchor shows what the database cannot: records cut from
//! the end together with their signed anchors and a fixed-up `audit_head` (a truncation, named
//! by the records missing), or a trail rewritten and re-grown past it.

use super::Station;
use super::hsm::Hsm;
use crate::audit::{verify_anchors, verify_chain, verify_held_anchor};
use crate::store::{AuditFilter, StoreError};
use crate::token::{HeldAnchor, TokenError};

/// Errors that keep the verification from reaching a verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditVerifyError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault could not be read: without its anchor a truncation would go unseen.
    #[error("cannot read the audit anchor held by the vault HSM: {0}")]
    Vault(#[from] TokenError),
}

/// The verdict on the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditVerdict {
    /// True when nothing is wrong.
    pub ok: bool,
    /// Records in the trail.
    pub records: usize,
    /// The stored head: last seq.
    pub head_seq: i64,
    /// The stored head: its hash.
    pub head: String,
    /// Signed anchors in the database.
    pub anchors: usize,
    /// The last anchored record (signed in the database or held by the vault).
    pub last_anchored_seq: i64,
    /// Records after it.
    pub unanchored_records: i64,
    /// The anchor the vault HSM holds (`None` on a station from before it kept one, until its
    /// next anchoring).
    pub hsm_anchor: Option<HeldAnchor>,
    /// The first problem found, when not ok.
    pub problem: Option<String>,
}

impl Station {
    /// Verifies the audit trail: chain, then every signed anchor in seq order, then the vault's
    /// anchor. The first problem is reported.
    pub async fn verify_audit(&self, hsm: &Hsm) -> Result<AuditVerdict, AuditVerifyError> {
        let records = self.store.audit_records(&AuditFilter::default()).await?;
        let (head_seq, head) = self.store.audit_head().await?;
        let anchors = self.store.anchors().await?;
        let spki = self
            .store
            .material("audit_anchor_spki")
            .await?
            .and_then(|h| hex::decode(h).ok());
        let held = crate::station::hsm::blocking(|| hsm.vault()?.held_anchor())?;
        let problem = verify_chain(&records, (head_seq, &head))
            .map_err(|e| e.to_string())
            .and_then(|()| match &spki {
                Some(k) => verify_anchors(&records, &anchors, k).map_err(|e| e.to_string()),
                None if anchors.is_empty() => Ok(()),
                None => Err("anchors exist but the station has no anchor key on record".into()),
            })
            .and_then(|()| {
                let held = held.as_ref().map(|h| (h.seq, h.head_hash.as_str()));
                verify_held_anchor(&records, &anchors, held).map_err(|e| e.to_string())
            })
            .err();
        let last_anchored_seq = anchors
            .iter()
            .map(|a| a.seq)
            .chain(held.as_ref().map(|h| h.seq))
            .max()
            .unwrap_or(0);
        Ok(AuditVerdict {
            ok: problem.is_none(),
            records: records.len(),
            head_seq,
            head,
            anchors: anchors.len(),
            last_anchored_seq,
            unanchored_records: (head_seq - last_anchored_seq).max(0),
            hsm_anchor: held,
            problem,
        })
    }
}
