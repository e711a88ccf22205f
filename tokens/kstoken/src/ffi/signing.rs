//! Entry points for key pair generation, signatures, verification and random numbers.

use super::{bytes, guard, mechanism, put, put_bytes, template};
use crate::config::SlowOp;
use crate::crypto::{Purpose, device_time};
use crate::module::with_module;
use cryptoki_sys::*;

/// # Safety
/// `mech` must point to a mechanism; the templates must hold their counts of attributes;
/// `pub_h` and `priv_h` must be valid for writes.
pub(super) unsafe extern "C" fn C_GenerateKeyPair(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    pub_tmpl: *mut CK_ATTRIBUTE,
    pub_n: CK_ULONG,
    priv_tmpl: *mut CK_ATTRIBUTE,
    priv_n: CK_ULONG,
    pub_h: *mut CK_OBJECT_HANDLE,
    priv_h: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if pub_h.is_null() || priv_h.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the caller's contract for each pointer.
        let (m, param) = unsafe { mechanism(mech) }?;
        if !param.is_empty() {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        // SAFETY: the caller's contract.
        let public = unsafe { template(pub_tmpl, pub_n) }?;
        // SAFETY: the caller's contract.
        let private = unsafe { template(priv_tmpl, priv_n) }?;
        device_time(s, SlowOp::KeyGen)?;
        let (p, k) = with_module(|md| md.generate_key_pair(s, m, public, private))?;
        // SAFETY: both non-null and writable (the caller's contract).
        unsafe {
            put(pub_h, p)?;
            put(priv_h, k)
        }
    })
}

/// `C_SignInit` and `C_VerifyInit`, which differ only in the operation they start.
///
/// # Safety
/// `mech` must point to a mechanism.
unsafe fn init(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    purpose: Purpose,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let (m, param) = unsafe { mechanism(mech) }?;
        with_module(|md| md.init_operation(s, purpose, m, &param, key))
    })
}

/// `C_SignUpdate` and `C_VerifyUpdate`, which differ only in the operation they feed.
///
/// # Safety
/// `data` must hold `len` bytes.
unsafe fn update(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    purpose: Purpose,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let data = unsafe { bytes(data, len) }?;
        with_module(|m| m.update_operation(s, purpose, data))
    })
}

/// # Safety
/// `mech` must point to a mechanism.
pub(super) unsafe extern "C" fn C_SignInit(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: the caller's contract.
    unsafe { init(s, mech, key, Purpose::Sign) }
}

/// Answers a length query or a short buffer without ending the operation (PKCS#11 §5.2);
/// `Ok(true)` when the signature should be made.
///
/// # Safety
/// `sig_len` valid for reads and writes.
unsafe fn room_for_signature(
    s: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> Result<bool, CK_RV> {
    if sig_len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let needed = with_module(|m| m.signature_len(s))?;
    // SAFETY: non-null, readable and writable (the caller's contract).
    let room = unsafe { *sig_len } as usize;
    if sig.is_null() || room < needed {
        // SAFETY: as above.
        unsafe { *sig_len = needed as CK_ULONG };
        return if sig.is_null() {
            Ok(false)
        } else {
            Err(CKR_BUFFER_TOO_SMALL)
        };
    }
    Ok(true)
}

/// # Safety
/// `data` must hold `len` bytes; `sig_len` valid for reads and writes; `sig` null or valid
/// for `*sig_len` bytes.
pub(super) unsafe extern "C" fn C_Sign(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let data = unsafe { bytes(data, len) }?;
        // SAFETY: the caller's contract.
        if !unsafe { room_for_signature(s, sig, sig_len) }? {
            return Ok(());
        }
        device_time(s, SlowOp::Sign)?;
        let signature = with_module(|m| m.sign_finish(s, data))?;
        // SAFETY: the caller's contract.
        unsafe { put_bytes(&signature, sig, sig_len) }
    })
}

/// # Safety
/// `data` must hold `len` bytes.
pub(super) unsafe extern "C" fn C_SignUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    // SAFETY: the caller's contract.
    unsafe { update(s, data, len, Purpose::Sign) }
}

/// # Safety
/// `sig_len` valid for reads and writes; `sig` null or valid for `*sig_len` bytes.
pub(super) unsafe extern "C" fn C_SignFinal(
    s: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        if !unsafe { room_for_signature(s, sig, sig_len) }? {
            return Ok(());
        }
        device_time(s, SlowOp::Sign)?;
        let signature = with_module(|m| m.sign_finish(s, &[]))?;
        // SAFETY: the caller's contract.
        unsafe { put_bytes(&signature, sig, sig_len) }
    })
}

/// # Safety
/// `mech` must point to a mechanism.
pub(super) unsafe extern "C" fn C_VerifyInit(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    // SAFETY: the caller's contract.
    unsafe { init(s, mech, key, Purpose::Verify) }
}

/// # Safety
/// `data` must hold `len` bytes, `sig` `sig_len` bytes.
pub(super) unsafe extern "C" fn C_Verify(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let data = unsafe { bytes(data, len) }?;
        // SAFETY: the caller's contract.
        let sig = unsafe { bytes(sig, sig_len) }?;
        with_module(|m| m.verify_finish(s, data, sig))
    })
}

/// # Safety
/// `data` must hold `len` bytes.
pub(super) unsafe extern "C" fn C_VerifyUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    // SAFETY: the caller's contract.
    unsafe { update(s, data, len, Purpose::Verify) }
}

/// # Safety
/// `sig` must hold `sig_len` bytes.
pub(super) unsafe extern "C" fn C_VerifyFinal(
    s: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let sig = unsafe { bytes(sig, sig_len) }?;
        with_module(|m| m.verify_finish(s, &[], sig))
    })
}

/// # Safety
/// No pointer is read: the token's generator takes no seed.
pub(super) unsafe extern "C" fn C_SeedRandom(
    s: CK_SESSION_HANDLE,
    _seed: *mut CK_BYTE,
    _len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        with_module(|m| m.session(s).map(drop))?;
        Err(CKR_RANDOM_SEED_NOT_SUPPORTED)
    })
}

/// # Safety
/// `out` must be valid for `len` bytes.
pub(super) unsafe extern "C" fn C_GenerateRandom(
    s: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        if len == 0 {
            return with_module(|m| m.session(s).map(drop));
        }
        if out.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let n = usize::try_from(len).map_err(|_| CKR_ARGUMENTS_BAD)?;
        // SAFETY: non-null and writable for `len` bytes (the caller's contract).
        let buf = unsafe { std::slice::from_raw_parts_mut(out, n) };
        with_module(|m| m.random(s, buf))
    })
}
