//! Entry points for the library, slots and tokens, sessions and logins.
//!
//! Every function here is `unsafe extern "C"`: its caller (a PKCS#11 application) promises
//! the pointer arguments follow the PKCS#11 v2.40 contracts; each body checks them for null.

use super::{array, bytes, guard, put, put_list};
use crate::config::SlowOp;
use crate::crypto::device_time;
use crate::mechanisms::mechanism_list;
use crate::module::{self, padded, with_module};
use cryptoki_sys::*;
use std::ffi::c_void;

/// # Safety
/// `args` must be null or point to a `CK_C_INITIALIZE_ARGS`.
pub(super) unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        if !args.is_null() {
            // SAFETY: non-null, and PKCS#11 says it points to CK_C_INITIALIZE_ARGS.
            let a = unsafe { &*(args as *const CK_C_INITIALIZE_ARGS) };
            if !a.pReserved.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            let given = [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return Err(CKR_ARGUMENTS_BAD);
            }
            // The module always uses its own (OS) locks, which PKCS#11 allows whether or not
            // the application also supplied mutex functions.
        }
        module::initialize()
    })
}

/// # Safety
/// `reserved` must be null.
pub(super) unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        module::finalize()
    })
}

/// # Safety
/// `info` must be valid for a write.
pub(super) unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        with_module(|_| Ok(()))?;
        let i = CK_INFO {
            cryptokiVersion: CK_VERSION {
                major: 2,
                minor: 40,
            },
            manufacturerID: padded("keystation"),
            flags: 0,
            libraryDescription: padded("kstoken test token (TASS SM2)"),
            libraryVersion: CK_VERSION { major: 0, minor: 1 },
        };
        // SAFETY: null-checked by `put`; writable by the caller's contract.
        unsafe { put(info, i) }
    })
}

/// # Safety
/// `count` must be valid for reads and writes; `list` null or valid for `*count` slot ids.
pub(super) unsafe extern "C" fn C_GetSlotList(
    present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let slots = with_module(|m| Ok(m.slot_list(present != CK_FALSE)))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put_list(&slots, list, count) }
    })
}

/// # Safety
/// `info` must be valid for a write.
pub(super) unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        let i = with_module(|m| m.slot_info(slot))?;
        // SAFETY: null-checked by `put`; writable by the caller's contract.
        unsafe { put(info, i) }
    })
}

/// # Safety
/// `info` must be valid for a write.
pub(super) unsafe extern "C" fn C_GetTokenInfo(
    slot: CK_SLOT_ID,
    info: *mut CK_TOKEN_INFO,
) -> CK_RV {
    guard(|| {
        let i = with_module(|m| m.token_info(slot))?;
        // SAFETY: null-checked by `put`; writable by the caller's contract.
        unsafe { put(info, i) }
    })
}

/// # Safety
/// `count` must be valid for reads and writes; `list` null or valid for `*count` entries.
pub(super) unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        with_module(|m| m.slot(slot).map(drop))?;
        let mechs: Vec<CK_MECHANISM_TYPE> = mechanism_list().into_iter().map(|(m, _)| m).collect();
        // SAFETY: forwarded from this function's contract.
        unsafe { put_list(&mechs, list, count) }
    })
}

/// # Safety
/// `info` must be valid for a write.
pub(super) unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mech: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        with_module(|m| m.slot(slot).map(drop))?;
        let flags = mechanism_list()
            .into_iter()
            .find(|(m, _)| *m == mech)
            .map(|(_, f)| f)
            .ok_or(CKR_MECHANISM_INVALID)?;
        let i = CK_MECHANISM_INFO {
            ulMinKeySize: 256,
            ulMaxKeySize: 256,
            flags,
        };
        // SAFETY: null-checked by `put`; writable by the caller's contract.
        unsafe { put(info, i) }
    })
}

/// # Safety
/// `pin` must hold `pin_len` bytes; `label` 32 bytes.
pub(super) unsafe extern "C" fn C_InitToken(
    slot: CK_SLOT_ID,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> CK_RV {
    guard(|| {
        // SAFETY: `pin_len` readable bytes (the caller's contract).
        let pin = unsafe { bytes(pin, pin_len) }?;
        // SAFETY: PKCS#11 fixes the label at 32 bytes.
        let label = unsafe { array(label, 32) }?;
        let label = std::str::from_utf8(label).map_err(|_| CKR_ARGUMENTS_BAD)?;
        with_module(|m| m.init_token(slot, pin, label.trim_end_matches(' ')))
    })
}

/// # Safety
/// `pin` must hold `len` bytes.
pub(super) unsafe extern "C" fn C_InitPIN(
    s: CK_SESSION_HANDLE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: `len` readable bytes (the caller's contract).
        let pin = unsafe { bytes(pin, len) }?;
        with_module(|m| m.init_pin(s, pin))
    })
}

/// # Safety
/// `old` must hold `old_len` bytes, `new` `new_len` bytes.
pub(super) unsafe extern "C" fn C_SetPIN(
    s: CK_SESSION_HANDLE,
    old: *mut CK_UTF8CHAR,
    old_len: CK_ULONG,
    new: *mut CK_UTF8CHAR,
    new_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: `old_len` readable bytes (the caller's contract).
        let old = unsafe { bytes(old, old_len) }?;
        // SAFETY: `new_len` readable bytes (the caller's contract).
        let new = unsafe { bytes(new, new_len) }?;
        device_time(s, SlowOp::Login)?;
        with_module(|m| m.set_pin(s, old, new))
    })
}

/// # Safety
/// `session` must be valid for a write.
pub(super) unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        if session.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let h = with_module(|m| m.open_session(slot, flags))?;
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { put(session, h) }
    })
}

/// # Safety
/// No pointer arguments.
pub(super) unsafe extern "C" fn C_CloseSession(s: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_module(|m| m.close_session(s)))
}

/// # Safety
/// No pointer arguments.
pub(super) unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| with_module(|m| m.close_all_sessions(slot)))
}

/// # Safety
/// `info` must be valid for a write.
pub(super) unsafe extern "C" fn C_GetSessionInfo(
    s: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard(|| {
        let i = with_module(|m| m.session_info(s))?;
        // SAFETY: null-checked by `put`; writable by the caller's contract.
        unsafe { put(info, i) }
    })
}

/// # Safety
/// `pin` must hold `len` bytes.
pub(super) unsafe extern "C" fn C_Login(
    s: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: `len` readable bytes (the caller's contract).
        let pin = unsafe { bytes(pin, len) }?;
        device_time(s, SlowOp::Login)?;
        with_module(|m| m.login(s, user, pin))
    })
}

/// # Safety
/// No pointer arguments.
pub(super) unsafe extern "C" fn C_Logout(s: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_module(|m| m.logout(s)))
}
