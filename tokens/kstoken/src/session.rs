//! Sessions, logins and PINs: `C_OpenSession` … `C_CloseAllSessions`, `C_GetSessionInfo`,
//! `C_Login`, `C_Logout`, `C_InitPIN`, `C_SetPIN`.
//!
//! Unlike SoftHSM, wrong PINs count: each one is written to the token's file before the
//! answer is given (a process killed right after a wrong PIN cannot get the try back), a right
//! one resets the counter, and a locked PIN answers `CKR_PIN_LOCKED` without being checked.
//! The attempt that uses up the last try answers `CKR_PIN_INCORRECT`, the next ones
//! `CKR_PIN_LOCKED`. `C_InitPIN` by the SO sets a new user PIN and unlocks it.
//!
//! Login state belongs to the application (this process) and the token: every session of the
//! process on that token shares it, and closing the last session logs out (PKCS#11 §5.6).

use crate::mechanisms::SignSpec;
use crate::module::{Login, Module, ObjectRef};
use crate::pin::PinRecord;
use cryptoki_sys::*;
use std::collections::VecDeque;

/// A signature or verification in progress.
#[derive(Debug)]
pub struct Operation {
    /// What is done.
    pub spec: SignSpec,
    /// With which key.
    pub key: CK_OBJECT_HANDLE,
    /// Data given by `C_*Update` so far.
    pub data: Vec<u8>,
}

/// An open session.
#[derive(Debug)]
pub struct Session {
    /// Its slot.
    pub slot: CK_SLOT_ID,
    /// Read-write.
    pub rw: bool,
    /// Handles a `C_FindObjects` still has to return.
    pub find: Option<VecDeque<CK_OBJECT_HANDLE>>,
    /// Signature in progress.
    pub sign: Option<Operation>,
    /// Verification in progress.
    pub verify: Option<Operation>,
    /// Decryption in progress (`C_DecryptInit` .. `C_Decrypt`): the key.
    pub decrypt: Option<CK_OBJECT_HANDLE>,
}

