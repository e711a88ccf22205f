//! Object attributes: a map from `CKA_*` to the bytes PKCS#11 carries, and the rules of which
//! attributes each object class has, which are secret and which may change.
//!
//! Values are kept exactly as they travel through `CK_ATTRIBUTE` (a `CK_BBOOL` is one byte, a
//! `CK_ULONG` is native-endian), so templates match by comparing bytes.

use cryptoki_sys::*;
use std::collections::BTreeMap;

/// An object's attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>);

/// A `CK_BBOOL` value.
pub fn bool_bytes(v: bool) -> Vec<u8> {
    vec![if v { CK_TRUE } else { CK_FALSE }]
}

/// A `CK_ULONG` value.
pub fn ulong_bytes(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Reads a `CK_ULONG` value.
pub fn read_ulong(v: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(v.try_into().ok()?))
}

/// Reads a `CK_BBOOL` value.
pub fn read_bool(v: &[u8]) -> Option<bool> {
    match v {
        [b] => Some(*b != CK_FALSE),
        _ => None,
    }
}

impl Attributes {
    /// From (type, value) pairs; a later duplicate wins.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (CK_ATTRIBUTE_TYPE, Vec<u8>)>) -> Self {
        Attributes(pairs.into_iter().collect())
    }

    /// The raw value of `t`.
    pub fn get(&self, t: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0.get(&t).map(Vec::as_slice)
    }

    /// A boolean attribute; `None` when absent or malformed.
    pub fn get_bool(&self, t: CK_ATTRIBUTE_TYPE) -> Option<bool> {
        self.get(t).and_then(read_bool)
    }

    /// A `CK_ULONG` attribute; `None` when absent or malformed.
    pub fn get_ulong(&self, t: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(t).and_then(read_ulong)
    }

    /// A boolean attribute with a default.
    pub fn flag(&self, t: CK_ATTRIBUTE_TYPE, default: bool) -> bool {
        self.get_bool(t).unwrap_or(default)
    }

    /// Sets `t`.
    pub fn set(&mut self, t: CK_ATTRIBUTE_TYPE, v: Vec<u8>) {
        self.0.insert(t, v);
    }

    /// Sets `t` unless present.
    pub fn set_default(&mut self, t: CK_ATTRIBUTE_TYPE, v: Vec<u8>) {
        self.0.entry(t).or_insert(v);
    }

    /// Removes `t`.
    pub fn remove(&mut self, t: CK_ATTRIBUTE_TYPE) -> Option<Vec<u8>> {
        self.0.remove(&t)
    }

    /// True when `t` is present.
    pub fn has(&self, t: CK_ATTRIBUTE_TYPE) -> bool {
        self.0.contains_key(&t)
    }

    /// Every (type, value).
    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.0.iter().map(|(t, v)| (*t, v.as_slice()))
    }

    /// True when every attribute of `template` is present with the same value. A sensitive
    /// attribute never matches: searching by a secret would reveal it.
    pub fn matches(&self, template: &Attributes) -> bool {
        template
            .iter()
            .all(|(t, v)| !is_sensitive(self, t) && self.get(t).is_some_and(|mine| mine == v))
    }

    /// The object class.
    pub fn class(&self) -> Option<CK_OBJECT_CLASS> {
        self.get_ulong(CKA_CLASS)
    }

    /// Approximate size on the token (for `C_GetObjectSize`).
    pub fn size(&self) -> usize {
        self.0.values().map(|v| v.len() + 16).sum()
    }
}

const STORAGE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_LABEL,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
];
const DATA: &[CK_ATTRIBUTE_TYPE] = &[CKA_APPLICATION, CKA_OBJECT_ID, CKA_VALUE];
const CERTIFICATE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CERTIFICATE_TYPE,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CHECK_VALUE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_PUBLIC_KEY_INFO,
    CKA_SUBJECT,
    CKA_ID,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_VALUE,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_NAME_HASH_ALGORITHM,
];
const KEY: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_KEY_TYPE,
    CKA_ID,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_DERIVE,
    CKA_LOCAL,
    CKA_KEY_GEN_MECHANISM,
    CKA_ALLOWED_MECHANISMS,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_PUBLIC_KEY_INFO,
];
const PUBLIC_KEY: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_SUBJECT,
    CKA_ENCRYPT,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_TRUSTED,
    CKA_WRAP_TEMPLATE,
];
const PRIVATE_KEY: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_SUBJECT,
    CKA_SENSITIVE,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_UNWRAP,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_UNWRAP_TEMPLATE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_VALUE,
];

/// True when objects of `class` can have attribute `t`.
pub fn allowed(class: CK_OBJECT_CLASS, t: CK_ATTRIBUTE_TYPE) -> bool {
    if STORAGE.contains(&t) {
        return true;
    }
    match class {
        CKO_DATA => DATA.contains(&t),
        CKO_CERTIFICATE => CERTIFICATE.contains(&t),
        CKO_PUBLIC_KEY => KEY.contains(&t) || PUBLIC_KEY.contains(&t),
        CKO_PRIVATE_KEY => KEY.contains(&t) || PRIVATE_KEY.contains(&t),
        _ => false,
    }
}

/// True when `t` of this object must never leave the token: the secret value of a private key.
/// Keys made here are never extractable, so the value is refused whatever `CKA_SENSITIVE` says.
pub fn is_sensitive(obj: &Attributes, t: CK_ATTRIBUTE_TYPE) -> bool {
    obj.class() == Some(CKO_PRIVATE_KEY) && t == CKA_VALUE
}

