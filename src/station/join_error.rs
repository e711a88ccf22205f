//! Why a station cannot join an installation ([`super::join`]). Apart from `join` so that
//! `setup`, whose error wraps it, and `join`, which uses `setup`'s pieces, do not import each
//! other.

use crate::token::TokenError;

/// Why a station cannot join the installation. Nothing was written when one of these is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// A token of the installation is not among those the station's PKCS#11 module shows.
    #[error(
        "the installation's {what} token {label:?} (serial {serial}) is not reachable through this \
         station's PKCS#11 module {module}: give `init` the shared HSM (--softhsm2-conf FILE for \
         SoftHSM, --pkcs11-module PATH for a network HSM)"
    )]
    NotReachable {
        /// `CA` or `vault`.
        what: &'static str,
        /// The label looked for.
        label: String,
        /// The serial the database records.
        serial: String,
        /// The module looked through.
        module: String,
    },
    /// The HSM holds something other than what the installation's database records.
    #[error(
        "the HSM does not hold this installation's {what}: the database records {expected}, the HSM has {found}"
    )]
    Mismatch {
        /// What differs.
        what: &'static str,
        /// What the database records.
        expected: String,
        /// What the HSM has.
        found: String,
    },
    /// A token operation failed (a wrong station PIN among them).
    #[error(transparent)]
    Token(#[from] TokenError),
}
