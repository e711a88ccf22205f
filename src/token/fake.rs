//! An in-memory token backend for the unit tests of what sits above the seam (finding tokens,
//! the fault simulator). It speaks the seam, not PKCS#11: tokens are a list of
//! [`TokenInfo`] with their PINs and a count of objects, and it counts the login attempts that
//! reach it. Everything the station does on real tokens is tested against SoftHSM and the test
//! token in `tests/it`.

use super::TokenError;
use super::backend::{
    AesGcm, Credential, DataObject, ObjectQuery, ObjectRef, SessionBackend, SignMechanism,
    TokenBackend,
};
use super::model::{SecretKeyKind, TokenInfo, TokenObject, UserKind};
use crate::domain::{KeyAlgorithm, Pin, SoPin};
use std::sync::{Arc, Mutex, MutexGuard};

/// One token of a [`FakeModule`].
#[derive(Debug, Clone)]
pub(crate) struct FakeToken {
    pub(crate) info: TokenInfo,
    pub(crate) user_pin: String,
    pub(crate) so_pin: String,
    pub(crate) objects: usize,
    /// False once "pulled out": its slot answers as removed.
    pub(crate) present: bool,
}

impl FakeToken {
    /// An initialised token with `serial` and `label`, both PINs set.
    pub(crate) fn initialised(serial: &str, label: &str) -> FakeToken {
        FakeToken {
            info: TokenInfo {
                serial: serial.into(),
                label: label.into(),
                manufacturer: "fake".into(),
                model: "fake".into(),
                initialized: true,
                user_pin_initialized: true,
                login_required: true,
                user_pin_count_low: false,
                user_pin_final_try: false,
                user_pin_locked: false,
                so_pin_count_low: false,
                so_pin_final_try: false,
                so_pin_locked: false,
                min_pin_len: 4,
                max_pin_len: 64,
                free_private_memory: None,
                slot_id: 0,
            },
            user_pin: "user-pin".into(),
            so_pin: "so-pin".into(),
            objects: 0,
            present: true,
        }
    }

    /// A blank token (no serial until it is initialised, as SoftHSM's blank slot).
    pub(crate) fn blank() -> FakeToken {
        let mut t = FakeToken::initialised("", "");
        t.info.initialized = false;
        t.info.user_pin_initialized = false;
        t.user_pin.clear();
        t.so_pin.clear();
        t
    }
}

#[derive(Debug, Default)]
pub(crate) struct FakeState {
    pub(crate) tokens: Vec<FakeToken>,
    /// Login attempts that reached the backend.
    pub(crate) login_attempts: usize,
    /// Objects created through the backend.
    pub(crate) created: usize,
    /// Run once, after the next `C_GetTokenInfo` has read its answer and before it returns it:
    /// what another thread does in that moment.
    pub(crate) after_token_info: Option<AfterTokenInfo>,
}

/// A one-shot action for [`FakeState::after_token_info`].
pub(crate) struct AfterTokenInfo(pub(crate) Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for AfterTokenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterTokenInfo")
    }
}

/// Tokens in slots numbered by their place in the list.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeModule(Arc<Mutex<FakeState>>);

