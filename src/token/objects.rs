//! Stored objects on a token: certificates and data objects, written, read and destroyed.
//! (Keys: [`super::keys`]; everything on a token read back: [`super::inventory`].)

pub use super::model::ObjectClassName;

use super::TokenError;
use super::backend::{DataObject, ObjectQuery, ObjectRef};
use super::session::TokenSession;

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
    ) -> Result<ObjectRef, TokenError> {
        self.backend.create_certificate(id, label, cert_der)
    }

    /// Certificates with `id` (DER values).
    pub fn certificates(&self, id: &[u8]) -> Result<Vec<Vec<u8>>, TokenError> {
        let handles = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::Certificate).id(id))?;
        self.values(&handles)
    }

    /// The certificate labelled `label`, if any.
    pub fn certificate_by_label(&self, label: &str) -> Result<Option<Vec<u8>>, TokenError> {
        let handles = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::Certificate).label(label))?;
        Ok(self.values(&handles)?.into_iter().next())
    }

    fn values(&self, handles: &[ObjectRef]) -> Result<Vec<Vec<u8>>, TokenError> {
        let mut out = Vec::new();
        for h in handles {
            out.extend(self.backend.object(*h)?.value);
        }
        Ok(out)
    }

    /// Writes the data object `data` (`CKO_DATA`; see [`DataObject`] on why it has no `CKA_ID`).
    /// For seals, the tie to the key is the company certificate inside the seal, on the token
    /// under the key's `CKA_ID`.
    pub fn write_data(&self, data: &DataObject<'_>) -> Result<ObjectRef, TokenError> {
        self.backend.create_data(data)
    }

    /// Data objects of `application`: (label, value).
    pub fn data_objects(&self, application: &str) -> Result<Vec<(String, Vec<u8>)>, TokenError> {
        let handles = self
            .backend
            .find(&ObjectQuery::class(ObjectClassName::Data).application(application))?;
        let mut out = Vec::new();
        for h in handles {
            let object = self.backend.object(h)?;
            out.push((object.label, object.value.unwrap_or_default()));
        }
        out.sort();
        Ok(out)
    }

    /// Destroys the key pairs and certificates this session sees whose `CKA_ID` is not `keep`
    /// (a renewal made on the same key: the old key pair and certificate go once the new
    /// certificate is on the token); returns how many objects.
    pub fn destroy_keys_except(&self, keep: &[u8]) -> Result<usize, TokenError> {
        let mut destroyed = 0;
        for class in [
            ObjectClassName::Certificate,
            ObjectClassName::PrivateKey,
            ObjectClassName::PublicKey,
        ] {
            for h in self.backend.find(&ObjectQuery::class(class))? {
                if self.backend.object(h)?.id != keep {
                    self.backend.destroy(h)?;
                    destroyed += 1;
                }
            }
        }
        Ok(destroyed)
    }

    /// Destroys every object of `class` this session sees (a user session sees the private
    /// ones too); returns how many.
    pub fn destroy_all(&self, class: ObjectClassName) -> Result<usize, TokenError> {
        let handles = self.backend.find(&ObjectQuery::class(class))?;
        for h in &handles {
            self.backend.destroy(*h)?;
        }
        Ok(handles.len())
    }
}
