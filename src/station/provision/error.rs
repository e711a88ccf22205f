//! Why a provisioning run stopped: the run's error as the caller sees it, and the cause of a
//! failed step. A failed step leaves the order Failed (or Provisioning when even that could not
//! be recorded): a re-run resumes it.

use super::step::Step;
use crate::domain::{OrderNo, OrderState};
use crate::failpoint::InjectedFailure;
use crate::station::seals::SealsError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Why provisioning did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// No such order.
    #[error("no order {0}")]
    NotFound(OrderNo),
    /// The order is not in a state that can be provisioned.
    #[error("order {order_no} is {state}: {hint}")]
    State {
        /// The order.
        order_no: OrderNo,
        /// Its state.
        state: OrderState,
        /// What to do.
        hint: &'static str,
    },
    /// The order failed at another station, which resumes it (see
    /// [`crate::domain::takeover`]).
    #[error(
        "order {order_no} failed at station {station}, which resumes it with its key; \
         `keystation provision {order_no} --reinit --token NEW` starts it over here on a new key \
         (the old key's certificate is revoked), once a second operator approved \
         `keystation reinit request {order_no}`"
    )]
    ClaimedElsewhere {
        /// The order.
        order_no: OrderNo,
        /// The other station.
        station: String,
    },
    /// Another process that may still run holds the order's lease (see [`crate::station::lease`]).
    #[error(
        "order {order_no} is being provisioned by {holder}; run this again once that process has \
         ended (its lease runs to {expires_at} and is renewed while it works)"
    )]
    Held {
        /// The order.
        order_no: OrderNo,
        /// Who holds it.
        holder: String,
        /// Until when, unless renewed.
        expires_at: String,
    },
    /// The chosen token cannot be used for this order; nothing on it was changed.
    #[error("token {token} refused for order {order_no}: {reason}")]
    TokenRefused {
        /// The token.
        token: String,
        /// The order.
        order_no: OrderNo,
        /// Why.
        reason: String,
    },
    /// `--reinit` without a reinit request a second operator approved.
    #[error(
        "order {order_no}: --reinit wipes its token and revokes its certificate, and needs a \
         second operator's approval: `keystation reinit request {order_no}`, then another \
         operator's `keystation reinit approve ID`{}",
        pending.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
    )]
    ReinitNotApproved {
        /// The order.
        order_no: OrderNo,
        /// The open request that is not approved yet, if any.
        pending: Option<String>,
    },
    /// No blank token is present.
    #[error("no blank token present for order {0}: insert a blank USB key (or give --token)")]
    NoBlankToken(OrderNo),
    /// A step failed; the order is Failed and a re-run resumes it.
    #[error("order {order_no}, step {step}: {source}")]
    Step {
        /// The order; `(the next approved order)` when the step failed before one was picked
        /// (hence text, not an [`OrderNo`]).
        order_no: String,
        /// The step.
        step: Step,
        /// The cause.
        #[source]
        source: StepError,
    },
    /// The database failed outside a step.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cause of a failed step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A token operation failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The CA refused or failed.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Seal data could not be built.
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    /// An injected failure (tests).
    #[error(transparent)]
    Injected(#[from] InjectedFailure),
    /// The OS random generator failed.
    #[error("OS random generator: {0}")]
    Random(String),
    /// A dual certificate's encryption key pair could not be made or enveloped.
    #[error(transparent)]
    Envelope(#[from] crate::ca::sm2_envelope::EnvelopeError),
    /// The bound key's SO PIN is one of two: an unlock code rotating it is not confirmed used
    /// (see [`crate::station::service_desk::so_pin`]); nothing logged in as SO.
    #[error(
        "key {token_serial}: unlock request {request_id} sent a code that rotates its SO PIN and \
         its use is not confirmed: `keystation unlock confirm {request_id} --operator NAME` once \
         the customer's tool reported success, then run this again"
    )]
    UnlockUnconfirmed {
        /// The key (or the order, before a serial is bound).
        token_serial: String,
        /// The unlock request whose code is pending.
        request_id: String,
    },
    /// Inconsistent records.
    #[error("{0}")]
    Inconsistent(String),
}

/// A seal failure is a step failure of the same kind: a token, CA, database or seal error keeps
/// its kind (a pulled token stays recognisable, see [`ProvisionError::token_removed`]); a missing
/// picture or maker certificate is inconsistent records.
impl From<SealsError> for StepError {
    fn from(e: SealsError) -> Self {
        use SealsError as E;
        match e {
            E::Token(t) => StepError::Token(t),
            E::Ca(c) => StepError::Ca(c),
            E::Store(s) => StepError::Store(s),
            E::Seal(s) => StepError::Seal(s),
            other @ (E::MissingPicture { .. } | E::MakerCertificate(_)) => {
                StepError::Inconsistent(other.to_string())
            }
        }
    }
}

