//! The token side of SM2 encryption keys: `C_UnwrapKey` with [`CKM_SM2_ENVELOPE_UNWRAP`]
//! (an `SM2EnvelopedKey` opened with the signing key becomes an encryption key pair on the
//! token) and `C_DecryptInit`/`C_Decrypt` with [`CKM_SM2_ENCRYPT`].
//!
//! The imported private key is sensitive and never extractable, decrypts and unwraps, and never
//! signs: a dual-certificate encryption key is not a signing key. As the key was made
//! elsewhere, `CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE` are false.

use crate::attrs::{Attributes, bool_bytes, ulong_bytes};
use crate::crypto::{pair_defaults, template_for};
use crate::envelope::{self, CKM_SM2_ENCRYPT, CKM_SM2_ENVELOPE_UNWRAP};
use crate::mechanisms::{self, CKK_SM2, Curve, KeyPair};
use crate::module::{CK_UNAVAILABLE_INFORMATION, Module};
use cryptoki_sys::*;
use zeroize::Zeroizing;

impl Module {
    /// The SM2 private key `key` for an operation needing `usage`, or `invalid_handle`.
    fn sm2_private_key(
        &mut self,
        s: CK_SESSION_HANDLE,
        key: CK_OBJECT_HANDLE,
        invalid_handle: CK_RV,
        inconsistent: CK_RV,
        usage: Option<CK_ATTRIBUTE_TYPE>,
    ) -> Result<(), CK_RV> {
        let v = self.visible(s, key).map_err(|e| match e {
            CKR_OBJECT_HANDLE_INVALID => invalid_handle,
            e => e,
        })?;
        if v.attrs.class() != Some(CKO_PRIVATE_KEY) || Curve::of(&v.attrs) != Some(Curve::Sm2) {
            return Err(inconsistent);
        }
        if let Some(u) = usage
            && !v.attrs.flag(u, false)
        {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        Ok(())
    }

    /// `C_UnwrapKey` with `CKM_SM2_ENVELOPE_UNWRAP`: opens `wrapped` with the SM2 signing
    /// private key `unwrapping_key` (as `SKF_ImportECCKeyPair` does with the container's signing
    /// key, it needs no `CKA_UNWRAP`) and stores the encryption key pair, its public key taking
    /// the private template's `CKA_TOKEN`, `CKA_ID` and `CKA_LABEL`. Answers the private key.
    pub fn unwrap_envelope(
        &mut self,
        s: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        parameter: &[u8],
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: Attributes,
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        if mechanism != CKM_SM2_ENVELOPE_UNWRAP {
            return Err(CKR_MECHANISM_INVALID);
        }
        if !parameter.is_empty() {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        let mut private = template_for(CKO_PRIVATE_KEY, template)?;
        if private.get_bool(CKA_SENSITIVE) == Some(false)
            || private.get_bool(CKA_EXTRACTABLE) == Some(true)
        {
            return Err(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        if private.get_bool(CKA_SIGN) == Some(true)
            || private
                .get_ulong(CKA_KEY_TYPE)
                .is_some_and(|t| t != CKK_SM2)
        {
            return Err(CKR_TEMPLATE_INCONSISTENT);
        }
        self.sm2_private_key(
            s,
            unwrapping_key,
            CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            None,
        )?;
        let signing = self.private_secret(s, unwrapping_key)?;
        let opened = envelope::open(&signing, wrapped)?;
        let mut public = Attributes::default();
        for a in [CKA_TOKEN, CKA_ID, CKA_LABEL, CKA_SUBJECT] {
            if let Some(v) = private.get(a) {
                public.set(a, v.to_vec());
            }
        }
        public.set(CKA_VERIFY, bool_bytes(false));
        public.set(CKA_ENCRYPT, bool_bytes(true));
        public.set(CKA_WRAP, bool_bytes(true));
        private.set(CKA_SIGN, bool_bytes(false));
        private.set_default(CKA_DECRYPT, bool_bytes(true));
        private.set_default(CKA_UNWRAP, bool_bytes(true));
        pair_defaults(&mut public, &mut private);
        let kp = KeyPair {
            curve: Curve::Sm2,
            point: opened.point,
            secret: opened.secret,
        };
        mechanisms::fixed_key_attributes(&kp, mechanism, &mut public, &mut private);
        for a in [&mut public, &mut private] {
            a.set(CKA_LOCAL, bool_bytes(false));
            a.set(
                CKA_KEY_GEN_MECHANISM,
                ulong_bytes(CK_UNAVAILABLE_INFORMATION),
            );
        }
        private.set(CKA_ALWAYS_SENSITIVE, bool_bytes(false));
        private.set(CKA_NEVER_EXTRACTABLE, bool_bytes(false));
        let (_, private_h) = self.store_pair(s, public, private, kp.secret)?;
        Ok(private_h)
    }

    /// `C_DecryptInit` with `CKM_SM2_ENCRYPT` on an SM2 private key with `CKA_DECRYPT`.
    pub fn decrypt_init(
        &mut self,
        s: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        parameter: &[u8],
        key: CK_OBJECT_HANDLE,
    ) -> Result<(), CK_RV> {
        if self.session(s)?.decrypt.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        if mechanism != CKM_SM2_ENCRYPT {
            return Err(CKR_MECHANISM_INVALID);
        }
        if !parameter.is_empty() {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        self.sm2_private_key(
            s,
            key,
            CKR_KEY_HANDLE_INVALID,
            CKR_KEY_TYPE_INCONSISTENT,
            Some(CKA_DECRYPT),
        )?;
        self.session(s)?.decrypt = Some(key);
        Ok(())
    }

    /// `C_Decrypt` (single part): the plaintext of the DER `SM2Cipher` `ciphertext`. With
    /// `keep` (a length query or a short buffer, PKCS#11 §5.2) a successful decryption leaves
    /// the operation active; otherwise, and after any failure, it ends.
    pub fn decrypt(
        &mut self,
        s: CK_SESSION_HANDLE,
        ciphertext: &[u8],
        keep: bool,
    ) -> Result<Zeroizing<Vec<u8>>, CK_RV> {
        let session = self.session(s)?;
        let key = if keep {
            session.decrypt
        } else {
            session.decrypt.take()
        }
        .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let plain = self
            .private_secret(s, key)
            .and_then(|secret| envelope::decrypt(&secret, ciphertext));
        if plain.is_err() {
            self.session(s)?.decrypt = None;
        }
        plain
    }
}
