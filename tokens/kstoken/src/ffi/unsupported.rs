//! Entry points for what this token does not do (encryption, multi-part decryption, digests, key wrapping, …): each
//! answers `CKR_FUNCTION_NOT_SUPPORTED` (PKCS#11 v2.40 §5.1) and touches none of its arguments.

use cryptoki_sys::*;
use std::ffi::c_void;

macro_rules! not_supported {
    ($($name:ident($($arg:ty),*) => $rv:expr;)*) => {$(
        /// # Safety
        /// Reads none of its arguments.
        pub(super) unsafe extern "C" fn $name($(_: $arg),*) -> CK_RV {
            $rv
        }
    )*};
}

type S = CK_SESSION_HANDLE;
type B = *mut CK_BYTE;
type L = *mut CK_ULONG;
type M = *mut CK_MECHANISM;
type A = *mut CK_ATTRIBUTE;
type O = CK_OBJECT_HANDLE;

not_supported! {
    C_GetOperationState(S, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_SetOperationState(S, B, CK_ULONG, O, O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_CopyObject(S, O, A, CK_ULONG, *mut O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_EncryptInit(S, M, O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_Encrypt(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_EncryptUpdate(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_EncryptFinal(S, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DecryptUpdate(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DecryptFinal(S, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DigestInit(S, M) => CKR_FUNCTION_NOT_SUPPORTED;
    C_Digest(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DigestUpdate(S, B, CK_ULONG) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DigestKey(S, O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DigestFinal(S, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_SignRecoverInit(S, M, O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_SignRecover(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_VerifyRecoverInit(S, M, O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_VerifyRecover(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DigestEncryptUpdate(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DecryptDigestUpdate(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_SignEncryptUpdate(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DecryptVerifyUpdate(S, B, CK_ULONG, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_GenerateKey(S, M, A, CK_ULONG, *mut O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_WrapKey(S, M, O, O, B, L) => CKR_FUNCTION_NOT_SUPPORTED;
    C_DeriveKey(S, M, O, A, CK_ULONG, *mut O) => CKR_FUNCTION_NOT_SUPPORTED;
    C_GetFunctionStatus(S) => CKR_FUNCTION_NOT_PARALLEL;
    C_CancelFunction(S) => CKR_FUNCTION_NOT_PARALLEL;
    C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, *mut c_void) => CKR_FUNCTION_NOT_SUPPORTED;
}
