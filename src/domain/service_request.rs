//! Requests an operator makes at the service desk after a key was delivered (PIN reset, unlock,
//! retire) and the dangerous actions that need a second operator (revoking an order or one
//! certificate), with the four-eyes rule, pure.
//!
//! ```text
//!  requested ──approve (another operator)──▶ approved ──start──▶ executing ──complete──▶ done
//!      │  │                                     │   ▲               │
//!      │  └──reject──▶ rejected                 │   └────start──── failed ◀──fail──┘
//!      └──cancel──▶ cancelled ◀────cancel───────┘         │
//!                                    ▲────────cancel──────┘
//! ```
//!
//! [`RequestState::apply`] is the one table of legal moves. The four-eyes rule lives in it too:
//! [`RequestEvent::Approve`] and [`RequestEvent::Reject`] carry the deciding operator, and an
//! operator never decides their own request ([`RequestError::SameOperator`]). A `failed` request
//! is resumable (`start` again: its execution journal says what was done); `cancel` from
//! `failed` gives it up. `done`, `rejected` and `cancelled` are final.
//!
//! Operators are typed values ([`OperatorId`]) so that registered operator accounts (issue 17)
//! replace the string inside without changing the rules.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who acts at the service desk. Today the name an operator gives; later a registered account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct OperatorId(String);

/// The most characters an operator name may have.
pub const OPERATOR_MAX_CHARS: usize = 64;

/// An operator name without the form of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator {0:?} is not valid: a name of 1-64 characters without control characters")]
pub struct InvalidOperator(pub String);

impl OperatorId {
    /// Parses an operator name (trimmed): 1-64 characters, no control characters.
    pub fn parse(s: &str) -> Result<OperatorId, InvalidOperator> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > OPERATOR_MAX_CHARS || t.chars().any(char::is_control)
        {
            return Err(InvalidOperator(s.to_string()));
        }
        Ok(OperatorId(t.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OperatorId {
    type Error = InvalidOperator;
    fn try_from(s: String) -> Result<Self, InvalidOperator> {
        OperatorId::parse(&s)
    }
}

impl From<OperatorId> for String {
    fn from(o: OperatorId) -> String {
        o.0
    }
}

/// What the desk is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A new user PIN on a key the company brought to the desk (the SO PIN re-derived, `C_InitPIN`).
    PinReset,
    /// A returned key (退锁) wiped with `C_InitToken` under its SO PIN, its binding closed, its live
    /// certificates revoked; the key is then a blank key for another order.
    Retire,
    /// An unlock authorisation code e-mailed for a key that stays with the customer (its
    /// current and next SO PIN, encrypted to the customer's tool).
    Unlock,
    /// An order withdrawn (`order revoke`): its live certificates revoked, its pending PIN
    /// delivery cancelled, once a second operator approved.
    Revoke,
    /// One certificate revoked (`cert revoke SERIAL`), its order keeping its state, once a
    /// second operator approved.
    RevokeCertificate,
    /// The replacement order (补办) of an order whose key was reported lost or broken, or
    /// retired (`order reissue`), made once a second operator approved.
    Reissue,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 6] = [
        RequestKind::PinReset,
        RequestKind::Retire,
        RequestKind::Unlock,
        RequestKind::Revoke,
        RequestKind::RevokeCertificate,
        RequestKind::Reissue,
    ];

    /// Stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::PinReset => "pin_reset",
            RequestKind::Retire => "retire",
            RequestKind::Unlock => "unlock",
            RequestKind::Revoke => "revoke",
            RequestKind::RevokeCertificate => "revoke_certificate",
            RequestKind::Reissue => "reissue",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A revocation (of an order or of one certificate).
    pub fn is_revocation(self) -> bool {
        matches!(self, RequestKind::Revoke | RequestKind::RevokeCertificate)
    }

    /// Carried out at the station as soon as it is approved, by the approver: it needs no key
    /// at the desk (a revocation, a reissue order), unlike a PIN reset, an unlock or a retire,
    /// which a `run` carries out where the key is.
    pub fn runs_at_approval(self) -> bool {
        self.is_revocation() || self == RequestKind::Reissue
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Asked for; waiting for a second operator's decision.
    Requested,
    /// Approved by a second operator; may be executed.
    Approved,
    /// Refused by a second operator (final).
    Rejected,
    /// Withdrawn before it was done (final).
    Cancelled,
    /// Being carried out; its journal says how far (a crash leaves it here, and a run resumes).
    Executing,
    /// Carried out (final).
    Done,
    /// Stopped on an error; a run resumes it from its journal, or it is cancelled.
    Failed,
}

impl RequestState {
    /// Every state.
    pub const ALL: [RequestState; 7] = [
        RequestState::Requested,
        RequestState::Approved,
        RequestState::Rejected,
        RequestState::Cancelled,
        RequestState::Executing,
        RequestState::Done,
        RequestState::Failed,
    ];

    /// Stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Requested => "requested",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Cancelled => "cancelled",
            RequestState::Executing => "executing",
            RequestState::Done => "done",
            RequestState::Failed => "failed",
        }
    }

