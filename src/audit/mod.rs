//! The audit trail's hash chain: canonical bytes of a record and the chain rules.
//!
//! Every record carries `prev_hash` = SHA-256 of the previous record's canonical bytes (the first
//! record's predecessor is 64 zeros), and `hash` = SHA-256 of its own. Editing a record breaks the
//! next record's `prev_hash`; deleting or re-ordering records breaks the sequence or the chain;
//! cutting the tail is caught by the anchor the vault HSM holds (see below); `audit_head` alone
//! only catches a careless cut, since whoever can delete records can also rewrite the head.
//!
//! Anchors: the head (seq, hash) is signed by the installation's anchor key (ECDSA P-256, or
//! SM2) and recorded in the database, and the latest anchored (seq, hash) is also kept in the
//! vault HSM itself, where a database writer cannot roll it back. Every signed anchor must match the chain at its seq; the
//! HSM-held one must too, and records missing after it are a truncation ([`verify_held_anchor`]).
//!
//! Canonical bytes are length-prefixed fields in a fixed order, so no two different records can
//! share them (no delimiter ambiguity), and they are computed from the stored text exactly as
//! stored: nothing is re-serialised before hashing. A record that names the station whose
//! process wrote it (every record since several stations share one installation) is hashed
//! under the tag `keystation-audit-v2` with the station after the actor; an older record, which
//! names none, keeps its `keystation-audit-v1` bytes, so chains written before stay valid and
//! removing a record's station breaks its hash.
//!
//! # Security notes
//! Records name the actor, the operation id, the order, the token serial and the certificate
//! serial, and carry JSON details. They never contain a PIN, an SO PIN or key material: every
//! record is an [`AuditEvent`] whose payload fields are plain data by construction (see
//! [`event`]), and the secret-scan test checks the stored trail.

use sha2::{Digest, Sha256};

#[macro_use]
mod payload;
mod delivery_payload;
pub mod event;
mod notice_payload;
mod operator_payload;
mod service_payload;
mod unlock_payload;

pub use event::AuditEvent;

/// Predecessor hash of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// Who: an operator name, or `station:<id>` for automated work.
    pub actor: String,
    /// The station whose process wrote the record (none on records older than the fleet).
    pub station_id: Option<String>,
    /// The CLI invocation or job this belongs to.
    pub operation_id: String,
    /// What happened (`order.imported`, `order.approved`, `provision.step.done`, ...).
    pub action: String,
    /// The order concerned.
    pub order_no: Option<String>,
    /// The token concerned.
    pub token_serial: Option<String>,
    /// The certificate concerned.
    pub cert_serial: Option<String>,
    /// Further non-secret facts, JSON text.
    pub details: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

fn put(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(b) => {
            buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
            buf.extend_from_slice(b);
        }
        None => buf.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

impl AuditRecord {
    /// The canonical bytes: a version tag, then every field but `hash`, length-prefixed (the
    /// station only in a v2 record, one that names it: see the module docs).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256 + self.details.len());
        match &self.station_id {
            None => buf.extend_from_slice(b"keystation-audit-v1"),
            Some(_) => buf.extend_from_slice(b"keystation-audit-v2"),
        }
        buf.extend_from_slice(&self.seq.to_be_bytes());
        put(&mut buf, Some(self.at.as_bytes()));
        put(&mut buf, Some(self.actor.as_bytes()));
        if let Some(station) = &self.station_id {
            put(&mut buf, Some(station.as_bytes()));
        }
        put(&mut buf, Some(self.operation_id.as_bytes()));
        put(&mut buf, Some(self.action.as_bytes()));
        put(&mut buf, self.order_no.as_deref().map(str::as_bytes));
        put(&mut buf, self.token_serial.as_deref().map(str::as_bytes));
        put(&mut buf, self.cert_serial.as_deref().map(str::as_bytes));
        put(&mut buf, Some(self.details.as_bytes()));
        put(&mut buf, Some(self.prev_hash.as_bytes()));
        buf
    }

    /// SHA-256 of the canonical bytes, lower-case hex.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }
}

