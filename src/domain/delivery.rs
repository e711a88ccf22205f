//! The life of one PIN delivery (the outbox row), pure: states, legal moves, retry timing,
//! destination masking.
//!
//! ```text
//!  queued ──claim──▶ sending ──accepted / file written──▶ sent ──confirmed──▶ confirmed
//!    ▲  ▲             │   │   (spool, webhook, and Aliyun by default confirm on acceptance:
//!    │  │             │   │    sending ──▶ confirmed in one step)
//!    │  └─retryable───┘   └──▶ needs_operator: permanent provider error, retries exhausted,
//!    │    (backoff; or an       outcome unknown and unresolvable, bank file missing after a
//!    │    interrupted send      crash (sent ──▶ needs_operator: carrier reports undelivered)
//!    │    that provably
//!    │    sent nothing)
//!    └── operator retry ◀── failed | needs_operator
//!
//!  queued ──▶ failed      the message cannot be prepared (no channel contacted)
//!  sending | sent | needs_operator ──▶ failed      the bank rejected the transfer (RJCT)
//!  needs_operator ──▶ confirmed                    the bank's report settles a transfer in doubt
//!  queued ──▶ cancelled   the order was revoked (the worker re-reads it before every send)
//!  queued | failed | needs_operator ──▶ cancelled  operator cancel, or superseded by a new transfer
//! ```
//!
//! `sending` is written BEFORE a channel is contacted. A delivery found in `sending` when no send
//! is in flight (a crash, or a provider timeout) is "in doubt" and is never sent again blindly:
//! the worker asks the channel (SMS provider query, bank file present in the outbound directory)
//! and only an authoritative "never got it" sends it back to `queued`.
//!
//! `confirmed` and `cancelled` are final. After `confirmed` the sealed PIN is destroyed, so no
//! path can ever send that PIN again.

use std::fmt;
use std::time::Duration;

use super::order::DeliveryChannel;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for the worker (possibly until `next_attempt_at`, after a retryable failure).
    Queued,
    /// The worker claimed it and may have contacted the channel: in doubt until resolved.
    Sending,
    /// The channel has the message (provider accepted it, or the bank file was emitted);
    /// waiting for the confirmation (delivery report, pain.002, camt.054).
    Sent,
    /// Delivery confirmed; the order is PinDelivered and the sealed PIN is destroyed (final).
    Confirmed,
    /// Definitely not delivered: the channel said so (bank RJCT), or the message could not
    /// even be prepared (no channel was contacted).
    Failed,
    /// Something only a person can decide: permanent provider error, retries exhausted, an
    /// outcome nobody can establish automatically.
    NeedsOperator,
    /// Abandoned by an operator, superseded, or its order was revoked (final).
    Cancelled,
}

/// Something that happens to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryEvent {
    /// The worker takes it (recorded before the channel is contacted).
    Claim,
    /// The channel has the message.
    Accepted,
    /// The delivery is confirmed.
    Confirm,
    /// A failure after which a later attempt may succeed, and nothing was sent.
    RetryLater,
    /// Nothing more happens without an operator.
    Escalate,
    /// The channel reported a definitive failure.
    Reject,
    /// The delivery is abandoned.
    Cancel,
    /// An operator sends it back to the queue.
    OperatorRetry,
}

/// An event the delivery's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("delivery in state {from} cannot {event:?}")]
pub struct IllegalDeliveryTransition {
    /// The state the delivery was in.
    pub from: DeliveryState,
    /// The refused event.
    pub event: DeliveryEvent,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Queued,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Confirmed,
        DeliveryState::Failed,
        DeliveryState::NeedsOperator,
        DeliveryState::Cancelled,
    ];

    /// The one table of legal moves (see the module diagram).
    pub fn apply(self, event: DeliveryEvent) -> Result<DeliveryState, IllegalDeliveryTransition> {
        use DeliveryEvent as E;
        use DeliveryState as S;
        let to = match (self, event) {
            (S::Queued, E::Claim) => S::Sending,
            (S::Sending, E::Accepted) => S::Sent,
            // Accepted and confirmed in one step (channels that confirm on acceptance); a bank
            // confirmation for a transfer whose emission is still in doubt, or that an operator
            // is looking at, settles it too: the bank is authoritative.
            (S::Sending | S::Sent | S::NeedsOperator, E::Confirm) => S::Confirmed,
            (S::Sending, E::RetryLater) => S::Queued,
            (S::Sending | S::Sent, E::Escalate) => S::NeedsOperator,
            // Queued: a delivery that cannot even be prepared (no sealed PIN, a message that
            // cannot be rendered) fails without any channel being contacted.
            (S::Queued | S::Sending | S::Sent | S::NeedsOperator, E::Reject) => S::Failed,
            (S::Queued | S::Failed | S::NeedsOperator, E::Cancel) => S::Cancelled,
            (S::Failed | S::NeedsOperator, E::OperatorRetry) => S::Queued,
            _ => return Err(IllegalDeliveryTransition { from: self, event }),
        };
        Ok(to)
    }

    /// Stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Confirmed => "confirmed",
            DeliveryState::Failed => "failed",
            DeliveryState::NeedsOperator => "needs_operator",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or typed name (case-insensitive, `-` accepted for `_`).
    pub fn parse(s: &str) -> Option<DeliveryState> {
        let s = s.trim().replace('-', "_");
        DeliveryState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(&s))
    }

    /// No event leads anywhere from here.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Confirmed | DeliveryState::Cancelled)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored name of a channel: `sms` or `bank`.
