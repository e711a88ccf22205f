//! The business, pure: orders, their validation and lifecycle, PINs, PIN deliveries, a
//! provider's rate limit, job leases, the takeover of an abandoned job, the service desk's
//! requests (four-eyes), what registered operators' roles permit, their console passwords and
//! one-time codes, and the rule that ties a secondary key to its company's live main key.
//!
//! Invariant: nothing in here does IO, awaits, or names a cryptoki or sqlx type. Everything is
//! a function of its arguments (time and randomness included), so the rules are unit-tested
//! exhaustively and every other module depends on this one, never the reverse.

pub mod api;
pub mod application_json;
pub mod console;
pub mod crl;
pub mod delivery;
pub mod identifiers;
pub mod ids;
pub mod key_algorithm;
pub mod lease;
pub mod normalize;
pub mod notification;
pub mod operator;
pub mod order;
pub mod password;
pub mod pin;
pub mod rate_limit;
pub mod reissue;
pub mod renewal;
pub mod secondary_key;
pub mod service_request;
pub mod station_request;
pub mod status;
pub mod takeover;
pub mod text;
pub mod totp;
pub mod unlock_mail;
pub mod validate;
pub mod webhook;

pub use delivery::{DeliveryEvent, DeliveryState};
pub use identifiers::{BindingId, CertSerial, InvalidIdentifier, OrderNo, TokenSerial};
pub use key_algorithm::KeyAlgorithm;
pub use operator::{Action, OperatorRefused, Role, Roles, View};
pub use order::*;
pub use pin::{Pin, PinPolicy, SealedKey, SealedPin, SoPin};
pub use service_request::{
    JournaledStep, OperatorId, PinResetStep, RequestError, RequestEvent, RequestKind, RequestState,
    RetireStep, UnlockStep,
};
pub use status::{CertificatePurpose, CertificateStatus, StepStatus};
pub use validate::{
    FileFacts, FileUse, PictureProblem, Severity, Validated, ValidationContext, Violation,
    validate_order,
};