/// The first problem found walking a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// A sequence number is missing or out of order (deleted or re-ordered records).
    #[error(
        "audit record at position {position} has seq {found}, expected {expected} (a record was deleted or re-ordered)"
    )]
    Sequence {
        /// 1-based position in the listing.
        position: usize,
        /// The seq expected there.
        expected: i64,
        /// The seq found.
        found: i64,
    },
    /// The record's own hash does not match its content (the record was edited).
    #[error("audit record {seq} was altered: its content no longer matches its hash")]
    Content {
        /// The altered record.
        seq: i64,
    },
    /// The record does not point at its predecessor (the predecessor was edited or replaced).
    #[error("audit record {seq} does not follow record {prev}: the chain is broken there")]
    Link {
        /// The record whose `prev_hash` is wrong.
        seq: i64,
        /// Its predecessor.
        prev: i64,
    },
    /// The chain ends before (or after) the recorded head (records cut from the end).
    #[error("the chain ends at record {last} but the head says {head_seq}")]
    Head {
        /// Last seq found.
        last: i64,
        /// Seq recorded in the head.
        head_seq: i64,
    },
}

/// Walks records in seq order and returns the first break. `head` is the stored head (seq, hash).
pub fn verify_chain(records: &[AuditRecord], head: (i64, &str)) -> Result<(), ChainBreak> {
    verify_chain_after(records, (0, GENESIS_HASH), head)
}

/// Like [`verify_chain`] for the part of a chain after the record `after` (seq, hash): `records`
/// are the records following it, which must link to it and end at `head`.
pub fn verify_chain_after(
    records: &[AuditRecord],
    after: (i64, &str),
    head: (i64, &str),
) -> Result<(), ChainBreak> {
    let mut prev_hash = after.1.to_string();
    let mut last = after.0;
    for (i, r) in records.iter().enumerate() {
        let expected = last + 1;
        if r.seq != expected {
            return Err(ChainBreak::Sequence {
                position: i + 1,
                expected,
                found: r.seq,
            });
        }
        if r.prev_hash != prev_hash {
            // If the predecessor's content was edited, its own hash check failed first; reaching
            // here means a predecessor was swapped wholesale (hash recomputed by the forger).
            return Err(ChainBreak::Link {
                seq: r.seq,
                prev: last,
            });
        }
        let h = r.compute_hash();
        if h != r.hash {
            return Err(ChainBreak::Content { seq: r.seq });
        }
        prev_hash = h;
        last = r.seq;
    }
    if last != head.0 || (last > 0 && prev_hash != head.1) {
        return Err(ChainBreak::Head {
            last,
            head_seq: head.0,
        });
    }
    Ok(())
}

/// A signed anchor of the chain head.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anchor {
    /// The record it covers.
    pub seq: i64,
    /// That record's hash.
    pub head_hash: String,
    /// When it was signed.
    pub at: String,
    /// Who signed (the station).
    pub actor: String,
    /// DER ECDSA signature, hex.
    pub signature: String,
}

/// The bytes an anchor signature covers.
pub fn anchor_message(seq: i64, head_hash: &str, at: &str) -> Vec<u8> {
    let mut m = b"keystation-audit-anchor-v1\0".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    put(&mut m, Some(head_hash.as_bytes()));
    put(&mut m, Some(at.as_bytes()));
    m
}

/// A problem with an anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorBreak {
    /// The anchor's signature does not verify under the station's anchor key.
    #[error("audit anchor at record {seq} has an invalid signature")]
    Signature {
        /// The anchored record.
        seq: i64,
    },
    /// The anchored record has another hash (the trail was rewritten).
    #[error(
        "audit record {seq} no longer matches its signed anchor (the trail was rewritten up to there)"
    )]
    Mismatch {
        /// The anchored record.
        seq: i64,
    },
    /// The record the vault HSM holds as anchored has another hash (the trail was rewritten).
    #[error(
        "audit record {seq} no longer matches the anchor held by the vault HSM (the trail was \
         rewritten up to there)"
    )]
    HeldMismatch {
        /// The anchored record.
        seq: i64,
    },
    /// Records that were anchored are gone from the end of the chain.
    #[error(
        "the trail was truncated: {} ({holder} covers record {anchored}, hash {anchored_hash}, but \
         the chain ends at record {last})",
        missing_records(*last, *anchored)
    )]
    Truncated {
        /// The last record left.
        last: i64,
        /// The last record anchored.
        anchored: i64,
        /// Its hash.
        anchored_hash: String,
        /// Who says so: the vault HSM, or a signed anchor in the database.
        holder: &'static str,
    },
    /// A signed anchor is newer than the one the vault holds: the vault's copy went backwards.
    #[error(
        "the signed anchor of record {seq} is newer than the anchor held by the vault HSM (record \
         {held}): the vault's anchor was rolled back or replaced"
    )]
    HeldBehind {
        /// The newest signed anchor.
        seq: i64,
        /// What the vault holds.
        held: i64,
    },
}

