#![allow(clippy::unwrap_used)]
use super::*;

fn chain(n: i64) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::new();
    let mut prev = GENESIS_HASH.to_string();
    for seq in 1..=n {
        let mut r = AuditRecord {
            seq,
            at: format!("2026-11-24T05:00:0{seq}.000000Z"),
            actor: "op".into(),
            station_id: None,
            operation_id: "op-1".into(),
            action: "order.imported".into(),
            order_no: Some(format!("O{seq}")),
            token_serial: None,
            cert_serial: None,
            details: "{}".into(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        prev = r.hash.clone();
        out.push(r);
    }
    out
}

fn head(c: &[AuditRecord]) -> (i64, String) {
    c.last()
        .map(|r| (r.seq, r.hash.clone()))
        .unwrap_or((0, GENESIS_HASH.into()))
}

#[test]
fn intact_chain_verifies() {
    let c = chain(5);
    let (s, h) = head(&c);
    assert_eq!(verify_chain(&c, (s, &h)), Ok(()));
    assert_eq!(verify_chain(&[], (0, GENESIS_HASH)), Ok(()));
}

#[test]
fn edited_record_is_named() {
    let mut c = chain(5);
    let (s, h) = head(&c);
    c[2].details = "{\"x\":1}".into();
    assert_eq!(
        verify_chain(&c, (s, &h)),
        Err(ChainBreak::Content { seq: 3 })
    );
}

#[test]
fn rehashed_forgery_breaks_the_link() {
    let mut c = chain(5);
    let (s, h) = head(&c);
    c[2].actor = "mallory".into();
    c[2].hash = c[2].compute_hash();
    assert_eq!(
        verify_chain(&c, (s, &h)),
        Err(ChainBreak::Link { seq: 4, prev: 3 })
    );
}

#[test]
fn deleted_and_reordered_records_are_found() {
    let c = chain(5);
    let (s, h) = head(&c);
    let mut deleted = c.clone();
    deleted.remove(1);
    assert!(matches!(
        verify_chain(&deleted, (s, &h)),
        Err(ChainBreak::Sequence {
            expected: 2,
            found: 3,
            ..
        })
    ));
    let mut swapped = c.clone();
    swapped.swap(1, 2);
    assert!(matches!(
        verify_chain(&swapped, (s, &h)),
        Err(ChainBreak::Sequence { .. })
    ));
    let truncated = &c[..4];
    assert_eq!(
        verify_chain(truncated, (s, &h)),
        Err(ChainBreak::Head {
            last: 4,
            head_seq: 5
        })
    );
}

#[test]
fn canonical_bytes_distinguish_none_from_empty() {
    let c = chain(1);
    let mut a = c[0].clone();
    let mut b = c[0].clone();
    a.token_serial = None;
    b.token_serial = Some(String::new());
    assert_ne!(a.canonical_bytes(), b.canonical_bytes());
}

/// A record that names its station hashes under v2; one without keeps its v1 bytes (chains
/// written before the fleet stay valid), and taking a station off a record, or changing it,
/// is caught like any other edit.
#[test]
fn the_station_is_in_the_hash_of_a_record_that_names_it() {
    let v1 = chain(1).remove(0);
    assert!(v1.canonical_bytes().starts_with(b"keystation-audit-v1"));
    let mut v2 = v1.clone();
    v2.station_id = Some("desk-2".into());
    assert!(v2.canonical_bytes().starts_with(b"keystation-audit-v2"));
    v2.hash = v2.compute_hash();
    assert_ne!(v2.hash, v1.hash);
    let (s, h) = (v2.seq, v2.hash.clone());
    assert_eq!(verify_chain(std::slice::from_ref(&v2), (s, &h)), Ok(()));
    for forged in [None, Some("desk-3".to_string()), Some(String::new())] {
        let mut f = v2.clone();
        f.station_id = forged;
        assert_eq!(
            verify_chain(&[f], (s, &h)),
            Err(ChainBreak::Content { seq: 1 })
        );
    }
}

fn anchor_of(r: &AuditRecord) -> Anchor {
    Anchor {
        seq: r.seq,
        head_hash: r.hash.clone(),
        at: "2026-11-24T05:00:00.000000Z".into(),
        actor: "station:t".into(),
        signature: String::new(),
    }
}

#[test]
fn a_chain_extends_its_held_record() {
    let c = chain(6);
    let (s, h) = head(&c);
    assert_eq!(
        verify_chain_after(&c[3..], (3, &c[2].hash), (s, &h)),
        Ok(())
    );
    assert_eq!(verify_chain_after(&[], (6, &h), (s, &h)), Ok(()));
    // The held record itself was re-hashed: its successor no longer links to the held hash.
    assert_eq!(
        verify_chain_after(&c[3..], (3, &c[1].hash), (s, &h)),
        Err(ChainBreak::Link { seq: 4, prev: 3 })
    );
    // Nothing after the held record, but the head claims another hash for it.
    assert!(matches!(
        verify_chain_after(&[], (6, &c[4].hash), (s, &h)),
        Err(ChainBreak::Head { .. })
    ));
}

#[test]
fn the_held_anchor_finds_truncation_and_rewrites() {
    let c = chain(8);
    let held = (8, c[7].hash.clone());
    let held = Some((held.0, held.1.as_str()));
    assert_eq!(verify_held_anchor(&c, &[], held), Ok(()));
    assert_eq!(verify_held_anchor(&c, &[], None), Ok(()));
    let cut = &c[..5];
    let err = verify_held_anchor(cut, &[], held).unwrap_err();
    assert_eq!(
        err,
        AnchorBreak::Truncated {
            last: 5,
            anchored: 8,
            anchored_hash: c[7].hash.clone(),
            holder: HELD_BY_VAULT,
        }
    );
    assert!(
        err.to_string().contains("records 6 to 8 are missing"),
        "{err}"
    );
    let one = verify_held_anchor(&c[..7], &[], held).unwrap_err();
    assert!(one.to_string().contains("record 8 is missing"), "{one}");
    assert!(matches!(
        verify_held_anchor(&[], &[], held),
        Err(AnchorBreak::Truncated { last: 0, .. })
    ));
    let mut rewritten = c.clone();
    rewritten[7].actor = "mallory".into();
    rewritten[7].hash = rewritten[7].compute_hash();
    assert_eq!(
        verify_held_anchor(&rewritten, &[], held),
        Err(AnchorBreak::HeldMismatch { seq: 8 })
    );
}

#[test]
fn a_signed_anchor_past_the_held_one_means_the_vault_went_back() {
    let c = chain(8);
    let held = Some((5, c[4].hash.as_str()));
    assert_eq!(
        verify_held_anchor(&c, &[anchor_of(&c[2]), anchor_of(&c[4])], held),
        Ok(())
    );
    assert_eq!(
        verify_held_anchor(&c, &[anchor_of(&c[4]), anchor_of(&c[6])], held),
        Err(AnchorBreak::HeldBehind { seq: 7, held: 5 })
    );
}

/// An SM2 installation's anchors (its anchor key is SM2, on the CA token): signed SM2-with-SM3
/// with the default distinguishing ID over the anchor message, verified under the key on record;
/// a flipped signature byte, or the signature of another anchor, is a signature break.
#[test]
fn sm2_anchors_verify_under_an_sm2_anchor_key() {
    use sm2::dsa::signature::Signer;
    let key = sm2::dsa::SigningKey::from_slice(crate::sm2::DEFAULT_DISTID, &[0x3c; 32]).unwrap();
    let spki = crate::sm2::spki_der(&key.verifying_key().to_sec1_bytes()).unwrap();
    let c = chain(4);
    let sign = |a: &mut Anchor| {
        let sig: sm2::dsa::Signature = key.sign(&anchor_message(a.seq, &a.head_hash, &a.at));
        a.signature = hex::encode(sig.to_der().as_bytes());
    };
    let mut anchors: Vec<Anchor> = [&c[1], &c[3]].into_iter().map(anchor_of).collect();
    anchors.iter_mut().for_each(sign);
    assert_eq!(verify_anchors(&c, &anchors, &spki), Ok(()));

    let mut flipped = anchors.clone();
    let mut sig = hex::decode(&flipped[1].signature).unwrap();
    let at = sig.len() - 2;
    sig[at] ^= 1;
    flipped[1].signature = hex::encode(sig);
    assert_eq!(
        verify_anchors(&c, &flipped, &spki),
        Err(AnchorBreak::Signature { seq: 4 })
    );
    let mut swapped = anchors.clone();
    swapped[0].signature = anchors[1].signature.clone();
    assert_eq!(
        verify_anchors(&c, &swapped, &spki),
        Err(AnchorBreak::Signature { seq: 2 })
    );
}