impl FakeModule {
    pub(crate) fn new(tokens: Vec<FakeToken>) -> FakeModule {
        FakeModule(Arc::new(Mutex::new(FakeState {
            tokens,
            ..FakeState::default()
        })))
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_here(what: &str) -> TokenError {
    TokenError::Unexpected {
        token: "fake".into(),
        what: format!("{what} is not part of the fake"),
    }
}

fn slot_index(slot: u64) -> usize {
    usize::try_from(slot).unwrap_or(usize::MAX)
}

impl TokenBackend for FakeModule {
    fn slots(&self) -> Result<Vec<u64>, TokenError> {
        Ok((0..self.state().tokens.len() as u64).collect())
    }

    fn token_info(&self, slot: u64) -> Result<TokenInfo, TokenError> {
        let (info, after) = {
            let mut state = self.state();
            let info = match state.tokens.get(slot_index(slot)) {
                Some(t) if t.present => Ok(TokenInfo {
                    slot_id: slot,
                    ..t.info.clone()
                }),
                _ => Err(TokenError::Removed {
                    token: format!("in slot {slot}"),
                    function: "C_GetTokenInfo".into(),
                }),
            };
            (info, state.after_token_info.take())
        };
        if let Some(AfterTokenInfo(after)) = after {
            after();
        }
        info
    }

    fn init_token(&self, token: &TokenInfo, so_pin: &SoPin, label: &str) -> Result<(), TokenError> {
        let mut state = self.state();
        let Some(t) = state.tokens.get_mut(slot_index(token.slot_id)) else {
            return Err(not_here("that slot"));
        };
        if t.info.initialized && t.so_pin != so_pin.expose_secret() {
            return Err(TokenError::PinIncorrect {
                token: token.display_name(),
                user: UserKind::So,
            });
        }
        if t.info.serial.is_empty() {
            t.info.serial = format!("fake{:012}", token.slot_id);
        }
        t.info.label = label.into();
        t.info.initialized = true;
        t.info.user_pin_initialized = false;
        t.so_pin = so_pin.expose_secret().into();
        t.objects = 0;
        Ok(())
    }

    fn open_session(&self, token: &TokenInfo) -> Result<Box<dyn SessionBackend>, TokenError> {
        Ok(Box::new(FakeSession {
            module: self.clone(),
            slot: slot_index(token.slot_id),
            name: token.display_name(),
        }))
    }
}

struct FakeSession {
    module: FakeModule,
    slot: usize,
    name: String,
}

impl FakeSession {
    fn create(&self, n: usize) -> Result<ObjectRef, TokenError> {
        let mut state = self.module.state();
        state.created += n;
        let t = state
            .tokens
            .get_mut(self.slot)
            .ok_or_else(|| not_here("that slot"))?;
        t.objects += n;
        Ok(ObjectRef::new(t.objects as u64))
    }
}

impl SessionBackend for FakeSession {
    fn sm2_codes(&self) -> Option<&crate::token::vendor::Sm2Codes> {
        None
    }

    fn is_user_session(&self) -> bool {
        false
    }

    fn login(&self, credential: Credential<'_>) -> Result<(), TokenError> {
        let mut state = self.module.state();
        state.login_attempts += 1;
        let t = state
            .tokens
            .get(self.slot)
            .ok_or_else(|| not_here("that slot"))?;
        let right = match credential {
            Credential::User(pin) => pin.expose_secret() == t.user_pin,
            Credential::So(pin) => pin.expose_secret() == t.so_pin,
        };
        if right {
            Ok(())
        } else {
            Err(TokenError::PinIncorrect {
                token: self.name.clone(),
                user: credential.user(),
            })
        }
    }

    fn init_user_pin(&self, pin: &Pin) -> Result<(), TokenError> {
        let mut state = self.module.state();
        let t = state
            .tokens
            .get_mut(self.slot)
            .ok_or_else(|| not_here("that slot"))?;
        t.user_pin = pin.expose_secret().into();
        t.info.user_pin_initialized = true;
        Ok(())
    }

    fn set_so_pin(&self, old: &SoPin, new: &SoPin) -> Result<(), TokenError> {
        let mut state = self.module.state();
        let t = state
            .tokens
            .get_mut(self.slot)
            .ok_or_else(|| not_here("that slot"))?;
        if t.so_pin != old.expose_secret() {
            return Err(not_here("that SO PIN"));
        }
        t.so_pin = new.expose_secret().into();
        Ok(())
    }

    fn random(&self, _len: usize) -> Result<Vec<u8>, TokenError> {
        Err(not_here("random"))
    }

    fn generate_key_pair(
        &self,
        _algorithm: KeyAlgorithm,
        _id: &[u8],
        _label: &str,
    ) -> Result<(ObjectRef, ObjectRef), TokenError> {
        let private = self.create(2)?;
        Ok((ObjectRef::new(private.handle() - 1), private))
    }

    fn generate_secret_key(
        &self,
        _kind: SecretKeyKind,
        _label: &str,
    ) -> Result<ObjectRef, TokenError> {
        self.create(1)
    }

    fn find(&self, query: &ObjectQuery<'_>) -> Result<Vec<ObjectRef>, TokenError> {
        if *query != ObjectQuery::default() {
            return Err(not_here("a filtered search"));
        }
        let state = self.module.state();
        let n = state.tokens.get(self.slot).map_or(0, |t| t.objects);
        Ok((1..=n as u64).map(ObjectRef::new).collect())
    }

    fn object(&self, _object: ObjectRef) -> Result<TokenObject, TokenError> {
        Err(not_here("reading an object"))
    }

    fn public_key(&self, _key: ObjectRef, _algorithm: KeyAlgorithm) -> Result<Vec<u8>, TokenError> {
        Err(not_here("a public key"))
    }

    fn value_is_protected(&self, _key: ObjectRef) -> Result<bool, TokenError> {
        Err(not_here("reading a key"))
    }

    fn create_certificate(
        &self,
        _id: &[u8],
        _label: &str,
        _cert_der: &[u8],
    ) -> Result<ObjectRef, TokenError> {
        self.create(1)
    }

    fn create_data(&self, _data: &DataObject<'_>) -> Result<ObjectRef, TokenError> {
        self.create(1)
    }

    fn destroy(&self, _object: ObjectRef) -> Result<(), TokenError> {
        Err(not_here("destroying"))
    }

    fn sign(
        &self,
        _key: ObjectRef,
        _mechanism: SignMechanism,
        _data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        Err(not_here("signing"))
    }

    fn encrypt(
        &self,
        _key: ObjectRef,
        _gcm: AesGcm<'_>,
        _data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        Err(not_here("encrypting"))
    }

    fn decrypt(
        &self,
        _key: ObjectRef,
        _gcm: AesGcm<'_>,
        _data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        Err(not_here("decrypting"))
    }

    fn unwrap_sm2_envelope(
        &self,
        _signing_key: ObjectRef,
        _envelope: &[u8],
        _id: &[u8],
        _label: &str,
    ) -> Result<ObjectRef, TokenError> {
        Err(not_here("unwrapping"))
    }

    fn sm2_decrypt(&self, _key: ObjectRef, _ciphertext: &[u8]) -> Result<Vec<u8>, TokenError> {
        Err(not_here("decrypting"))
    }
}