pub fn channel_name(channel: DeliveryChannel) -> &'static str {
    match channel {
        DeliveryChannel::Sms => "sms",
        DeliveryChannel::BankTransfer => "bank",
    }
}

/// Parses a stored channel name.
pub fn parse_channel(s: &str) -> Option<DeliveryChannel> {
    match s {
        "sms" => Some(DeliveryChannel::Sms),
        "bank" => Some(DeliveryChannel::BankTransfer),
        _ => None,
    }
}

/// A mobile number as it may be shown and stored: `138****8000` (first 3, last 4).
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len().max(4));
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// An e-mail address as it may be shown and stored: `l***@example.com` (first character of
/// the local part, the domain).
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_string(),
    }
}

/// An account number as it may be shown and stored: `****1234` (last 4).
pub fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    if chars.len() < 8 {
        return "****".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}

/// Delay before the next attempt after `attempts` failed ones (1 = the first failed):
/// `initial * 2^(attempts-1)`, capped at `max`.
pub fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    initial.checked_mul(1u32 << exp).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryEvent as E;
    use DeliveryState as S;
    use proptest::prelude::*;

    const EVENTS: [DeliveryEvent; 8] = [
        E::Claim,
        E::Accepted,
        E::Confirm,
        E::RetryLater,
        E::Escalate,
        E::Reject,
        E::Cancel,
        E::OperatorRetry,
    ];

    #[test]
    fn happy_paths() {
        let s = S::Queued.apply(E::Claim).and_then(|s| s.apply(E::Confirm));
        assert_eq!(s, Ok(S::Confirmed));
        let s = S::Queued
            .apply(E::Claim)
            .and_then(|s| s.apply(E::Accepted))
            .and_then(|s| s.apply(E::Confirm));
        assert_eq!(s, Ok(S::Confirmed));
    }

    #[test]
    fn only_queued_is_claimed_so_nothing_in_doubt_is_sent_again() {
        for s in S::ALL {
            assert_eq!(s.apply(E::Claim).is_ok(), s == S::Queued, "{s}");
        }
        // In doubt or sent: back to the queue only through an operator (or an authoritative
        // "never got it", which is RetryLater from Sending).
        assert!(S::Sent.apply(E::RetryLater).is_err());
        assert!(S::Sent.apply(E::OperatorRetry).is_err());
        assert!(S::Sending.apply(E::OperatorRetry).is_err());
    }

    #[test]
    fn retry_and_cancel_rules() {
        assert_eq!(S::Failed.apply(E::OperatorRetry), Ok(S::Queued));
        assert_eq!(S::NeedsOperator.apply(E::OperatorRetry), Ok(S::Queued));
        assert!(S::Confirmed.apply(E::OperatorRetry).is_err());
        assert!(S::Sent.apply(E::Cancel).is_err());
        assert_eq!(S::Queued.apply(E::Cancel), Ok(S::Cancelled));
        assert_eq!(S::Sent.apply(E::Reject), Ok(S::Failed));
        // Unpreparable: failed, never "needs_operator", which would let a bank report confirm
        // a transfer that was never emitted.
        assert_eq!(S::Queued.apply(E::Reject), Ok(S::Failed));
        assert!(S::Queued.apply(E::Escalate).is_err());
        assert!(S::Failed.apply(E::Confirm).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("needs-operator"), Some(S::NeedsOperator));
        assert_eq!(S::parse("nope"), None);
        for c in [DeliveryChannel::Sms, DeliveryChannel::BankTransfer] {
            assert_eq!(parse_channel(channel_name(c)), Some(c));
        }
    }

    #[test]
    fn masking() {
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_account("0200001009012345671"), "****5671");
        assert_eq!(mask_account("123"), "****");
        assert_eq!(mask_phone("123"), "****");
        assert_eq!(mask_email("li.si@example.com"), "l***@example.com");
        assert_eq!(mask_email("nobody"), "***");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let i = Duration::from_secs(30);
        let m = Duration::from_secs(600);
        assert_eq!(backoff(1, i, m), Duration::from_secs(30));
        assert_eq!(backoff(2, i, m), Duration::from_secs(60));
        assert_eq!(backoff(3, i, m), Duration::from_secs(120));
        assert_eq!(backoff(6, i, m), m);
        assert_eq!(backoff(500, i, m), m);
        assert_eq!(backoff(0, i, m), i);
    }

    proptest! {
        /// Final states accept nothing, and confirmed is only reached through a claim first.
        #[test]
        fn final_states_are_final(
            path in proptest::collection::vec(proptest::sample::select(EVENTS.to_vec()), 0..40)
        ) {
            let mut s = S::Queued;
            let mut claimed = false;
            for e in path {
                if let Ok(next) = s.apply(e) {
                    prop_assert!(!s.is_final(), "{} accepted {:?}", s, e);
                    if next == S::Sending { claimed = true; }
                    if next == S::Confirmed { prop_assert!(claimed); }
                    s = next;
                }
            }
        }
    }
}
