//! SM2 encryption keys: decryption (`C_Decrypt`) and the import of an encryption key pair sent
//! to the token as an `SM2EnvelopedKey` (`C_UnwrapKey`), as a Chinese USB key imports the key
//! pair of its dual certificate (GM/T 0016 `SKF_ImportECCKeyPair`, `ENVELOPEDKEYBLOB`).
//!
//! The envelope (GB/T 35276 §7.4, GM/T 0009):
//!
//! ```text
//! SM2EnvelopedKey ::= SEQUENCE {
//!   symAlgID               AlgorithmIdentifier,  -- SM4-ECB 1.2.156.10197.1.104.1
//!   symEncryptedKey        SM2Cipher,            -- the SM4 key, SM2-encrypted to the
//!                                                -- token's SIGNING public key
//!   sm2PublicKey           BIT STRING,           -- 04 ‖ x ‖ y of the encryption key
//!   sm2EncryptedPrivateKey BIT STRING }          -- its 32-byte scalar, SM4-ECB encrypted
//! SM2Cipher ::= SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (32),
//!                          cipherText OCTET STRING }
//! ```
//!
//! Mechanism codes: TASS's header and xipki give `0x80008200` as SM2 encryption
//! ([`CKM_SM2_ENCRYPT`]); no vendor document found here gives a PKCS#11 code for the envelope
//! import, so [`CKM_SM2_ENVELOPE_UNWRAP`] is this token's own, next to it. Both are in
//! `hsm-config/pkcs11-vendors.toml` for this module only.
//!
//! # Security notes
//! The envelope is opened with the SIGNING private key, which never leaves the token; the SM4
//! key and the opened scalar live only in zeroizing buffers; an envelope whose private key does
//! not match its public key is refused (a tampered or mis-addressed envelope never becomes a key).

use cryptoki_sys::{CK_MECHANISM_TYPE, CK_RV, CKR_ENCRYPTED_DATA_INVALID, CKR_WRAPPED_KEY_INVALID};
use der::asn1::{Any, BitString, ObjectIdentifier};
use der::{Decode, Sequence, Tagged};
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm4::cipher::{Array, BlockCipherDecrypt, KeyInit};
use zeroize::Zeroizing;

/// TASS `CKM_SM2_RAW` (xipki `CKM_VENDOR_SM2_ENCRYPT`): SM2 encryption; the ciphertext is the
/// GM/T 0009 DER `SM2Cipher` (as OpenSSL's `pkeyutl -encrypt` writes it).
pub const CKM_SM2_ENCRYPT: CK_MECHANISM_TYPE = 0x8000_8200;
/// This token's code for importing an `SM2EnvelopedKey` with `C_UnwrapKey` (the unwrapping key
/// is the signing private key the envelope was made for).
pub const CKM_SM2_ENVELOPE_UNWRAP: CK_MECHANISM_TYPE = 0x8000_8201;

/// SM4-ECB, 1.2.156.10197.1.104.1 (GM/T 0006).
pub const SM4_ECB: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.104.1");

/// `AlgorithmIdentifier`.
#[derive(Debug, Clone, Sequence)]
pub struct SymAlgId {
    /// The algorithm.
    pub algorithm: ObjectIdentifier,
    /// Its parameters (none for SM4-ECB; NULL accepted).
    pub parameters: Option<Any>,
}

/// `SM2EnvelopedKey`, as decoded.
#[derive(Debug, Clone, Sequence)]
pub struct Sm2EnvelopedKey {
    /// `symAlgID`.
    pub sym_alg_id: SymAlgId,
    /// `symEncryptedKey`: the DER `SM2Cipher`, kept whole for the SM2 decryption.
    pub sym_encrypted_key: Any,
    /// `sm2PublicKey`.
    pub sm2_public_key: BitString,
    /// `sm2EncryptedPrivateKey`.
    pub sm2_encrypted_private_key: BitString,
}

/// An opened envelope: the encryption key pair.
#[derive(Debug)]
pub struct OpenedKey {
    /// `04 ‖ x ‖ y`.
    pub point: Vec<u8>,
    /// The 32-byte private scalar.
    pub secret: Zeroizing<Vec<u8>>,
}

/// SM2 decryption of a DER `SM2Cipher` with the private scalar `secret`.
pub fn decrypt(secret: &[u8], cipher_der: &[u8]) -> Result<Zeroizing<Vec<u8>>, CK_RV> {
    let key =
        sm2::pke::DecryptingKey::from_slice(secret).map_err(|_| CKR_ENCRYPTED_DATA_INVALID)?;
    key.decrypt_der(cipher_der)
        .map(Zeroizing::new)
        .map_err(|_| CKR_ENCRYPTED_DATA_INVALID)
}

