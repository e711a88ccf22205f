//! A cryptoki session behind [`SessionBackend`]: PKCS#11 templates, attributes and mechanisms.
//!
//! # Security notes
//! Every usage attribute a key class has is set explicitly in a generation template, true or
//! false: a module's defaults are no policy (SoftHSM's, for one, let a generated key pair
//! encrypt, wrap, unwrap and sign or verify with recovery). Private and secret keys are
//! sensitive and never extractable.

use super::super::TokenError;
use super::super::backend::{
    AesGcm, Credential, DataObject, ObjectQuery, ObjectRef, SessionBackend, SignMechanism,
};
use super::super::keys::der_err;
use super::super::model::{
    KeyKind, KeyUsage, ObjectKind, PrivateKeyAttributes, SecretKeyKind, TokenObject,
};
use super::super::vendor::{PublicKeySource, Sm2Codes};
use super::attributes::{
    KeyClass, USAGE_ATTRIBUTES, private_key_template, standard_keygen, usage_template,
};
use super::{Explainer, SM2_PARAMS};
use crate::domain::{KeyAlgorithm, Pin, SoPin};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::types::AuthPin;
use der::Encode;
use der::asn1::{OctetString, UintRef};
use std::cell::RefCell;
use std::collections::HashMap;

mod sm2_encryption;

#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// An open cryptoki session, with the handles it handed out.
pub(super) struct CryptokiSession {
    session: Session,
    explainer: Explainer,
    /// Handles by number: an [`ObjectRef`] carries the number, cryptoki wants its own type back.
    handles: RefCell<HashMap<u64, ObjectHandle>>,
    /// The module's SM2 codes (vendor table), if it has an entry.
    sm2: Option<Sm2Codes>,
}

impl CryptokiSession {
    pub(super) fn new(
        session: Session,
        explainer: Explainer,
        sm2: Option<Sm2Codes>,
    ) -> CryptokiSession {
        CryptokiSession {
            session,
            explainer,
            handles: RefCell::new(HashMap::new()),
            sm2,
        }
    }

    /// The SM2 codes, or an error naming the token: its module has no vendor-table entry.
    fn sm2(&self) -> Result<&Sm2Codes, TokenError> {
        self.sm2.as_ref().ok_or_else(|| {
            self.unexpected(
                "its PKCS#11 module has no SM2 entry in the vendor table (hsm-config/pkcs11-vendors.toml)",
            )
        })
    }

