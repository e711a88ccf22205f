//! Objects on a token: key pairs generated on it, certificates, data objects.

use super::TokenError;
use super::session::TokenSession;
use crate::config::KeyAlgorithm;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
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

/// A line of an object listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectSummary {
    /// `data`, `certificate`, `public_key`, `private_key`, `secret_key` or another class.
    pub class: String,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, hex (empty when absent).
    pub id: String,
    /// `CKA_APPLICATION` of data objects.
    pub application: Option<String>,
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

fn der_err(what: &str) -> impl Fn(der::Error) -> TokenError + '_ {
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
    /// Generates a key pair ON the token: the private key is a token object, private, sensitive,
    /// never extractable, for signing only; both halves share `id` and `label`.
    pub fn generate_key_pair(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<KeyPairInfo, TokenError> {
        let common_pub = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
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
        public.extend(common_pub);
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

    fn unexpected(&self, what: &str) -> TokenError {
        TokenError::Unexpected {
            token: self.name(),
            what: what.to_string(),
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

    /// Writes an X.509 certificate object with `id` and `label` (public: readable without login).
    pub fn write_certificate(
        &self,
        id: &[u8],
        label: &str,
        cert_der: &[u8],
    ) -> Result<ObjectHandle, TokenError> {
        self.room_for_objects(1)?;
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| self.unexpected(&format!("certificate to write does not parse: {e}")))?;
        let serial_der = UintRef::new(cert.raw_serial())
            .and_then(|u| u.to_der())
            .map_err(der_err("certificate serial"))?;
        self.ck(self.session.create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Subject(cert.subject().as_raw().to_vec()),
            Attribute::Issuer(cert.issuer().as_raw().to_vec()),
            Attribute::SerialNumber(serial_der),
            Attribute::Value(cert_der.to_vec()),
        ]))
    }

    /// Certificates with `id` (DER values).
    pub fn certificates(&self, id: &[u8]) -> Result<Vec<Vec<u8>>, TokenError> {
        let handles = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.to_vec()),
        ]))?;
        self.values(&handles)
    }

    /// The certificate labelled `label`, if any.
    pub fn certificate_by_label(&self, label: &str) -> Result<Option<Vec<u8>>, TokenError> {
        let handles = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Label(label.as_bytes().to_vec()),
        ]))?;
        Ok(self.values(&handles)?.into_iter().next())
    }

    fn values(&self, handles: &[ObjectHandle]) -> Result<Vec<Vec<u8>>, TokenError> {
        let mut out = Vec::new();
        for h in handles {
            for a in self.ck(self.session.get_attributes(*h, &[AttributeType::Value]))? {
                if let Attribute::Value(v) = a {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Writes a data object (`CKO_DATA`) readable only after a user login when `private`.
    ///
    /// `key_id` is stored as `CKA_ID` where the token accepts it. PKCS#11 defines no `CKA_ID` for
    /// data objects and conformant modules (SoftHSM among them) refuse it with
    /// `CKR_ATTRIBUTE_TYPE_INVALID`; the object is then written without it and the caller learns
    /// so from the returned flag (for seals, the tie to the key is the company certificate inside
    /// the seal, which is on the token under the key's `CKA_ID`).
    pub fn write_data(
        &self,
        application: &str,
        label: &str,
        key_id: Option<&[u8]>,
        value: &[u8],
        private: bool,
    ) -> Result<(ObjectHandle, bool), TokenError> {
        let template = vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Application(application.as_bytes().to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Value(value.to_vec()),
        ];
        self.room_for_objects(1)?;
        if let Some(id) = key_id {
            let mut with_id = template.clone();
            with_id.push(Attribute::Id(id.to_vec()));
            match self.session.create_object(&with_id) {
                Ok(h) => return Ok((h, true)),
                Err(CkError::Pkcs11(RvError::AttributeTypeInvalid, _)) => {}
                Err(e) => return Err(TokenError::from_ck(&self.name(), e)),
            }
        }
        Ok((self.ck(self.session.create_object(&template))?, false))
    }

    /// Data objects of `application`: (label, value).
    pub fn data_objects(&self, application: &str) -> Result<Vec<(String, Vec<u8>)>, TokenError> {
        let handles = self.ck(self.session.find_objects(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(application.as_bytes().to_vec()),
        ]))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = self.ck(self
                .session
                .get_attributes(h, &[AttributeType::Label, AttributeType::Value]))?;
            let mut label = String::new();
            let mut value = Vec::new();
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Value(v) => value = v,
                    _ => {}
                }
            }
            out.push((label, value));
        }
        out.sort();
        Ok(out)
    }

    /// Destroys objects of `class` labelled `label`; returns how many.
    pub fn destroy_labelled(
        &self,
        class: ObjectClassName,
        label: &str,
    ) -> Result<usize, TokenError> {
        let handles = self.ck(self.session.find_objects(&[
            Attribute::Class(class.into()),
            Attribute::Label(label.as_bytes().to_vec()),
        ]))?;
        for h in &handles {
            self.ck(self.session.destroy_object(*h))?;
        }
        Ok(handles.len())
    }

    /// Every object visible in this session.
    pub fn list_objects(&self) -> Result<Vec<ObjectSummary>, TokenError> {
        let handles = self.ck(self.session.find_objects(&[]))?;
        let mut out = Vec::new();
        for h in handles {
            let attrs = self.ck(self.session.get_attributes(
                h,
                &[
                    AttributeType::Class,
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::Application,
                ],
            ))?;
            let mut s = ObjectSummary {
                class: String::new(),
                label: String::new(),
                id: String::new(),
                application: None,
            };
            for a in attrs {
                match a {
                    Attribute::Class(c) => s.class = class_name(c),
                    Attribute::Label(l) => s.label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(i) => s.id = hex::encode(i),
                    Attribute::Application(a) => {
                        s.application = Some(String::from_utf8_lossy(&a).into_owned())
                    }
                    _ => {}
                }
            }
            out.push(s);
        }
        out.sort_by(|a, b| (&a.class, &a.label).cmp(&(&b.class, &b.label)));
        Ok(out)
    }

    /// Generates a secret key on the token (vault keys): never extractable, sensitive.
    pub(crate) fn generate_secret_key(
        &self,
        kind: SecretKeyKind,
        label: &str,
    ) -> Result<ObjectHandle, TokenError> {
        let (mechanism, mut template) = match kind {
            SecretKeyKind::HmacSha256 => (
                Mechanism::GenericSecretKeyGen,
                vec![
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Sign(true),
                    Attribute::Verify(true),
                ],
            ),
            SecretKeyKind::Aes256 => (
                Mechanism::AesKeyGen,
                vec![
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            ),
        };
        template.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::ValueLen(32u64.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ]);
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

/// Object classes callers may name without importing cryptoki.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClassName {
    /// `CKO_DATA`.
    Data,
    /// `CKO_CERTIFICATE`.
    Certificate,
    /// `CKO_PRIVATE_KEY`.
    PrivateKey,
    /// `CKO_PUBLIC_KEY`.
    PublicKey,
}

impl From<ObjectClassName> for ObjectClass {
    fn from(c: ObjectClassName) -> Self {
        match c {
            ObjectClassName::Data => ObjectClass::DATA,
            ObjectClassName::Certificate => ObjectClass::CERTIFICATE,
            ObjectClassName::PrivateKey => ObjectClass::PRIVATE_KEY,
            ObjectClassName::PublicKey => ObjectClass::PUBLIC_KEY,
        }
    }
}

fn class_name(c: ObjectClass) -> String {
    match c {
        ObjectClass::DATA => "data".into(),
        ObjectClass::CERTIFICATE => "certificate".into(),
        ObjectClass::PUBLIC_KEY => "public_key".into(),
        ObjectClass::PRIVATE_KEY => "private_key".into(),
        ObjectClass::SECRET_KEY => "secret_key".into(),
        other => format!("class_{other}"),
    }
}