    /// Parses a stored or typed name (case-insensitive).
    pub fn parse(s: &str) -> Option<RequestState> {
        RequestState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// No event leads anywhere from here.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RequestState::Done | RequestState::Rejected | RequestState::Cancelled
        )
    }

    /// Still to be decided or carried out (an order has at most one open request of a kind).
    pub fn is_open(self) -> bool {
        !self.is_final()
    }

    /// The one table of legal moves, with the four-eyes rule: `requested_by` is who asked.
    pub fn apply(
        self,
        requested_by: &OperatorId,
        event: &RequestEvent,
    ) -> Result<RequestState, RequestError> {
        use RequestEvent as E;
        use RequestState as S;
        if let E::Approve { by } | E::Reject { by } = event {
            if by == requested_by {
                return Err(RequestError::SameOperator {
                    operator: by.clone(),
                });
            }
        }
        let to = match (self, event) {
            (S::Requested, E::Approve { .. }) => S::Approved,
            (S::Requested, E::Reject { .. }) => S::Rejected,
            (S::Requested | S::Approved | S::Failed, E::Cancel { .. }) => S::Cancelled,
            (S::Approved | S::Failed, E::Start) => S::Executing,
            (S::Executing, E::Complete) => S::Done,
            (S::Executing, E::Fail) => S::Failed,
            _ => {
                return Err(RequestError::Illegal {
                    from: self,
                    event: event.name(),
                });
            }
        };
        Ok(to)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestEvent {
    /// A second operator approves it.
    Approve {
        /// Who approves (never the requester).
        by: OperatorId,
    },
    /// A second operator refuses it.
    Reject {
        /// Who refuses (never the requester).
        by: OperatorId,
    },
    /// Someone withdraws it (the requester may: withdrawing needs no second pair of eyes).
    Cancel {
        /// Who withdraws it.
        by: OperatorId,
    },
    /// Execution begins (or resumes after a failure).
    Start,
    /// Execution finished.
    Complete,
    /// Execution stopped on an error.
    Fail,
}

impl RequestEvent {
    /// Stable name, for messages and audit records.
    pub fn name(&self) -> &'static str {
        match self {
            RequestEvent::Approve { .. } => "approve",
            RequestEvent::Reject { .. } => "reject",
            RequestEvent::Cancel { .. } => "cancel",
            RequestEvent::Start => "start",
            RequestEvent::Complete => "complete",
            RequestEvent::Fail => "fail",
        }
    }
}

/// A move the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The requester tried to decide their own request.
    #[error(
        "operator {operator} made this request and cannot also decide it: a second, different \
         operator must approve or reject it"
    )]
    SameOperator {
        /// The operator.
        operator: OperatorId,
    },
    /// The state does not allow the event.
    #[error("a {from} request cannot {event}")]
    Illegal {
        /// The state the request was in.
        from: RequestState,
        /// The refused event's name.
        event: &'static str,
    },
}

/// The steps of a PIN reset, in the order they run; each is journaled before and after.
///
/// `seal_pin` draws the new PIN and keeps it only sealed (with the request), so a crash after it
/// re-sets the SAME PIN; `init_pin` logs in as SO with the re-derived SO PIN and sets it
/// (`C_InitPIN`, which may be repeated with the same PIN); `queue_delivery` moves the sealed PIN
/// to the order, queues its delivery and completes the request in one transaction, so it is
/// queued exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinResetStep {
    /// Draw a new PIN, seal it in the vault, keep the sealed blob with the request.
    SealPin,
    /// Set it on the token (SO login with the derived SO PIN, `C_InitPIN`).
    InitPin,
    /// Hand the sealed PIN to the outbox and complete the request.
    QueueDelivery,
}

impl PinResetStep {
    /// Every step, in order.
    pub const ALL: [PinResetStep; 3] = [
        PinResetStep::SealPin,
        PinResetStep::InitPin,
        PinResetStep::QueueDelivery,
    ];