    /// A vendor-defined mechanism without parameter.
    fn vendor_mechanism(&self, code: u64) -> Result<Mechanism<'static>, TokenError> {
        let mechanism = MechanismType::new_vendor_defined(code)
            .map_err(|e| self.unexpected(&format!("mechanism {code:#x}: {e}")))?;
        Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
            mechanism, None,
        )))
    }

    /// The uncompressed point in a `CKA_EC_POINT` value (a DER OCTET STRING around it, or the
    /// bare point as some modules return it).
    fn ec_point(&self, value: Vec<u8>, what: &str) -> Result<Vec<u8>, TokenError> {
        if value.len() == 65 && value[0] == 0x04 {
            return Ok(value);
        }
        let not_a_point =
            || self.unexpected(&format!("{what} is not an uncompressed 65-byte point"));
        let inner = <OctetString as der::Decode>::from_der(&value)
            .map(OctetString::into_bytes)
            .map_err(|_| not_a_point())?;
        if inner.len() == 65 && inner[0] == 0x04 {
            Ok(inner.into_vec())
        } else {
            Err(not_a_point())
        }
    }

    fn ck<T>(&self, r: Result<T, CkError>) -> Result<T, TokenError> {
        r.map_err(|e| self.explainer.explain(e))
    }

    fn unexpected(&self, what: &str) -> TokenError {
        TokenError::Unexpected {
            token: self.explainer.name().to_string(),
            what: what.to_string(),
        }
    }

    fn remember(&self, handle: ObjectHandle) -> ObjectRef {
        // `CK_ULONG` is 32 bits wide on some platforms.
        #[allow(clippy::useless_conversion)]
        let number = u64::from(handle.handle());
        self.handles.borrow_mut().insert(number, handle);
        ObjectRef::new(number)
    }

    fn handle(&self, object: ObjectRef) -> Result<ObjectHandle, TokenError> {
        self.handles
            .borrow()
            .get(&object.handle())
            .copied()
            .ok_or_else(|| self.unexpected("an object handle this session did not hand out"))
    }

    fn attributes(
        &self,
        object: ObjectHandle,
        types: &[AttributeType],
    ) -> Result<Vec<Attribute>, TokenError> {
        self.ck(self.session.get_attributes(object, types))
    }

    fn key_usage(&self, key: ObjectHandle) -> Result<KeyUsage, TokenError> {
        let mut usage = KeyUsage::NONE;
        for a in self.attributes(key, &USAGE_ATTRIBUTES)? {
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

    fn private_key_attributes(
        &self,
        key: ObjectHandle,
    ) -> Result<PrivateKeyAttributes, TokenError> {
        let attrs = self.attributes(
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
        )?;
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

    fn gcm_params<'a>(&self, iv: &'a mut [u8], aad: &'a [u8]) -> Result<GcmParams<'a>, TokenError> {
        GcmParams::new(iv, aad, 128u64.into())
            .map_err(|e| TokenError::from_ck(self.explainer.name(), e))
    }
}

impl SessionBackend for CryptokiSession {
    fn is_user_session(&self) -> bool {
        matches!(
            self.session.get_session_info().map(|i| i.session_state()),
            Ok(SessionState::RwUser | SessionState::RoUser)
        )
    }

    fn login(&self, credential: Credential<'_>) -> Result<(), TokenError> {
        let user = credential.user();
        let (user_type, pin) = match credential {
            // Exposed to C_Login only.
            Credential::User(pin) => (UserType::User, pin.expose_secret()),
            Credential::So(pin) => (UserType::So, pin.expose_secret()),
        };
        let auth = AuthPin::from(pin.to_string());
        match self.session.login(user_type, Some(&auth)) {
            Ok(()) => Ok(()),
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => Err(self.explainer.login_failure(user, e)),
        }
    }

    fn init_user_pin(&self, pin: &Pin) -> Result<(), TokenError> {
        // Exposed to C_InitPIN only: setting it on the token is the point.
        let auth = AuthPin::from(pin.expose_secret().to_string());
        self.ck(self.session.init_pin(&auth))
    }

    fn set_so_pin(&self, old: &SoPin, new: &SoPin) -> Result<(), TokenError> {
        // Exposed to C_SetPIN only: rotating the SO PIN on the token is the point.
        let old = AuthPin::from(old.expose_secret().to_string());
        let new = AuthPin::from(new.expose_secret().to_string());
        self.ck(self.session.set_pin(&old, &new))
    }

    fn random(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        let mut buf = vec![0u8; len];
        self.ck(self.session.generate_random_slice(&mut buf))?;
        Ok(buf)
    }

    fn generate_key_pair(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<(ObjectRef, ObjectRef), TokenError> {
        let private = private_key_template(id, label, KeyUsage::SIGN);
        let (mechanism, mut public) = match standard_keygen(algorithm) {
            Some(standard) => standard,
            None => {
                let codes = self.sm2()?;
                let key_type = KeyType::new_vendor_defined(codes.key_type).map_err(|e| {
                    self.unexpected(&format!("key type {:#x}: {e}", codes.key_type))
                })?;
                let mut public = vec![Attribute::KeyType(key_type)];
                if codes.ec_params {
                    public.push(Attribute::EcParams(SM2_PARAMS.to_vec()));
                }
                (self.vendor_mechanism(codes.keygen_mechanism)?, public)
            }
        };
        public.extend([
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Id(id.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ]);
        public.extend(usage_template(KeyUsage::VERIFY, KeyClass::Public));
        let (public, private) = self.ck(self
            .session
            .generate_key_pair(&mechanism, &public, &private))?;
        Ok((self.remember(public), self.remember(private)))
    }

    fn generate_secret_key(
        &self,
        kind: SecretKeyKind,
        label: &str,
    ) -> Result<ObjectRef, TokenError> {
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
        template.extend(usage_template(kind.usage(), KeyClass::Secret));
        let key = self.ck(self.session.generate_key(&mechanism, &template))?;
        Ok(self.remember(key))
    }

    fn find(&self, query: &ObjectQuery<'_>) -> Result<Vec<ObjectRef>, TokenError> {
        let mut template = Vec::new();
        if let Some(class) = query.class {
            template.push(Attribute::Class(class.into()));
        }
        if let Some(application) = query.application {
            template.push(Attribute::Application(application.as_bytes().to_vec()));
        }
        if let Some(id) = query.id {
            template.push(Attribute::Id(id.to_vec()));
        }
        if let Some(label) = query.label {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        let found = self.ck(self.session.find_objects(&template))?;
        Ok(found.into_iter().map(|h| self.remember(h)).collect())
    }

    fn object(&self, object: ObjectRef) -> Result<TokenObject, TokenError> {
        let h = self.handle(object)?;
        let attrs = self.attributes(
            h,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::Application,
                AttributeType::Private,
            ],
        )?;
        let mut o = TokenObject::new(ObjectKind::Other(u64::MAX), String::new(), Vec::new());
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
                let value = self.attributes(h, &[AttributeType::Value])?;
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
                let key_type = self.attributes(h, &[AttributeType::KeyType])?;
                o.key_type = key_type.into_iter().find_map(|a| match a {
                    Attribute::KeyType(t) => Some(t.into()),
                    _ => None,
                });
                // A vendor-defined key type is SM2 when the module's vendor entry says so.
                if let (Some(KeyKind::Other(code)), Some(codes)) = (o.key_type, &self.sm2)
                    && code == codes.key_type
                {
                    o.key_type = Some(KeyKind::Sm2);
                }
                o.usage = Some(self.key_usage(h)?);
                if o.kind == ObjectKind::PrivateKey {
                    o.protection = Some(self.private_key_attributes(h)?);
                }
            }
            ObjectKind::Other(_) => {}
        }
        Ok(o)
    }

    fn public_key(&self, key: ObjectRef, algorithm: KeyAlgorithm) -> Result<Vec<u8>, TokenError> {
        let handle = self.handle(key)?;
        match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                let point = self
                    .attributes(handle, &[AttributeType::EcPoint])?
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| self.unexpected("the public key has no CKA_EC_POINT"))?;
                self.ec_point(point, "CKA_EC_POINT")
            }
            KeyAlgorithm::Sm2 => {
                let (kind, what) = match self.sm2()?.public_key {
                    PublicKeySource::EcPoint => {
                        (AttributeType::EcPoint, "CKA_EC_POINT".to_string())
                    }
                    PublicKeySource::Attribute(code) => (
                        AttributeType::VendorDefined(code),
                        format!("vendor attribute {code:#x}"),
                    ),
                };
                let point = self
                    .attributes(handle, &[kind])?
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) | Attribute::VendorDefined((_, p)) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| self.unexpected(&format!("the SM2 public key has no {what}")))?;
                self.ec_point(point, &what)
            }
            KeyAlgorithm::Rsa2048 => {
                let attrs = self.attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )?;
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

    fn value_is_protected(&self, key: ObjectRef) -> Result<bool, TokenError> {
        let key = self.handle(key)?;
        let types = [
            AttributeType::Value,
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
        ];
        match self.session.get_attributes(key, &types) {
            Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => Ok(true),
            Err(e) => Err(TokenError::from_ck(self.explainer.name(), e)),
            Ok(attrs) => Ok(!attrs.iter().any(|a| {
                matches!(a, Attribute::Value(v) | Attribute::PrivateExponent(v) | Attribute::Prime1(v) if !v.is_empty())
            })),
        }
    }

    fn create_certificate(
        &self,
        id: &[u8],
        label: &str,
        cert_der: &[u8],
    ) -> Result<ObjectRef, TokenError> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| self.unexpected(&format!("certificate to write does not parse: {e}")))?;
        let serial_der = UintRef::new(cert.raw_serial())
            .and_then(|u| u.to_der())
            .map_err(der_err("certificate serial"))?;
        let handle = self.ck(self.session.create_object(&[
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
        ]))?;
        Ok(self.remember(handle))
    }

    /// The template holds only attributes PKCS#11 defines for data objects. A `CKA_ID` in it
    /// (data objects have none) is refused with `CKR_ATTRIBUTE_TYPE_INVALID`, and SoftHSM then
    /// leaves behind the empty, unlabelled private object it had already created: a failed
    /// `C_CreateObject` is not guaranteed to leave the token as it was.
    fn create_data(&self, data: &DataObject<'_>) -> Result<ObjectRef, TokenError> {
        let handle = self.ck(self.session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(data.private),
            Attribute::Application(data.application.as_bytes().to_vec()),
            Attribute::Label(data.label.as_bytes().to_vec()),
            Attribute::Value(data.value.to_vec()),
        ]))?;
        Ok(self.remember(handle))
    }

    fn destroy(&self, object: ObjectRef) -> Result<(), TokenError> {
        let handle = self.handle(object)?;
        self.ck(self.session.destroy_object(handle))?;
        self.handles.borrow_mut().remove(&object.handle());
        Ok(())
    }

    fn sm2_codes(&self) -> Option<&Sm2Codes> {
        self.sm2.as_ref()
    }

    fn sign(
        &self,
        key: ObjectRef,
        mechanism: SignMechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let key = self.handle(key)?;
        let mechanism = match mechanism {
            SignMechanism::Ecdsa => Mechanism::Ecdsa,
            SignMechanism::Sha256RsaPkcs => Mechanism::Sha256RsaPkcs,
            SignMechanism::Sha256Hmac => Mechanism::Sha256Hmac,
            SignMechanism::Sm2 => self.vendor_mechanism(self.sm2()?.sign_mechanism)?,
        };
        self.ck(self.session.sign(&mechanism, key, data))
    }

    fn encrypt(&self, key: ObjectRef, gcm: AesGcm<'_>, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self.handle(key)?;
        let mut iv = gcm.iv.to_vec();
        let params = self.gcm_params(&mut iv, gcm.aad)?;
        self.ck(self.session.encrypt(&Mechanism::AesGcm(params), key, data))
    }

    fn decrypt(&self, key: ObjectRef, gcm: AesGcm<'_>, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self.handle(key)?;
        let mut iv = gcm.iv.to_vec();
        let params = self.gcm_params(&mut iv, gcm.aad)?;
        self.ck(self.session.decrypt(&Mechanism::AesGcm(params), key, data))
    }

    fn unwrap_sm2_envelope(
        &self,
        signing_key: ObjectRef,
        envelope: &[u8],
        id: &[u8],
        label: &str,
    ) -> Result<ObjectRef, TokenError> {
        self.unwrap_envelope(signing_key, envelope, id, label)
    }

    fn sm2_decrypt(&self, key: ObjectRef, ciphertext: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.decrypt_sm2(key, ciphertext)
    }
}
