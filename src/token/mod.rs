//! PKCS#11 tokens through cryptoki — the ONLY module that names cryptoki.
//!
//! - [`backend`]: the token seam, what the station needs of a module and of a session (find,
//!   init, login, generate, sign, create, read and destroy objects), as two traits;
//! - `pkcs11`: the seam's cryptoki implementation (templates, attributes, mechanisms), the one
//!   place that calls cryptoki (with the benchmarks' raw floor);
//! - [`module`]: open a PKCS#11 module once per process, list tokens, select them by serial or
//!   label (never by slot number: SoftHSM renumbers slots between processes);
//! - [`session`]: sessions and logins that honour the PIN flags before trying a PIN;
//! - [`keys`]: key pairs and secret keys generated on the token, each with exactly its usages;
//! - [`objects`]: certificates and data objects;
//! - [`inventory`]: everything on a token read back, for audits;
//! - [`signer`]: an rcgen `SigningKey` whose private key never leaves the token;
//! - [`vault`]: the station's vault token — SO PIN derivation (HMAC) and PIN sealing (AES-GCM),
//!   both computed inside the HSM;
//! - [`vendor`]: the vendor mechanism table (SM2 codes and behaviour per PKCS#11 module);
//! - `sim` (`test-hooks` feature): the fault simulator, a decorator over a backend that locks
//!   PINs and fills tokens; `floor` (`bench-floor` feature): the benchmark's raw PKCS#11 floor.
//!
//! All functions here are blocking; async callers cross into them at the station's one boundary
//! (`crate::station::hsm::blocking`).
//!
//! # Security notes
//! - Private keys are generated with `CKA_SENSITIVE` and without `CKA_EXTRACTABLE`: they cannot
//!   leave the token, and the tests check the attributes read back from it. Every key gets
//!   exactly the usages its job needs, each usage attribute set explicitly (see [`keys`]).
//! - PINs enter this module only as [`crate::domain::Pin`] / [`crate::domain::SoPin`] and leave
//!   it only towards `C_Login`, `C_InitToken`, `C_InitPIN` and the vault's AES-GCM input.
//! - Errors name the token (serial and label) and the PKCS#11 function that failed, never a PIN.
//! - A login is refused before any attempt when the token reports the PIN locked or on its final
//!   try: a station must never be what locks a customer's key.

pub mod backend;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(feature = "bench-floor")]
pub mod floor;
pub mod inventory;
pub mod keys;
pub mod model;
pub mod module;
pub mod objects;
mod pkcs11;
pub mod session;
pub mod signer;
#[cfg(feature = "test-hooks")]
mod sim;
pub mod store_lock;
pub mod vault;
pub mod vendor;

pub use backend::{DataObject, ObjectRef, SessionBackend, TokenBackend};
pub use inventory::{KeyKind, ObjectKind, TokenObject};
pub use keys::{KeyPairInfo, KeyUsage, PrivateKeyAttributes};
pub use module::{Pkcs11Module, Token, TokenInfo, TokenSelector};
pub use session::{TokenSession, UserKind};
pub use signer::TokenSigner;
pub use store_lock::StoreLock;
pub use vault::{HeldAnchor, SealedKey, SealedPin, Vault};

use cryptoki::error::{Error as CkError, RvError};

/// A PKCS#11 return value (`CKR_...`) a module answered with, in the station's own terms (the
/// cryptoki type stays inside this module). Displayed as the standard describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnValue(Box<ReturnValueParts>);

/// Boxed, so that errors carrying a [`ReturnValue`] stay small.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReturnValueParts {
    name: String,
    code: Option<u64>,
    description: String,
}

impl ReturnValue {
    /// Its name as the standard spells it, e.g. `CKR_ATTRIBUTE_SENSITIVE`
    /// (`CKR_VENDOR_DEFINED` for a vendor's own, `CKR_UNKNOWN` for a value the standard lacks).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The numeric value, where it is not implied by the name (a vendor-defined or unknown one).
    pub fn code(&self) -> Option<u64> {
        self.0.code
    }
}

impl std::fmt::Display for ReturnValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.description)
    }
}

impl From<RvError> for ReturnValue {
    fn from(rv: RvError) -> ReturnValue {
        let description = rv.to_string();
        let (name, code) = match rv {
            RvError::VendorDefined(code) => ("CKR_VENDOR_DEFINED".to_string(), Some(code)),
            RvError::UnknownErrorCode(code) => ("CKR_UNKNOWN".to_string(), Some(code)),
            // The variants are the standard's names in CamelCase: `AttributeSensitive` is
            // `CKR_ATTRIBUTE_SENSITIVE`.
            named => {
                let mut name = String::from("CKR");
                for c in format!("{named:?}").chars() {
                    if c.is_ascii_uppercase() {
                        name.push('_');
                    }
                    name.push(c.to_ascii_uppercase());
                }
                (name, None)
            }
        };
        ReturnValue(Box::new(ReturnValueParts {
            name,
            code,
            description,
        }))
    }
}

