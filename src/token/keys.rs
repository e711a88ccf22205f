//! Keys on a token: key pairs and secret keys generated on it, each with exactly the usages its
//! job needs, and the attributes a key carries, read back.
//!
//! # Security notes
//! Every key gets exactly the usages listed here ([`KeyUsage::SIGN`], [`KeyUsage::VERIFY`],
//! [`SecretKeyKind::usage`]); the backend sets each usage attribute explicitly, true or false,
//! never leaving one to a module's defaults. Private and secret keys are sensitive and never
//! extractable.

pub use super::model::{KeyUsage, PrivateKeyAttributes, SecretKeyKind};

use super::TokenError;
use super::backend::{ObjectQuery, ObjectRef};
use super::model::ObjectClassName;
use super::session::TokenSession;
use crate::config::KeyAlgorithm;
use der::Encode;
use der::asn1::{BitStringRef, Null, ObjectIdentifier};
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A key pair generated on a token.
#[derive(Debug, Clone)]
pub struct KeyPairInfo {
    /// `CKA_ID` shared by the private key, public key and certificate.
    pub id: Vec<u8>,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// The raw public key as rcgen wants it: the uncompressed EC point (P-256 or SM2), or the
    /// PKCS#1 RSAPublicKey DER.
    pub public_raw: Vec<u8>,
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
}

#[derive(der::Sequence)]
struct AlgorithmIdentifier {
    algorithm: ObjectIdentifier,
    parameters: Option<der::Any>,
}

#[derive(der::Sequence)]
struct Spki<'a> {
    algorithm: AlgorithmIdentifier,
    subject_public_key: BitStringRef<'a>,
}

pub(super) fn der_err(what: &str) -> impl Fn(der::Error) -> TokenError + '_ {
    move |e| TokenError::Unexpected {
        token: String::new(),
        what: format!("{what}: {e}"),
    }
}

/// Builds the SPKI DER for a raw public key.
pub fn spki_der(algorithm: KeyAlgorithm, public_raw: &[u8]) -> Result<Vec<u8>, TokenError> {
    let alg = match algorithm {
        KeyAlgorithm::EcdsaP256 => AlgorithmIdentifier {
            algorithm: OID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::encode_from(&OID_P256).map_err(der_err("EC parameters"))?),
        },
        KeyAlgorithm::Sm2 => {
            return crate::sm2::spki_der(public_raw).map_err(|e| TokenError::Unexpected {
                token: String::new(),
                what: e.to_string(),
            });
        }
        KeyAlgorithm::Rsa2048 => AlgorithmIdentifier {
            algorithm: OID_RSA,
            parameters: Some(der::Any::encode_from(&Null).map_err(der_err("RSA parameters"))?),
        },
    };
    Spki {
        algorithm: alg,
        subject_public_key: BitStringRef::from_bytes(public_raw).map_err(der_err("public key"))?,
    }
    .to_der()
    .map_err(der_err("SubjectPublicKeyInfo"))
}

