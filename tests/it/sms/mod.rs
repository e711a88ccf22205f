//! The one integration-test binary of the SMS module: real HTTP on loopback against fakes that
//! speak the providers' protocols (`fake_sms_gateway`), and real files for the spool.

#![allow(clippy::unwrap_used)]

mod aliyun;
pub mod fake_sms_gateway;
mod secrecy;
mod spool;
mod tls;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};

use keystation::delivery::sms::{OutgoingSms, RequestStamps, SendOutcome, SmsError, SmsTemplate};
use time::OffsetDateTime;

/// A PIN distinctive enough that finding it anywhere is a leak, not a coincidence.
pub const PIN: &str = "Zq7Pw9Kx";
pub const PHONE: &str = "13912345678";

/// Fixed clock, counting nonces: tests control time and randomness.
#[derive(Debug)]
pub struct FixedStamps {
    pub now: OffsetDateTime,
    counter: AtomicU64,
}

impl FixedStamps {
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now,
            counter: AtomicU64::new(1),
        }
    }
}

impl RequestStamps for FixedStamps {
    fn now(&self) -> OffsetDateTime {
        self.now
    }

    fn nonce(&self) -> Result<String, SmsError> {
        Ok(format!(
            "{:032x}",
            self.counter.fetch_add(1, Ordering::SeqCst)
        ))
    }
}

pub fn fixed_now() -> OffsetDateTime {
    time::macros::datetime!(2024-05-20 02:30:00 UTC)
}

pub fn template() -> SmsTemplate {
    SmsTemplate::with_default_body("北京CA")
}

pub fn sms(delivery_id: &str) -> OutgoingSms {
    sms_with_pin(delivery_id, PIN)
}

pub fn sms_with_pin(delivery_id: &str, pin: &str) -> OutgoingSms {
    OutgoingSms::new(
        delivery_id,
        PHONE,
        "20201126135521",
        "北京某某科技有限公司",
        pin,
        &template(),
    )
    .unwrap()
}

/// Every string an outcome exposes, and its Debug form, must be free of the PIN and the text.
pub fn assert_no_secret<T: std::fmt::Debug>(value: &T, sms: &OutgoingSms) {
    let dbg = format!("{value:?}");
    let pin = sms
        .template_params()
        .iter()
        .find(|(k, _)| k == "pin")
        .map(|(_, v)| v.to_string())
        .unwrap();
    assert!(!dbg.contains(&pin), "PIN leaked: {dbg}");
    assert!(
        !dbg.contains(sms.text().expose_secret()),
        "text leaked: {dbg}"
    );
    // The text's distinctive tail would reveal that the body was copied even if truncated.
    assert!(!dbg.contains("请首次使用时修改"), "text leaked: {dbg}");
}

/// `outcome` is of `kind` (accepted, retryable, permanent, unknown) and its reason (for an
/// accepted one, the provider's id) contains `says`.
#[track_caller]
pub fn assert_outcome(outcome: &SendOutcome, kind: &str, says: &str) {
    let actual = match outcome {
        SendOutcome::Accepted { .. } => "accepted",
        SendOutcome::Retryable { .. } => "retryable",
        SendOutcome::Permanent { .. } => "permanent",
        SendOutcome::Unknown { .. } => "unknown",
    };
    assert_eq!(actual, kind, "{outcome:?}");
    assert!(reason(outcome).contains(says), "{outcome:?}");
}

pub fn reason(outcome: &SendOutcome) -> &str {
    match outcome {
        SendOutcome::Accepted { provider_id } => provider_id,
        SendOutcome::Retryable { reason }
        | SendOutcome::Permanent { reason }
        | SendOutcome::Unknown { reason } => reason,
    }
}
