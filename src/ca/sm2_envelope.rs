//! The key-management side of an SM2 dual certificate (双证书): the encryption key pair is made
//! by the station, not on the token, so that an escrow copy can be kept; it reaches the token as
//! an `SM2EnvelopedKey` encrypted to the token's SIGNING public key (GB/T 35276 §7.4, GM/T 0009,
//! GM/T 0016 `ENVELOPEDKEYBLOB`):
//!
//! ```text
//! SM2EnvelopedKey ::= SEQUENCE {
//!   symAlgID               AlgorithmIdentifier,  -- SM4-ECB 1.2.156.10197.1.104.1, no parameters
//!   symEncryptedKey        SM2Cipher,            -- a random SM4 key, SM2-encrypted
//!   sm2PublicKey           BIT STRING,           -- 04 ‖ x ‖ y
//!   sm2EncryptedPrivateKey BIT STRING }          -- the 32-byte scalar, SM4-ECB encrypted
//! SM2Cipher ::= SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (32), cipherText OCTET STRING }
//! ```
//!
//! Pure: randomness is a parameter ([`Random`]), nothing is read or written.
//!
//! # Security notes
//! The private scalar lives only in [`EncryptionKeyPair`] (zeroized on drop, redacted `Debug`,
//! no `Display` or `Serialize`); [`EncryptionKeyPair::expose_secret_for_escrow`] is the one way
//! out, for the vault to seal the escrow copy. The SM4 key is random per envelope and zeroized.

use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::random::Random;
use der::asn1::{Any, BitString, ObjectIdentifier};
use der::{Decode, Encode, Sequence};
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm4::cipher::{Array, BlockCipherEncrypt, KeyInit};
use std::fmt;
use zeroize::Zeroizing;

/// SM4-ECB, 1.2.156.10197.1.104.1 (GM/T 0006).
pub const SM4_ECB: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.104.1");

/// A dual certificate's encryption key could not be made or enveloped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The random source failed.
    #[error("SM2 encryption key: {0}")]
    Random(#[from] crate::random::RandomError),
    /// The token's signing public key is not an SM2 point (`04 ‖ x ‖ y` on sm2p256v1).
    #[error("SM2 envelope: the token's signing public key is not an SM2 point")]
    SigningKey,
    /// An escrowed private key is not a valid SM2 scalar.
    #[error("SM2 encryption key: the escrowed private key is not a valid SM2 key")]
    Escrow,
    /// SM2 encryption or DER encoding failed.
    #[error("SM2 envelope: {0}")]
    Encoding(String),
}

impl Coded for EnvelopeError {
    fn code(&self) -> ErrorCode {
        match self {
            EnvelopeError::Random(_)
            | EnvelopeError::SigningKey
            | EnvelopeError::Escrow
            | EnvelopeError::Encoding(_) => ec::ENVELOPE,
        }
    }
}

/// The encryption key pair of a dual certificate, made by the station's key management.
pub struct EncryptionKeyPair {
    secret: Zeroizing<[u8; 32]>,
    point: Vec<u8>,
}

impl fmt::Debug for EncryptionKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKeyPair")
            .field("point", &hex::encode(&self.point))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl EncryptionKeyPair {
    /// A new key pair from `random`: 32 random bytes, drawn again in the (2^-32) case they are
    /// not a scalar in [1, n-1].
    pub fn generate(random: &dyn Random) -> Result<EncryptionKeyPair, EnvelopeError> {
        loop {
            let bytes = Zeroizing::new(random.bytes::<32>()?);
            if let Ok(k) = EncryptionKeyPair::from_escrow(&bytes[..]) {
                return Ok(k);
            }
        }
    }

    /// The key pair of an escrowed (unsealed) private scalar.
    pub fn from_escrow(secret: &[u8]) -> Result<EncryptionKeyPair, EnvelopeError> {
        // Exactly 32 bytes: `SecretKey::from_slice` would also take a shorter, padded one.
        if secret.len() != 32 {
            return Err(EnvelopeError::Escrow);
        }
        let sk = sm2::SecretKey::from_slice(secret).map_err(|_| EnvelopeError::Escrow)?;
        let point = sk.public_key().to_sec1_point(false).as_bytes().to_vec();
        let mut s = Zeroizing::new([0u8; 32]);
        s.copy_from_slice(secret);
        Ok(EncryptionKeyPair { secret: s, point })
    }

    /// The public key, `04 ‖ x ‖ y`.
    pub fn public_point(&self) -> &[u8] {
        &self.point
    }

    /// The private scalar, for the vault to seal the escrow copy: the only reason it leaves
    /// this type (the key-management centre keeps the encryption key it issued).
    pub fn expose_secret_for_escrow(&self) -> &[u8] {
        &self.secret[..]
    }

    /// This key pair as an `SM2EnvelopedKey` (DER) for the token whose SIGNING public key is
    /// `signing_point` (`04 ‖ x ‖ y`).
    pub fn envelope_to(
        &self,
        signing_point: &[u8],
        random: &dyn Random,
    ) -> Result<Vec<u8>, EnvelopeError> {
        let to = sm2::pke::EncryptingKey::from_sec1_bytes(signing_point)
            .map_err(|_| EnvelopeError::SigningKey)?;
        let sym = Zeroizing::new(random.bytes::<16>()?);
        let cipher = to
            .encrypt_der(&mut random.curve_rng(), &sym[..])
            .map_err(|_| EnvelopeError::Encoding("SM2 encryption of the SM4 key failed".into()))?;
        let sm4 = sm4::Sm4::new(&Array::from(*sym));
        let mut private = Zeroizing::new(*self.secret);
        for block in private.chunks_exact_mut(16) {
            let b: &mut Array<u8, _> = block
                .try_into()
                .map_err(|_| EnvelopeError::Encoding("SM4 block".into()))?;
            sm4.encrypt_block(b);
        }
        let enc = |e: der::Error| EnvelopeError::Encoding(e.to_string());
        Sm2EnvelopedKey {
            sym_alg_id: SymAlgId {
                algorithm: SM4_ECB,
                parameters: None,
            },
            sym_encrypted_key: Any::from_der(&cipher).map_err(enc)?,
            sm2_public_key: BitString::from_bytes(&self.point).map_err(enc)?,
            sm2_encrypted_private_key: BitString::from_bytes(&private[..]).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }
}

/// `AlgorithmIdentifier` of the envelope's symmetric cipher.
#[derive(Debug, Clone, Sequence)]
struct SymAlgId {
    algorithm: ObjectIdentifier,
    parameters: Option<Any>,
}

/// `SM2EnvelopedKey`.
#[derive(Debug, Clone, Sequence)]
struct Sm2EnvelopedKey {
    sym_alg_id: SymAlgId,
    sym_encrypted_key: Any,
    sm2_public_key: BitString,
    sm2_encrypted_private_key: BitString,
}

#[cfg(test)]
mod tests;
