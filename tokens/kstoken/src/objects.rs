//! Object management: `C_CreateObject`, `C_DestroyObject`, `C_GetAttributeValue`,
//! `C_SetAttributeValue`, `C_FindObjects*`, `C_GetObjectSize`.
//!
//! Access rules (PKCS#11 v2.40 §4.1–4.4, §6.7):
//! - private objects (`CKA_PRIVATE`) exist for a session only while the user is logged in;
//! - token objects are written only in read-write sessions;
//! - certificates (`CKO_CERTIFICATE`, X.509), data objects (`CKO_DATA`) and public keys may be
//!   created; private keys only come from `C_GenerateKeyPair` (a key made elsewhere is not a key
//!   this token vouches for) or, for a dual certificate's encryption key, from an
//!   `SM2EnvelopedKey` opened with the token's own signing key (`C_UnwrapKey`, [`crate::unwrap`]);
//! - a private key's `CKA_VALUE` is never returned (`CKR_ATTRIBUTE_SENSITIVE`), and it is
//!   stored sealed with the token key.

use crate::attrs::{self, Attributes, bool_bytes, ulong_bytes};
use crate::module::{CK_UNAVAILABLE_INFORMATION, Module, ObjectRef, SessionObject};
use crate::pin::TokenKey;
use crate::store::StoredObject;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// One attribute asked for by `C_GetAttributeValue`, and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrAnswer {
    /// The value.
    Value(Vec<u8>),
    /// The object has no such attribute.
    Invalid,
    /// The attribute is secret.
    Sensitive,
}

/// The additional data binding a sealed secret to its token and object.
pub fn secret_aad(serial: &str, id: u64) -> Vec<u8> {
    format!("kstoken/object/{serial}/{id}").into_bytes()
}

/// Fills the defaults of a new object and checks its template against its class.
pub fn complete_new_object(mut a: Attributes) -> Result<Attributes, CK_RV> {
    let class = a.class().ok_or(CKR_TEMPLATE_INCOMPLETE)?;
    for (t, v) in a.iter() {
        if !attrs::allowed(class, t) {
            return Err(CKR_ATTRIBUTE_TYPE_INVALID);
        }
        attrs::check_value(t, v)?;
    }
    a.set_default(CKA_TOKEN, bool_bytes(false));
    a.set_default(CKA_MODIFIABLE, bool_bytes(true));
    a.set_default(CKA_COPYABLE, bool_bytes(true));
    a.set_default(CKA_DESTROYABLE, bool_bytes(true));
    a.set_default(CKA_LABEL, Vec::new());
    match class {
        CKO_DATA => {
            a.set_default(CKA_PRIVATE, bool_bytes(false));
            a.set_default(CKA_APPLICATION, Vec::new());
            a.set_default(CKA_VALUE, Vec::new());
        }
        CKO_CERTIFICATE => {
            a.set_default(CKA_PRIVATE, bool_bytes(false));
            a.set_default(CKA_CERTIFICATE_TYPE, ulong_bytes(CKC_X_509));
            if a.get_ulong(CKA_CERTIFICATE_TYPE) != Some(CKC_X_509) {
                return Err(CKR_ATTRIBUTE_VALUE_INVALID);
            }
            if a.get(CKA_VALUE).is_none_or(<[u8]>::is_empty) {
                return Err(CKR_TEMPLATE_INCOMPLETE);
            }
            a.set_default(CKA_TRUSTED, bool_bytes(false));
            a.set_default(CKA_CERTIFICATE_CATEGORY, ulong_bytes(0));
            for t in [CKA_ID, CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER] {
                a.set_default(t, Vec::new());
            }
        }
        CKO_PUBLIC_KEY => {
            if a.get(CKA_EC_PARAMS).is_none() || a.get(CKA_EC_POINT).is_none() {
                return Err(CKR_TEMPLATE_INCOMPLETE);
            }
            a.set_default(CKA_PRIVATE, bool_bytes(false));
            a.set_default(CKA_LOCAL, bool_bytes(false));
            a.set_default(CKA_ID, Vec::new());
            a.set_default(CKA_VERIFY, bool_bytes(true));
        }
        CKO_PRIVATE_KEY | CKO_SECRET_KEY => return Err(CKR_TEMPLATE_INCONSISTENT),
        _ => return Err(CKR_ATTRIBUTE_VALUE_INVALID),
    }
    Ok(a)
}

/// An object as a session sees it.
#[derive(Debug)]
pub struct Visible {
    /// Attributes (without a private key's secret value).
    pub attrs: Attributes,
    /// Where it lives.
    pub token_object: Option<(String, u64)>,
}

impl Module {
    fn user_logged_in(&self, serial: &str) -> bool {
        self.logins.get(serial).is_some_and(|l| l.user == CKU_USER)
    }

