//! The C interface: `C_GetFunctionList` and the function table behind it.
//!
//! This is the only place with `unsafe` code: each entry point turns the caller's raw pointers
//! into Rust values (checking for null), calls the safe module code, and writes results back.
//! Panics never cross into C: every entry point runs under [`guard`], which turns one into
//! `CKR_GENERAL_ERROR`.

// The entry points keep their C names.
#![allow(non_snake_case)]

mod decryption;
mod general;
mod objects;
mod signing;
mod unsupported;

use crate::attrs::Attributes;
use cryptoki_sys::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs one entry point's body and turns its result (or a panic) into a `CK_RV`.
fn guard(body: impl FnOnce() -> Result<(), CK_RV>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv,
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// The `len` bytes at `p` (an empty slice for a null pointer with length 0).
///
/// # Safety
/// `p` must be null or point to `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn bytes<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8], CK_RV> {
    // SAFETY: forwarded from this function's contract (PKCS#11 buffer contract).
    unsafe { array(p, len) }
}

/// The `n` entries of the array at `p`.
///
/// # Safety
/// `p` must be null (with `n == 0`) or point to `n` initialised values valid for `'a`.
unsafe fn array<'a, T>(p: *const T, n: CK_ULONG) -> Result<&'a [T], CK_RV> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let n = usize::try_from(n).map_err(|_| CKR_ARGUMENTS_BAD)?;
    // SAFETY: non-null, and the caller promises `n` initialised entries.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Hands `items` out the PKCS#11 way: `*count` set to their number; copied into `list` unless
/// it is null (the caller asks for the size first), `CKR_BUFFER_TOO_SMALL` when `*count` said
/// there was less room.
///
/// # Safety
/// `count` must be valid for reads and writes; `list` null or valid for `*count` entries.
unsafe fn put_list<T: Copy>(items: &[T], list: *mut T, count: *mut CK_ULONG) -> Result<(), CK_RV> {
    if count.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null; readable and writable by the caller's contract.
    let room = unsafe { *count } as usize;
    // SAFETY: as above.
    unsafe { *count = items.len() as CK_ULONG };
    if list.is_null() {
        return Ok(());
    }
    if room < items.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `list` holds `room >= items.len()` entries (the caller's contract).
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len()) };
    Ok(())
}

/// A template (`CK_ATTRIBUTE` array with values) as attributes.
///
/// # Safety
/// `p` must be null (with `n == 0`) or point to `n` `CK_ATTRIBUTE`s whose `pValue` point to
/// `ulValueLen` readable bytes each.
unsafe fn template(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Attributes, CK_RV> {
    // SAFETY: forwarded from this function's contract.
    let entries = unsafe { array(p, n) }?;
    let mut pairs = Vec::with_capacity(entries.len());
    for a in entries {
        // SAFETY: each entry's value is `ulValueLen` readable bytes (the caller's contract).
        let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen) }
            .map_err(|_| CKR_ATTRIBUTE_VALUE_INVALID)?;
        pairs.push((a.type_, v.to_vec()));
    }
    Ok(Attributes::from_pairs(pairs))
}

