//! The module's state in this process: configuration, slots and their tokens, sessions, login
//! state, object handles; slot and token information and `C_InitToken`.
//!
//! Slots behave as SoftHSM's do, which keystation already handles: every initialised token in
//! the store has a slot numbered after the last 8 hex digits of its serial (masked to 31 bits),
//! and one blank, uninitialised token sits in the last slot. `C_InitToken` on the blank slot
//! gives the token a serial, keeps it in that slot for this process, and a new blank slot
//! appears after it. Another process sees the new token in its serial-numbered slot.
//!
//! Everything is behind one mutex ([`with_module`]): PKCS#11 calls from several threads are
//! serialised, except the simulated device time, which is spent per token (see
//! [`Slot::device`]).

use crate::attrs::Attributes;
use crate::config::Config;
use crate::pin::{PinRecord, TokenKey};
use crate::store::{TokenDir, TokenFile, scan};
use crate::token::Token;
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// A slot: a token, or the blank token when `token` is `None`.
#[derive(Debug)]
pub struct Slot {
    /// Slot id.
    pub id: CK_SLOT_ID,
    /// The initialised token in the slot.
    pub token: Option<Token>,
    /// Held while the simulated device is busy.
    pub device: Arc<Mutex<()>>,
}

/// Who is logged in to a token, with the token key their PIN unwrapped.
#[derive(Debug)]
pub struct Login {
    /// `CKU_USER` or `CKU_SO`.
    pub user: CK_USER_TYPE,
    /// The token key.
    pub key: TokenKey,
}

/// What an object handle names.
#[derive(Debug)]
pub enum ObjectRef {
    /// A token object: the token's serial and the object's id in its file.
    Token {
        /// Serial.
        serial: String,
        /// Object id.
        id: u64,
    },
    /// A session object (`CKA_TOKEN` false), gone when its session closes.
    Session(SessionObject),
}

/// A session object.
#[derive(Debug)]
pub struct SessionObject {
    /// The slot of its token.
    pub slot: CK_SLOT_ID,
    /// The session that made it.
    pub session: CK_SESSION_HANDLE,
    /// Attributes (without a private key's secret value).
    pub attrs: Attributes,
    /// A private key's secret value.
    pub secret: Option<Zeroizing<Vec<u8>>>,
}

/// The module's state.
#[derive(Debug)]
pub struct Module {
    /// Configuration.
    pub config: Config,
    /// Slots in list order; the blank slot is last.
    pub slots: Vec<Slot>,
    /// Open sessions.
    pub sessions: HashMap<CK_SESSION_HANDLE, crate::session::Session>,
    /// Object handles.
    pub objects: HashMap<CK_OBJECT_HANDLE, ObjectRef>,
    /// Handles of token objects, by (serial, id).
    pub token_handles: HashMap<(String, u64), CK_OBJECT_HANDLE>,
    /// Login state per token serial.
    pub logins: HashMap<String, Login>,
    next_handle: u64,
}

/// `CK_UNAVAILABLE_INFORMATION` (~0).
pub const CK_UNAVAILABLE_INFORMATION: CK_ULONG = CK_ULONG::MAX;

static MODULE: Mutex<Option<Module>> = Mutex::new(None);

/// Runs `f` on the initialised module.
pub fn with_module<T>(f: impl FnOnce(&mut Module) -> Result<T, CK_RV>) -> Result<T, CK_RV> {
    let mut guard = MODULE.lock().unwrap_or_else(|p| p.into_inner());
    let module = guard.as_mut().ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)?;
    f(module)
}

/// `C_Initialize`.
pub fn initialize() -> Result<(), CK_RV> {
    let mut guard = MODULE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_some() {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    let config = Config::load_from_env().map_err(|e| {
        // SoftHSM says the same on stderr when its configuration is unusable.
        eprintln!("kstoken: {e}");
        CKR_GENERAL_ERROR
    })?;
    let mut module = Module {
        config,
        slots: Vec::new(),
        sessions: HashMap::new(),
        objects: HashMap::new(),
        token_handles: HashMap::new(),
        logins: HashMap::new(),
        next_handle: 1,
    };
    module.rescan();
    *guard = Some(module);
    Ok(())
}

/// `C_Finalize`.
pub fn finalize() -> Result<(), CK_RV> {
    let mut guard = MODULE.lock().unwrap_or_else(|p| p.into_inner());
    guard.take().map(drop).ok_or(CKR_CRYPTOKI_NOT_INITIALIZED)
}

/// The slot id of the token with `serial`: its last 8 hex digits, as SoftHSM numbers them.
pub fn slot_id_for_serial(serial: &str) -> Option<CK_SLOT_ID> {
    let tail = serial.get(serial.len().checked_sub(8)?..)?;
    u32::from_str_radix(tail, 16)
        .ok()
        .map(|v| CK_SLOT_ID::from(v & 0x7FFF_FFFF))
}

/// Copies `s` into a blank-padded PKCS#11 text field.
pub fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut len = 0;
    // Cut at a character boundary so the field stays valid UTF-8.
    for c in s.chars() {
        let l = c.len_utf8();
        if len + l > N {
            break;
        }
        c.encode_utf8(&mut out[len..len + l]);
        len += l;
    }
    out
}

