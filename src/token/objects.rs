//! Stored objects on a token: certificates and data objects, written, read and destroyed.
//! (Keys: [`super::keys`]; everything on a token read back: [`super::inventory`].)

use super::TokenError;
use super::keys::der_err;
use super::session::TokenSession;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use der::Encode;
use der::asn1::UintRef;

impl TokenSession {
    pub(super) fn unexpected(&self, what: &str) -> TokenError {
        TokenError::Unexpected {
            token: self.name(),
            what: what.to_string(),
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
    /// The template holds only attributes PKCS#11 defines for data objects. A `CKA_ID` in it
    /// (data objects have none) is refused with `CKR_ATTRIBUTE_TYPE_INVALID`, and SoftHSM then
    /// leaves behind the empty, unlabelled private object it had already created: a failed
    /// `C_CreateObject` is not guaranteed to leave the token as it was. (For seals, the tie to
    /// the key is the company certificate inside the seal, on the token under the key's `CKA_ID`.)
    pub fn write_data(
        &self,
        application: &str,
        label: &str,
        value: &[u8],
        private: bool,
    ) -> Result<ObjectHandle, TokenError> {
        self.room_for_objects(1)?;
        self.ck(self.session.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Application(application.as_bytes().to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Value(value.to_vec()),
        ]))
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

    /// Destroys every object of `class` this session sees (a user session sees the private
    /// ones too); returns how many.
    pub fn destroy_all(&self, class: ObjectClassName) -> Result<usize, TokenError> {
        let handles = self.ck(self.session.find_objects(&[Attribute::Class(class.into())]))?;
        for h in &handles {
            self.ck(self.session.destroy_object(*h))?;
        }
        Ok(handles.len())
    }
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