/// Why `C_SetAttributeValue` may not set `t` to `v` on `obj`, if it may not.
pub fn check_change(obj: &Attributes, t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Result<(), CK_RV> {
    let class = obj.class().ok_or(CKR_GENERAL_ERROR)?;
    if !allowed(class, t) {
        return Err(CKR_ATTRIBUTE_TYPE_INVALID);
    }
    if !obj.flag(CKA_MODIFIABLE, true) {
        return Err(CKR_ATTRIBUTE_READ_ONLY);
    }
    match t {
        CKA_LABEL | CKA_ID | CKA_SUBJECT | CKA_START_DATE | CKA_END_DATE => Ok(()),
        CKA_APPLICATION | CKA_OBJECT_ID | CKA_VALUE if class == CKO_DATA => Ok(()),
        // A key may only become more protected, never less (PKCS#11 v2.40 §4.9).
        CKA_SENSITIVE => match read_bool(v) {
            Some(true) => Ok(()),
            Some(false) => Err(CKR_ATTRIBUTE_READ_ONLY),
            None => Err(CKR_ATTRIBUTE_VALUE_INVALID),
        },
        CKA_EXTRACTABLE => match read_bool(v) {
            Some(false) => Ok(()),
            Some(true) => Err(CKR_ATTRIBUTE_READ_ONLY),
            None => Err(CKR_ATTRIBUTE_VALUE_INVALID),
        },
        _ => Err(CKR_ATTRIBUTE_READ_ONLY),
    }
}

/// Checks the value shape of attributes whose type PKCS#11 fixes.
pub fn check_value(t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> Result<(), CK_RV> {
    let bool_attr = matches!(
        t,
        CKA_TOKEN
            | CKA_PRIVATE
            | CKA_MODIFIABLE
            | CKA_COPYABLE
            | CKA_DESTROYABLE
            | CKA_TRUSTED
            | CKA_DERIVE
            | CKA_LOCAL
            | CKA_ENCRYPT
            | CKA_VERIFY
            | CKA_VERIFY_RECOVER
            | CKA_WRAP
            | CKA_SENSITIVE
            | CKA_DECRYPT
            | CKA_SIGN
            | CKA_SIGN_RECOVER
            | CKA_UNWRAP
            | CKA_EXTRACTABLE
            | CKA_ALWAYS_SENSITIVE
            | CKA_NEVER_EXTRACTABLE
            | CKA_WRAP_WITH_TRUSTED
            | CKA_ALWAYS_AUTHENTICATE
    );
    let ulong_attr = matches!(
        t,
        CKA_CLASS
            | CKA_KEY_TYPE
            | CKA_CERTIFICATE_TYPE
            | CKA_CERTIFICATE_CATEGORY
            | CKA_JAVA_MIDP_SECURITY_DOMAIN
            | CKA_KEY_GEN_MECHANISM
            | CKA_NAME_HASH_ALGORITHM
    );
    if (bool_attr && read_bool(v).is_none()) || (ulong_attr && read_ulong(v).is_none()) {
        return Err(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Attributes {
        Attributes::from_pairs([
            (CKA_CLASS, ulong_bytes(CKO_CERTIFICATE)),
            (CKA_ID, b"k1".to_vec()),
            (CKA_VALUE, b"der".to_vec()),
        ])
    }

    #[test]
    fn templates_match_by_value() {
        let c = cert();
        assert!(c.matches(&Attributes::default()));
        assert!(c.matches(&Attributes::from_pairs([(CKA_ID, b"k1".to_vec())])));
        assert!(!c.matches(&Attributes::from_pairs([(CKA_ID, b"k2".to_vec())])));
        assert!(!c.matches(&Attributes::from_pairs([(CKA_LABEL, b"x".to_vec())])));
    }

    #[test]
    fn a_private_key_value_is_secret_and_unsearchable() {
        let k = Attributes::from_pairs([
            (CKA_CLASS, ulong_bytes(CKO_PRIVATE_KEY)),
            (CKA_VALUE, vec![1, 2, 3]),
        ]);
        assert!(is_sensitive(&k, CKA_VALUE));
        assert!(!is_sensitive(&cert(), CKA_VALUE));
        assert!(!k.matches(&Attributes::from_pairs([(CKA_VALUE, vec![1, 2, 3])])));
    }

    #[test]
    fn data_objects_have_no_id_and_keys_only_tighten() {
        assert!(
            !allowed(CKO_DATA, CKA_ID),
            "PKCS#11 gives data objects no CKA_ID"
        );
        assert!(allowed(CKO_CERTIFICATE, CKA_ID));
        let k = Attributes::from_pairs([(CKA_CLASS, ulong_bytes(CKO_PRIVATE_KEY))]);
        assert_eq!(check_change(&k, CKA_SENSITIVE, &bool_bytes(true)), Ok(()));
        assert_eq!(
            check_change(&k, CKA_SENSITIVE, &bool_bytes(false)),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check_change(&k, CKA_EXTRACTABLE, &bool_bytes(true)),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check_change(&k, CKA_VALUE, b"x"),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(check_change(&k, CKA_LABEL, b"new"), Ok(()));
        assert_eq!(
            check_value(CKA_TOKEN, &[1, 0]),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
    }
}