/// The holder named by [`AnchorBreak::Truncated`] for the vault's anchor.
pub const HELD_BY_VAULT: &str = "the anchor held by the vault HSM";

/// "record 18 is missing", "records 15 to 18 are missing".
fn missing_records(last: i64, anchored: i64) -> String {
    if anchored == last + 1 {
        format!("record {anchored} is missing")
    } else {
        format!("records {} to {anchored} are missing", last + 1)
    }
}

/// True when the anchor's signature verifies under the anchor key (SPKI DER): ECDSA P-256 with
/// SHA-256, or SM2-with-SM3 (default distinguishing ID) for an SM2 key.
fn anchor_signature_ok(a: &Anchor, anchor_spki: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    if let Some(point) = crate::sm2::point_of_spki(anchor_spki) {
        return hex::decode(&a.signature).ok().is_some_and(|sig| {
            crate::sm2::verify(point, &anchor_message(a.seq, &a.head_hash, &a.at), &sig).is_ok()
        });
    }
    hex::decode(&a.signature).ok().is_some_and(|sig| {
        x509_parser::x509::SubjectPublicKeyInfo::from_der(anchor_spki).is_ok_and(|(_, spki)| {
            let alg = x509_parser::x509::AlgorithmIdentifier::new(
                x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256,
                None,
            );
            let bits = x509_parser::der_parser::asn1_rs::BitString::new(0, &sig);
            x509_parser::verify::verify_signature(
                &spki,
                &alg,
                &bits,
                &anchor_message(a.seq, &a.head_hash, &a.at),
            )
            .is_ok()
        })
    })
}

/// Verifies every signed anchor (in seq order, the first problem wins) against the anchor key
/// (SPKI DER) and against the chain at its own seq: each anchor, not only the latest, must match
/// the record it covers. `records` are in seq order.
pub fn verify_anchors(
    records: &[AuditRecord],
    anchors: &[Anchor],
    anchor_spki: &[u8],
) -> Result<(), AnchorBreak> {
    let last = records.last().map_or(0, |r| r.seq);
    let mut sorted: Vec<&Anchor> = anchors.iter().collect();
    sorted.sort_by_key(|a| a.seq);
    for a in sorted {
        if !anchor_signature_ok(a, anchor_spki) {
            return Err(AnchorBreak::Signature { seq: a.seq });
        }
        if a.seq > last {
            return Err(AnchorBreak::Truncated {
                last,
                anchored: a.seq,
                anchored_hash: a.head_hash.clone(),
                holder: "a signed anchor",
            });
        }
        if !record_matches(records, a.seq, &a.head_hash) {
            return Err(AnchorBreak::Mismatch { seq: a.seq });
        }
    }
    Ok(())
}

/// True when the record `seq` is there, with `hash` both stored and recomputed.
fn record_matches(records: &[AuditRecord], seq: i64, hash: &str) -> bool {
    records
        .iter()
        .find(|r| r.seq == seq)
        .is_some_and(|r| r.hash == hash && r.compute_hash() == hash)
}

/// Verifies the chain against the anchor the vault HSM holds (seq, hash): the record is there
/// with that hash (else rewritten, or truncated when the chain ends before it), and no signed
/// anchor is newer (the vault is written before the database, so it is never behind).
/// `None`: the vault holds no anchor yet (a station from before the vault kept one).
pub fn verify_held_anchor(
    records: &[AuditRecord],
    anchors: &[Anchor],
    held: Option<(i64, &str)>,
) -> Result<(), AnchorBreak> {
    let Some((held_seq, held_hash)) = held else {
        return Ok(());
    };
    let last = records.last().map_or(0, |r| r.seq);
    if held_seq > last {
        return Err(AnchorBreak::Truncated {
            last,
            anchored: held_seq,
            anchored_hash: held_hash.to_string(),
            holder: HELD_BY_VAULT,
        });
    }
    if held_seq > 0 && !record_matches(records, held_seq, held_hash) {
        return Err(AnchorBreak::HeldMismatch { seq: held_seq });
    }
    match anchors.iter().map(|a| a.seq).max() {
        Some(newest) if newest > held_seq => Err(AnchorBreak::HeldBehind {
            seq: newest,
            held: held_seq,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
