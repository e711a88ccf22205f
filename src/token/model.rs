//! What the token seam speaks of, as plain values: a token's description ([`TokenInfo`]), the
//! users that log in ([`UserKind`]), object classes and objects as read back ([`TokenObject`]),
//! key kinds, usages and protection attributes. The seam ([`super::backend`]), its
//! implementations and the session's operations all use these; none of them is defined by one
//! of its users, so no two token modules import each other.

use std::fmt;

/// The class of an object found on a token, including classes the station never writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `CKO_DATA`.
    Data,
    /// `CKO_CERTIFICATE`.
    Certificate,
    /// `CKO_PUBLIC_KEY`.
    PublicKey,
    /// `CKO_PRIVATE_KEY`.
    PrivateKey,
    /// `CKO_SECRET_KEY`.
    SecretKey,
    /// Any other class (its `CKO_` value).
    Other(u64),
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectKind::Data => f.write_str("data object"),
            ObjectKind::Certificate => f.write_str("certificate"),
            ObjectKind::PublicKey => f.write_str("public key"),
            ObjectKind::PrivateKey => f.write_str("private key"),
            ObjectKind::SecretKey => f.write_str("secret key"),
            ObjectKind::Other(c) => write!(f, "object of class {c:#x}"),
        }
    }
}

/// The type of a key found on a token (`CKA_KEY_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `CKK_EC`.
    Ec,
    /// `CKK_RSA`.
    Rsa,
    /// `CKK_GENERIC_SECRET` (the vault's HMAC keys).
    GenericSecret,
    /// `CKK_AES`.
    Aes,
    /// SM2: the vendor-defined key type the module's vendor-table entry names.
    Sm2,
    /// Any other type (its `CKK_` value).
    Other(u64),
}

/// One object on a token, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenObject {
    /// Its class.
    pub kind: ObjectKind,
    /// `CKA_LABEL` (lossy UTF-8; empty when absent).
    pub label: String,
    /// `CKA_ID` (empty when absent; data objects have none).
    pub id: Vec<u8>,
    /// `CKA_APPLICATION` of a data object.
    pub application: Option<String>,
    /// `CKA_PRIVATE`.
    pub private: bool,
    /// `CKA_VALUE` of a certificate or data object (keys' values are never read).
    pub value: Option<Vec<u8>>,
    /// The type of a key.
    pub key_type: Option<KeyKind>,
    /// The usages of a key.
    pub usage: Option<KeyUsage>,
    /// The protection attributes of a private key.
    pub protection: Option<PrivateKeyAttributes>,
}

impl TokenObject {
    /// An object of class `kind` with `label` and `id` and no other attribute read yet (public,
    /// no value, not a key): where reading an object's attributes starts.
    pub fn new(kind: ObjectKind, label: impl Into<String>, id: impl Into<Vec<u8>>) -> TokenObject {
        TokenObject {
            kind,
            label: label.into(),
            id: id.into(),
            application: None,
            private: false,
            value: None,
            key_type: None,
            usage: None,
            protection: None,
        }
    }

    /// The usages the station gives a key of this class and type, the only ones it may carry:
    /// an asymmetric key signs (private half) or verifies (public half); an HMAC key signs and
    /// verifies MACs; an AES key encrypts and decrypts. `None` for anything else (not a key, or
    /// a key of a type the station never makes).
    pub fn required_usage(&self) -> Option<KeyUsage> {
        match (self.kind, self.key_type?) {
            (ObjectKind::PrivateKey, KeyKind::Ec | KeyKind::Rsa | KeyKind::Sm2) => {
                Some(KeyUsage::SIGN)
            }
            (ObjectKind::PublicKey, KeyKind::Ec | KeyKind::Rsa | KeyKind::Sm2) => {
                Some(KeyUsage::VERIFY)
            }
            (ObjectKind::SecretKey, KeyKind::GenericSecret) => {
                Some(SecretKeyKind::HmacSha256.usage())
            }
            (ObjectKind::SecretKey, KeyKind::Aes) => Some(SecretKeyKind::Aes256.usage()),
            _ => None,
        }
    }

    /// How a message names the object: `data object "seal:company"`, `certificate (CKA_ID 01ab)`.
    pub fn describe(&self) -> String {
        let mut out = self.kind.to_string();
        if self.label.is_empty() {
            out.push_str(" (unlabelled)");
        } else {
            out.push_str(&format!(" {:?}", self.label));
        }
        if !self.id.is_empty() {
            out.push_str(&format!(" CKA_ID {}", hex::encode(&self.id)));
        }
        if let Some(app) = &self.application {
            out.push_str(&format!(" application {app:?}"));
        }
        if let Some(v) = &self.value
            && self.kind == ObjectKind::Data
        {
            out.push_str(&format!(" ({} bytes)", v.len()));
        }
        out
    }
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

/// Kinds of vault secret keys.
#[derive(Debug, Clone, Copy)]
pub enum SecretKeyKind {
    /// 256-bit generic secret for `CKM_SHA256_HMAC`.
    HmacSha256,
    /// AES-256 for `CKM_AES_GCM`.
    Aes256,
}

impl SecretKeyKind {
    /// The usages a vault key of this kind needs: HMAC keys sign and verify MACs, the AES key
    /// seals and opens PINs.
    pub fn usage(self) -> KeyUsage {
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
}

/// What a token says about itself (`C_GetTokenInfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Serial number (empty on a SoftHSM blank slot until `C_InitToken`).
    pub serial: String,
    /// Label.
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// `CKF_TOKEN_INITIALIZED`.
    pub initialized: bool,
    /// `CKF_USER_PIN_INITIALIZED`.
    pub user_pin_initialized: bool,
    /// `CKF_LOGIN_REQUIRED`.
    pub login_required: bool,
    /// `CKF_USER_PIN_COUNT_LOW`.
    pub user_pin_count_low: bool,
    /// `CKF_USER_PIN_FINAL_TRY`.
    pub user_pin_final_try: bool,
    /// `CKF_USER_PIN_LOCKED`.
    pub user_pin_locked: bool,
    /// `CKF_SO_PIN_COUNT_LOW`.
    pub so_pin_count_low: bool,
    /// `CKF_SO_PIN_FINAL_TRY`.
    pub so_pin_final_try: bool,
    /// `CKF_SO_PIN_LOCKED`.
    pub so_pin_locked: bool,
    /// PIN length limits.
    pub min_pin_len: usize,
    /// PIN length limits.
    pub max_pin_len: usize,
    /// Free private memory, when the token reports it.
    pub free_private_memory: Option<usize>,
    /// Slot id in this process (diagnostics only: never used to select a token).
    pub slot_id: u64,
}

impl TokenInfo {
    /// "serial S (label L)" or "blank token in slot N", for messages.
    pub fn display_name(&self) -> String {
        if self.serial.is_empty() {
            format!("blank token in slot {}", self.slot_id)
        } else if self.label.is_empty() {
            format!("serial {}", self.serial)
        } else {
            format!("serial {} ({})", self.serial, self.label)
        }
    }

    /// A token the station may initialise: not initialised at all.
    pub fn is_blank(&self) -> bool {
        !self.initialized
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
    /// `CKO_SECRET_KEY`.
    SecretKey,
}

/// Which PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// The normal user (the certificate holder; the station operator on station tokens).
    User,
    /// The security officer.
    So,
}

impl fmt::Display for UserKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserKind::User => "user",
            UserKind::So => "SO",
        })
    }
}
