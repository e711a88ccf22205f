//! PKCS#11 attributes of the station's objects: the usage template of each key class, and the
//! conversions between cryptoki's classes and types and the seam's.

use super::super::model::{KeyKind, KeyUsage, ObjectClassName, ObjectKind};
use super::P256_PARAMS;
use crate::domain::KeyAlgorithm;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};

pub(super) const USAGE_ATTRIBUTES: [AttributeType; 9] = [
    AttributeType::Sign,
    AttributeType::Verify,
    AttributeType::SignRecover,
    AttributeType::VerifyRecover,
    AttributeType::Encrypt,
    AttributeType::Decrypt,
    AttributeType::Wrap,
    AttributeType::Unwrap,
    AttributeType::Derive,
];

/// The key classes, for which usage attributes a template may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyClass {
    Public,
    Private,
    Secret,
}

/// Every usage attribute `class` has, each set to true or false: nothing is left to the
/// module's defaults. (An attribute a class lacks would fail the whole template with
/// `CKR_ATTRIBUTE_TYPE_INVALID`, so each class gets exactly its own.)
pub(super) fn usage_template(usage: KeyUsage, class: KeyClass) -> Vec<Attribute> {
    let mut out = vec![Attribute::Derive(usage.derive)];
    match class {
        KeyClass::Public => out.extend([
            Attribute::Verify(usage.verify),
            Attribute::VerifyRecover(usage.verify_recover),
            Attribute::Encrypt(usage.encrypt),
            Attribute::Wrap(usage.wrap),
        ]),
        KeyClass::Private => out.extend([
            Attribute::Sign(usage.sign),
            Attribute::SignRecover(usage.sign_recover),
            Attribute::Decrypt(usage.decrypt),
            Attribute::Unwrap(usage.unwrap),
        ]),
        KeyClass::Secret => out.extend([
            Attribute::Sign(usage.sign),
            Attribute::Verify(usage.verify),
            Attribute::Encrypt(usage.encrypt),
            Attribute::Decrypt(usage.decrypt),
            Attribute::Wrap(usage.wrap),
            Attribute::Unwrap(usage.unwrap),
        ]),
    }
    out
}

/// The template of a private key that never leaves its token (a token object, private,
/// sensitive, not extractable), named by `id` and `label`, for `usage` only.
pub(super) fn private_key_template(id: &[u8], label: &str, usage: KeyUsage) -> Vec<Attribute> {
    let mut out = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    out.extend(usage_template(usage, KeyClass::Private));
    out
}

/// The key-pair generation mechanism of a standard `algorithm` and what its public template
/// must say of the key (P-256's curve; RSA-2048's size and exponent, 65537); `None` for SM2,
/// whose mechanism and key type are the module vendor's.
pub(in super::super) fn standard_keygen(
    algorithm: KeyAlgorithm,
) -> Option<(Mechanism<'static>, Vec<Attribute>)> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Some((
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(P256_PARAMS.to_vec())],
        )),
        KeyAlgorithm::Rsa2048 => Some((
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(2048u64.into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
        )),
        KeyAlgorithm::Sm2 => None,
    }
}

impl From<ObjectClassName> for ObjectClass {
    fn from(c: ObjectClassName) -> Self {
        match c {
            ObjectClassName::Data => ObjectClass::DATA,
            ObjectClassName::Certificate => ObjectClass::CERTIFICATE,
            ObjectClassName::PrivateKey => ObjectClass::PRIVATE_KEY,
            ObjectClassName::PublicKey => ObjectClass::PUBLIC_KEY,
            ObjectClassName::SecretKey => ObjectClass::SECRET_KEY,
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
