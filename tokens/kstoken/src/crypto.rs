//! Cryptographic calls on the module's state: `C_GenerateKeyPair`, `C_Sign*`, `C_Verify*`,
//! `C_GenerateRandom`, and the simulated device time they take.

use crate::attrs::{self, Attributes, bool_bytes};
use crate::config::SlowOp;
use crate::mechanisms::{self, Curve};
use crate::module::{Module, with_module};
use crate::session::Operation;
use cryptoki_sys::*;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The two operations a session can have under way at once.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// `C_SignInit` .. `C_Sign`/`C_SignFinal`.
    Sign,
    /// `C_VerifyInit` .. `C_Verify`/`C_VerifyFinal`.
    Verify,
}

/// Spends the configured device time of `op` on the token of session `s`, outside the module
/// lock: other tokens keep working, while this token, like a real key, does one thing at a time.
pub fn device_time(s: CK_SESSION_HANDLE, op: SlowOp) -> Result<(), CK_RV> {
    let (device, delay): (Arc<Mutex<()>>, _) = with_module(|m| {
        let slot = m.session(s)?.slot;
        let slot = m.slot(slot)?;
        let device = slot.device.clone();
        let label = slot.token.as_ref().map(|t| t.label().to_string());
        Ok((
            device,
            m.config.latency.on(label.as_deref().unwrap_or(""), op),
        ))
    })?;
    if !delay.is_zero() {
        let _busy = device.lock().unwrap_or_else(|p| p.into_inner());
        std::thread::sleep(delay);
    }
    Ok(())
}

/// A key template of `class`, checked: attributes the token decides are refused.
pub(crate) fn template_for(class: CK_OBJECT_CLASS, mut t: Attributes) -> Result<Attributes, CK_RV> {
    match t.get_ulong(CKA_CLASS) {
        None => t.set(CKA_CLASS, attrs::ulong_bytes(class)),
        Some(c) if c == class => {}
        Some(_) => return Err(CKR_TEMPLATE_INCONSISTENT),
    }
    for (a, v) in t.iter() {
        if !attrs::allowed(class, a) {
            return Err(CKR_ATTRIBUTE_TYPE_INVALID);
        }
        attrs::check_value(a, v)?;
    }
    // Caller-supplied values of what the token decides are refused rather than ignored.
    for a in [
        CKA_LOCAL,
        CKA_KEY_GEN_MECHANISM,
        CKA_EC_POINT,
        CKA_VALUE,
        CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE,
    ] {
        if t.has(a) {
            return Err(CKR_ATTRIBUTE_READ_ONLY);
        }
    }
    Ok(t)
}

/// The defaults of a new key pair's templates (PKCS#11 v2.40 §4.8–4.9).
pub(crate) fn pair_defaults(public: &mut Attributes, private: &mut Attributes) {
    for a in [&mut *public, &mut *private] {
        a.set_default(CKA_TOKEN, bool_bytes(false));
        a.set_default(CKA_MODIFIABLE, bool_bytes(true));
        a.set_default(CKA_DESTROYABLE, bool_bytes(true));
        a.set_default(CKA_COPYABLE, bool_bytes(false));
        a.set_default(CKA_LABEL, Vec::new());
        a.set_default(CKA_ID, Vec::new());
        a.set_default(CKA_DERIVE, bool_bytes(false));
    }
    public.set_default(CKA_PRIVATE, bool_bytes(false));
    public.set_default(CKA_VERIFY, bool_bytes(true));
    public.set_default(CKA_ENCRYPT, bool_bytes(false));
    public.set_default(CKA_WRAP, bool_bytes(false));
    private.set_default(CKA_PRIVATE, bool_bytes(true));
    private.set_default(CKA_SIGN, bool_bytes(true));
    private.set_default(CKA_DECRYPT, bool_bytes(false));
    private.set_default(CKA_UNWRAP, bool_bytes(false));
    private.set_default(CKA_ALWAYS_AUTHENTICATE, bool_bytes(false));
    private.set_default(
        CKA_SUBJECT,
        public.get(CKA_SUBJECT).unwrap_or_default().to_vec(),
    );
    public.set_default(CKA_SUBJECT, Vec::new());
}

