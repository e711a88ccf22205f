//! A fault-simulating decorator over a token backend, for tests: PIN retry counters with the
//! PKCS#11 flags and return values of a token that locks, and a token that fills up.
//!
//! SoftHSM never locks a PIN and never runs out of memory; real USB keys do both. So that the
//! station's handling of `CKF_USER_PIN_COUNT_LOW`, `CKF_USER_PIN_FINAL_TRY`, `CKR_PIN_LOCKED` and
//! `CKR_DEVICE_MEMORY` can be exercised against SoftHSM, this layer keeps per-token counters in a
//! JSON state file named by `KEYSTATION_TOKEN_SIM` and behaves as such a token would:
//! - each wrong PIN decrements the counter; a right one resets it (as tokens do);
//! - `C_GetTokenInfo` reports COUNT_LOW after a wrong try, FINAL_TRY at one try left, LOCKED at
//!   none; a locked PIN answers `CKR_PIN_LOCKED` without being tried;
//! - `C_InitPIN` (SO unlock) resets the user counter, `C_InitToken` everything;
//! - creating an object beyond `max_objects` answers `CKR_DEVICE_MEMORY`;
//! - every slot listing is counted, one line in `<state file>.listings`, for tests of how often
//!   the station lists the slots (each listing reads every token of the store).
//!
//! Compiled only with the `test-hooks` feature (test builds); [`around`] puts it around the
//! backend where [`super::Pkcs11Module::load`] opens it. A release build ignores the variable.
//! State: `{"tokens": {"<serial>" | "*": {"max_user_tries": 3, "user_tries_left": 3,
//! "max_so_tries": 3, "so_tries_left": 3, "max_objects": 10}}}` (`*` = any other token).

use super::TokenError;
use super::backend::{
    AesGcm, Credential, DataObject, ObjectQuery, ObjectRef, SessionBackend, SignMechanism,
    TokenBackend,
};
use super::model::{SecretKeyKind, TokenInfo, TokenObject, UserKind};
use crate::domain::{KeyAlgorithm, Pin, SoPin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// `inner`, behind the simulator when `KEYSTATION_TOKEN_SIM` names a state file; else `inner`.
pub(crate) fn around(inner: Arc<dyn TokenBackend>) -> Arc<dyn TokenBackend> {
    match std::env::var_os("KEYSTATION_TOKEN_SIM") {
        Some(path) => Arc::new(SimulatedFaults {
            inner,
            state: StateFile(PathBuf::from(path)),
        }),
        None => inner,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TokenSim {
    max_user_tries: Option<u32>,
    user_tries_left: Option<u32>,
    max_so_tries: Option<u32>,
    so_tries_left: Option<u32>,
    max_objects: Option<usize>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    tokens: BTreeMap<String, TokenSim>,
}

/// The simulator's state, in a file that the test and every station process share. A missing
/// or unreadable file simulates nothing.
#[derive(Debug, Clone)]
struct StateFile(PathBuf);

impl StateFile {
    fn load(&self) -> Option<State> {
        let text = std::fs::read_to_string(&self.0).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_default())
    }

    fn entry<'a>(state: &'a mut State, serial: &str) -> Option<&'a mut TokenSim> {
        if state.tokens.contains_key(serial) {
            return state.tokens.get_mut(serial);
        }
        // A wildcard entry applies to every other token; it is copied per serial on first use so
        // each token keeps its own counters.
        let template = state.tokens.get("*")?.clone();
        Some(state.tokens.entry(serial.to_string()).or_insert(template))
    }

    fn update(&self, serial: &str, f: impl FnOnce(&mut TokenSim)) {
        if serial.is_empty() {
            return;
        }
        let Some(mut state) = self.load() else { return };
        if let Some(t) = StateFile::entry(&mut state, serial) {
            f(t);
            if let Ok(text) = serde_json::to_string_pretty(&state) {
                let _ = std::fs::write(&self.0, text);
            }
        }
    }

    /// Counts one listing of the slots: a line appended to `<state file>.listings`, apart from
    /// the state, so that a listing never races with a PIN counter's read-modify-write.
    fn slots_listed(&self) {
        if !self.0.exists() {
            return;
        }
        let mut name = self.0.clone().into_os_string();
        name.push(".listings");
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(name)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"C_GetSlotList\n"));
        if let Err(e) = appended {
            tracing::warn!(error = %e, "token simulator: cannot count a slot listing");
        }
    }

    fn read(&self, serial: &str) -> Option<TokenSim> {
        let mut state = self.load()?;
        StateFile::entry(&mut state, serial).cloned()
    }

    /// Overlays the simulated PIN flags on real token info.
    fn apply_flags(&self, info: &mut TokenInfo) {
        let Some(t) = self.read(&info.serial) else {
            return;
        };
        if let (Some(max), Some(left)) = (t.max_user_tries, t.user_tries_left) {
            info.user_pin_count_low |= left < max;
            info.user_pin_final_try |= left == 1;
            info.user_pin_locked |= left == 0;
        }
        if let (Some(max), Some(left)) = (t.max_so_tries, t.so_tries_left) {
            info.so_pin_count_low |= left < max;
            info.so_pin_final_try |= left == 1;
            info.so_pin_locked |= left == 0;
        }
    }

    /// True when the simulated PIN is locked (the token answers CKR_PIN_LOCKED untried).
    fn locked(&self, serial: &str, user: UserKind) -> bool {
        self.read(serial).is_some_and(|t| match user {
            UserKind::User => t.user_tries_left == Some(0),
            UserKind::So => t.so_tries_left == Some(0),
        })
    }

    /// Records a login outcome.
    fn login_result(&self, serial: &str, user: UserKind, ok: bool) {
        self.update(serial, |t| {
            let (max, left) = match user {
                UserKind::User => (t.max_user_tries, &mut t.user_tries_left),
                UserKind::So => (t.max_so_tries, &mut t.so_tries_left),
            };
            if let (Some(max), Some(l)) = (max, left.as_mut()) {
                *l = if ok { max } else { l.saturating_sub(1) };
            }
        });
    }

    /// `C_InitPIN` unlocks the user PIN.
    fn user_pin_reset(&self, serial: &str) {
        self.update(serial, |t| t.user_tries_left = t.max_user_tries);
    }

    /// `C_InitToken` resets everything.
    fn token_reset(&self, serial: &str) {
        self.update(serial, |t| {
            t.user_tries_left = t.max_user_tries;
            t.so_tries_left = t.max_so_tries;
        });
    }

    /// The simulated object capacity, if any.
    fn max_objects(&self, serial: &str) -> Option<usize> {
        self.read(serial).and_then(|t| t.max_objects)
    }
}

