#![allow(clippy::unwrap_used)]
use super::*;
use crate::random::SeededRandom;
use der::Tagged;

/// A signing key pair as a token holds one: (scalar, point).
fn signing_key(random: &dyn Random) -> (Vec<u8>, Vec<u8>) {
    let k = EncryptionKeyPair::generate(random).unwrap();
    (
        k.expose_secret_for_escrow().to_vec(),
        k.public_point().to_vec(),
    )
}

#[test]
fn the_token_side_decoder_opens_the_envelope_to_the_same_key_pair() {
    let random = SeededRandom::new(1);
    let (signing_secret, signing_point) = signing_key(&random);
    let enc = EncryptionKeyPair::generate(&random).unwrap();
    let env = enc.envelope_to(&signing_point, &random).unwrap();
    // kstoken's decoder is a separate implementation (the token's), on the signing key.
    let opened = kstoken::envelope::open(&signing_secret, &env).unwrap();
    assert_eq!(&opened.secret[..], enc.expose_secret_for_escrow());
    assert_eq!(opened.point, enc.public_point());
    // Another token's signing key cannot open it.
    let (other, _) = signing_key(&random);
    assert!(kstoken::envelope::open(&other, &env).is_err());
}

#[test]
fn the_envelope_has_the_gbt_35276_shape() {
    let random = SeededRandom::new(2);
    let (_, signing_point) = signing_key(&random);
    let enc = EncryptionKeyPair::generate(&random).unwrap();
    let env = enc.envelope_to(&signing_point, &random).unwrap();
    let d = Sm2EnvelopedKey::from_der(&env).unwrap();
    assert_eq!(d.sym_alg_id.algorithm.to_string(), "1.2.156.10197.1.104.1");
    assert!(d.sym_alg_id.parameters.is_none());
    assert_eq!(d.sm2_public_key.as_bytes(), Some(enc.public_point()));
    assert_eq!(d.sm2_public_key.as_bytes().unwrap().len(), 65);
    let private = d.sm2_encrypted_private_key.as_bytes().unwrap();
    assert_eq!(private.len(), 32);
    assert_ne!(
        private,
        enc.expose_secret_for_escrow(),
        "the scalar is encrypted"
    );
    // SM2Cipher (GM/T 0009): SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (32),
    // cipherText OCTET STRING (16: the SM4 key) }.
    let c = d.sym_encrypted_key;
    assert_eq!(c.tag(), der::Tag::Sequence);
    let mut r = der::SliceReader::new(c.value()).unwrap();
    use der::Reader;
    let _x = der::asn1::UintRef::decode(&mut r).unwrap();
    let _y = der::asn1::UintRef::decode(&mut r).unwrap();
    let hash = <&der::asn1::OctetStringRef>::decode(&mut r).unwrap();
    let ct = <&der::asn1::OctetStringRef>::decode(&mut r).unwrap();
    assert!(r.is_finished());
    assert_eq!(hash.as_bytes().len(), 32);
    assert_eq!(ct.as_bytes().len(), 16);
}

#[test]
fn a_tampered_envelope_is_refused_by_the_token_side() {
    let random = SeededRandom::new(3);
    let (signing_secret, signing_point) = signing_key(&random);
    let enc = EncryptionKeyPair::generate(&random).unwrap();
    let env = enc.envelope_to(&signing_point, &random).unwrap();
    for i in 0..env.len() {
        let mut t = env.clone();
        t[i] ^= 0x80;
        assert!(
            kstoken::envelope::open(&signing_secret, &t).is_err(),
            "byte {i} flipped"
        );
    }
}

#[test]
fn an_escrow_copy_gives_back_the_same_key_and_bad_ones_are_refused() {
    let random = SeededRandom::new(4);
    let enc = EncryptionKeyPair::generate(&random).unwrap();
    let again = EncryptionKeyPair::from_escrow(enc.expose_secret_for_escrow()).unwrap();
    assert_eq!(again.public_point(), enc.public_point());
    assert!(matches!(
        EncryptionKeyPair::from_escrow(&[0u8; 32]),
        Err(EnvelopeError::Escrow)
    ));
    assert!(matches!(
        EncryptionKeyPair::from_escrow(&[1u8; 31]),
        Err(EnvelopeError::Escrow)
    ));
    assert!(!format!("{enc:?}").contains(&hex::encode(enc.expose_secret_for_escrow())));
    assert!(matches!(
        enc.envelope_to(&[4u8; 65], &random),
        Err(EnvelopeError::SigningKey)
    ));
}

#[test]
fn keys_and_envelopes_come_from_the_injected_source() {
    let a = EncryptionKeyPair::generate(&SeededRandom::new(9)).unwrap();
    let b = EncryptionKeyPair::generate(&SeededRandom::new(9)).unwrap();
    let c = EncryptionKeyPair::generate(&SeededRandom::new(10)).unwrap();
    assert_eq!(a.public_point(), b.public_point());
    assert_ne!(a.public_point(), c.public_point());
}