impl Module {
    /// `C_GenerateKeyPair`.
    pub fn generate_key_pair(
        &mut self,
        s: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        public: Attributes,
        private: Attributes,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
        let mut public = template_for(CKO_PUBLIC_KEY, public)?;
        let mut private = template_for(CKO_PRIVATE_KEY, private)?;
        if private.get_bool(CKA_SENSITIVE) == Some(false)
            || private.get_bool(CKA_EXTRACTABLE) == Some(true)
        {
            // Keys made here never leave the token, as on the USB keys it stands in for.
            return Err(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        let curve = mechanisms::keygen_curve(mechanism, &public)?;
        pair_defaults(&mut public, &mut private);
        let kp = mechanisms::generate(curve)?;
        mechanisms::fixed_key_attributes(&kp, mechanism, &mut public, &mut private);
        self.store_pair(s, public, private, kp.secret)
    }

    /// Stores a key pair: no half pair, the public key goes if its private half could not be
    /// stored. Answers the handles (public, private).
    pub(crate) fn store_pair(
        &mut self,
        s: CK_SESSION_HANDLE,
        public: Attributes,
        private: Attributes,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CK_RV> {
        let pub_h = self.store_object(s, public, None)?;
        match self.store_object(s, private, Some(secret)) {
            Ok(priv_h) => Ok((pub_h, priv_h)),
            Err(e) => {
                let _ = self.destroy_object(s, pub_h);
                Err(e)
            }
        }
    }

    fn start(
        &mut self,
        s: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        parameter: &[u8],
        key: CK_OBJECT_HANDLE,
        class: CK_OBJECT_CLASS,
        usage: CK_ATTRIBUTE_TYPE,
    ) -> Result<Operation, CK_RV> {
        let v = self.visible(s, key).map_err(|e| match e {
            CKR_OBJECT_HANDLE_INVALID => CKR_KEY_HANDLE_INVALID,
            e => e,
        })?;
        if v.attrs.class() != Some(class) {
            return Err(CKR_KEY_TYPE_INCONSISTENT);
        }
        if !v.attrs.flag(usage, false) {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        let curve = Curve::of(&v.attrs).ok_or(CKR_KEY_TYPE_INCONSISTENT)?;
        Ok(Operation {
            spec: mechanisms::sign_spec(mechanism, parameter, curve)?,
            key,
            data: Vec::new(),
        })
    }

    /// The slot of session `s` for an operation of kind `purpose`.
    fn operation(
        &mut self,
        s: CK_SESSION_HANDLE,
        purpose: Purpose,
    ) -> Result<&mut Option<Operation>, CK_RV> {
        let session = self.session(s)?;
        Ok(match purpose {
            Purpose::Sign => &mut session.sign,
            Purpose::Verify => &mut session.verify,
        })
    }

    /// `C_SignInit` / `C_VerifyInit`: one operation of each kind at a time per session.
    pub fn init_operation(
        &mut self,
        s: CK_SESSION_HANDLE,
        purpose: Purpose,
        mechanism: CK_MECHANISM_TYPE,
        parameter: &[u8],
        key: CK_OBJECT_HANDLE,
    ) -> Result<(), CK_RV> {
        if self.operation(s, purpose)?.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let (class, usage) = match purpose {
            Purpose::Sign => (CKO_PRIVATE_KEY, CKA_SIGN),
            Purpose::Verify => (CKO_PUBLIC_KEY, CKA_VERIFY),
        };
        let op = self.start(s, mechanism, parameter, key, class, usage)?;
        *self.operation(s, purpose)? = Some(op);
        Ok(())
    }

    /// `C_SignUpdate` / `C_VerifyUpdate`: more data for the active operation.
    pub fn update_operation(
        &mut self,
        s: CK_SESSION_HANDLE,
        purpose: Purpose,
        data: &[u8],
    ) -> Result<(), CK_RV> {
        let op = self
            .operation(s, purpose)?
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.data.extend_from_slice(data);
        Ok(())
    }

    /// Ends the active operation of kind `purpose` with its last data: the operation is over
    /// whether or not the signature or verification then succeeds.
    fn finish_operation(
        &mut self,
        s: CK_SESSION_HANDLE,
        purpose: Purpose,
        last: &[u8],
    ) -> Result<Operation, CK_RV> {
        let mut op = self
            .operation(s, purpose)?
            .take()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.data.extend_from_slice(last);
        Ok(op)
    }

    /// The length a signature of the active operation needs (for a size query).
    pub fn signature_len(&mut self, s: CK_SESSION_HANDLE) -> Result<usize, CK_RV> {
        let enc = self.config.sm2.signature;
        let op = self
            .session(s)?
            .sign
            .as_ref()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(mechanisms::signature_len(&op.spec, enc))
    }

    /// Finishes the active signature over its data plus `last`; the operation ends either way.
    pub fn sign_finish(&mut self, s: CK_SESSION_HANDLE, last: &[u8]) -> Result<Vec<u8>, CK_RV> {
        let enc = self.config.sm2.signature;
        let op = self.finish_operation(s, Purpose::Sign, last)?;
        let secret = self.private_secret(s, op.key)?;
        mechanisms::sign(&op.spec, &secret, &op.data, enc)
    }

    /// Finishes the active verification; the operation ends either way.
    pub fn verify_finish(
        &mut self,
        s: CK_SESSION_HANDLE,
        last: &[u8],
        signature: &[u8],
    ) -> Result<(), CK_RV> {
        let op = self.finish_operation(s, Purpose::Verify, last)?;
        let v = self.visible(s, op.key)?;
        let point = v.attrs.get(CKA_EC_POINT).ok_or(CKR_KEY_HANDLE_INVALID)?;
        // CKA_EC_POINT is a DER OCTET STRING around the point.
        let point = match point {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
            _ => return Err(CKR_KEY_HANDLE_INVALID),
        };
        mechanisms::verify(&op.spec, point, &op.data, signature)
    }

    /// `C_GenerateRandom`.
    pub fn random(&mut self, s: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<(), CK_RV> {
        self.session(s)?;
        getrandom::fill(out).map_err(|_| CKR_FUNCTION_FAILED)
    }
}