impl Module {
    /// A fresh handle (sessions and objects share the counter; none is ever reused).
    pub fn new_handle(&mut self) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    fn free_id(&self, wanted: CK_SLOT_ID) -> CK_SLOT_ID {
        let mut id = wanted;
        while self.slots.iter().any(|s| s.id == id) {
            id += 1;
        }
        id
    }

    /// Adds slots for tokens another process created, and makes sure a blank slot is last.
    pub fn rescan(&mut self) {
        let root = self.config.token_dir.clone();
        for serial in scan(&root) {
            let known = self
                .slots
                .iter()
                .any(|s| s.token.as_ref().is_some_and(|t| t.serial() == serial));
            if known {
                continue;
            }
            let Ok(token) = Token::open(TokenDir::at(&root, &serial)) else {
                continue;
            };
            let id = self.free_id(slot_id_for_serial(&serial).unwrap_or(0));
            let slot = Slot {
                id,
                token: Some(token),
                device: Arc::default(),
            };
            // Before the blank slot, which stays last.
            let at = self
                .slots
                .iter()
                .position(|s| s.token.is_none())
                .unwrap_or(self.slots.len());
            self.slots.insert(at, slot);
        }
        if !self.slots.iter().any(|s| s.token.is_none()) {
            let id = self.free_id(0);
            self.slots.push(Slot {
                id,
                token: None,
                device: Arc::default(),
            });
        }
    }

    /// The slot `id`.
    pub fn slot(&mut self, id: CK_SLOT_ID) -> Result<&mut Slot, CK_RV> {
        self.slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(CKR_SLOT_ID_INVALID)
    }

    /// The token in slot `id` (an initialised one).
    pub fn token(&mut self, id: CK_SLOT_ID) -> Result<&mut Token, CK_RV> {
        self.slot(id)?
            .token
            .as_mut()
            .ok_or(CKR_TOKEN_NOT_RECOGNIZED)
    }

    /// `C_GetSlotList`.
    pub fn slot_list(&mut self, token_present: bool) -> Vec<CK_SLOT_ID> {
        self.rescan();
        self.slots
            .iter()
            .filter(|s| !token_present || s.token.as_ref().is_none_or(Token::present))
            .map(|s| s.id)
            .collect()
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&mut self, id: CK_SLOT_ID) -> Result<CK_SLOT_INFO, CK_RV> {
        let slot = self.slot(id)?;
        let present = slot.token.as_ref().is_none_or(Token::present);
        let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        if present {
            flags |= CKF_TOKEN_PRESENT;
        }
        Ok(CK_SLOT_INFO {
            slotDescription: padded(&format!("kstoken slot {id}")),
            manufacturerID: padded("keystation"),
            flags,
            hardwareVersion: CK_VERSION { major: 1, minor: 0 },
            firmwareVersion: CK_VERSION { major: 1, minor: 0 },
        })
    }

    fn session_counts(&self, id: CK_SLOT_ID) -> (CK_ULONG, CK_ULONG) {
        let on_slot = self.sessions.values().filter(|s| s.slot == id);
        let all = on_slot.clone().count() as CK_ULONG;
        let rw = on_slot.filter(|s| s.rw).count() as CK_ULONG;
        (all, rw)
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&mut self, id: CK_SLOT_ID) -> Result<CK_TOKEN_INFO, CK_RV> {
        let (sessions, rw_sessions) = self.session_counts(id);
        let (min_pin, max_pin) = (self.config.pin.min_len, self.config.pin.max_len);
        let slot = self.slot(id)?;
        let mut flags = CKF_RNG | CKF_LOGIN_REQUIRED;
        let (label, serial) = match slot.token.as_mut() {
            None => (String::new(), String::new()),
            Some(t) => {
                let f = t.current().map_err(|_| CKR_TOKEN_NOT_PRESENT)?;
                flags |= CKF_TOKEN_INITIALIZED;
                if f.user_pin.is_some() {
                    flags |= CKF_USER_PIN_INITIALIZED;
                }
                let u = f.user_tries.flags();
                let so = f.so_tries.flags();
                for (on, flag) in [
                    (u.count_low, CKF_USER_PIN_COUNT_LOW),
                    (u.final_try, CKF_USER_PIN_FINAL_TRY),
                    (u.locked, CKF_USER_PIN_LOCKED),
                    (so.count_low, CKF_SO_PIN_COUNT_LOW),
                    (so.final_try, CKF_SO_PIN_FINAL_TRY),
                    (so.locked, CKF_SO_PIN_LOCKED),
                ] {
                    if on {
                        flags |= flag;
                    }
                }
                (f.label.clone(), f.serial.clone())
            }
        };
        // A real key reports how full it is; this one counts objects, not bytes.
        let used: usize = slot
            .token
            .as_mut()
            .and_then(|t| t.current().ok())
            .map(|f| f.objects.len())
            .unwrap_or(0);
        Ok(CK_TOKEN_INFO {
            label: padded(&label),
            manufacturerID: padded("keystation"),
            model: padded("kstoken (TASS)"),
            serialNumber: padded(&serial),
            flags,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: sessions,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: rw_sessions,
            ulMaxPinLen: max_pin as CK_ULONG,
            ulMinPinLen: min_pin as CK_ULONG,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: 4096,
            ulFreePrivateMemory: 4096usize.saturating_sub(used) as CK_ULONG,
            hardwareVersion: CK_VERSION { major: 1, minor: 0 },
            firmwareVersion: CK_VERSION { major: 1, minor: 0 },
            utcTime: [b' '; 16],
        })
    }

