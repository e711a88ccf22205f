//! The seam's cryptoki implementation: a PKCS#11 module loaded with cryptoki, and sessions on its
//! tokens ([`session`]).
//!
//! `C_Initialize` runs once per module per process (PKCS#11 allows no second call); the loaded
//! context is shared by every thread and every [`CryptokiBackend`] over the same file.
//! Modules report a pulled key in many ways, so a failed call is explained here
//! ([`Explainer`]): the slot is asked again, and a token that no longer answers with the same
//! serial is reported as removed.

pub(super) mod attributes;
mod session;

use super::TokenError;
use super::backend::{SessionBackend, TokenBackend};
use super::model::{TokenInfo, UserKind};
use super::vendor::{Sm2Codes, VendorTable};
use crate::domain::SoPin;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// DER of the prime256v1 OID, the `CKA_EC_PARAMS` of a P-256 key.
pub(crate) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER of the sm2p256v1 OID (1.2.156.10197.1.301), the `CKA_EC_PARAMS` of an SM2 key on modules
/// whose vendor entry says `ec_params = true`.
pub(crate) const SM2_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];

fn loaded() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The initialised cryptoki context of the module at `path`, loaded on first use.
pub(crate) fn context(path: &Path) -> Result<Pkcs11, TokenError> {
    let mut map = loaded().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(path) {
        return Ok(ctx.clone());
    }
    let load_err = |e: CkError| TokenError::Load {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let ctx = Pkcs11::new(path).map_err(load_err)?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(load_err)?;
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// SoftHSM 2.6 grows its slot map inside `C_GetSlotList` (a new blank slot once the last one is
/// initialised) without a lock of its own: two threads listing at that moment both add the slot
/// and SoftHSM aborts the process (`SlotManager::insertToken`: `Assertion result.second`), and a
/// call that looks a slot up while the map grows reads it mid-change. With SoftHSM, a slot list
/// takes this lock alone and every call naming a slot shares it. Other modules keep their own
/// slot lists safe, as PKCS#11 requires, and a real key's `C_InitToken` may take seconds: they
/// go without it.
static SOFTHSM_SLOT_MAP: RwLock<()> = RwLock::new(());

/// The cryptoki slot of a slot id.
pub(crate) fn slot(id: u64) -> Result<Slot, TokenError> {
    Slot::try_from(id).map_err(|e| TokenError::Unexpected {
        token: format!("in slot {id}"),
        what: e.to_string(),
    })
}

/// A PKCS#11 module through cryptoki.
#[derive(Clone)]
pub struct CryptokiBackend {
    ctx: Pkcs11,
    path: PathBuf,
    /// The module's SM2 codes from the vendor table, found by its file name.
    sm2: Option<Sm2Codes>,
    /// [`SOFTHSM_SLOT_MAP`] when the module is SoftHSM.
    slot_map: Option<&'static RwLock<()>>,
}

impl fmt::Debug for CryptokiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptokiBackend")
            .field("path", &self.path)
            .finish()
    }
}

impl CryptokiBackend {
    /// Loads and initialises the module at `path` (once per process), with its entry of the
    /// vendor table, if any.
    pub fn load(path: &Path) -> Result<CryptokiBackend, TokenError> {
        let sm2 = VendorTable::builtin()
            .for_module(path)
            .map(|m| m.sm2.clone());
        let ctx = context(path)?;
        let softhsm = ctx
            .get_library_info()
            .is_ok_and(|i| i.manufacturer_id().trim() == "SoftHSM");
        Ok(CryptokiBackend {
            ctx,
            path: path.to_path_buf(),
            sm2,
            slot_map: softhsm.then_some(&SOFTHSM_SLOT_MAP),
        })
    }

    /// Whether the module is SoftHSM (by its library information), whose token store needs the
    /// station's lock across processes ([`crate::token::store_lock`]).
    pub fn is_softhsm(&self) -> bool {
        self.slot_map.is_some()
    }

    /// Held across a slot list (SoftHSM only, see [`SOFTHSM_SLOT_MAP`]).
    fn listing_slots(&self) -> Option<RwLockWriteGuard<'static, ()>> {
        self.slot_map
            .map(|l| l.write().unwrap_or_else(PoisonError::into_inner))
    }

    fn explainer(&self, token: &TokenInfo) -> Result<Explainer, TokenError> {
        Ok(Explainer {
            slot_map: self.slot_map,
            ctx: self.ctx.clone(),
            slot: slot(token.slot_id)?,
            name: token.display_name(),
            serial: token.serial.clone(),
        })
    }
}