impl ProvisionError {
    /// True when the token was pulled out (the order waits for it, resumable).
    pub fn token_removed(&self) -> bool {
        matches!(self, ProvisionError::Step { source: StepError::Token(t), .. } if t.is_removed())
    }

    /// For a caller that listed the order as provisionable (a batch): true when another process
    /// or station has it (holds it, or moved it on since it was listed). Nothing was done, and
    /// nothing of this caller's failed.
    pub fn taken_elsewhere(&self) -> bool {
        matches!(
            self,
            ProvisionError::Held { .. }
                | ProvisionError::ClaimedElsewhere { .. }
                | ProvisionError::State { .. }
                // Its lease expired and another station took the order over mid-run.
                | ProvisionError::Step {
                    source: StepError::Store(StoreError::LeaseLost { .. }),
                    ..
                }
        )
    }

    /// The order the error is about, when it names one.
    pub fn order_no(&self) -> Option<&str> {
        match self {
            ProvisionError::NotFound(no) | ProvisionError::NoBlankToken(no) => Some(no.as_str()),
            ProvisionError::State { order_no, .. }
            | ProvisionError::ClaimedElsewhere { order_no, .. }
            | ProvisionError::Held { order_no, .. }
            | ProvisionError::TokenRefused { order_no, .. }
            | ProvisionError::ReinitNotApproved { order_no, .. } => Some(order_no.as_str()),
            ProvisionError::Step { order_no, .. } => Some(order_no.as_str()),
            ProvisionError::Store(_) => None,
        }
    }

    /// The claim transaction found the lease held, or the order changed since it was read.
    pub(super) fn at_claim(order_no: &OrderNo, e: StoreError) -> ProvisionError {
        match e {
            StoreError::LeaseHeld {
                holder, expires_at, ..
            } => ProvisionError::Held {
                order_no: order_no.clone(),
                holder,
                expires_at,
            },
            StoreError::StateConflict { actual, .. } => ProvisionError::State {
                order_no: order_no.clone(),
                state: actual,
                hint: not_provisionable(actual)
                    .unwrap_or("another process worked on it meanwhile; run this again"),
            },
            other => ProvisionError::Store(other),
        }
    }
}

/// Why an order in `state` cannot be provisioned; `None` when it can.
pub(super) fn not_provisionable(state: OrderState) -> Option<&'static str> {
    match state {
        OrderState::Approved | OrderState::Failed | OrderState::Provisioning => None,
        OrderState::Submitted => Some("it must be approved first"),
        OrderState::Rejected => Some("it was rejected"),
        OrderState::Provisioned | OrderState::Shipped | OrderState::PinDelivered => {
            Some("it is already provisioned")
        }
        OrderState::Revoked => Some("its certificate was revoked"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn no(s: &str) -> OrderNo {
        OrderNo::parse(s).unwrap()
    }

    #[test]
    fn only_approved_failed_or_interrupted_orders_are_provisioned() {
        for state in OrderState::ALL {
            let can = not_provisionable(state).is_none();
            let expected = matches!(
                state,
                OrderState::Approved | OrderState::Failed | OrderState::Provisioning
            );
            assert_eq!(can, expected, "{state}");
        }
    }

    #[test]
    fn the_claim_names_who_holds_the_order_or_what_moved_it() {
        let held = ProvisionError::at_claim(
            &no("KS1"),
            StoreError::LeaseHeld {
                subject: "KS1".into(),
                holder: "station-02 pid 7".into(),
                expires_at: "2026-01-01T00:00:00Z".into(),
            },
        );
        assert!(
            matches!(&held, ProvisionError::Held { holder, .. } if holder == "station-02 pid 7")
        );
        assert!(held.taken_elsewhere());
        let moved = ProvisionError::at_claim(
            &no("KS1"),
            StoreError::StateConflict {
                order_no: no("KS1"),
                expected: OrderState::Approved,
                actual: OrderState::Provisioned,
            },
        );
        assert!(
            matches!(&moved, ProvisionError::State { state: OrderState::Provisioned, hint, .. }
                if *hint == "it is already provisioned"),
            "{moved:?}"
        );
        assert!(moved.taken_elsewhere());
        // Another failure is the caller's own: not "taken elsewhere".
        let other = ProvisionError::at_claim(&no("KS1"), StoreError::OrderNotFound(no("KS1")));
        assert!(matches!(other, ProvisionError::Store(_)));
        assert!(!other.taken_elsewhere());
    }

    #[test]
    fn a_seal_failure_keeps_its_kind() {
        let missing = StepError::from(SealsError::MissingPicture {
            order_no: no("KS1"),
            kind: "company",
        });
        assert!(
            matches!(&missing, StepError::Inconsistent(m) if m == "order KS1 has no company seal picture")
        );
        let store = StepError::from(SealsError::Store(StoreError::OrderNotFound(no("KS1"))));
        assert!(matches!(
            store,
            StepError::Store(StoreError::OrderNotFound(_))
        ));
    }
}
