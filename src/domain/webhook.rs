//! The order API's webhook (issue 17, item 3), pure: what one event says ([`WebhookPayload`]),
//! how it is signed ([`signature`], [`verify`]), what an answer means ([`WebhookOutcome`]) and
//! what the outbox does next ([`next_move`]).
//!
//! Every order state change queues one event, keyed by the order and its version after the
//! change, so a change is queued once. The event's life is a notice's (the same table,
//! [`NoticeState`](crate::domain::notification::NoticeState)):
//!
//! ```text
//!  queued ──claim──▶ sending ──2xx──▶ sent
//!    ▲                 │  │
//!    └──5xx, 408, 429,─┘  └──▶ failed: another 4xx or a redirect, attempts exhausted, or the
//!       connection refused      outcome is unknown (timeout or broken exchange after the request
//!       (backoff)               was sent, a sender that stopped): never sent again automatically
//!  failed ──operator requeue──▶ queued
//! ```
//!
//! Signature: `X-Keystation-Signature: sha256=<hex HMAC-SHA256(key, timestamp "." body)>`,
//! with `X-Keystation-Timestamp` the unix time of the attempt and `X-Keystation-Event` the
//! event's id (the receiver de-duplicates on it).
//!
//! Security notes: a payload names the order, its two states and the time of the change — what
//! the API's progress endpoint shows, and less (no company, person, phone, account or PIN).
//! The key never leaves the caller's buffer.

use crate::domain::notification::NoticeEvent;
use crate::domain::order::OrderState;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Header with the event's id.
pub const EVENT_HEADER: &str = "X-Keystation-Event";
/// Header with the unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Keystation-Timestamp";
/// Header with `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Keystation-Signature";
/// The type of every event so far.
pub const EVENT_TYPE: &str = "order.state_changed";

/// The JSON body of one webhook request. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    /// The event's id (also in `X-Keystation-Event`).
    pub event_id: String,
    /// Always [`EVENT_TYPE`].
    #[serde(rename = "type")]
    pub event_type: String,
    /// The order.
    pub order_no: String,
    /// The order's version after the change: grows by one with every change of the order.
    pub sequence: i64,
    /// The state before.
    pub from: OrderState,
    /// The state after.
    pub to: OrderState,
    /// The state after, as the console and the API label it (Chinese).
    pub state_label: String,
    /// When the change was committed (RFC 3339, UTC).
    pub changed_at: String,
}

impl WebhookPayload {
    /// The body of the event `event_id`: order `order_no`, its `sequence`-th change from `from`
    /// to `to` at `changed_at`.
    pub fn new(
        event_id: &str,
        order_no: &str,
        sequence: i64,
        from: OrderState,
        to: OrderState,
        changed_at: &str,
    ) -> WebhookPayload {
        WebhookPayload {
            event_id: event_id.to_string(),
            event_type: EVENT_TYPE.to_string(),
            order_no: order_no.to_string(),
            sequence,
            from,
            to,
            state_label: to.label_zh().to_string(),
            changed_at: changed_at.to_string(),
        }
    }
}

/// The bytes signed: `timestamp`, a dot, and the body exactly as sent.
pub fn signed_bytes(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(timestamp.len() + 1 + body.len());
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// `sha256=` and the hex HMAC-SHA256 of [`signed_bytes`] under `key`.
pub fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, &signed_bytes(timestamp, body));
    format!("sha256={}", hex::encode(tag.as_ref()))
}

/// Whether `header` (an `X-Keystation-Signature` value) signs `timestamp` and `body` under
/// `key`; compared in constant time. A receiver also refuses a timestamp far from its clock.
pub fn verify(key: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(tag) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&key, &signed_bytes(timestamp, body), &tag).is_ok()
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Nothing was taken and a later attempt may succeed: 408, 429, 5xx, or no connection
    /// (nothing was sent).
    Retryable {
        /// Why (a status or a transport error, never the answer's body).
        reason: String,
    },
    /// The receiver refused it for good (another 4xx, a redirect, which is not followed).
    Refused {
        /// Why.
        reason: String,
    },
    /// The request may have reached the receiver (timeout or broken exchange after sending).
    Unknown {
        /// Why.
        reason: String,
    },
}

impl WebhookOutcome {
    /// The outcome of an answer with HTTP `status`.
    pub fn of_status(status: u16) -> WebhookOutcome {
        match status {
            200..=299 => WebhookOutcome::Delivered { status },
            408 | 429 | 500..=599 => WebhookOutcome::Retryable {
                reason: format!("HTTP {status}"),
            },
            300..=399 => WebhookOutcome::Refused {
                reason: format!("HTTP {status} (redirects are not followed)"),
            },
            _ => WebhookOutcome::Refused {
                reason: format!("HTTP {status}"),
            },
        }
    }

    /// Its name, as recorded (`delivered`, `retryable`, `refused`, `unknown`).
    pub fn name(&self) -> &'static str {
        match self {
            WebhookOutcome::Delivered { .. } => "delivered",
            WebhookOutcome::Retryable { .. } => "retryable",
            WebhookOutcome::Refused { .. } => "refused",
            WebhookOutcome::Unknown { .. } => "unknown",
        }
    }

    /// Why it was not delivered (`None` when it was).
    pub fn reason(&self) -> Option<&str> {
        match self {
            WebhookOutcome::Delivered { .. } => None,
            WebhookOutcome::Retryable { reason }
            | WebhookOutcome::Refused { reason }
            | WebhookOutcome::Unknown { reason } => Some(reason),
        }
    }
}