/// A backend whose tokens lock and fill up as the state file says.
#[derive(Debug)]
struct SimulatedFaults {
    inner: Arc<dyn TokenBackend>,
    state: StateFile,
}

impl TokenBackend for SimulatedFaults {
    fn slots(&self) -> Result<Vec<u64>, TokenError> {
        self.state.slots_listed();
        self.inner.slots()
    }

    fn token_info(&self, slot: u64) -> Result<TokenInfo, TokenError> {
        let mut info = self.inner.token_info(slot)?;
        self.state.apply_flags(&mut info);
        Ok(info)
    }

    fn init_token(&self, token: &TokenInfo, so_pin: &SoPin, label: &str) -> Result<(), TokenError> {
        match self.inner.init_token(token, so_pin, label) {
            Ok(()) => {
                // A blank slot gains its serial here: the counters reset are the new token's.
                let serial = if token.serial.is_empty() {
                    self.inner
                        .token_info(token.slot_id)
                        .map(|i| i.serial)
                        .unwrap_or_default()
                } else {
                    token.serial.clone()
                };
                self.state.token_reset(&serial);
                Ok(())
            }
            Err(e) => {
                if matches!(e, TokenError::PinIncorrect { .. }) {
                    self.state.login_result(&token.serial, UserKind::So, false);
                }
                Err(e)
            }
        }
    }

    fn open_session(&self, token: &TokenInfo) -> Result<Box<dyn SessionBackend>, TokenError> {
        Ok(Box::new(SimulatedSession {
            inner: self.inner.open_session(token)?,
            state: self.state.clone(),
            serial: token.serial.clone(),
            name: token.display_name(),
        }))
    }
}

/// A session on a simulated token.
struct SimulatedSession {
    inner: Box<dyn SessionBackend>,
    state: StateFile,
    serial: String,
    name: String,
}