/// Opens `envelope` with the signing private scalar `signing_secret`: the SM4 key is
/// SM2-decrypted, the private scalar SM4-ECB decrypted, and checked against the public key.
/// Any failure is `CKR_WRAPPED_KEY_INVALID`.
pub fn open(signing_secret: &[u8], envelope: &[u8]) -> Result<OpenedKey, CK_RV> {
    let bad = |_| CKR_WRAPPED_KEY_INVALID;
    let env = Sm2EnvelopedKey::from_der(envelope).map_err(bad)?;
    if env.sym_alg_id.algorithm != SM4_ECB {
        return Err(CKR_WRAPPED_KEY_INVALID);
    }
    if let Some(p) = &env.sym_alg_id.parameters
        && p.tag() != der::Tag::Null
    {
        return Err(CKR_WRAPPED_KEY_INVALID);
    }
    let cipher_der = der::Encode::to_der(&env.sym_encrypted_key).map_err(bad)?;
    let sym_key = decrypt(signing_secret, &cipher_der).map_err(|_| CKR_WRAPPED_KEY_INVALID)?;
    if sym_key.len() != 16 {
        return Err(CKR_WRAPPED_KEY_INVALID);
    }
    let encrypted = env
        .sm2_encrypted_private_key
        .as_bytes()
        .ok_or(CKR_WRAPPED_KEY_INVALID)?;
    if encrypted.len() != 32 {
        return Err(CKR_WRAPPED_KEY_INVALID);
    }
    let sm4 = sm4::Sm4::new(&Array::from(
        <[u8; 16]>::try_from(&sym_key[..]).map_err(|_| CKR_WRAPPED_KEY_INVALID)?,
    ));
    let mut secret = Zeroizing::new(encrypted.to_vec());
    for block in secret.chunks_exact_mut(16) {
        let b: &mut Array<u8, _> = block.try_into().map_err(|_| CKR_WRAPPED_KEY_INVALID)?;
        sm4.decrypt_block(b);
    }
    let sk = sm2::SecretKey::from_slice(&secret).map_err(|_| CKR_WRAPPED_KEY_INVALID)?;
    let point = sk.public_key().to_sec1_point(false).as_bytes().to_vec();
    if Some(point.as_slice()) != env.sm2_public_key.as_bytes() {
        return Err(CKR_WRAPPED_KEY_INVALID);
    }
    Ok(OpenedKey { point, secret })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use der::Encode;
    use sm2::elliptic_curve::Generate;
    use sm2::elliptic_curve::common::getrandom::SysRng;
    use sm4::cipher::BlockCipherEncrypt;

    /// An envelope made here, independently of keystation's encoder: (signing key, envelope,
    /// encryption key).
    fn envelope_for(
        signing: &sm2::SecretKey,
        enc: &sm2::SecretKey,
        sym: [u8; 16],
    ) -> Sm2EnvelopedKey {
        let cipher = sm2::pke::EncryptingKey::new(signing.public_key())
            .encrypt_der(&mut SysRng, &sym)
            .unwrap();
        let sm4 = sm4::Sm4::new(&Array::from(sym));
        let mut private = enc.to_bytes().to_vec();
        for block in private.chunks_exact_mut(16) {
            let b: &mut Array<u8, _> = block.try_into().unwrap();
            sm4.encrypt_block(b);
        }
        Sm2EnvelopedKey {
            sym_alg_id: SymAlgId {
                algorithm: SM4_ECB,
                parameters: None,
            },
            sym_encrypted_key: Any::from_der(&cipher).unwrap(),
            sm2_public_key: BitString::from_bytes(enc.public_key().to_sec1_point(false).as_bytes())
                .unwrap(),
            sm2_encrypted_private_key: BitString::from_bytes(&private).unwrap(),
        }
    }

    #[test]
    fn an_envelope_opens_with_the_signing_key_only() {
        let signing = sm2::SecretKey::generate();
        let enc = sm2::SecretKey::generate();
        let env = envelope_for(&signing, &enc, [7; 16]).to_der().unwrap();
        let opened = open(&signing.to_bytes(), &env).unwrap();
        assert_eq!(&opened.secret[..], &enc.to_bytes()[..]);
        assert_eq!(
            opened.point,
            enc.public_key().to_sec1_point(false).as_bytes()
        );
        let other = sm2::SecretKey::generate();
        assert_eq!(
            open(&other.to_bytes(), &env).map(|_| ()),
            Err(CKR_WRAPPED_KEY_INVALID)
        );
    }

    #[test]
    fn a_tampered_envelope_is_refused() {
        let signing = sm2::SecretKey::generate();
        let enc = sm2::SecretKey::generate();
        let env = envelope_for(&signing, &enc, [9; 16]).to_der().unwrap();
        // Every byte flipped in turn: none gives a key (a DER change, a bad C3, a private key
        // not matching its public key, or another algorithm).
        for i in 0..env.len() {
            let mut t = env.clone();
            t[i] ^= 0x01;
            assert!(open(&signing.to_bytes(), &t).is_err(), "byte {i} flipped");
        }
        // A public key that is not the private key's.
        let mut mismatched = envelope_for(&signing, &enc, [9; 16]);
        let stranger = sm2::SecretKey::generate();
        mismatched.sm2_public_key =
            BitString::from_bytes(stranger.public_key().to_sec1_point(false).as_bytes()).unwrap();
        assert_eq!(
            open(&signing.to_bytes(), &mismatched.to_der().unwrap()).map(|_| ()),
            Err(CKR_WRAPPED_KEY_INVALID)
        );
    }

    #[test]
    fn sm2_decryption_reads_gmt_0009_der() {
        let k = sm2::SecretKey::generate();
        let c = sm2::pke::EncryptingKey::new(k.public_key())
            .encrypt_der(&mut SysRng, b"plaintext")
            .unwrap();
        assert_eq!(&decrypt(&k.to_bytes(), &c).unwrap()[..], b"plaintext");
        let mut bad = c.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            decrypt(&k.to_bytes(), &bad).map(|_| ()),
            Err(CKR_ENCRYPTED_DATA_INVALID)
        );
    }
}
