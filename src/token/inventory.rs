//! Everything on a token, read back: each object a session sees, with the attributes an audit of
//! the token needs (class, label, id, application, value, and for keys their usages and
//! protection). Judging what is found is the caller's business (`keystation check`).

use super::TokenError;
use super::keys::{KeyUsage, PrivateKeyAttributes, SecretKeyKind};
use super::session::TokenSession;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
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

impl From<ObjectClass> for ObjectKind {
    fn from(c: ObjectClass) -> Self {
        match c {
            ObjectClass::DATA => ObjectKind::Data,
            ObjectClass::CERTIFICATE => ObjectKind::Certificate,
            ObjectClass::PUBLIC_KEY => ObjectKind::PublicKey,
            ObjectClass::PRIVATE_KEY => ObjectKind::PrivateKey,
            ObjectClass::SECRET_KEY => ObjectKind::SecretKey,
            // `CK_ULONG` is 32 bits wide on some platforms.
            #[allow(clippy::useless_conversion)]
            other => ObjectKind::Other(u64::from(*other)),
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
    /// Any other type (its `CKK_` value).
    Other(u64),
}

impl From<KeyType> for KeyKind {
    fn from(t: KeyType) -> Self {
        match t {
            KeyType::EC => KeyKind::Ec,
            KeyType::RSA => KeyKind::Rsa,
            KeyType::GENERIC_SECRET => KeyKind::GenericSecret,
            KeyType::AES => KeyKind::Aes,
            // `CK_ULONG` is 32 bits wide on some platforms.
            #[allow(clippy::useless_conversion)]
            other => KeyKind::Other(u64::from(*other)),
        }
    }
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
    /// The usages the station gives a key of this class and type, the only ones it may carry:
    /// an asymmetric key signs (private half) or verifies (public half); an HMAC key signs and
    /// verifies MACs; an AES key encrypts and decrypts. `None` for anything else (not a key, or
    /// a key of a type the station never makes).
    pub fn required_usage(&self) -> Option<KeyUsage> {
        match (self.kind, self.key_type?) {
            (ObjectKind::PrivateKey, KeyKind::Ec | KeyKind::Rsa) => Some(KeyUsage::SIGN),
            (ObjectKind::PublicKey, KeyKind::Ec | KeyKind::Rsa) => Some(KeyUsage::VERIFY),
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
        let handles = self.ck(self.session.find_objects(&[]))?;
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(self.read_object(h)?);
        }
        out.sort_by(|a, b| (&a.label, a.kind.to_string()).cmp(&(&b.label, b.kind.to_string())));
        Ok(out)
    }

    fn read_object(&self, h: ObjectHandle) -> Result<TokenObject, TokenError> {
        let attrs = self.ck(self.session.get_attributes(
            h,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::Application,
                AttributeType::Private,
            ],
        ))?;
        let mut o = TokenObject {
            kind: ObjectKind::Other(u64::MAX),
            label: String::new(),
            id: Vec::new(),
            application: None,
            private: false,
            value: None,
            key_type: None,
            usage: None,
            protection: None,
        };
        for a in attrs {
            match a {
                Attribute::Class(c) => o.kind = c.into(),
                Attribute::Label(l) => o.label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => o.id = i,
                Attribute::Application(a) => {
                    o.application = Some(String::from_utf8_lossy(&a).into_owned());
                }
                Attribute::Private(p) => o.private = p,
                _ => {}
            }
        }
        match o.kind {
            ObjectKind::Certificate | ObjectKind::Data => {
                let value = self.ck(self.session.get_attributes(h, &[AttributeType::Value]))?;
                o.value = Some(
                    value
                        .into_iter()
                        .find_map(|a| match a {
                            Attribute::Value(v) => Some(v),
                            _ => None,
                        })
                        .unwrap_or_default(),
                );
            }
            ObjectKind::PublicKey | ObjectKind::PrivateKey | ObjectKind::SecretKey => {
                let key_type =
                    self.ck(self.session.get_attributes(h, &[AttributeType::KeyType]))?;
                o.key_type = key_type.into_iter().find_map(|a| match a {
                    Attribute::KeyType(t) => Some(t.into()),
                    _ => None,
                });
                o.usage = Some(self.key_usage(h)?);
                if o.kind == ObjectKind::PrivateKey {
                    o.protection = Some(self.private_key_attributes(h)?);
                }
            }
            ObjectKind::Other(_) => {}
        }
        Ok(o)
    }
}