    /// Checks a PIN's length against the policy.
    pub fn check_pin_len(&self, pin: &[u8]) -> Result<(), CK_RV> {
        let p = &self.config.pin;
        if pin.len() < p.min_len || pin.len() > p.max_len {
            return Err(CKR_PIN_LEN_RANGE);
        }
        Ok(())
    }

    /// Forgets the login state and token-object handles of `serial` (a re-initialised token).
    fn forget_token(&mut self, serial: &str) {
        self.logins.remove(serial);
        self.objects
            .retain(|_, o| !matches!(o, ObjectRef::Token { serial: s, .. } if s == serial));
        self.token_handles.retain(|(s, _), _| s != serial);
    }

    /// `C_InitToken`.
    pub fn init_token(&mut self, id: CK_SLOT_ID, so_pin: &[u8], label: &str) -> Result<(), CK_RV> {
        if self.sessions.values().any(|s| s.slot == id) {
            return Err(CKR_SESSION_EXISTS);
        }
        self.check_pin_len(so_pin)?;
        let (so_max, user_max) = (self.config.pin.so_max_tries, self.config.pin.user_max_tries);
        let root = self.config.token_dir.clone();
        let slot = self.slot(id)?;
        match slot.token.as_mut() {
            None => {
                let key = TokenKey::generate().map_err(|_| CKR_FUNCTION_FAILED)?;
                let record = PinRecord::new(so_pin, &key).map_err(|_| CKR_FUNCTION_FAILED)?;
                let (serial, dir) = new_token_dir(&root)?;
                let file = TokenFile::new(&serial, label, record, so_max, user_max);
                slot.token = Some(Token::create(dir, file)?);
                self.rescan();
                Ok(())
            }
            Some(token) => {
                let serial = token.serial().to_string();
                token.update(|f| reinitialise(f, so_pin, label))??;
                self.forget_token(&serial);
                Ok(())
            }
        }
    }
}

/// Re-initialises an initialised token after checking its SO PIN: every object goes, the user
/// PIN is uninitialised, the counters start again.
fn reinitialise(f: &mut TokenFile, so_pin: &[u8], label: &str) -> Result<(), CK_RV> {
    if f.so_tries.is_locked() {
        return Err(CKR_PIN_LOCKED);
    }
    if f.so_pin.unwrap_key(so_pin).is_none() {
        f.so_tries.fail();
        return Err(CKR_PIN_INCORRECT);
    }
    let key = TokenKey::generate().map_err(|_| CKR_FUNCTION_FAILED)?;
    f.so_pin = PinRecord::new(so_pin, &key).map_err(|_| CKR_FUNCTION_FAILED)?;
    f.so_tries.reset();
    f.user_pin = None;
    f.user_tries.reset();
    f.label = label.to_string();
    f.objects.clear();
    Ok(())
}

/// A new token directory with a fresh random serial (16 hex digits, as SoftHSM's).
fn new_token_dir(root: &std::path::Path) -> Result<(String, TokenDir), CK_RV> {
    for _ in 0..16 {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|_| CKR_FUNCTION_FAILED)?;
        let serial = hex::encode(raw);
        if let Ok(dir) = TokenDir::create(root, &serial) {
            return Ok((serial, dir));
        }
    }
    eprintln!(
        "kstoken: cannot create a token directory under {}",
        root.display()
    );
    Err(CKR_DEVICE_ERROR)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slot_ids_follow_the_serial_as_softhsm_numbers_them() {
        assert_eq!(slot_id_for_serial("3a2f8b0c9d1e2f40"), Some(0x1d1e2f40));
        assert_eq!(slot_id_for_serial("00000000ffffffff"), Some(0x7fff_ffff));
        assert_eq!(slot_id_for_serial("abc"), None);
    }

    #[test]
    fn text_fields_are_blank_padded_and_cut_on_a_character() {
        assert_eq!(&padded::<8>("ab"), b"ab      ");
        let p = padded::<4>("a单位");
        assert_eq!(std::str::from_utf8(&p).unwrap(), "a单");
    }
}