    /// Stable name, as journaled.
    pub fn as_str(self) -> &'static str {
        match self {
            PinResetStep::SealPin => "seal_pin",
            PinResetStep::InitPin => "init_pin",
            PinResetStep::QueueDelivery => "queue_delivery",
        }
    }

    /// Parses a journaled name.
    pub fn parse(s: &str) -> Option<PinResetStep> {
        PinResetStep::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The first step not yet done, given the steps the journal records as done; `None` when
    /// every step is done.
    pub fn next(done: &[PinResetStep]) -> Option<PinResetStep> {
        PinResetStep::ALL.into_iter().find(|s| !done.contains(s))
    }
}

impl fmt::Display for PinResetStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of a request's execution journal (`service_request_steps`): its stable name, and
/// where it stands among its kind's steps.
pub trait JournaledStep: Copy + Sized + 'static {
    /// Every step of the kind, in order.
    const STEPS: &'static [Self];

    /// The first step (a failed read of the journal before any step is charged to it).
    const FIRST: Self;

    /// Stable name, as journaled.
    fn name(self) -> &'static str;
}

impl JournaledStep for PinResetStep {
    const STEPS: &'static [Self] = &PinResetStep::ALL;
    const FIRST: Self = PinResetStep::ALL[0];
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// The steps of retiring a returned key (退锁), in the order they run; each journaled before and
/// after.
///
/// `revoke` revokes the order's live certificates (cessationOfOperation) in one transaction, or
/// does nothing when there are none (the order already revoked); `wipe` re-derives the SO PIN and
/// runs `C_InitToken` with the retired label — repeatable, since the SO PIN does not change;
/// `close` closes the binding, records the key as retired (reusable as a blank key) and
/// completes the request in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetireStep {
    /// Revoke the order's live certificates (cessationOfOperation), if any.
    Revoke,
    /// `C_InitToken` under the key's SO PIN: every object gone, the retired label.
    Wipe,
    /// Close the binding, record the retired key, complete the request.
    Close,
}

impl RetireStep {
    /// Every step, in order.
    pub const ALL: [RetireStep; 3] = [RetireStep::Revoke, RetireStep::Wipe, RetireStep::Close];

    /// Stable name, as journaled.
    pub fn as_str(self) -> &'static str {
        match self {
            RetireStep::Revoke => "revoke",
            RetireStep::Wipe => "wipe",
            RetireStep::Close => "close",
        }
    }

    /// Parses a journaled name.
    pub fn parse(s: &str) -> Option<RetireStep> {
        RetireStep::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The first step not yet done, given the steps the journal records as done; `None` when
    /// every step is done.
    pub fn next(done: &[RetireStep]) -> Option<RetireStep> {
        RetireStep::ALL.into_iter().find(|s| !done.contains(s))
    }
}

impl JournaledStep for RetireStep {
    const STEPS: &'static [Self] = &RetireStep::ALL;
    const FIRST: Self = RetireStep::ALL[0];
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for RetireStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The steps of an unlock run, in order; each is journaled before and after.
///
/// `reserve_generation` records the key's next SO PIN generation as pending (kept until the
/// customer's tool reported the rotation, `unlock confirm`); `send_code` claims the e-mail
/// before the server is contacted, sends the authorisation code and completes the request in
/// the transaction that records it accepted. A send whose outcome is unknown is never repeated
/// without `--resend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlockStep {
    /// The next SO PIN generation recorded as pending.
    ReserveGeneration,
    /// The authorisation code e-mailed to the handler.
    SendCode,
}

impl UnlockStep {
    /// Every step, in order.
    pub const ALL: [UnlockStep; 2] = [UnlockStep::ReserveGeneration, UnlockStep::SendCode];

    /// Stable name, as journaled.
    pub fn as_str(self) -> &'static str {
        match self {
            UnlockStep::ReserveGeneration => "reserve_generation",
            UnlockStep::SendCode => "send_code",
        }
    }

    /// Parses a journaled name.
    pub fn parse(s: &str) -> Option<UnlockStep> {
        UnlockStep::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The first step not yet done; `None` when every step is done.
    pub fn next(done: &[UnlockStep]) -> Option<UnlockStep> {
        UnlockStep::ALL.into_iter().find(|s| !done.contains(s))
    }
}

impl fmt::Display for UnlockStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JournaledStep for UnlockStep {
    const STEPS: &'static [Self] = &UnlockStep::ALL;
    const FIRST: Self = UnlockStep::ALL[0];
    fn name(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests;