impl TokenSession {
    /// Generates a key pair ON the token for signing: the private key is a token object,
    /// private, sensitive, never extractable, and may only sign; the public key may only verify.
    /// Both halves share `id` and `label`.
    pub fn generate_key_pair(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<KeyPairInfo, TokenError> {
        let (public, _private) = self.backend.generate_key_pair(algorithm, id, label)?;
        let public_raw = self.backend.public_key(public, algorithm)?;
        let spki_der = spki_der(algorithm, &public_raw)?;
        Ok(KeyPairInfo {
            id: id.to_vec(),
            algorithm,
            public_raw,
            spki_der,
        })
    }

    /// Imports a dual certificate's SM2 encryption key pair: `envelope` (an `SM2EnvelopedKey`
    /// made for this token's SIGNING key `signing_id`) is opened ON the token, and the pair it
    /// holds is stored with `id` and `label`, its private key sensitive, never extractable, and
    /// allowed only to decrypt and unwrap. Returns its public key as the token reads it.
    pub fn import_sm2_envelope(
        &self,
        signing_id: &[u8],
        envelope: &[u8],
        id: &[u8],
        label: &str,
    ) -> Result<KeyPairInfo, TokenError> {
        let signing = self.find_private_key(signing_id)?.ok_or_else(|| {
            self.unexpected(&format!(
                "no signing private key with CKA_ID {} to open the envelope",
                hex::encode(signing_id)
            ))
        })?;
        self.backend
            .unwrap_sm2_envelope(signing, envelope, id, label)?;
        self.public_key(id, KeyAlgorithm::Sm2)
    }

    /// SM2 decryption ON the token with the private key `id` (a dual certificate's encryption
    /// key): the plaintext of a GM/T 0009 DER `SM2Cipher`.
    pub fn sm2_decrypt(&self, id: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self.find_private_key(id)?.ok_or_else(|| {
            self.unexpected(&format!("no private key with CKA_ID {}", hex::encode(id)))
        })?;
        self.backend.sm2_decrypt(key, ciphertext)
    }

    /// The private key with `id`, if present (needs a user login).
    pub fn find_private_key(&self, id: &[u8]) -> Result<Option<ObjectRef>, TokenError> {
        let found = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::PrivateKey).id(id))?;
        Ok(found.into_iter().next())
    }

    /// The private key labelled `label`, if present (needs a user login).
    pub fn find_private_key_by_label(&self, label: &str) -> Result<Option<ObjectRef>, TokenError> {
        let found = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::PrivateKey).label(label))?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(self.unexpected(&format!("several private keys are labelled {label:?}"))),
        }
    }

    /// The public key (raw and SPKI) of the key pair with `id`.
    pub fn public_key(
        &self,
        id: &[u8],
        algorithm: KeyAlgorithm,
    ) -> Result<KeyPairInfo, TokenError> {
        let found = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::PublicKey).id(id))?;
        let handle = found.into_iter().next().ok_or_else(|| {
            self.unexpected(&format!("no public key with CKA_ID {}", hex::encode(id)))
        })?;
        let public_raw = self.backend.public_key(handle, algorithm)?;
        Ok(KeyPairInfo {
            id: id.to_vec(),
            algorithm,
            spki_der: spki_der(algorithm, &public_raw)?,
            public_raw,
        })
    }

    /// Reads the security attributes of a private key.
    pub fn private_key_attributes(
        &self,
        key: ObjectRef,
    ) -> Result<PrivateKeyAttributes, TokenError> {
        self.backend
            .object(key)?
            .protection
            .ok_or_else(|| self.unexpected("the object is not a private key"))
    }

    /// Tries to read the private key's value. Must fail on a sensitive key: `Ok(true)` means the
    /// token REFUSED (as it should), `Ok(false)` that it handed out key material.
    pub fn private_value_is_protected(&self, key: ObjectRef) -> Result<bool, TokenError> {
        self.backend.value_is_protected(key)
    }

    /// The key pair labelled `label` when the token has one, or a new one of `algorithm` with
    /// CKA_ID `id` (needs a user login): a station key that another station of the same
    /// installation may already have made on the shared token is reused, never duplicated.
    pub fn find_or_generate_key_pair(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<KeyPairInfo, TokenError> {
        match self.find_private_key_by_label(label)? {
            Some(key) => self.public_key(&self.key_id(key)?, algorithm),
            None => self.generate_key_pair(algorithm, id, label),
        }
    }

    /// The `CKA_ID` of a key (empty when it has none).
    pub(crate) fn key_id(&self, key: ObjectRef) -> Result<Vec<u8>, TokenError> {
        Ok(self.backend.object(key)?.id)
    }

    /// Generates a secret key on the token (vault keys): never extractable, sensitive, with
    /// exactly the usages of its kind.
    pub(crate) fn generate_secret_key(
        &self,
        kind: SecretKeyKind,
        label: &str,
    ) -> Result<ObjectRef, TokenError> {
        self.backend.generate_secret_key(kind, label)
    }

    /// The secret key labelled `label`.
    pub(crate) fn secret_key(&self, label: &str) -> Result<ObjectRef, TokenError> {
        let found = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::SecretKey).label(label))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(self.unexpected(&format!("no secret key labelled {label:?}"))),
            _ => Err(self.unexpected(&format!("several secret keys labelled {label:?}"))),
        }
    }
}
