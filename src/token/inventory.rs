//! Everything on a token, read back: each object a session sees, with the attributes an audit of
//! the token needs (class, label, id, application, value, and for keys their usages and
//! protection). Judging what is found is the caller's business (`keystation check`).

use super::TokenError;
use super::backend::ObjectQuery;
use super::keys::{KeyUsage, PrivateKeyAttributes, SecretKeyKind};
use super::session::TokenSession;
use std::fmt;

/// The class of an object found on a token, including classes the station never writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `CKO_DATA`.
    Data,
    /// `CKO_CERTIFICATE`.
    Certificate,
    /// `CKO_PUBLIC_KEY`.
    PublicKey,
    /// `CKO_PRIVATE_KEY`.
    PrivateKey,
    /// `CKO_SECRET_KEY`.
    SecretKey,
    /// Any other class (its `CKO_` value).
    Other(u64),
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectKind::Data => f.write_str("data object"),
            ObjectKind::Certificate => f.write_str("certificate"),
            ObjectKind::PublicKey => f.write_str("public key"),
            ObjectKind::PrivateKey => f.write_str("private key"),
            ObjectKind::SecretKey => f.write_str("secret key"),
            ObjectKind::Other(c) => write!(f, "object of class {c:#x}"),
        }
    }
}

/// The type of a key found on a token (`CKA_KEY_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `CKK_EC`.
    Ec,
    /// `CKK_RSA`.
    Rsa,
    /// `CKK_GENERIC_SECRET` (the vault's HMAC keys).
    GenericSecret,
    /// `CKK_AES`.
    Aes,
    /// SM2: the vendor-defined key type the module's vendor-table entry names.
    Sm2,
    /// Any other type (its `CKK_` value).
    Other(u64),
}

/// One object on a token, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenObject {
    /// Its class.
    pub kind: ObjectKind,
    /// `CKA_LABEL` (lossy UTF-8; empty when absent).
    pub label: String,
    /// `CKA_ID` (empty when absent; data objects have none).
    pub id: Vec<u8>,
    /// `CKA_APPLICATION` of a data object.
    pub application: Option<String>,
    /// `CKA_PRIVATE`.
    pub private: bool,
    /// `CKA_VALUE` of a certificate or data object (keys' values are never read).
    pub value: Option<Vec<u8>>,
    /// The type of a key.
    pub key_type: Option<KeyKind>,
    /// The usages of a key.
    pub usage: Option<KeyUsage>,
    /// The protection attributes of a private key.
    pub protection: Option<PrivateKeyAttributes>,
}

impl TokenObject {
    /// An object of class `kind` with `label` and `id` and no other attribute read yet (public,
    /// no value, not a key): where reading an object's attributes starts.
    pub fn new(kind: ObjectKind, label: impl Into<String>, id: impl Into<Vec<u8>>) -> TokenObject {
        TokenObject {
            kind,
            label: label.into(),
            id: id.into(),
            application: None,
            private: false,
            value: None,
            key_type: None,
            usage: None,
            protection: None,
        }
    }

    /// The usages the station gives a key of this class and type, the only ones it may carry:
    /// an asymmetric key signs (private half) or verifies (public half); an HMAC key signs and
    /// verifies MACs; an AES key encrypts and decrypts. `None` for anything else (not a key, or
    /// a key of a type the station never makes).
    pub fn required_usage(&self) -> Option<KeyUsage> {
        match (self.kind, self.key_type?) {
            (ObjectKind::PrivateKey, KeyKind::Ec | KeyKind::Rsa | KeyKind::Sm2) => {
                Some(KeyUsage::SIGN)
            }
            (ObjectKind::PublicKey, KeyKind::Ec | KeyKind::Rsa | KeyKind::Sm2) => {
                Some(KeyUsage::VERIFY)
            }
            (ObjectKind::SecretKey, KeyKind::GenericSecret) => {
                Some(SecretKeyKind::HmacSha256.usage())
            }
            (ObjectKind::SecretKey, KeyKind::Aes) => Some(SecretKeyKind::Aes256.usage()),
            _ => None,
        }
    }

    /// How a message names the object: `data object "seal:company"`, `certificate (CKA_ID 01ab)`.
    pub fn describe(&self) -> String {
        let mut out = self.kind.to_string();
        if self.label.is_empty() {
            out.push_str(" (unlabelled)");
        } else {
            out.push_str(&format!(" {:?}", self.label));
        }
        if !self.id.is_empty() {
            out.push_str(&format!(" CKA_ID {}", hex::encode(&self.id)));
        }
        if let Some(app) = &self.application {
            out.push_str(&format!(" application {app:?}"));
        }
        if let Some(v) = &self.value
            && self.kind == ObjectKind::Data
        {
            out.push_str(&format!(" ({} bytes)", v.len()));
        }
        out
    }
}

impl TokenSession {
    /// Every object this session sees (public ones without a login, private ones too after a
    /// user login), in the order label, class.
    pub fn inventory(&self) -> Result<Vec<TokenObject>, TokenError> {
        let handles = self.backend.find(&ObjectQuery::default())?;
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(self.backend.object(h)?);
        }
        out.sort_by(|a, b| (&a.label, a.kind.to_string()).cmp(&(&b.label, b.kind.to_string())));
        Ok(out)
    }
}