impl Module {
    /// The session `h`.
    pub fn session(&mut self, h: CK_SESSION_HANDLE) -> Result<&mut Session, CK_RV> {
        self.sessions.get_mut(&h).ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// The serial of the token of session `h`, checking the token is still there.
    pub fn session_serial(&mut self, h: CK_SESSION_HANDLE) -> Result<String, CK_RV> {
        let slot = self.session(h)?.slot;
        let token = self.token(slot)?;
        token.current().map_err(|_| CKR_DEVICE_REMOVED)?;
        Ok(token.serial().to_string())
    }

    /// Who is logged in on the token of session `h`.
    pub fn session_login(&mut self, h: CK_SESSION_HANDLE) -> Result<Option<&Login>, CK_RV> {
        let serial = self.session_serial(h)?;
        Ok(self.logins.get(&serial))
    }

    /// `C_OpenSession`.
    pub fn open_session(
        &mut self,
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
    ) -> Result<CK_SESSION_HANDLE, CK_RV> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        }
        let rw = flags & CKF_RW_SESSION != 0;
        let token = self.token(slot)?;
        token.current().map_err(|_| CKR_TOKEN_NOT_PRESENT)?;
        let serial = token.serial().to_string();
        if !rw && self.logins.get(&serial).is_some_and(|l| l.user == CKU_SO) {
            return Err(CKR_SESSION_READ_WRITE_SO_EXISTS);
        }
        let h = self.new_handle();
        self.sessions.insert(
            h,
            Session {
                slot,
                rw,
                find: None,
                sign: None,
                verify: None,
                decrypt: None,
            },
        );
        Ok(h)
    }

    /// `C_CloseSession`: its session objects go; the last session on a token logs out.
    pub fn close_session(&mut self, h: CK_SESSION_HANDLE) -> Result<(), CK_RV> {
        let session = self.sessions.remove(&h).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        self.objects
            .retain(|_, o| !matches!(o, ObjectRef::Session(s) if s.session == h));
        if !self.sessions.values().any(|s| s.slot == session.slot) {
            if let Some(serial) = self
                .slot(session.slot)
                .ok()
                .and_then(|s| s.token.as_ref())
                .map(|t| t.serial().to_string())
            {
                self.logins.remove(&serial);
            }
        }
        Ok(())
    }

    /// `C_CloseAllSessions`.
    pub fn close_all_sessions(&mut self, slot: CK_SLOT_ID) -> Result<(), CK_RV> {
        self.slot(slot)?;
        let handles: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.slot == slot)
            .map(|(h, _)| *h)
            .collect();
        for h in handles {
            self.close_session(h)?;
        }
        Ok(())
    }

    /// `C_GetSessionInfo`.
    pub fn session_info(&mut self, h: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO, CK_RV> {
        let (slot, rw) = {
            let s = self.session(h)?;
            (s.slot, s.rw)
        };
        let user = self.session_login(h)?.map(|l| l.user);
        let state = match (user, rw) {
            (Some(CKU_SO), _) => CKS_RW_SO_FUNCTIONS,
            (Some(_), true) => CKS_RW_USER_FUNCTIONS,
            (Some(_), false) => CKS_RO_USER_FUNCTIONS,
            (None, true) => CKS_RW_PUBLIC_SESSION,
            (None, false) => CKS_RO_PUBLIC_SESSION,
        };
        let mut flags = CKF_SERIAL_SESSION;
        if rw {
            flags |= CKF_RW_SESSION;
        }
        Ok(CK_SESSION_INFO {
            slotID: slot,
            state,
            flags,
            ulDeviceError: 0,
        })
    }

    /// `C_Login`.
    pub fn login(
        &mut self,
        h: CK_SESSION_HANDLE,
        user: CK_USER_TYPE,
        pin: &[u8],
    ) -> Result<(), CK_RV> {
        if user != CKU_USER && user != CKU_SO {
            return Err(CKR_USER_TYPE_INVALID);
        }
        let serial = self.session_serial(h)?;
        let slot = self.session(h)?.slot;
        if let Some(l) = self.logins.get(&serial) {
            return Err(if l.user == user {
                CKR_USER_ALREADY_LOGGED_IN
            } else {
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN
            });
        }
        if user == CKU_SO && self.sessions.values().any(|s| s.slot == slot && !s.rw) {
            return Err(CKR_SESSION_READ_ONLY_EXISTS);
        }
        let key = self.token(slot)?.update(|f| {
            let (record, tries) = if user == CKU_SO {
                (Some(&f.so_pin), &mut f.so_tries)
            } else {
                (f.user_pin.as_ref(), &mut f.user_tries)
            };
            let record = record.ok_or(CKR_USER_PIN_NOT_INITIALIZED)?;
            if tries.is_locked() {
                return Err(CKR_PIN_LOCKED);
            }
            match record.unwrap_key(pin) {
                Some(key) => {
                    tries.reset();
                    Ok(key)
                }
                None => {
                    tries.fail();
                    Err(CKR_PIN_INCORRECT)
                }
            }
        })??;
        self.logins.insert(serial, Login { user, key });
        Ok(())
    }

    /// `C_Logout`.
    pub fn logout(&mut self, h: CK_SESSION_HANDLE) -> Result<(), CK_RV> {
        let serial = self.session_serial(h)?;
        self.logins
            .remove(&serial)
            .map(drop)
            .ok_or(CKR_USER_NOT_LOGGED_IN)
    }

    /// `C_InitPIN`: the SO sets the user PIN, which unlocks it.
    pub fn init_pin(&mut self, h: CK_SESSION_HANDLE, pin: &[u8]) -> Result<(), CK_RV> {
        self.check_pin_len(pin)?;
        let slot = self.session(h)?.slot;
        let key = match self.session_login(h)? {
            Some(l) if l.user == CKU_SO => l.key.clone(),
            _ => return Err(CKR_USER_NOT_LOGGED_IN),
        };
        let record = PinRecord::new(pin, &key).map_err(|_| CKR_FUNCTION_FAILED)?;
        self.token(slot)?.update(|f| {
            f.user_pin = Some(record);
            f.user_tries.reset();
        })
    }

    /// `C_SetPIN`: changes the PIN of whoever is logged in, or the user PIN in a public
    /// session. The old PIN counts as a login attempt.
    pub fn set_pin(&mut self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<(), CK_RV> {
        if !self.session(h)?.rw {
            return Err(CKR_SESSION_READ_ONLY);
        }
        self.check_pin_len(new)?;
        let slot = self.session(h)?.slot;
        let user = self.session_login(h)?.map_or(CKU_USER, |l| l.user);
        self.token(slot)?.update(|f| {
            let (record, tries) = if user == CKU_SO {
                (Some(&mut f.so_pin), &mut f.so_tries)
            } else {
                (f.user_pin.as_mut(), &mut f.user_tries)
            };
            let record = record.ok_or(CKR_USER_PIN_NOT_INITIALIZED)?;
            if tries.is_locked() {
                return Err(CKR_PIN_LOCKED);
            }
            let Some(key) = record.unwrap_key(old) else {
                tries.fail();
                return Err(CKR_PIN_INCORRECT);
            };
            tries.reset();
            *record = PinRecord::new(new, &key).map_err(|_| CKR_FUNCTION_FAILED)?;
            Ok(())
        })?
    }
}
