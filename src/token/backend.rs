//! The token seam: what the station needs of a PKCS#11 module and of a session on one of its
//! tokens, and nothing more.
//!
//! [`TokenBackend`] lists tokens, reads what they say about themselves, initialises them and
//! opens sessions; [`SessionBackend`] logs in, sets the user PIN, generates keys, finds, reads,
//! creates and destroys objects, signs, seals with AES-GCM, and imports and uses a dual
//! certificate's SM2 encryption key. The list comes from what the
//! station calls: everything else of PKCS#11 stays out.
//!
//! The cryptoki implementation is the private `token::pkcs11`; every policy that does not
//! depend on the module (finding a token by serial or label, refusing a login on a locked PIN,
//! the templates' meaning, ECDSA signature encoding, the vault's formats) lives above the seam,
//! in [`super::module`], [`super::session`], [`super::signer`] and [`super::vault`], and so
//! holds for any backend. A decorator (the test builds' fault simulator) wraps a backend at the one place
//! a module is opened, [`super::Pkcs11Module::load`].
//!
//! # Security notes
//! PINs cross the seam only as [`Pin`] / [`SoPin`] (in a [`Credential`] for a login), never as
//! text; key material never crosses it (a backend signs, seals and opens, it does not hand out
//! secret or private values).

use super::TokenError;
use super::model::{ObjectClassName, SecretKeyKind, TokenInfo, TokenObject, UserKind};
use super::vendor::Sm2Codes;
use crate::domain::{KeyAlgorithm, Pin, SoPin};
use std::fmt;

/// A PKCS#11 module: its tokens, and sessions on them.
///
/// Slots are named by their id in this process (PKCS#11 `CK_SLOT_ID`); callers never keep one
/// across processes, and re-find a token by serial before they use it ([`super::Token::refresh`]).
pub trait TokenBackend: Send + Sync + fmt::Debug {
    /// The slots holding a token, in slot order (`C_GetSlotList`).
    fn slots(&self) -> Result<Vec<u64>, TokenError>;

    /// What the token in `slot` says about itself (`C_GetTokenInfo`); a token that cannot
    /// answer is [`TokenError::Removed`].
    fn token_info(&self, slot: u64) -> Result<TokenInfo, TokenError>;

    /// `C_InitToken` on `token` (as last read): erases it and gives it `label`. A wrong SO PIN
    /// is [`TokenError::PinIncorrect`], a locked one [`TokenError::PinLocked`].
    fn init_token(&self, token: &TokenInfo, so_pin: &SoPin, label: &str) -> Result<(), TokenError>;

    /// A read-write session on `token` (`C_OpenSession`).
    fn open_session(&self, token: &TokenInfo) -> Result<Box<dyn SessionBackend>, TokenError>;
}

/// A data object (`CKO_DATA`) to write. It has no `CKA_ID`: PKCS#11 defines none for data
/// objects (a template naming one is refused, and SoftHSM then leaves behind the empty object it
/// had already created).
#[derive(Clone, Copy)]
pub struct DataObject<'a> {
    /// `CKA_APPLICATION`: whose object it is.
    pub application: &'a str,
    /// `CKA_LABEL`.
    pub label: &'a str,
    /// `CKA_VALUE`.
    pub value: &'a [u8],
    /// `CKA_PRIVATE`: readable only after a user login.
    pub private: bool,
}

impl<'a> DataObject<'a> {
    /// A private data object, as the station writes them (seals, the vault's held anchor).
    pub fn private(application: &'a str, label: &'a str, value: &'a [u8]) -> DataObject<'a> {
        DataObject {
            application,
            label,
            value,
            private: true,
        }
    }
}

/// The value's length only: a data object's bytes are for the token.
impl fmt::Debug for DataObject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataObject")
            .field("application", &self.application)
            .field("label", &self.label)
            .field("value_len", &self.value.len())
            .field("private", &self.private)
            .finish()
    }
}

