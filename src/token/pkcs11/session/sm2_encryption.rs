//! A dual certificate's SM2 encryption key on a vendor module: the `SM2EnvelopedKey` import
//! (`C_UnwrapKey`) and SM2 decryption (`C_Decrypt`), with the codes of the module's vendor-table
//! entry. A module whose entry has no such codes cannot take a dual certificate: the error says
//! so by name rather than guessing a code.

use super::super::super::TokenError;
use super::super::super::backend::ObjectRef;
use super::super::super::model::KeyUsage;
use super::super::attributes::private_key_template;
use super::CryptokiSession;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

impl CryptokiSession {
    /// A code of the module's SM2 entry, or an error naming what is missing.
    fn sm2_code(&self, code: Option<u64>, field: &str) -> Result<u64, TokenError> {
        code.ok_or_else(|| {
            self.unexpected(&format!(
                "its PKCS#11 module's SM2 entry in the vendor table has no {field}: dual certificates cannot be put on it"
            ))
        })
    }

    /// See `SessionBackend::unwrap_sm2_envelope`.
    pub(super) fn unwrap_envelope(
        &self,
        signing_key: ObjectRef,
        envelope: &[u8],
        id: &[u8],
        label: &str,
    ) -> Result<ObjectRef, TokenError> {
        let codes = self.sm2()?;
        let code = self.sm2_code(codes.envelope_unwrap_mechanism, "envelope_unwrap_mechanism")?;
        let key_type = KeyType::new_vendor_defined(codes.key_type)
            .map_err(|e| self.unexpected(&format!("key type {:#x}: {e}", codes.key_type)))?;
        let mechanism = self.vendor_mechanism(code)?;
        let usage = KeyUsage {
            decrypt: true,
            unwrap: true,
            ..KeyUsage::NONE
        };
        let mut template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type),
        ];
        template.extend(private_key_template(id, label, usage));
        let signing = self.handle(signing_key)?;
        let key = self.ck(self
            .session
            .unwrap_key(&mechanism, signing, envelope, &template))?;
        Ok(self.remember(key))
    }

    /// See `SessionBackend::sm2_decrypt`.
    pub(super) fn decrypt_sm2(
        &self,
        key: ObjectRef,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let code = self.sm2_code(self.sm2()?.encrypt_mechanism, "encrypt_mechanism")?;
        let mechanism = self.vendor_mechanism(code)?;
        let key = self.handle(key)?;
        self.ck(self.session.decrypt(&mechanism, key, ciphertext))
    }
}
