//! Anchoring the audit trail: the chain head signed by the installation's anchor key (the
//! vault's ECDSA P-256 key, or an SM2 CA's SM2 key on the CA token:
//! [`super::hsm::Hsm::sign_anchor`]), recorded in the database, and held by the vault HSM
//! itself, where a database writer cannot roll it back.
//!
//! Run at the end of every command that changes state (a front calls
//! [`Station::anchor_after_change`] once the command's own transactions are committed), after each
//! pass of the delivery worker that changed something and each order at a desk ([`Station::anchor_if_needed`]), and by `keystation audit anchor`,
//! so the unanchored tail of the trail is at most one command or unit of work long.
//!
//! A head is anchored only if the trail extends what the vault holds: the vault's record is still
//! there with its hash, and every record after it links to it. A truncated or rewritten trail is
//! refused, never signed.
//!
//! # Order of the writes
//! One anchoring runs inside a writing transaction, which holds the audit head: no record is
//! appended and no other station sharing the database (and the vault) anchors meanwhile.
//! 1. the head is read and checked against the vault's held anchor (above);
//! 2. the vault signs the head;
//! 3. the vault's held anchor advances to the head, never backwards
//!    ([`crate::token::Vault::advance_held_anchor`]);
//! 4. the signed anchor is recorded in the database, and the transaction commits.
//!
//! The vault is written first. Interrupted between 3 and 4, the vault holds record N while the
//! database has no signed anchor of N: N was committed before this transaction took the head, so
//! `audit verify` finds it with the held hash and reports no break, and the next anchoring
//! records the missing signed anchor. Writing the database first would leave, in that window,
//! records anchored only in the database, which is what an attacker with the file deletes. So
//! the vault is never behind the newest signed anchor, and `audit verify` reports a signed anchor
//! newer than the vault's as a rolled-back vault.

use super::Station;
use super::hsm::Hsm;
use crate::audit::{
    Anchor, AnchorBreak, AuditRecord, HELD_BY_VAULT, anchor_message, verify_anchors, verify_chain,
    verify_chain_after, verify_held_anchor,
};
use crate::clock::format_utc;
use crate::store::{StoreError, Tx};
use crate::token::HeldAnchor;

/// Errors of anchoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The HSM context (vault token, station PIN) could not be opened.
    #[error(transparent)]
    Hsm(#[from] super::hsm::HsmError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault failed.
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    /// The trail does not extend what the vault holds (or is broken): it is not signed.
    #[error("refusing to anchor the audit trail: {0}; run `keystation audit verify`")]
    Refused(String),
}

/// What an anchoring did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AnchorOutcome {
    /// The head is anchored now: this call signed it, or brought the vault's held anchor up to
    /// an anchor signed before.
    Anchored(Anchor),
    /// Nothing new to anchor: the head was anchored already, in the database and in the vault.
    NothingNew {
        /// The head.
        seq: i64,
        /// Its hash.
        head_hash: String,
    },
}

impl Station {
    /// True when the head is not covered by the newest signed anchor (a cheap look at the
    /// database; commands call it before opening the vault for nothing).
    pub async fn audit_needs_anchor(&self) -> Result<bool, StoreError> {
        let (seq, hash) = self.store.audit_head().await?;
        let latest = self.store.latest_anchor().await?;
        Ok(seq > 0 && latest.is_none_or(|a| a.seq != seq || a.head_hash != hash))
    }

    /// Anchors the head at the end of a command that may have changed state, opening the vault
    /// only when the head is not anchored yet. The caller reports a failure as a warning: the
    /// command's own work is committed, and the next command anchors the same head.
    pub async fn anchor_after_change(&self) -> Result<(), AnchorError> {
        if !self.audit_needs_anchor().await? {
            return Ok(());
        }
        let hsm = self.open_hsm().await?;
        self.anchor_audit(&hsm).await.map(|_| ())
    }

    /// Anchors the head unless the newest signed anchor covers it already: for long-running
    /// jobs (the delivery worker, a desk) after each unit of work. A failure is logged, not
    /// returned: the work is committed, and the next anchoring covers the same head.
    pub async fn anchor_if_needed(&self, hsm: &Hsm) {
        let result = match self.audit_needs_anchor().await {
            Ok(true) => self.anchor_audit(hsm).await.map(|_| ()),
            Ok(false) => Ok(()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "the audit trail could not be anchored");
        }
    }

