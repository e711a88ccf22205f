//! PIN delivery: the channels that carry a token's user PIN to the company, out of band.
//!
//! - [`sms`]: SMS to the legal representative (spool files, Aliyun SendSms, signed webhook);
//! - [`bank`]: the memo of a 0.01 CNY ISO 20022 credit transfer to the corporate account;
//! - [`email`]: SMTP (STARTTLS / TLS, AUTH), for notices to the applicant;
//! - [`webhook`]: the order API's signed POST of an order's state change (no PIN in it).
//!
//! # Security notes
//! A rendered message holds the PIN: it lives in zeroizing memory, is never logged, never part of
//! an error, and is written only to the channel itself (the spool file, the HTTPS request, the
//! pain.001 file). A message accepted by a provider is never re-sent automatically.

pub mod bank;
pub mod email;
pub mod sms;
pub mod webhook;
