//! Why a service-desk operation did not happen.

use crate::store::StoreError;
use crate::token::TokenError;

/// Why a service-desk operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceDeskError {
    /// The database failed, or refused the move (the four-eyes rule, the request's state).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token (the customer's key or the vault) failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The HSM context could not be opened.
    #[error(transparent)]
    Hsm(#[from] crate::station::hsm::HsmError),
    /// The revocation behind a lost key failed.
    #[error(transparent)]
    Delivery(#[from] crate::station::delivery::DeliveryError),
    /// A failure injected by a test failpoint.
    #[error(transparent)]
    Injected(#[from] crate::failpoint::InjectedFailure),
    /// An argument is unusable (exit 2).
    #[error("{field}: {message}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The request may not run yet: it waits for a second operator's approval, or is settled.
    #[error("service request {id} is {state}: {hint}")]
    NotRunnable {
        /// The request.
        id: String,
        /// Its state.
        state: crate::domain::RequestState,
        /// What to do.
        hint: String,
    },
    /// The order's state or records do not allow the operation (exit 2), with what to do.
    #[error("order {order_no}: {message}")]
    Refused {
        /// The order.
        order_no: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// The order's key cannot be retired (not made, or no longer bound to it) (exit 2).
    #[error("order {order_no}: {message}")]
    RetireRefused {
        /// The order.
        order_no: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// No reissue (补办) of the order can be made (exit 2).
    #[error("order {order_no}: {message}")]
    ReissueRefused {
        /// The order.
        order_no: String,
        /// Why, and what to do instead.
        message: String,
    },
    /// The station's records contradict each other; an operator must look.
    #[error("{0}")]
    Inconsistent(String),
}
