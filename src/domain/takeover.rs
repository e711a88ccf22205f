//! Taking over an order that another station began provisioning and abandoned (it crashed, the
//! desk lost power): what the new station does follows from where the abandoned job's journal
//! says it stopped and from where the order's key physically is.
//!
//! The lease decides *whether* the order may be taken (its holder is gone, or its lease expired:
//! [`super::lease`]); this module decides *how*:
//!
//! - the bound key is **within reach** of the new station (an operator carried it over, or the
//!   stations share one key store): the job goes on there, on that key, exactly as its own
//!   station would have gone on — continued after `write_certificate`, redone from `init_token`
//!   (the key re-initialised) before it;
//! - the key is **out of reach** (it stayed at the abandoned desk) and the journal says nothing
//!   was written to it yet: the order is bound anew to a blank key here, with nothing to revoke;
//! - the key is out of reach and the job had begun writing to it: the key is treated as **lost**
//!   — every certificate issued for it is revoked, its binding released, and the order is
//!   provisioned on a new key here, as `provision --reinit --token NEW` does for a broken key.
//!
//! Only an interrupted job (`Provisioning`) is taken over on the station's own initiative. A
//! `Failed` order is its station's to resume (its operator has the key at hand); another station
//! takes it only when told to start over (`--reinit`).
//!
//! Pure: the caller reads the journal and looks for the key.

use super::OrderState;

/// Where the abandoned job's journal (its latest attempt) says it stopped, as far as the key is
/// concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalPoint {
    /// `init_token` was never started: nothing was written to any key.
    NothingOnKey,
    /// `init_token` was started: the key may be initialised, hold a key pair, and a certificate
    /// may have been issued for it, not yet written to it.
    KeyTouched,
    /// `write_certificate` is done: the order's certificate is on the key.
    CertificateOnKey,
}

/// How an abandoned order is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Takeover {
    /// The order is bound to this station: nothing to take over.
    Own,
    /// Go on on the bound key, which this station reaches; the binding moves to this station.
    ResumeHere,
    /// Bind the order anew to a blank key here; nothing was written to the old one.
    Rebind,
    /// The old key is lost: its certificates are revoked, its binding released, and the order is
    /// provisioned on a new key here.
    KeyLost,
    /// Not taken: the order failed at its station, which resumes it (or another station starts
    /// it over with `--reinit`).
    Refuse,
}

/// Decides how this station (`me`) takes over an order bound to `bound_to`, in `state`, whose
/// journal stopped at `point`; `key_in_reach`: the bound key is present here; `start_over`: the
/// operator asked for the order to be started over (`--reinit`).
pub fn decide(
    bound_to: &str,
    me: &str,
    state: OrderState,
    point: JournalPoint,
    key_in_reach: bool,
    start_over: bool,
) -> Takeover {
    if bound_to == me {
        return Takeover::Own;
    }
    let taken = match state {
        OrderState::Provisioning => true,
        OrderState::Failed => start_over,
        _ => false,
    };
    if !taken {
        return Takeover::Refuse;
    }
    match (key_in_reach, point) {
        (true, _) => Takeover::ResumeHere,
        (false, JournalPoint::NothingOnKey) => Takeover::Rebind,
        (false, JournalPoint::KeyTouched | JournalPoint::CertificateOnKey) => Takeover::KeyLost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS: [JournalPoint; 3] = [
        JournalPoint::NothingOnKey,
        JournalPoint::KeyTouched,
        JournalPoint::CertificateOnKey,
    ];

    #[test]
    fn an_order_of_this_station_is_never_taken_over() {
        for state in OrderState::ALL {
            for point in POINTS {
                for reach in [true, false] {
                    assert_eq!(
                        decide("s1", "s1", state, point, reach, false),
                        Takeover::Own
                    );
                }
            }
        }
    }

    #[test]
    fn a_key_within_reach_is_resumed_wherever_its_journal_stopped() {
        for point in POINTS {
            assert_eq!(
                decide("s1", "s2", OrderState::Provisioning, point, true, false),
                Takeover::ResumeHere,
                "{point:?}"
            );
        }
    }

    #[test]
    fn a_key_out_of_reach_is_lost_once_the_job_wrote_to_it() {
        let out_of_reach =
            |point| decide("s1", "s2", OrderState::Provisioning, point, false, false);
        assert_eq!(out_of_reach(JournalPoint::NothingOnKey), Takeover::Rebind);
        assert_eq!(out_of_reach(JournalPoint::KeyTouched), Takeover::KeyLost);
        assert_eq!(
            out_of_reach(JournalPoint::CertificateOnKey),
            Takeover::KeyLost
        );
    }

    #[test]
    fn a_failed_order_stays_with_its_station_unless_started_over() {
        for point in POINTS {
            for reach in [true, false] {
                assert_eq!(
                    decide("s1", "s2", OrderState::Failed, point, reach, false),
                    Takeover::Refuse
                );
                assert_ne!(
                    decide("s1", "s2", OrderState::Failed, point, reach, true),
                    Takeover::Refuse
                );
            }
        }
    }

    #[test]
    fn only_interrupted_or_failed_orders_are_taken() {
        for state in OrderState::ALL {
            let taken =
                decide("s1", "s2", state, JournalPoint::KeyTouched, true, true) != Takeover::Refuse;
            assert_eq!(
                taken,
                matches!(state, OrderState::Provisioning | OrderState::Failed),
                "{state}"
            );
        }
    }
}