/// The mechanism at `p`: its type and parameter bytes.
///
/// # Safety
/// `p` must be null or point to a `CK_MECHANISM` whose parameter is `ulParameterLen` bytes.
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<(CK_MECHANISM_TYPE, Vec<u8>), CK_RV> {
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null and points to a CK_MECHANISM (the caller's contract).
    let m = unsafe { &*p };
    // SAFETY: the parameter is `ulParameterLen` readable bytes (the caller's contract).
    let param = unsafe { bytes(m.pParameter as *const u8, m.ulParameterLen) }
        .map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
    Ok((m.mechanism, param.to_vec()))
}

/// Writes `v` to `p`.
///
/// # Safety
/// `p` must be null or valid for a write of one `T`.
unsafe fn put<T>(p: *mut T, v: T) -> Result<(), CK_RV> {
    if p.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null and writable (the caller's contract); `write` drops no old value.
    unsafe { p.write(v) };
    Ok(())
}

/// PKCS#11's output-buffer convention (§5.2): a null `out` asks for the length; a short buffer
/// gets the length and `CKR_BUFFER_TOO_SMALL`; otherwise the data is copied.
///
/// # Safety
/// `out_len` must be valid for reads and writes; `out` null or valid for `*out_len` bytes.
unsafe fn put_bytes(data: &[u8], out: *mut u8, out_len: *mut CK_ULONG) -> Result<(), CK_RV> {
    if out_len.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-null and readable (the caller's contract).
    let room = unsafe { *out_len };
    // SAFETY: as above, writable.
    unsafe { *out_len = data.len() as CK_ULONG };
    if out.is_null() {
        return Ok(());
    }
    if (room as usize) < data.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `out` holds at least `room >= data.len()` bytes and cannot overlap our own Vec.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out, data.len()) };
    Ok(())
}

/// The table handed out by `C_GetFunctionList`.
static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(general::C_Initialize),
    C_Finalize: Some(general::C_Finalize),
    C_GetInfo: Some(general::C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(general::C_GetSlotList),
    C_GetSlotInfo: Some(general::C_GetSlotInfo),
    C_GetTokenInfo: Some(general::C_GetTokenInfo),
    C_GetMechanismList: Some(general::C_GetMechanismList),
    C_GetMechanismInfo: Some(general::C_GetMechanismInfo),
    C_InitToken: Some(general::C_InitToken),
    C_InitPIN: Some(general::C_InitPIN),
    C_SetPIN: Some(general::C_SetPIN),
    C_OpenSession: Some(general::C_OpenSession),
    C_CloseSession: Some(general::C_CloseSession),
    C_CloseAllSessions: Some(general::C_CloseAllSessions),
    C_GetSessionInfo: Some(general::C_GetSessionInfo),
    C_GetOperationState: Some(unsupported::C_GetOperationState),
    C_SetOperationState: Some(unsupported::C_SetOperationState),
    C_Login: Some(general::C_Login),
    C_Logout: Some(general::C_Logout),
    C_CreateObject: Some(objects::C_CreateObject),
    C_CopyObject: Some(unsupported::C_CopyObject),
    C_DestroyObject: Some(objects::C_DestroyObject),
    C_GetObjectSize: Some(objects::C_GetObjectSize),
    C_GetAttributeValue: Some(objects::C_GetAttributeValue),
    C_SetAttributeValue: Some(objects::C_SetAttributeValue),
    C_FindObjectsInit: Some(objects::C_FindObjectsInit),
    C_FindObjects: Some(objects::C_FindObjects),
    C_FindObjectsFinal: Some(objects::C_FindObjectsFinal),
    C_EncryptInit: Some(unsupported::C_EncryptInit),
    C_Encrypt: Some(unsupported::C_Encrypt),
    C_EncryptUpdate: Some(unsupported::C_EncryptUpdate),
    C_EncryptFinal: Some(unsupported::C_EncryptFinal),
    C_DecryptInit: Some(decryption::C_DecryptInit),
    C_Decrypt: Some(decryption::C_Decrypt),
    C_DecryptUpdate: Some(unsupported::C_DecryptUpdate),
    C_DecryptFinal: Some(unsupported::C_DecryptFinal),
    C_DigestInit: Some(unsupported::C_DigestInit),
    C_Digest: Some(unsupported::C_Digest),
    C_DigestUpdate: Some(unsupported::C_DigestUpdate),
    C_DigestKey: Some(unsupported::C_DigestKey),
    C_DigestFinal: Some(unsupported::C_DigestFinal),
    C_SignInit: Some(signing::C_SignInit),
    C_Sign: Some(signing::C_Sign),
    C_SignUpdate: Some(signing::C_SignUpdate),
    C_SignFinal: Some(signing::C_SignFinal),
    C_SignRecoverInit: Some(unsupported::C_SignRecoverInit),
    C_SignRecover: Some(unsupported::C_SignRecover),
    C_VerifyInit: Some(signing::C_VerifyInit),
    C_Verify: Some(signing::C_Verify),
    C_VerifyUpdate: Some(signing::C_VerifyUpdate),
    C_VerifyFinal: Some(signing::C_VerifyFinal),
    C_VerifyRecoverInit: Some(unsupported::C_VerifyRecoverInit),
    C_VerifyRecover: Some(unsupported::C_VerifyRecover),
    C_DigestEncryptUpdate: Some(unsupported::C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(unsupported::C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(unsupported::C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(unsupported::C_DecryptVerifyUpdate),
    C_GenerateKey: Some(unsupported::C_GenerateKey),
    C_GenerateKeyPair: Some(signing::C_GenerateKeyPair),
    C_WrapKey: Some(unsupported::C_WrapKey),
    C_UnwrapKey: Some(decryption::C_UnwrapKey),
    C_DeriveKey: Some(unsupported::C_DeriveKey),
    C_SeedRandom: Some(signing::C_SeedRandom),
    C_GenerateRandom: Some(signing::C_GenerateRandom),
    C_GetFunctionStatus: Some(unsupported::C_GetFunctionStatus),
    C_CancelFunction: Some(unsupported::C_CancelFunction),
    C_WaitForSlotEvent: Some(unsupported::C_WaitForSlotEvent),
};

/// `C_GetFunctionList`: the module's one exported symbol; everything else is reached through
/// the table it returns.
///
/// # Safety
/// `list` must be null or valid for a write of one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        // The table is immutable; PKCS#11 types the pointer as mutable but callers only read it.
        let table = std::ptr::addr_of!(FUNCTION_LIST) as *mut CK_FUNCTION_LIST;
        // SAFETY: `list` is null-checked by `put` and writable by the caller's contract.
        unsafe { put(list, table) }
    })
}