/// Errors of token operations. Each names the token and, for PKCS#11 failures, the function.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    Load {
        /// Module path.
        path: String,
        /// Why.
        reason: String,
    },
    /// No module path given and none found in the usual places.
    #[error(
        "no PKCS#11 module: set pkcs11.module in station.toml (SoftHSM2 not found in {searched})"
    )]
    NoModule {
        /// Paths that were tried.
        searched: String,
    },
    /// A PKCS#11 function returned an error.
    #[error("token {token}: {function} failed: {rv}")]
    Pkcs11 {
        /// The token (serial and label).
        token: String,
        /// The PKCS#11 function, e.g. `C_GenerateKeyPair`.
        function: String,
        /// The return value.
        rv: ReturnValue,
    },
    /// No token matches the selector.
    #[error("no token with {0}")]
    NotFound(String),
    /// Several tokens match the selector (labels are not unique).
    #[error("several tokens match {selector}: {serials}; select by serial")]
    Ambiguous {
        /// The selector.
        selector: String,
        /// Serials of the matches.
        serials: String,
    },
    /// A wrong PIN was presented (the token's retry counter went down).
    #[error("token {token}: wrong {user} PIN")]
    PinIncorrect {
        /// The token.
        token: String,
        /// User or SO.
        user: UserKind,
    },
    /// The PIN is locked; unlock needs the SO (user PIN) or a token reset (SO PIN).
    #[error("token {token}: the {user} PIN is locked{hint}")]
    PinLocked {
        /// The token.
        token: String,
        /// User or SO.
        user: UserKind,
        /// What the operator can do.
        hint: &'static str,
    },
    /// One wrong PIN away from locking: the station refuses to try.
    #[error(
        "token {token}: the {user} PIN is on its final try; the station will not risk locking it (an operator must check the token)"
    )]
    PinFinalTry {
        /// The token.
        token: String,
        /// User or SO.
        user: UserKind,
    },
    /// The token disappeared (pulled out, module error).
    #[error("token {token} is no longer present ({function}): re-insert it and resume the order")]
    Removed {
        /// The token.
        token: String,
        /// The function that noticed.
        function: String,
    },
    /// The token has no room for another object.
    #[error("token {token} is full ({function}): use a token with more free memory")]
    Full {
        /// The token.
        token: String,
        /// The function that failed.
        function: String,
    },
    /// The token's content is not what the station expects.
    #[error("token {token}: {what}")]
    Unexpected {
        /// The token.
        token: String,
        /// What.
        what: String,
    },
}

impl crate::error_code::Coded for TokenError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            TokenError::Load { .. } | TokenError::NoModule { .. } => ec::PKCS11_MODULE,
            TokenError::Pkcs11 { .. } => ec::PKCS11,
            TokenError::NotFound(_) => ec::TOKEN_NOT_FOUND,
            TokenError::Ambiguous { .. } => ec::TOKEN_AMBIGUOUS,
            TokenError::PinIncorrect { .. } => ec::PIN_INCORRECT,
            TokenError::PinLocked { .. } => ec::PIN_LOCKED,
            TokenError::PinFinalTry { .. } => ec::PIN_FINAL_TRY,
            TokenError::Removed { .. } => ec::TOKEN_REMOVED,
            TokenError::Full { .. } => ec::TOKEN_FULL,
            TokenError::Unexpected { .. } => ec::TOKEN_UNEXPECTED,
        }
    }
}

impl TokenError {
    /// Wraps a cryptoki error for `token`, classifying the cases an operator must act on.
    pub(crate) fn from_ck(token: &str, e: CkError) -> TokenError {
        match e {
            CkError::Pkcs11(rv, function) => {
                let function = format!("C_{function:?}");
                match rv {
                    RvError::TokenNotPresent
                    | RvError::DeviceRemoved
                    | RvError::TokenNotRecognized
                    | RvError::SlotIdInvalid => TokenError::Removed {
                        token: token.to_string(),
                        function,
                    },
                    RvError::DeviceMemory => TokenError::Full {
                        token: token.to_string(),
                        function,
                    },
                    rv => TokenError::Pkcs11 {
                        token: token.to_string(),
                        function,
                        rv: ReturnValue::from(rv),
                    },
                }
            }
            other => TokenError::Unexpected {
                token: token.to_string(),
                what: other.to_string(),
            },
        }
    }

    /// True when the token vanished (an order is then resumable once it is back).
    pub fn is_removed(&self) -> bool {
        matches!(self, TokenError::Removed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_value_keeps_the_standard_name_and_a_vendor_code() {
        let rv = ReturnValue::from(RvError::AttributeSensitive);
        assert_eq!(rv.name(), "CKR_ATTRIBUTE_SENSITIVE");
        assert_eq!(rv.code(), None);
        assert_eq!(rv.to_string(), RvError::AttributeSensitive.to_string());
        assert_eq!(
            ReturnValue::from(RvError::SlotIdInvalid).name(),
            "CKR_SLOT_ID_INVALID"
        );
        let vendor = ReturnValue::from(RvError::VendorDefined(0x8000_0101));
        assert_eq!(vendor.name(), "CKR_VENDOR_DEFINED");
        assert_eq!(vendor.code(), Some(0x8000_0101));
    }
}