    /// The handle of a token object (made on first sight, stable for the process).
    pub fn token_handle(&mut self, serial: &str, id: u64) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.token_handles.get(&(serial.to_string(), id)) {
            return *h;
        }
        let h = self.new_handle();
        self.token_handles.insert((serial.to_string(), id), h);
        self.objects.insert(
            h,
            ObjectRef::Token {
                serial: serial.to_string(),
                id,
            },
        );
        h
    }

    /// The object `h` as session `s` may see it.
    pub fn visible(&mut self, s: CK_SESSION_HANDLE, h: CK_OBJECT_HANDLE) -> Result<Visible, CK_RV> {
        let serial = self.session_serial(s)?;
        let slot = self.session(s)?.slot;
        let logged_in = self.user_logged_in(&serial);
        let v = match self.objects.get(&h).ok_or(CKR_OBJECT_HANDLE_INVALID)? {
            ObjectRef::Session(o) if o.slot == slot => Visible {
                attrs: o.attrs.clone(),
                token_object: None,
            },
            ObjectRef::Session(_) => return Err(CKR_OBJECT_HANDLE_INVALID),
            ObjectRef::Token { serial: os, id } if *os == serial => {
                let id = *id;
                let file = self.token(slot)?.current()?;
                let stored = file.objects.get(&id).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
                let attrs = stored.attributes().map_err(|_| CKR_DEVICE_ERROR)?;
                Visible {
                    attrs,
                    token_object: Some((serial, id)),
                }
            }
            ObjectRef::Token { .. } => return Err(CKR_OBJECT_HANDLE_INVALID),
        };
        if v.attrs.flag(CKA_PRIVATE, true) && !logged_in {
            return Err(CKR_OBJECT_HANDLE_INVALID);
        }
        Ok(v)
    }

    /// Checks that session `s` may create or change an object with these attributes.
    fn check_write(&mut self, s: CK_SESSION_HANDLE, a: &Attributes) -> Result<(), CK_RV> {
        let serial = self.session_serial(s)?;
        if a.flag(CKA_TOKEN, false) && !self.session(s)?.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        if a.flag(CKA_PRIVATE, true) && !self.user_logged_in(&serial) {
            return Err(CKR_USER_NOT_LOGGED_IN);
        }
        Ok(())
    }

    /// Stores a new object for session `s`; `secret` is a private key's value.
    pub fn store_object(
        &mut self,
        s: CK_SESSION_HANDLE,
        attrs: Attributes,
        secret: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        self.check_write(s, &attrs)?;
        let slot = self.session(s)?.slot;
        if !attrs.flag(CKA_TOKEN, false) {
            let h = self.new_handle();
            self.objects.insert(
                h,
                ObjectRef::Session(SessionObject {
                    slot,
                    session: s,
                    attrs,
                    secret,
                }),
            );
            return Ok(h);
        }
        let serial = self.session_serial(s)?;
        let key = match (&secret, self.logins.get(&serial)) {
            (None, _) => None,
            (Some(_), Some(l)) => Some(l.key.clone()),
            (Some(_), None) => return Err(CKR_USER_NOT_LOGGED_IN),
        };
        let id = self.token(slot)?.update(|f| -> Result<u64, CK_RV> {
            let id = f.next_object;
            let sealed = match (&secret, &key) {
                (Some(v), Some(k)) => Some(
                    k.seal(&secret_aad(&f.serial, id), v)
                        .map_err(|_| CKR_FUNCTION_FAILED)?,
                ),
                _ => None,
            };
            f.next_object += 1;
            f.objects.insert(id, StoredObject::new(&attrs, sealed));
            Ok(id)
        })??;
        Ok(self.token_handle(&serial, id))
    }

    /// `C_CreateObject`.
    pub fn create_object(
        &mut self,
        s: CK_SESSION_HANDLE,
        template: Attributes,
    ) -> Result<CK_OBJECT_HANDLE, CK_RV> {
        let attrs = complete_new_object(template)?;
        self.store_object(s, attrs, None)
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(
        &mut self,
        s: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
    ) -> Result<(), CK_RV> {
        let v = self.visible(s, h)?;
        self.check_write(s, &v.attrs)?;
        if !v.attrs.flag(CKA_DESTROYABLE, true) {
            return Err(CKR_ACTION_PROHIBITED);
        }
        if let Some((serial, id)) = &v.token_object {
            let slot = self.session(s)?.slot;
            self.token(slot)?.update(|f| f.objects.remove(id))?;
            self.token_handles.remove(&(serial.clone(), *id));
        }
        self.objects.remove(&h);
        Ok(())
    }

    /// `C_GetAttributeValue`: one answer per asked type.
    pub fn get_attributes(
        &mut self,
        s: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<AttrAnswer>, CK_RV> {
        let v = self.visible(s, h)?;
        Ok(types
            .iter()
            .map(|t| {
                if attrs::is_sensitive(&v.attrs, *t) {
                    AttrAnswer::Sensitive
                } else {
                    v.attrs
                        .get(*t)
                        .map_or(AttrAnswer::Invalid, |x| AttrAnswer::Value(x.to_vec()))
                }
            })
            .collect())
    }

    /// `C_SetAttributeValue`.
    pub fn set_attributes(
        &mut self,
        s: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
        template: Attributes,
    ) -> Result<(), CK_RV> {
        let v = self.visible(s, h)?;
        self.check_write(s, &v.attrs)?;
        let mut updated = v.attrs.clone();
        for (t, val) in template.iter() {
            attrs::check_change(&v.attrs, t, val)?;
            attrs::check_value(t, val)?;
            updated.set(t, val.to_vec());
        }
        match &v.token_object {
            Some((_, id)) => {
                let slot = self.session(s)?.slot;
                self.token(slot)?.update(|f| match f.objects.get_mut(id) {
                    Some(o) => {
                        *o = StoredObject::new(&updated, o.secret.take());
                        Ok(())
                    }
                    None => Err(CKR_OBJECT_HANDLE_INVALID),
                })?
            }
            None => match self.objects.get_mut(&h) {
                Some(ObjectRef::Session(o)) => {
                    o.attrs = updated;
                    Ok(())
                }
                _ => Err(CKR_OBJECT_HANDLE_INVALID),
            },
        }
    }

    /// `C_GetObjectSize`.
    pub fn object_size(
        &mut self,
        s: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
    ) -> Result<CK_ULONG, CK_RV> {
        Ok(self.visible(s, h)?.attrs.size() as CK_ULONG)
    }

    /// `C_FindObjectsInit`: every object the session sees that matches `template`.
    pub fn find_init(&mut self, s: CK_SESSION_HANDLE, template: Attributes) -> Result<(), CK_RV> {
        if self.session(s)?.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let serial = self.session_serial(s)?;
        let slot = self.session(s)?.slot;
        let logged_in = self.user_logged_in(&serial);
        let see =
            |a: &Attributes| (logged_in || !a.flag(CKA_PRIVATE, true)) && a.matches(&template);
        let mut ids = Vec::new();
        for (id, o) in &self.token(slot)?.current()?.objects {
            let a = o.attributes().map_err(|_| CKR_DEVICE_ERROR)?;
            if see(&a) {
                ids.push(*id);
            }
        }
        let mut found: Vec<CK_OBJECT_HANDLE> = ids
            .into_iter()
            .map(|id| self.token_handle(&serial, id))
            .collect();
        let mut session_objects: Vec<CK_OBJECT_HANDLE> = self
            .objects
            .iter()
            .filter(
                |(_, o)| matches!(o, ObjectRef::Session(so) if so.slot == slot && see(&so.attrs)),
            )
            .map(|(h, _)| *h)
            .collect();
        session_objects.sort_unstable();
        found.extend(session_objects);
        self.session(s)?.find = Some(found.into());
        Ok(())
    }

    /// `C_FindObjects`.
    pub fn find_next(
        &mut self,
        s: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>, CK_RV> {
        let q = self
            .session(s)?
            .find
            .as_mut()
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let n = max.min(q.len());
        Ok(q.drain(..n).collect())
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&mut self, s: CK_SESSION_HANDLE) -> Result<(), CK_RV> {
        self.session(s)?
            .find
            .take()
            .map(drop)
            .ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    /// The secret value of private key `h`, opened with the logged-in token key.
    pub fn private_secret(
        &mut self,
        s: CK_SESSION_HANDLE,
        h: CK_OBJECT_HANDLE,
    ) -> Result<Zeroizing<Vec<u8>>, CK_RV> {
        let v = self.visible(s, h)?;
        match v.token_object {
            None => match self.objects.get(&h) {
                Some(ObjectRef::Session(o)) => o.secret.clone().ok_or(CKR_KEY_HANDLE_INVALID),
                _ => Err(CKR_KEY_HANDLE_INVALID),
            },
            Some((serial, id)) => {
                let key: TokenKey = self
                    .logins
                    .get(&serial)
                    .map(|l| l.key.clone())
                    .ok_or(CKR_USER_NOT_LOGGED_IN)?;
                let slot = self.session(s)?.slot;
                let file = self.token(slot)?.current()?;
                let sealed = file
                    .objects
                    .get(&id)
                    .and_then(|o| o.secret.as_ref())
                    .ok_or(CKR_KEY_HANDLE_INVALID)?;
                key.open(&secret_aad(&serial, id), sealed)
                    .map_err(|_| CKR_DEVICE_ERROR)
            }
        }
    }
}

/// The length PKCS#11 reports for an attribute it cannot return.
pub const UNAVAILABLE: CK_ULONG = CK_UNAVAILABLE_INFORMATION;