impl TokenBackend for CryptokiBackend {
    fn slots(&self) -> Result<Vec<u64>, TokenError> {
        let _listing = self.listing_slots();
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| TokenError::from_ck("(slot list)", e))?;
        Ok(slots.into_iter().map(|s| s.id()).collect())
    }

    fn token_info(&self, slot_id: u64) -> Result<TokenInfo, TokenError> {
        let _naming = naming_a_slot(self.slot_map);
        let ti = self.ctx.get_token_info(slot(slot_id)?).map_err(|e| {
            let name = format!("in slot {slot_id}");
            match e {
                // A token that cannot even describe itself is gone (SoftHSM answers
                // CKR_GENERAL_ERROR once its directory is removed; readers vary).
                CkError::Pkcs11(RvError::GeneralError | RvError::DeviceError, f) => {
                    TokenError::Removed {
                        token: name,
                        function: format!("C_{f:?}"),
                    }
                }
                other => TokenError::from_ck(&name, other),
            }
        })?;
        Ok(TokenInfo {
            serial: ti.serial_number().trim().to_string(),
            label: ti.label().trim().to_string(),
            manufacturer: ti.manufacturer_id().trim().to_string(),
            model: ti.model().trim().to_string(),
            initialized: ti.token_initialized(),
            user_pin_initialized: ti.user_pin_initialized(),
            login_required: ti.login_required(),
            user_pin_count_low: ti.user_pin_count_low(),
            user_pin_final_try: ti.user_pin_final_try(),
            user_pin_locked: ti.user_pin_locked(),
            so_pin_count_low: ti.so_pin_count_low(),
            so_pin_final_try: ti.so_pin_final_try(),
            so_pin_locked: ti.so_pin_locked(),
            min_pin_len: ti.min_pin_length(),
            max_pin_len: ti.max_pin_length(),
            free_private_memory: ti.free_private_memory(),
            slot_id,
        })
    }

    fn init_token(&self, token: &TokenInfo, so_pin: &SoPin, label: &str) -> Result<(), TokenError> {
        let explainer = self.explainer(token)?;
        // Exposed to C_InitToken only: the SO PIN's one purpose.
        let pin = AuthPin::from(so_pin.expose_secret().to_string());
        let done = {
            let _naming = naming_a_slot(self.slot_map);
            self.ctx.init_token(explainer.slot, &pin, label)
        };
        // Explained without the slot map lock, which the explanation takes again.
        done.map_err(|e| explainer.login_failure(UserKind::So, e))
    }

    fn open_session(&self, token: &TokenInfo) -> Result<Box<dyn SessionBackend>, TokenError> {
        let explainer = self.explainer(token)?;
        let opened = {
            let _naming = naming_a_slot(self.slot_map);
            self.ctx.open_rw_session(explainer.slot)
        };
        let session = opened.map_err(|e| explainer.explain(e))?;
        Ok(Box::new(session::CryptokiSession::new(
            session,
            explainer,
            self.sm2.clone(),
        )))
    }
}

/// Held across a call that names a slot (SoftHSM only, see [`SOFTHSM_SLOT_MAP`]).
fn naming_a_slot(slot_map: Option<&'static RwLock<()>>) -> Option<RwLockReadGuard<'static, ()>> {
    slot_map.map(|l| l.read().unwrap_or_else(PoisonError::into_inner))
}

/// Turns failed calls on one token into [`TokenError`]s that name it.
pub(super) struct Explainer {
    slot_map: Option<&'static RwLock<()>>,
    ctx: Pkcs11,
    slot: Slot,
    name: String,
    serial: String,
}

impl Explainer {
    /// The token's name for messages.
    fn name(&self) -> &str {
        &self.name
    }

    /// Recognises a token that is no longer there: modules report a pulled key in many ways
    /// (`CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, SoftHSM's `CKR_GENERAL_ERROR`, a dead
    /// session), so on any of those the slot is asked again and a token that no longer answers
    /// with the same serial is reported as removed.
    fn explain(&self, e: CkError) -> TokenError {
        if let CkError::Pkcs11(
            RvError::GeneralError
            | RvError::DeviceError
            | RvError::FunctionFailed
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent,
            function,
        ) = &e
        {
            let _naming = naming_a_slot(self.slot_map);
            let still_here = self
                .ctx
                .get_token_info(self.slot)
                .map(|ti| ti.serial_number().trim() == self.serial)
                .unwrap_or(false);
            if !still_here {
                return TokenError::Removed {
                    token: self.name.clone(),
                    function: format!("C_{function:?}"),
                };
            }
        }
        TokenError::from_ck(&self.name, e)
    }

    /// A failed login (or `C_InitToken`, which checks the SO PIN): a wrong or locked PIN is
    /// named as such, anything else explained.
    fn login_failure(&self, user: UserKind, e: CkError) -> TokenError {
        match e {
            CkError::Pkcs11(RvError::PinIncorrect, _) => TokenError::PinIncorrect {
                token: self.name.clone(),
                user,
            },
            CkError::Pkcs11(RvError::PinLocked, _) => TokenError::PinLocked {
                token: self.name.clone(),
                user,
                hint: "",
            },
            other => self.explain(other),
        }
    }
}
