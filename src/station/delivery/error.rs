//! Why a delivery operation did not happen, and the check of the labels operators type
//! (tracking numbers, reasons, operator names).

use crate::delivery::bank::BankError;
use crate::delivery::sms::SmsError;
use crate::station::argument::InvalidArgument;
use crate::store::StoreError;
use crate::token::TokenError;

/// Why a delivery operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The database failed (or refused a conflicting change).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault token failed.
    #[error("vault: {0}")]
    Token(#[from] TokenError),
    /// The HSM context could not be opened.
    #[error(transparent)]
    Hsm(#[from] crate::station::hsm::HsmError),
    /// A channel could not be set up from the configuration.
    #[error("SMS channel: {0}")]
    Sms(#[from] SmsError),
    /// The e-mail channel could not be set up from the configuration.
    #[error("e-mail channel: {0}")]
    Email(#[from] crate::delivery::email::EmailError),
    /// A bank file could not be read as pain.002 / camt.054 (names the element, never a value).
    #[error("{path}: {source}")]
    BankFile {
        /// The file.
        path: String,
        /// Why.
        source: BankError,
    },
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A secret file (channel credential) is missing, too open or empty.
    #[error("secret file {path}: {reason}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A spool or bank directory is open to group or others.
    #[error(transparent)]
    NotPrivate(#[from] crate::private_files::NotPrivate),
    /// Another `deliver run` holds this station's worker lock.
    #[error("another `deliver run` is active for this station (lock {0})")]
    Locked(String),
    /// An argument is unusable (exit 2).
    #[error(transparent)]
    Invalid(#[from] InvalidArgument),
    /// The operation is refused in the current state (exit 2), with what to do instead.
    #[error("{0}")]
    Refused(String),
}

impl DeliveryError {
    /// True when the operator asked for something impossible (CLI exit 2), not a failure.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DeliveryError::Invalid(_)
                | DeliveryError::Refused(_)
                | DeliveryError::BankFile { .. }
                | DeliveryError::Store(
                    StoreError::OrderNotFound(_)
                        | StoreError::DeliveryNotFound(_)
                        | StoreError::AlreadyShipped(_)
                        | StoreError::Illegal { .. }
                        | StoreError::StateConflict { .. }
                        | StoreError::DeliveryConflict { .. }
                )
        )
    }
}

/// Refuses an empty label, or one longer than `max` characters or with control characters.
pub(super) fn check_label(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), DeliveryError> {
    if value.trim().is_empty() {
        return Err(DeliveryError::Invalid(InvalidArgument {
            field,
            message: "must not be empty".into(),
        }));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(DeliveryError::Invalid(InvalidArgument {
            field,
            message: format!("must be at most {max} characters without control characters"),
        }));
    }
    Ok(())
}
