//! Keys on a token: key pairs and secret keys generated on it, each with exactly the usages its
//! job needs, and the attributes a key carries, read back.
//!
//! # Security notes
//! Every usage attribute a key class has is set explicitly in the generation template, true or
//! false: a module's defaults are no policy (SoftHSM's, for one, let a generated key pair
//! encrypt, wrap, unwrap and sign or verify with recovery). Private and secret keys are
//! sensitive and never extractable.

use super::TokenError;
use super::session::TokenSession;
use crate::config::KeyAlgorithm;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use der::Encode;
use der::asn1::{BitStringRef, Null, ObjectIdentifier, OctetString, UintRef};

/// DER of the prime256v1 OID, the `CKA_EC_PARAMS` of a P-256 key.
pub(crate) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
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
    /// The raw public key as rcgen wants it: the uncompressed EC point, or the PKCS#1
    /// RSAPublicKey DER.
    pub public_raw: Vec<u8>,
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
}

/// The security attributes of a private key, read back from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PrivateKeyAttributes {
    /// `CKA_TOKEN`.
    pub token: bool,
    /// `CKA_PRIVATE`.
    pub private: bool,
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL` (generated on the token).
    pub local: bool,
    /// `CKA_SIGN`.
    pub sign: bool,
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

#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
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
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        private.extend(KeyUsage::SIGN.template(KeyClass::Private));
        let (mechanism, mut public) = match algorithm {
            KeyAlgorithm::EcdsaP256 => (
                Mechanism::EccKeyPairGen,
                vec![Attribute::EcParams(P256_PARAMS.to_vec())],
            ),
            KeyAlgorithm::Rsa2048 => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(2048u64.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
        };
        public.extend([
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ]);
        public.extend(KeyUsage::VERIFY.template(KeyClass::Public));
        self.room_for_objects(2)?;
        let (pub_handle, _priv_handle) = self.ck(self
            .session
            .generate_key_pair(&mechanism, &public, &private))?;
        let public_raw = self.public_raw(pub_handle, algorithm)?;
        let spki_der = spki_der(algorithm, &public_raw)?;
        Ok(KeyPairInfo {
            id: id.to_vec(),
            algorithm,
            public_raw,
            spki_der,
        })
    }

    /// The usages a key carries, read back from the token (an attribute the key's class does
    /// not have counts as not granted).
    pub(super) fn key_usage(&self, key: ObjectHandle) -> Result<KeyUsage, TokenError> {
        let attrs = self.ck(self.session.get_attributes(key, &KeyUsage::ATTRIBUTES))?;
        let mut usage = KeyUsage::NONE;
        for a in attrs {
            match a {
                Attribute::Sign(v) => usage.sign = v,
                Attribute::Verify(v) => usage.verify = v,
                Attribute::SignRecover(v) => usage.sign_recover = v,
                Attribute::VerifyRecover(v) => usage.verify_recover = v,
                Attribute::Encrypt(v) => usage.encrypt = v,
                Attribute::Decrypt(v) => usage.decrypt = v,
                Attribute::Wrap(v) => usage.wrap = v,
                Attribute::Unwrap(v) => usage.unwrap = v,
                Attribute::Derive(v) => usage.derive = v,
                _ => {}
            }
        }
        Ok(usage)
    }

    fn public_raw(
        &self,
        handle: ObjectHandle,
        algorithm: KeyAlgorithm,
    ) -> Result<Vec<u8>, TokenError> {
        match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let attrs = self.ck(self
                    .session
                    .get_attributes(handle, &[AttributeType::EcPoint]))?;
                let point = attrs
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| self.unexpected("the public key has no CKA_EC_POINT"))?;
                // PKCS#11 wraps the point in a DER OCTET STRING; some modules return it bare.
                if point.len() == 65 && point[0] == 0x04 {
                    return Ok(point);
                }
                let inner = <OctetString as der::Decode>::from_der(&point)
                    .map(OctetString::into_bytes)
                    .map_err(|_| {
                        self.unexpected("CKA_EC_POINT is not an uncompressed P-256 point")
                    })?;
                if inner.len() == 65 && inner[0] == 0x04 {
                    Ok(inner.into_vec())
                } else {
                    Err(self.unexpected("CKA_EC_POINT is not an uncompressed P-256 point"))
                }
            }
            KeyAlgorithm::Rsa2048 => {
                let attrs = self.ck(self.session.get_attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                ))?;
                let mut n = None;
                let mut e = None;
                for a in attrs {
                    match a {
                        Attribute::Modulus(v) => n = Some(v),
                        Attribute::PublicExponent(v) => e = Some(v),
                        _ => {}
                    }
                }
                let (n, e) = n.zip(e).ok_or_else(|| {
                    self.unexpected("the RSA public key lacks modulus or exponent")
                })?;
                RsaPublicKey {
                    modulus: UintRef::new(&n).map_err(der_err("RSA modulus"))?,
                    public_exponent: UintRef::new(&e).map_err(der_err("RSA exponent"))?,
                }
                .to_der()
                .map_err(der_err("RSAPublicKey"))
            }
        }
    }

    /// The private key with `id`, if present (needs a user login).
    pub fn find_private_key(&self, id: &[u8]) -> Result<Option<ObjectHandle>, TokenError> {
        let found = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ]))?;
        Ok(found.into_iter().next())
    }

    /// The private key labelled `label`, if present (needs a user login).
    pub fn find_private_key_by_label(
        &self,
        label: &str,
    ) -> Result<Option<ObjectHandle>, TokenError> {
        let found = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ]))?;
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
        let found = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.to_vec()),
        ]))?;
        let handle = found.into_iter().next().ok_or_else(|| {
            self.unexpected(&format!("no public key with CKA_ID {}", hex::encode(id)))
        })?;
        let public_raw = self.public_raw(handle, algorithm)?;
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
        key: ObjectHandle,
    ) -> Result<PrivateKeyAttributes, TokenError> {
        let attrs = self.ck(self.session.get_attributes(
            key,
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Local,
                AttributeType::Sign,
            ],
        ))?;
        let mut out = PrivateKeyAttributes {
            token: false,
            private: false,
            sensitive: false,
            extractable: true,
            always_sensitive: false,
            never_extractable: false,
            local: false,
            sign: false,
        };
        for a in attrs {
            match a {
                Attribute::Token(v) => out.token = v,
                Attribute::Private(v) => out.private = v,
                Attribute::Sensitive(v) => out.sensitive = v,
                Attribute::Extractable(v) => out.extractable = v,
                Attribute::AlwaysSensitive(v) => out.always_sensitive = v,
                Attribute::NeverExtractable(v) => out.never_extractable = v,
                Attribute::Local(v) => out.local = v,
                Attribute::Sign(v) => out.sign = v,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Tries to read the private key's value. Must fail on a sensitive key: `Ok(true)` means the
    /// token REFUSED (as it should), `Ok(false)` that it handed out key material.
    pub fn private_value_is_protected(&self, key: ObjectHandle) -> Result<bool, TokenError> {
        let types = [
            AttributeType::Value,
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
        ];
        match self.session.get_attributes(key, &types) {
            Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => Ok(true),
            Err(e) => Err(TokenError::from_ck(&self.name(), e)),
            Ok(attrs) => Ok(!attrs.iter().any(|a| {
                matches!(a, Attribute::Value(v) | Attribute::PrivateExponent(v) | Attribute::Prime1(v) if !v.is_empty())
            })),
        }
    }

    /// Generates a secret key on the token (vault keys): never extractable, sensitive, with
    /// exactly the usages of its kind.
    pub(crate) fn generate_secret_key(
        &self,
        kind: SecretKeyKind,
        label: &str,
    ) -> Result<ObjectHandle, TokenError> {
        let (mechanism, key_type) = match kind {
            SecretKeyKind::HmacSha256 => (Mechanism::GenericSecretKeyGen, KeyType::GENERIC_SECRET),
            SecretKeyKind::Aes256 => (Mechanism::AesKeyGen, KeyType::AES),
        };
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::ValueLen(32u64.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        template.extend(kind.usage().template(KeyClass::Secret));
        self.ck(self.session.generate_key(&mechanism, &template))
    }

    /// The secret key labelled `label`.
    pub(crate) fn secret_key(&self, label: &str) -> Result<ObjectHandle, TokenError> {
        let found = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ]))?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(self.unexpected(&format!("no secret key labelled {label:?}"))),
            _ => Err(self.unexpected(&format!("several secret keys labelled {label:?}"))),
        }
    }
}

/// Kinds of vault secret keys.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecretKeyKind {
    /// 256-bit generic secret for `CKM_SHA256_HMAC`.
    HmacSha256,
    /// AES-256 for `CKM_AES_GCM`.
    Aes256,
}

impl SecretKeyKind {
    /// The usages a vault key of this kind needs: HMAC keys sign and verify MACs, the AES key
    /// seals and opens PINs.
    pub(crate) fn usage(self) -> KeyUsage {
        match self {
            SecretKeyKind::HmacSha256 => KeyUsage {
                sign: true,
                verify: true,
                ..KeyUsage::NONE
            },
            SecretKeyKind::Aes256 => KeyUsage {
                encrypt: true,
                decrypt: true,
                ..KeyUsage::NONE
            },
        }
    }
}

/// The key classes, for which usage attributes a template may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyClass {
    Public,
    Private,
    Secret,
}

/// What a key may be used for: its PKCS#11 usage attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeyUsage {
    /// `CKA_SIGN`.
    pub sign: bool,
    /// `CKA_VERIFY`.
    pub verify: bool,
    /// `CKA_SIGN_RECOVER`.
    pub sign_recover: bool,
    /// `CKA_VERIFY_RECOVER`.
    pub verify_recover: bool,
    /// `CKA_ENCRYPT`.
    pub encrypt: bool,
    /// `CKA_DECRYPT`.
    pub decrypt: bool,
    /// `CKA_WRAP`.
    pub wrap: bool,
    /// `CKA_UNWRAP`.
    pub unwrap: bool,
    /// `CKA_DERIVE`.
    pub derive: bool,
}

impl KeyUsage {
    /// No usage at all.
    pub const NONE: KeyUsage = KeyUsage {
        sign: false,
        verify: false,
        sign_recover: false,
        verify_recover: false,
        encrypt: false,
        decrypt: false,
        wrap: false,
        unwrap: false,
        derive: false,
    };
    /// A signing private key: signs, nothing else.
    pub const SIGN: KeyUsage = KeyUsage {
        sign: true,
        ..KeyUsage::NONE
    };
    /// The public half of a signing key: verifies, nothing else.
    pub const VERIFY: KeyUsage = KeyUsage {
        verify: true,
        ..KeyUsage::NONE
    };

    const ATTRIBUTES: [AttributeType; 9] = [
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

    /// The usages granted, by name (`sign`, `unwrap`, ...), for messages.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.sign, "sign"),
            (self.verify, "verify"),
            (self.sign_recover, "sign_recover"),
            (self.verify_recover, "verify_recover"),
            (self.encrypt, "encrypt"),
            (self.decrypt, "decrypt"),
            (self.wrap, "wrap"),
            (self.unwrap, "unwrap"),
            (self.derive, "derive"),
        ]
        .into_iter()
        .filter_map(|(granted, name)| granted.then_some(name))
        .collect()
    }

    /// Every usage attribute `class` has, each set to true or false: nothing is left to the
    /// module's defaults. (An attribute a class lacks would fail the whole template with
    /// `CKR_ATTRIBUTE_TYPE_INVALID`, so each class gets exactly its own.)
    pub(super) fn template(&self, class: KeyClass) -> Vec<Attribute> {
        let mut out = vec![Attribute::Derive(self.derive)];
        match class {
            KeyClass::Public => out.extend([
                Attribute::Verify(self.verify),
                Attribute::VerifyRecover(self.verify_recover),
                Attribute::Encrypt(self.encrypt),
                Attribute::Wrap(self.wrap),
            ]),
            KeyClass::Private => out.extend([
                Attribute::Sign(self.sign),
                Attribute::SignRecover(self.sign_recover),
                Attribute::Decrypt(self.decrypt),
                Attribute::Unwrap(self.unwrap),
            ]),
            KeyClass::Secret => out.extend([
                Attribute::Sign(self.sign),
                Attribute::Verify(self.verify),
                Attribute::Encrypt(self.encrypt),
                Attribute::Decrypt(self.decrypt),
                Attribute::Wrap(self.wrap),
                Attribute::Unwrap(self.unwrap),
            ]),
        }
        out
    }
}
