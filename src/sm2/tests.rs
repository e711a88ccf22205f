#![allow(clippy::unwrap_used)]
use super::*;
use sm2::dsa::signature::Signer;
use sm2::dsa::signature::hazmat::PrehashVerifier;

fn key() -> (sm2::dsa::SigningKey, Vec<u8>) {
    let secret = [0x5a; 32];
    let key = sm2::dsa::SigningKey::from_slice(DEFAULT_DISTID, &secret).unwrap();
    let point = key.verifying_key().to_sec1_bytes().to_vec();
    (key, point)
}

#[test]
fn a_der_signature_with_the_default_id_verifies_and_a_flipped_one_does_not() {
    let (key, point) = key();
    let sig: sm2::dsa::Signature = key.sign(b"tbs");
    let der = sig.to_der().as_bytes().to_vec();
    verify(&point, b"tbs", &der).unwrap();
    assert!(verify(&point, b"tbs!", &der).is_err());
    let mut flipped = der.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(verify(&point, b"tbs", &flipped).is_err());
    // Raw r‖s is not what certificates and seals carry.
    assert!(verify(&point, b"tbs", &sig.to_bytes()).is_err());
}

#[test]
fn another_distinguishing_id_does_not_verify() {
    let secret = [0x5a; 32];
    let other = sm2::dsa::SigningKey::from_slice("1234567812345679", &secret).unwrap();
    let point = other.verifying_key().to_sec1_bytes().to_vec();
    let sig: sm2::dsa::Signature = other.sign(b"tbs");
    assert!(verify(&point, b"tbs", sig.to_der().as_bytes()).is_err());
}

#[test]
fn the_caller_digest_is_what_the_signature_signs() {
    // Z_A computed here from the curve constants; the sm2 crate checks the signature against
    // the prehash, so a wrong constant or ENTL fails this.
    let (key, point) = key();
    let sig: sm2::dsa::Signature = key.sign(b"message M");
    let e = message_digest(&point, b"message M").unwrap();
    key.verifying_key().verify_prehash(&e, &sig).unwrap();
    let wrong = message_digest(&point, b"message N").unwrap();
    assert!(key.verifying_key().verify_prehash(&wrong, &sig).is_err());
    assert!(message_digest(&point[1..], b"m").is_err());
}

#[test]
fn the_spki_names_id_ec_public_key_on_sm2p256v1() {
    let (_, point) = key();
    let der = spki_der(&point).unwrap();
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).unwrap();
    assert_eq!(spki.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .as_oid()
        .unwrap();
    assert_eq!(curve.to_id_string(), OID_SM2_CURVE.to_string());
    assert_eq!(spki.subject_public_key.data.as_ref(), point.as_slice());
    assert!(spki_der(&point[1..]).is_err());
}

#[test]
fn the_point_of_an_sm2_spki_and_of_no_other() {
    let (_, point) = key();
    let spki = spki_der(&point).unwrap();
    assert_eq!(point_of_spki(&spki), Some(point.as_slice()));
    // A P-256 SubjectPublicKeyInfo: id-ecPublicKey too, on prime256v1.
    let mut p256 = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    p256.extend_from_slice(&point);
    assert_eq!(point_of_spki(&p256), None);
    assert_eq!(point_of_spki(&spki[..spki.len() - 1]), None);
    let mut longer = spki.clone();
    longer.push(0);
    assert_eq!(point_of_spki(&longer), None);
}
