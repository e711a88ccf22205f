//! A fault-simulating layer over real tokens, for tests: PIN retry counters with the PKCS#11
//! flags and return values of a token that locks, and a token that fills up.
//!
//! SoftHSM never locks a PIN and never runs out of memory; real USB keys do both. So that the
//! station's handling of `CKF_USER_PIN_COUNT_LOW`, `CKF_USER_PIN_FINAL_TRY`, `CKR_PIN_LOCKED` and
//! `CKR_DEVICE_MEMORY` can be exercised against SoftHSM, this layer keeps per-token counters in a
//! JSON state file named by `KEYSTATION_TOKEN_SIM` and behaves as such a token would:
//! - each wrong PIN decrements the counter; a right one resets it (as tokens do);
//! - `C_GetTokenInfo` reports COUNT_LOW after a wrong try, FINAL_TRY at one try left, LOCKED at
//!   none; a locked PIN answers `CKR_PIN_LOCKED` without being tried;
//! - `C_InitPIN` (SO unlock) resets the user counter, `C_InitToken` everything;
//! - creating an object beyond `max_objects` answers `CKR_DEVICE_MEMORY`.
//!
//! Compiled only into debug builds: a release binary ignores the variable entirely.
//! State: `{"tokens": {"<serial>" | "*": {"max_user_tries": 3, "user_tries_left": 3,
//! "max_so_tries": 3, "so_tries_left": 3, "max_objects": 10}}}` (`*` = any other token).

#[cfg(debug_assertions)]
mod imp {
    use super::super::module::TokenInfo;
    use super::super::session::UserKind;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

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

    fn path() -> Option<PathBuf> {
        std::env::var_os("KEYSTATION_TOKEN_SIM").map(PathBuf::from)
    }

    fn load() -> Option<(PathBuf, State)> {
        let p = path()?;
        let text = std::fs::read_to_string(&p).ok()?;
        Some((p, serde_json::from_str(&text).unwrap_or_default()))
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

    fn update(serial: &str, f: impl FnOnce(&mut TokenSim)) {
        if serial.is_empty() {
            return;
        }
        let Some((p, mut state)) = load() else { return };
        if let Some(t) = entry(&mut state, serial) {
            f(t);
            if let Ok(text) = serde_json::to_string_pretty(&state) {
                let _ = std::fs::write(p, text);
            }
        }
    }

    fn read(serial: &str) -> Option<TokenSim> {
        let (_, mut state) = load()?;
        entry(&mut state, serial).cloned()
    }

    /// Overlays the simulated PIN flags on real token info.
    pub fn apply_flags(info: &mut TokenInfo) {
        let Some(t) = read(&info.serial) else { return };
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
    pub fn locked(serial: &str, user: UserKind) -> bool {
        read(serial).is_some_and(|t| match user {
            UserKind::User => t.user_tries_left == Some(0),
            UserKind::So => t.so_tries_left == Some(0),
        })
    }

    /// Records a login outcome.
    pub fn login_result(serial: &str, user: UserKind, ok: bool) {
        update(serial, |t| {
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
    pub fn user_pin_reset(serial: &str) {
        update(serial, |t| t.user_tries_left = t.max_user_tries);
    }

    /// `C_InitToken` resets everything.
    pub fn token_reset(serial: &str) {
        update(serial, |t| {
            t.user_tries_left = t.max_user_tries;
            t.so_tries_left = t.max_so_tries;
        });
    }

    /// The simulated object capacity, if any.
    pub fn max_objects(serial: &str) -> Option<usize> {
        read(serial).and_then(|t| t.max_objects)
    }
}

#[cfg(not(debug_assertions))]
mod imp {
    use super::super::module::TokenInfo;
    use super::super::session::UserKind;
    pub fn apply_flags(_: &mut TokenInfo) {}
    pub fn locked(_: &str, _: UserKind) -> bool {
        false
    }
    pub fn login_result(_: &str, _: UserKind, _: bool) {}
    pub fn user_pin_reset(_: &str) {}
    pub fn token_reset(_: &str) {}
    pub fn max_objects(_: &str) -> Option<usize> {
        None
    }
}

pub(crate) use imp::*;
