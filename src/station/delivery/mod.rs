//! PIN delivery, orchestrated: the outbox (queued with the order's state change), the worker
//! that sends ([`worker`]), the bank's status files ([`bank_import`]), and the operator's
//! actions (ship, retry, cancel).
//!
//! Exactly-once rules, in one place:
//! - a delivery is queued in the SAME transaction as the state change that calls for it
//!   (`keystation ship`, or the provisioning job's `finish` with `delivery.trigger =
//!   "on_provisioned"`, or a PIN reset's last step); an order has at most one delivery per PIN
//!   that is not cancelled (unique index on the order and the PIN's generation: 0 for the PIN
//!   set at provisioning, n for the n-th reset's);
//! - the worker records `sending` (and, for the bank, the file name) BEFORE it contacts the
//!   channel; only `queued` deliveries are ever claimed, so a delivery in doubt (`sending` with no
//!   send in flight: a crash or a provider timeout) is never sent again blindly — the channel is
//!   asked, and only an authoritative "never got it" puts it back in the queue;
//! - on confirmation, in ONE transaction: delivery `confirmed`, order `PinDelivered`, the sealed
//!   PIN deleted, and an audit record with the receipt. Without the sealed PIN nothing can be
//!   sent again.
//!
//! # Security notes
//! The PIN is unsealed in the vault only to build one message (or to ask a provider about one),
//! lives in zeroizing memory while it is sent, and is written only into the channel's message
//! (spool file, HTTPS request, pain.001 memo). The database keeps the message's vault HMAC, never
//! the message; audit details, errors and logs carry masked destinations, ids and provider codes.
//!
//! Rooms: `outbox` (queue and confirm, inside the caller's transaction), [`notices`] (the
//! applicant's notices, queued the same way), [`ship`], the
//! [`worker`] and its channels, [`bank_import`], the [`operator`]'s actions, the station's own
//! copies of messages (`station_copies`), the worker's files and directories (`files`), and
//! [`error`].

pub mod bank_import;
pub mod error;
mod files;
pub mod notices;
pub mod operator;
mod outbox;
pub mod ship;
mod station_copies;
pub mod worker;

pub use error::DeliveryError;
pub use files::{DeliveryPaths, WorkerLock};
pub use notices::ExpiryTick;
pub use operator::{RequeueReport, RetryReport};
pub(crate) use outbox::{queue_delivery, queue_pin_delivery};
pub use ship::{ShipReport, ShipRequest};
pub use worker::{DeliveryChannels, RunEvent, RunReport, email_channel};
