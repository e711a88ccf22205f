//! An rcgen `SigningKey` whose private key stays on the token.
//!
//! rcgen builds the to-be-signed bytes (CSR, certificate, CRL) and hands them to
//! [`TokenSigner`]'s `rcgen::SigningKey::sign`; the token signs. ECDSA: the SHA-256 digest is computed here and signed
//! with `CKM_ECDSA` (SoftHSM and many USB keys lack `CKM_ECDSA_SHA256`), and the raw `r || s`
//! the token returns is re-encoded as the DER `ECDSA-Sig-Value` X.509 expects. RSA:
//! `CKM_SHA256_RSA_PKCS` returns the PKCS#1 v1.5 signature as is. SM2: the module's vendor
//! mechanism ([`super::vendor`]) gets the message when the module computes `Z_A ‖ M` itself, or
//! `e = SM3(Z_A ‖ M)` computed here (default distinguishing ID) when it wants the caller's
//! digest; a raw `r ‖ s` is re-encoded as DER (GB/T 35276).
//!
//! rcgen knows no SM2: for an SM2 key, [`rcgen::PublicKeyData::algorithm`] answers P-256 as a
//! placeholder, and only the CA's re-stamping path (`crate::ca::sm2_stamp`) may hand rcgen an
//! SM2 key; it replaces the algorithm identifiers before the token signs.

use super::TokenError;
use super::backend::{ObjectRef, SignMechanism};
use super::keys::KeyPairInfo;
use super::session::TokenSession;
use super::vendor::{DigestBy, SignatureEncoding};
use crate::config::KeyAlgorithm;
use der::Encode;
use der::asn1::UintRef;
use sha2::{Digest, Sha256};
use std::fmt;

/// A token key usable wherever rcgen wants a `SigningKey`.
pub struct TokenSigner {
    session: TokenSession,
    key: ObjectRef,
    public: KeyPairInfo,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("token", &self.session.name())
            .field("key_id", &hex::encode(&self.public.id))
            .finish()
    }
}

#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Re-encodes a raw `r || s` ECDSA signature as DER.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, der::Error> {
    let (r, s) = raw.split_at(raw.len() / 2);
    EcdsaSigValue {
        r: UintRef::new(r)?,
        s: UintRef::new(s)?,
    }
    .to_der()
}

impl TokenSigner {
    /// A signer over the private key with `public.id` in a user-logged-in `session`.
    pub fn new(session: TokenSession, public: KeyPairInfo) -> Result<TokenSigner, TokenError> {
        let key = session
            .find_private_key(&public.id)?
            .ok_or_else(|| TokenError::Unexpected {
                token: session.name(),
                what: format!("no private key with CKA_ID {}", hex::encode(&public.id)),
            })?;
        Ok(TokenSigner {
            session,
            key,
            public,
        })
    }

    /// A signer over the private key labelled `label` whose public half has the same CKA_ID.
    pub fn by_label(
        session: TokenSession,
        label: &str,
        algorithm: KeyAlgorithm,
    ) -> Result<TokenSigner, TokenError> {
        let key =
            session
                .find_private_key_by_label(label)?
                .ok_or_else(|| TokenError::Unexpected {
                    token: session.name(),
                    what: format!("no private key labelled {label:?}"),
                })?;
        let id = session.key_id(key)?;
        let public = session.public_key(&id, algorithm)?;
        Ok(TokenSigner {
            session,
            key,
            public,
        })
    }

    /// The key pair's public facts.
    pub fn public(&self) -> &KeyPairInfo {
        &self.public
    }

    /// The session (to write the resulting certificate on the same token).
    pub fn session(&self) -> &TokenSession {
        &self.session
    }

    /// True while the signer's session is open and logged in.
    pub fn is_alive(&self) -> bool {
        self.session.is_user_session()
    }

    /// Gives the session back.
    pub fn into_session(self) -> TokenSession {
        self.session
    }

    /// Signs `msg` on the token; X.509 signature encoding.
    pub fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.session.sign_x509(self.key, self.public.algorithm, msg)
    }
}

impl TokenSession {
    /// Signs `msg` with `key` on the token, returning the signature as X.509 encodes it.
    pub(crate) fn sign_x509(
        &self,
        key: ObjectRef,
        algorithm: KeyAlgorithm,
        msg: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let digest = Sha256::digest(msg);
                let raw = self.backend.sign(key, SignMechanism::Ecdsa, &digest)?;
                if raw.len() != 64 {
                    return Err(TokenError::Unexpected {
                        token: self.name(),
                        what: format!("ECDSA P-256 signature of {} bytes", raw.len()),
                    });
                }
                ecdsa_raw_to_der(&raw).map_err(|e| TokenError::Unexpected {
                    token: self.name(),
                    what: format!("encoding the ECDSA signature: {e}"),
                })
            }
            KeyAlgorithm::Rsa2048 => self.backend.sign(key, SignMechanism::Sha256RsaPkcs, msg),
            KeyAlgorithm::Sm2 => self.sign_sm2(key, msg),
        }
    }

    /// SM2-with-SM3 over `msg` through the module's vendor codes; DER.
    fn sign_sm2(&self, key: ObjectRef, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        let unexpected = |what: String| TokenError::Unexpected {
            token: self.name(),
            what,
        };
        let codes = self.backend.sm2_codes().cloned().ok_or_else(|| {
            unexpected(
                "its PKCS#11 module has no SM2 entry in the vendor table (hsm-config/pkcs11-vendors.toml)"
                    .into(),
            )
        })?;
        let signature = match codes.digest {
            DigestBy::Module => self.backend.sign(key, SignMechanism::Sm2, msg)?,
            DigestBy::Caller => {
                let id = self.key_id(key)?;
                let point = self.public_key(&id, KeyAlgorithm::Sm2)?.public_raw;
                let e = crate::sm2::message_digest(&point, msg)
                    .map_err(|e| unexpected(e.to_string()))?;
                self.backend.sign(key, SignMechanism::Sm2, &e)?
            }
        };
        match codes.signature {
            SignatureEncoding::Raw if signature.len() == 64 => ecdsa_raw_to_der(&signature)
                .map_err(|e| unexpected(format!("encoding the SM2 signature: {e}"))),
            SignatureEncoding::Der if signature.first() == Some(&0x30) => Ok(signature),
            encoding => Err(unexpected(format!(
                "an SM2 signature of {} bytes is not the {encoding:?} encoding the vendor table gives",
                signature.len()
            ))),
        }
    }
}

impl rcgen::PublicKeyData for TokenSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public.public_raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.public.algorithm {
            // SM2: a placeholder, see the module docs.
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Sm2 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for TokenSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_message(msg).map_err(|e| {
            // rcgen's error type cannot carry ours; log the cause (no secrets in it) before
            // it collapses into RemoteKeyError.
            tracing::error!(error = %e, "token signing failed");
            rcgen::Error::RemoteKeyError
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn raw_ecdsa_signature_becomes_positive_der_integers() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // high bit set: needs a 0x00 pad to stay positive
        raw[32] = 0x00; // leading zeros must be stripped
        raw[33] = 0x01;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        let s_start = 2 + 2 + 33;
        assert_eq!(der[s_start], 0x02);
        assert_eq!(der[s_start + 1], 31);
    }
}
