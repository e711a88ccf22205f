//! Entry points for object management.

use super::{guard, put, template};
use crate::module::with_module;
use crate::objects::{AttrAnswer, UNAVAILABLE};
use cryptoki_sys::*;

/// # Safety
/// `tmpl` must hold `n` attributes with readable values; `object` valid for a write.
pub(super) unsafe extern "C" fn C_CreateObject(
    s: CK_SESSION_HANDLE,
    tmpl: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        if object.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: the caller's contract.
        let t = unsafe { template(tmpl, n) }?;
        let h = with_module(|m| m.create_object(s, t))?;
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { put(object, h) }
    })
}

/// # Safety
/// No pointer arguments.
pub(super) unsafe extern "C" fn C_DestroyObject(
    s: CK_SESSION_HANDLE,
    h: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| with_module(|m| m.destroy_object(s, h)))
}

/// # Safety
/// `size` must be valid for a write.
pub(super) unsafe extern "C" fn C_GetObjectSize(
    s: CK_SESSION_HANDLE,
    h: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let n = with_module(|m| m.object_size(s, h))?;
        // SAFETY: null-checked by `put`; writable by the caller's contract.
        unsafe { put(size, n) }
    })
}

/// PKCS#11 v2.40 §5.7: each attribute is answered on its own; the call returns the last
/// problem met (sensitive, invalid type, buffer too small) after filling in everything else.
///
/// # Safety
/// `tmpl` must point to `n` attributes, each with `pValue` null or valid for `ulValueLen`
/// bytes.
pub(super) unsafe extern "C" fn C_GetAttributeValue(
    s: CK_SESSION_HANDLE,
    h: CK_OBJECT_HANDLE,
    tmpl: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard(|| {
        if tmpl.is_null() && n > 0 {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let count = usize::try_from(n).map_err(|_| CKR_ARGUMENTS_BAD)?;
        let entries: &mut [CK_ATTRIBUTE] = if count == 0 {
            &mut []
        } else {
            // SAFETY: non-null; `n` attributes, readable and writable (the caller's contract).
            unsafe { std::slice::from_raw_parts_mut(tmpl, count) }
        };
        let types: Vec<CK_ATTRIBUTE_TYPE> = entries.iter().map(|a| a.type_).collect();
        let answers = with_module(|m| m.get_attributes(s, h, &types))?;
        let mut rv = CKR_OK;
        for (a, answer) in entries.iter_mut().zip(answers) {
            match answer {
                AttrAnswer::Sensitive => {
                    a.ulValueLen = UNAVAILABLE;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                AttrAnswer::Invalid => {
                    a.ulValueLen = UNAVAILABLE;
                    rv = CKR_ATTRIBUTE_TYPE_INVALID;
                }
                AttrAnswer::Value(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = v.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < v.len() {
                        a.ulValueLen = UNAVAILABLE;
                        rv = CKR_BUFFER_TOO_SMALL;
                    } else {
                        // SAFETY: `pValue` holds `ulValueLen >= v.len()` bytes (the caller's
                        // contract) and cannot overlap `v`, which this module owns.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = v.len() as CK_ULONG;
                    }
                }
            }
        }
        match rv {
            CKR_OK => Ok(()),
            e => Err(e),
        }
    })
}

/// # Safety
/// `tmpl` must hold `n` attributes with readable values.
pub(super) unsafe extern "C" fn C_SetAttributeValue(
    s: CK_SESSION_HANDLE,
    h: CK_OBJECT_HANDLE,
    tmpl: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let t = unsafe { template(tmpl, n) }?;
        with_module(|m| m.set_attributes(s, h, t))
    })
}

/// # Safety
/// `tmpl` must hold `n` attributes with readable values.
pub(super) unsafe extern "C" fn C_FindObjectsInit(
    s: CK_SESSION_HANDLE,
    tmpl: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: the caller's contract.
        let t = unsafe { template(tmpl, n) }?;
        with_module(|m| m.find_init(s, t))
    })
}

/// # Safety
/// `out` must be valid for `max` handles; `count` for a write.
pub(super) unsafe extern "C" fn C_FindObjects(
    s: CK_SESSION_HANDLE,
    out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if count.is_null() || (out.is_null() && max > 0) {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let found = with_module(|m| m.find_next(s, max as usize))?;
        if !found.is_empty() {
            // SAFETY: `out` holds `max >= found.len()` handles (the caller's contract).
            unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), out, found.len()) };
        }
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { put(count, found.len() as CK_ULONG) }
    })
}

/// # Safety
/// No pointer arguments.
pub(super) unsafe extern "C" fn C_FindObjectsFinal(s: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_module(|m| m.find_final(s)))
}