    /// Anchors the current chain head (see the module docs for the checks and the order of the
    /// writes).
    pub async fn anchor_audit(&self, hsm: &Hsm) -> Result<AnchorOutcome, AnchorError> {
        let mut tx = self.begin_write().await?;
        let outcome = self.anchor_in(&mut tx, hsm).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn anchor_in(&self, tx: &mut Tx, hsm: &Hsm) -> Result<AnchorOutcome, AnchorError> {
        let (seq, head_hash) = tx.audit_head();
        let held = crate::station::hsm::blocking(|| hsm.vault()?.held_anchor())?;
        self.check_extends_held(tx, held.as_ref(), (seq, &head_hash))
            .await?;
        let existing = tx.anchor_at(seq).await?;
        let vault_current = held.as_ref().is_some_and(|h| h.seq == seq);
        if seq == 0 || (vault_current && existing.is_some()) {
            return Ok(AnchorOutcome::NothingNew { seq, head_hash });
        }
        let anchor = match existing {
            // Signed before the vault held anchors, or by an interrupted run: the vault catches up.
            Some(a) => a,
            None => {
                let at = format_utc(self.clock.now());
                let msg = anchor_message(seq, &head_hash, &at);
                let key = self
                    .store
                    .material("audit_anchor_spki")
                    .await?
                    .and_then(|h| hex::decode(h).ok());
                let signature =
                    crate::station::hsm::blocking(|| hsm.sign_anchor(key.as_deref(), &msg))?;
                Anchor {
                    seq,
                    head_hash: head_hash.clone(),
                    at,
                    actor: format!("station:{}", self.config.station.id),
                    signature: hex::encode(signature),
                }
            }
        };
        let next = HeldAnchor {
            seq,
            head_hash,
            at: anchor.at.clone(),
        };
        crate::station::hsm::blocking(|| hsm.vault()?.advance_held_anchor(&next))?;
        crate::failpoint!("anchor.after_vault");
        tx.insert_anchor(&anchor).await?;
        Ok(AnchorOutcome::Anchored(anchor))
    }

    /// Refuses a head that does not extend the vault's held anchor. Only the records from the
    /// held one on are read: the held hash covers everything before it. With nothing held yet
    /// (a new station, or one from before the vault kept its anchor) the whole trail and its
    /// signed anchors are checked once.
    async fn check_extends_held(
        &self,
        tx: &mut Tx,
        held: Option<&HeldAnchor>,
        head: (i64, &str),
    ) -> Result<(), AnchorError> {
        let refused = |e: &dyn std::fmt::Display| AnchorError::Refused(e.to_string());
        match held {
            Some(h) => {
                let tail: Vec<AuditRecord> = tx.audit_records_from(h.seq).await?;
                if tail.is_empty() {
                    return Err(refused(&AnchorBreak::Truncated {
                        last: head.0.min(h.seq - 1),
                        anchored: h.seq,
                        anchored_hash: h.head_hash.clone(),
                        holder: HELD_BY_VAULT,
                    }));
                }
                verify_held_anchor(&tail, &[], Some((h.seq, &h.head_hash)))
                    .map_err(|e| refused(&e))?;
                let rest = tail.get(1..).unwrap_or_default();
                verify_chain_after(rest, (h.seq, &h.head_hash), head).map_err(|e| refused(&e))
            }
            None => {
                let records = tx.audit_records_from(1).await?;
                verify_chain(&records, head).map_err(|e| refused(&e))?;
                let anchors = self.store.anchors().await?;
                if anchors.is_empty() {
                    return Ok(());
                }
                let spki = self
                    .store
                    .material("audit_anchor_spki")
                    .await?
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(|| {
                        AnchorError::Refused(
                            "anchors exist but the station has no anchor key on record".into(),
                        )
                    })?;
                verify_anchors(&records, &anchors, &spki).map_err(|e| refused(&e))
            }
        }
    }
}