/// What the outbox does with an event after its `attempts`-th attempt came to `outcome`, with
/// at most `max_attempts`: the move of the event's state (from `sending`), and the delay before
/// the next attempt when it is retried (doubling from `initial`, at most `max_delay`).
pub fn next_move(
    outcome: &WebhookOutcome,
    attempts: u32,
    max_attempts: u32,
    initial: Duration,
    max_delay: Duration,
) -> (NoticeEvent, Option<Duration>) {
    match outcome {
        WebhookOutcome::Delivered { .. } => (NoticeEvent::Accepted, None),
        WebhookOutcome::Retryable { .. } if attempts < max_attempts => (
            NoticeEvent::RetryLater,
            Some(crate::domain::delivery::backoff(
                attempts, initial, max_delay,
            )),
        ),
        WebhookOutcome::Retryable { .. }
        | WebhookOutcome::Refused { .. }
        | WebhookOutcome::Unknown { .. } => (NoticeEvent::Fail, None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::notification::NoticeState;

    #[test]
    fn the_signed_string_is_timestamp_dot_body() {
        assert_eq!(
            signed_bytes("1700000000", b"{\"a\":1}"),
            b"1700000000.{\"a\":1}"
        );
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 (key "Jefe"): ring's HMAC-SHA256 is the standard one.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            hex::encode(ring::hmac::sign(&key, b"what do ya want for nothing?").as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The same key over "what do ya want" "." "for nothing?", as Python's
        // hmac.new(b"Jefe", b"what do ya want.for nothing?", hashlib.sha256) computes it.
        let sig = signature(b"Jefe", "what do ya want", b"for nothing?");
        assert_eq!(
            sig,
            "sha256=e33f91577b90d4b3bbd73cb61803074f1965d27701b5527942dd9ea9443af37c"
        );
        assert!(verify(b"Jefe", "what do ya want", b"for nothing?", &sig));
        // Another key, timestamp, body or form: refused.
        assert!(!verify(b"Jeff", "what do ya want", b"for nothing?", &sig));
        assert!(!verify(b"Jefe", "what do ya want!", b"for nothing?", &sig));
        assert!(!verify(b"Jefe", "what do ya want", b"for nothing!", &sig));
        let bare = sig.trim_start_matches("sha256=");
        assert!(!verify(b"Jefe", "what do ya want", b"for nothing?", bare));
        assert!(!verify(
            b"Jefe",
            "what do ya want",
            b"for nothing?",
            "sha256=zz"
        ));
    }

    #[test]
    fn the_payload_names_the_change_and_nothing_else() {
        let p = WebhookPayload::new(
            "e1",
            "KS-1",
            2,
            OrderState::Submitted,
            OrderState::Approved,
            "2026-12-07T03:00:00Z",
        );
        let v = serde_json::to_value(&p).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "changed_at",
                "event_id",
                "from",
                "order_no",
                "sequence",
                "state_label",
                "to",
                "type"
            ]
        );
        assert_eq!(v["type"], EVENT_TYPE);
        assert_eq!(v["from"], "Submitted");
        assert_eq!(v["to"], "Approved");
        assert_eq!(v["state_label"], OrderState::Approved.label_zh());
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(
            WebhookOutcome::of_status(204),
            WebhookOutcome::Delivered { status: 204 }
        );
        for s in [408, 429, 500, 503] {
            assert_eq!(WebhookOutcome::of_status(s).name(), "retryable", "{s}");
        }
        for s in [301, 400, 401, 404, 422] {
            assert_eq!(WebhookOutcome::of_status(s).name(), "refused", "{s}");
        }
    }

    #[test]
    fn retries_back_off_until_the_attempts_run_out_and_unknown_is_never_retried() {
        let (i, m) = (Duration::from_secs(10), Duration::from_secs(60));
        let retry = WebhookOutcome::Retryable { reason: "x".into() };
        assert_eq!(
            next_move(&retry, 1, 3, i, m),
            (NoticeEvent::RetryLater, Some(Duration::from_secs(10)))
        );
        assert_eq!(
            next_move(&retry, 2, 3, i, m),
            (NoticeEvent::RetryLater, Some(Duration::from_secs(20)))
        );
        assert_eq!(next_move(&retry, 3, 3, i, m), (NoticeEvent::Fail, None));
        let unknown = WebhookOutcome::Unknown { reason: "t".into() };
        assert_eq!(next_move(&unknown, 1, 9, i, m), (NoticeEvent::Fail, None));
        let refused = WebhookOutcome::of_status(400);
        assert_eq!(next_move(&refused, 1, 9, i, m), (NoticeEvent::Fail, None));
        let ok = WebhookOutcome::of_status(200);
        assert_eq!(next_move(&ok, 1, 9, i, m), (NoticeEvent::Accepted, None));
        // Each move is one the notices' table allows from `sending`.
        for (event, _) in [
            next_move(&retry, 1, 3, i, m),
            next_move(&unknown, 1, 3, i, m),
            next_move(&ok, 1, 3, i, m),
        ] {
            assert!(NoticeState::Sending.apply(event).is_ok());
        }
    }
}
