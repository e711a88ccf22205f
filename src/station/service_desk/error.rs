//! Why a service-desk operation did not happen.

use crate::station::argument::InvalidArgument;
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
    #[error(transparent)]
    Invalid(#[from] InvalidArgument),
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
    /// The unlock request code is malformed or mistyped.
    #[error("--code: {0}")]
    UnlockCode(#[from] crate::unlock::code::CodeError),
    /// The unlock request code was made on another key than the order's.
    #[error(
        "order {order_no}: the unlock request code was made on key {code_serial}, but the \
         order's key is {bound_serial}: the customer runs keystation-unlock with the order's key"
    )]
    UnlockSerial {
        /// The order.
        order_no: String,
        /// The key the code names.
        code_serial: String,
        /// The key bound to the order.
        bound_serial: String,
    },
    /// An unlock code cannot go out by e-mail.
    #[error("order {order_no}: {message}")]
    UnlockNoEmail {
        /// The order.
        order_no: String,
        /// What is missing.
        message: String,
    },
    /// The code may have reached the mail server: not sent again without `--resend`.
    #[error(
        "unlock request {id}: the code may have reached the mail server already ({reason}); it \
         is never sent again automatically: ask the handler whether it arrived, then \
         `keystation unlock run {id} --resend` (the tool takes either code)"
    )]
    UnlockInDoubt {
        /// The request.
        id: String,
        /// Why.
        reason: String,
    },
    /// The mail server did not take the code (nothing handed over).
    #[error("unlock request {id}: the mail server did not take the code ({reason}): run it again")]
    UnlockSend {
        /// The request.
        id: String,
        /// Why.
        reason: String,
    },
    /// A code carrying the key's next SO PIN is not confirmed used.
    #[error(
        "key {token_serial}: unlock request {request_id} sent a code that rotates its SO PIN and \
         its use is not confirmed: `keystation unlock confirm {request_id} --operator NAME` once \
         the customer's tool reported success"
    )]
    UnlockUnconfirmed {
        /// The key.
        token_serial: String,
        /// The unlock request whose code is pending.
        request_id: String,
    },
    /// The station's records contradict each other; an operator must look.
    #[error("{0}")]
    Inconsistent(String),
    /// A request carried out at approval was approved (the approval stands) but carrying it out
    /// failed; its kind's `run` carries it out once the cause is fixed. Coded as the cause.
    #[error(
        "request {id} is approved (the approval stands) but carrying it out failed: {cause}; \
         `keystation {command} run {id} --operator NAME` carries it out once that is fixed"
    )]
    ApprovedNotDone {
        /// The request.
        id: String,
        /// The CLI command of its kind (`revoke`, `reissue`).
        command: &'static str,
        /// Why it was not carried out.
        cause: Box<ServiceDeskError>,
    },
}