impl SimulatedSession {
    /// Refuses to create `n` more objects on a token that has no room left for them.
    fn room_for_objects(&self, n: usize) -> Result<(), TokenError> {
        let Some(max) = self.state.max_objects(&self.serial) else {
            return Ok(());
        };
        let present = self.inner.find(&ObjectQuery::default())?.len();
        if present + n > max {
            return Err(TokenError::Full {
                token: self.name.clone(),
                function: "C_CreateObject".into(),
            });
        }
        Ok(())
    }
}

impl SessionBackend for SimulatedSession {
    fn sm2_codes(&self) -> Option<&super::vendor::Sm2Codes> {
        self.inner.sm2_codes()
    }

    fn is_user_session(&self) -> bool {
        self.inner.is_user_session()
    }

    fn login(&self, credential: Credential<'_>) -> Result<(), TokenError> {
        let user = credential.user();
        if self.state.locked(&self.serial, user) {
            return Err(TokenError::PinLocked {
                token: self.name.clone(),
                user,
                hint: "",
            });
        }
        let result = self.inner.login(credential);
        match &result {
            Ok(()) => self.state.login_result(&self.serial, user, true),
            Err(TokenError::PinIncorrect { .. }) => {
                self.state.login_result(&self.serial, user, false);
            }
            Err(_) => {}
        }
        result
    }

    fn init_user_pin(&self, pin: &Pin) -> Result<(), TokenError> {
        self.inner.init_user_pin(pin)?;
        self.state.user_pin_reset(&self.serial);
        Ok(())
    }

    fn set_so_pin(&self, old: &SoPin, new: &SoPin) -> Result<(), TokenError> {
        self.inner.set_so_pin(old, new)
    }

    fn random(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        self.inner.random(len)
    }

    fn generate_key_pair(
        &self,
        algorithm: KeyAlgorithm,
        id: &[u8],
        label: &str,
    ) -> Result<(ObjectRef, ObjectRef), TokenError> {
        self.room_for_objects(2)?;
        self.inner.generate_key_pair(algorithm, id, label)
    }

    fn generate_secret_key(
        &self,
        kind: SecretKeyKind,
        label: &str,
    ) -> Result<ObjectRef, TokenError> {
        self.inner.generate_secret_key(kind, label)
    }

    fn find(&self, query: &ObjectQuery<'_>) -> Result<Vec<ObjectRef>, TokenError> {
        self.inner.find(query)
    }

    fn object(&self, object: ObjectRef) -> Result<TokenObject, TokenError> {
        self.inner.object(object)
    }

    fn public_key(&self, key: ObjectRef, algorithm: KeyAlgorithm) -> Result<Vec<u8>, TokenError> {
        self.inner.public_key(key, algorithm)
    }

    fn value_is_protected(&self, key: ObjectRef) -> Result<bool, TokenError> {
        self.inner.value_is_protected(key)
    }

    fn create_certificate(
        &self,
        id: &[u8],
        label: &str,
        cert_der: &[u8],
    ) -> Result<ObjectRef, TokenError> {
        self.room_for_objects(1)?;
        self.inner.create_certificate(id, label, cert_der)
    }

    fn create_data(&self, data: &DataObject<'_>) -> Result<ObjectRef, TokenError> {
        self.room_for_objects(1)?;
        self.inner.create_data(data)
    }

    fn destroy(&self, object: ObjectRef) -> Result<(), TokenError> {
        self.inner.destroy(object)
    }

    fn sign(
        &self,
        key: ObjectRef,
        mechanism: SignMechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        self.inner.sign(key, mechanism, data)
    }

    fn encrypt(&self, key: ObjectRef, gcm: AesGcm<'_>, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.inner.encrypt(key, gcm, data)
    }

    fn decrypt(&self, key: ObjectRef, gcm: AesGcm<'_>, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.inner.decrypt(key, gcm, data)
    }

    fn unwrap_sm2_envelope(
        &self,
        signing_key: ObjectRef,
        envelope: &[u8],
        id: &[u8],
        label: &str,
    ) -> Result<ObjectRef, TokenError> {
        self.inner
            .unwrap_sm2_envelope(signing_key, envelope, id, label)
    }

    fn sm2_decrypt(&self, key: ObjectRef, ciphertext: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.inner.sm2_decrypt(key, ciphertext)
    }
}

#[cfg(test)]
mod tests;