/// An open read-write session on one token.
pub trait SessionBackend: Send {
    /// True while the session is open and logged in as the user (`C_GetSessionInfo`).
    fn is_user_session(&self) -> bool;

    /// `C_Login`. "Already logged in" is success; a wrong PIN is [`TokenError::PinIncorrect`],
    /// a locked one [`TokenError::PinLocked`]. (Whether trying is safe at all is decided above
    /// the seam, from the token's flags.)
    fn login(&self, credential: Credential<'_>) -> Result<(), TokenError>;

    /// `C_InitPIN` in an SO session: sets the user PIN.
    fn init_user_pin(&self, pin: &Pin) -> Result<(), TokenError>;

    /// `C_SetPIN` in an SO session: replaces the SO PIN `old` with `new`.
    fn set_so_pin(&self, old: &SoPin, new: &SoPin) -> Result<(), TokenError>;

    /// `len` bytes from the token's RNG (`C_GenerateRandom`).
    fn random(&self, len: usize) -> Result<Vec<u8>, TokenError>;

    /// `C_GenerateKeyPair`: a signing key pair ON the token, both halves with `id` and `label`;
    /// the private key private, sensitive, never extractable, and allowed only to sign, the
    /// public key only to verify. Returns (public, private).
    fn generate_key_pair(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<(ObjectRef, ObjectRef), TokenError>;

    /// `C_GenerateKey`: a secret key of `kind` (never extractable, sensitive, private, with
    /// exactly the usages of its kind) labelled `label`.
    fn generate_secret_key(
        &self,
        kind: SecretKeyKind,
        label: &str,
    ) -> Result<ObjectRef, TokenError>;

    /// `C_FindObjects`: the objects this session sees that match every field `query` sets
    /// (an empty query: every object).
    fn find(&self, query: &ObjectQuery<'_>) -> Result<Vec<ObjectRef>, TokenError>;

    /// An object read back: class, label, id, application, privacy, the value of a certificate
    /// or data object, and for a key its type, usages and (private keys) protection.
    fn object(&self, object: ObjectRef) -> Result<TokenObject, TokenError>;

    /// The raw public key of a public-key object of `algorithm`: the uncompressed EC point, or
    /// the PKCS#1 `RSAPublicKey` DER.
    fn public_key(&self, key: ObjectRef, algorithm: KeyAlgorithm) -> Result<Vec<u8>, TokenError>;

    /// Tries to read a private key's secret values: `Ok(true)` when the token REFUSED (as it
    /// must for a sensitive key), `Ok(false)` when it handed out key material.
    fn value_is_protected(&self, key: ObjectRef) -> Result<bool, TokenError>;

    /// `C_CreateObject`: an X.509 certificate object (public) with `id` and `label`.
    fn create_certificate(
        &self,
        id: &[u8],
        label: &str,
        cert_der: &[u8],
    ) -> Result<ObjectRef, TokenError>;

    /// `C_CreateObject`: the data object `data`.
    fn create_data(&self, data: &DataObject<'_>) -> Result<ObjectRef, TokenError>;

    /// `C_DestroyObject`.
    fn destroy(&self, object: ObjectRef) -> Result<(), TokenError>;

    /// The SM2 codes and behaviour of this session's module (its vendor-table entry), if it
    /// has an entry: how an SM2 key is made, which data `C_Sign` takes, how it encodes.
    fn sm2_codes(&self) -> Option<&Sm2Codes>;

    /// `C_Sign` with `key`.
    fn sign(
        &self,
        key: ObjectRef,
        mechanism: SignMechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, TokenError>;

    /// `C_Encrypt` with AES-GCM (128-bit tag): ciphertext ‖ tag.
    fn encrypt(&self, key: ObjectRef, gcm: AesGcm<'_>, data: &[u8]) -> Result<Vec<u8>, TokenError>;

    /// `C_Decrypt` with AES-GCM: fails when the ciphertext, tag, IV or additional data was
    /// altered.
    fn decrypt(&self, key: ObjectRef, gcm: AesGcm<'_>, data: &[u8]) -> Result<Vec<u8>, TokenError>;

    /// `C_UnwrapKey` with the module's SM2 `envelope_unwrap_mechanism`: imports the
    /// `SM2EnvelopedKey` `envelope` (opened on the token with the SM2 signing private key
    /// `signing_key`) as a key pair with `id` and `label`; the private key private, sensitive,
    /// never extractable and allowed only to decrypt and unwrap. Returns the private key.
    fn unwrap_sm2_envelope(
        &self,
        signing_key: ObjectRef,
        envelope: &[u8],
        id: &[u8],
        label: &str,
    ) -> Result<ObjectRef, TokenError>;

    /// `C_Decrypt` with the module's SM2 `encrypt_mechanism`: the plaintext of a GM/T 0009 DER
    /// `SM2Cipher`.
    fn sm2_decrypt(&self, key: ObjectRef, ciphertext: &[u8]) -> Result<Vec<u8>, TokenError>;
}

/// An object a session found or made; meaningful in that session only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectRef(u64);

impl ObjectRef {
    /// The backend's number for the object (PKCS#11 `CK_OBJECT_HANDLE`).
    pub fn new(handle: u64) -> ObjectRef {
        ObjectRef(handle)
    }

    /// The backend's number for the object.
    pub fn handle(self) -> u64 {
        self.0
    }
}

/// Which objects [`SessionBackend::find`] returns: each field that is set must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectQuery<'a> {
    /// `CKA_CLASS`.
    pub class: Option<ObjectClassName>,
    /// `CKA_ID`.
    pub id: Option<&'a [u8]>,
    /// `CKA_LABEL`.
    pub label: Option<&'a str>,
    /// `CKA_APPLICATION` (data objects).
    pub application: Option<&'a str>,
}

impl<'a> ObjectQuery<'a> {
    /// Every object of `class`.
    pub fn class(class: ObjectClassName) -> ObjectQuery<'a> {
        ObjectQuery {
            class: Some(class),
            ..ObjectQuery::default()
        }
    }

    /// Only those with `id`.
    pub fn id(self, id: &'a [u8]) -> ObjectQuery<'a> {
        ObjectQuery {
            id: Some(id),
            ..self
        }
    }

    /// Only those labelled `label`.
    pub fn label(self, label: &'a str) -> ObjectQuery<'a> {
        ObjectQuery {
            label: Some(label),
            ..self
        }
    }

    /// Only data objects of `application`.
    pub fn application(self, application: &'a str) -> ObjectQuery<'a> {
        ObjectQuery {
            application: Some(application),
            ..self
        }
    }
}

/// Who logs in, with which PIN.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// The user, with the user PIN.
    User(&'a Pin),
    /// The security officer, with the SO PIN.
    So(&'a SoPin),
}

impl Credential<'_> {
    /// User or SO.
    pub fn user(&self) -> UserKind {
        match self {
            Credential::User(_) => UserKind::User,
            Credential::So(_) => UserKind::So,
        }
    }
}

/// The signature mechanisms the station uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMechanism {
    /// `CKM_ECDSA` over a digest the caller computed; the token returns raw `r ‖ s`.
    Ecdsa,
    /// `CKM_SHA256_RSA_PKCS`: the token hashes; PKCS#1 v1.5.
    Sha256RsaPkcs,
    /// `CKM_SHA256_HMAC` with a secret key.
    Sha256Hmac,
    /// The module's SM2 signature mechanism ([`Sm2Codes::sign_mechanism`]), over the message or
    /// the caller's `e` as [`Sm2Codes::digest`] says; raw or DER as [`Sm2Codes::signature`] says.
    Sm2,
}

/// `CKM_AES_GCM` parameters: a 12-byte IV and the additional authenticated data.
#[derive(Debug, Clone, Copy)]
pub struct AesGcm<'a> {
    /// The IV.
    pub iv: &'a [u8],
    /// The additional authenticated data.
    pub aad: &'a [u8],
}
