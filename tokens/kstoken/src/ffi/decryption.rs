//! Entry points for SM2 encryption keys: `C_DecryptInit`, `C_Decrypt` and `C_UnwrapKey`
//! (the safe code is in `crate::unwrap`).

use super::{bytes, guard, mechanism, put, put_bytes, template};
use crate::module::with_module;
use cryptoki_sys::*;

/// # Safety
/// `mech` must point to a mechanism.
pub(super) unsafe extern "C" fn C_DecryptInit(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let (m, param) = unsafe { mechanism(mech) }?;
        with_module(|md| md.decrypt_init(s, m, &param, key))
    })
}

/// # Safety
/// `data` must hold `len` bytes; `out_len` valid for reads and writes; `out` null or valid
/// for `*out_len` bytes.
pub(super) unsafe extern "C" fn C_Decrypt(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if out_len.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the caller's contract.
        let data = unsafe { bytes(data, len) }?;
        // SAFETY: non-null, readable (the caller's contract).
        let room = unsafe { *out_len } as usize;
        // The plaintext is as long as C2, known only once decrypted: a length query or a
        // short buffer decrypts and keeps the operation (PKCS#11 §5.2).
        let plain = with_module(|m| m.decrypt(s, data, true))?;
        if out.is_null() || room < plain.len() {
            // SAFETY: the caller's contract.
            return unsafe { put_bytes(&plain, out, out_len) };
        }
        let plain = with_module(|m| m.decrypt(s, data, false))?;
        // SAFETY: the caller's contract.
        unsafe { put_bytes(&plain, out, out_len) }
    })
}

/// # Safety
/// `mech` must point to a mechanism; `wrapped` hold `wrapped_len` bytes; the template hold
/// `n` attributes; `key` be valid for writes.
pub(super) unsafe extern "C" fn C_UnwrapKey(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    tmpl: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if key.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the caller's contract for each pointer.
        let (m, param) = unsafe { mechanism(mech) }?;
        // SAFETY: the caller's contract.
        let wrapped = unsafe { bytes(wrapped, wrapped_len) }?;
        // SAFETY: the caller's contract.
        let template = unsafe { template(tmpl, n) }?;
        let h =
            with_module(|md| md.unwrap_envelope(s, m, &param, unwrapping_key, wrapped, template))?;
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { put(key, h) }
    })
}
