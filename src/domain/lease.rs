//! Job leases: which one live process may work on a job (provisioning one order, sending one PIN
//! delivery) now.
//!
//! A lease names its holder — the station, a per-process instance id, and where that process runs
//! (host, pid, process start) — and an expiry. The holder renews it while the job runs and
//! deletes it when the job ends. Another job may take it over when its holder is known to be gone
//! (a process on this same host that no longer exists), or — when nothing can be known of the
//! holder (another host) — once it expired. A holder verified to run on this host keeps it even
//! past the expiry: its job may be in the middle of a token operation, which no database fence
//! can stop, and the operator who finds it hung is told its pid. Each job holds its lease under a
//! fresh `lease_id`, the fencing token: a write of the job commits only while the lease still
//! carries that id.
//!
//! Pure: the caller reads the clock and probes the holder's liveness; this module decides.

use time::{Duration, OffsetDateTime};

/// What a lease is for; with the subject (e.g. an order number) it names the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// Provisioning an order (subject: the order number).
    Provision,
    /// Sending a PIN delivery, from its claim to its outcome (subject: the delivery id): while
    /// it is held, no other sender takes the delivery for one in doubt.
    Delivery,
}

impl LeaseKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Provision => "provision",
            LeaseKind::Delivery => "deliver",
        }
    }

    /// The kind stored as `s`.
    pub fn parse(s: &str) -> Option<LeaseKind> {
        [LeaseKind::Provision, LeaseKind::Delivery]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The process holding (or wanting) a lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseHolder {
    /// The station (`station.id`).
    pub station_id: String,
    /// A random id of the process, fresh at each start.
    pub instance_id: String,
    /// The machine it runs on (host name and boot id), or a value no other process shares when
    /// that is unknown.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// When that process started (the kernel's start time, opaque): tells a reused pid apart.
    pub process_start: String,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.host.split(':').next().unwrap_or_default();
        write!(
            f,
            "station {} (pid {} on {host}, instance {})",
            self.station_id, self.pid, self.instance_id
        )
    }
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What for.
    pub kind: LeaseKind,
    /// Which one (the order number).
    pub subject: String,
    /// One per job: the fencing token.
    pub lease_id: String,
    /// Who holds it.
    pub holder: LeaseHolder,
    /// When it was taken.
    pub acquired_at: OffsetDateTime,
    /// Until when it holds unless renewed.
    pub expires_at: OffsetDateTime,
}

/// What is known about whether a lease's holder still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Another process on this host, seen running.
    Alive,
    /// It is known not to run any more (same host: no such process, a zombie, or another
    /// process under its pid).
    Gone,
    /// Nothing can be known (another host, a process hidden from this one, or this very process,
    /// whose other job may have ended in a panic): only the expiry tells.
    Unknown,
}

/// Why a lease held by someone else may be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TakeoverReason {
    /// Its holder, of which nothing can be known, did not renew it in time.
    Expired,
    /// Its holder is known to be gone (killed, crashed) before the expiry.
    HolderGone,
}

/// The decision on a wanted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Nobody holds it: take it.
    Take,
    /// This job holds it already: renew it.
    Keep,
    /// Someone held it and is gone: take it over (worth an audit record).
    TakeOver(TakeoverReason),
    /// A live (or possibly live) holder has it: refuse.
    Refuse,
}

/// Decides whether the job `lease_id` may hold a lease that is `current` at `now`; `liveness`
/// is what is known of the current holder (ignored when there is none).
pub fn decide(
    current: Option<&Lease>,
    lease_id: &str,
    now: OffsetDateTime,
    liveness: Liveness,
) -> LeaseDecision {
    match (current, liveness) {
        (None, _) => LeaseDecision::Take,
        (Some(l), _) if l.lease_id == lease_id => LeaseDecision::Keep,
        (Some(_), Liveness::Gone) => LeaseDecision::TakeOver(TakeoverReason::HolderGone),
        (Some(_), Liveness::Alive) => LeaseDecision::Refuse,
        (Some(l), Liveness::Unknown) if now >= l.expires_at => {
            LeaseDecision::TakeOver(TakeoverReason::Expired)
        }
        (Some(_), Liveness::Unknown) => LeaseDecision::Refuse,
    }
}

/// Shortest lease the configuration accepts, in seconds: a renewal every third of it must stay
/// well apart from the database's own latency.
pub const MIN_LEASE_SECS: u64 = 3;
/// Longest lease the configuration accepts, in seconds (a crashed holder on another host blocks
/// its order that long).
pub const MAX_LEASE_SECS: u64 = 3600;

/// How often a holder renews a lease of `ttl`: every third of it, so that two renewals can be
/// lost (a database restart) before it expires.
pub fn renew_interval(ttl: Duration) -> Duration {
    ttl / 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 05:00 UTC);

    fn lease(expires_at: OffsetDateTime) -> Lease {
        Lease {
            kind: LeaseKind::Provision,
            subject: "KS-1".into(),
            lease_id: "held".into(),
            holder: LeaseHolder {
                station_id: "station-01".into(),
                instance_id: "i-1".into(),
                host: "desk-1:boot-1".into(),
                pid: 4242,
                process_start: "777".into(),
            },
            acquired_at: expires_at - Duration::seconds(30),
            expires_at,
        }
    }

    #[test]
    fn a_free_lease_is_taken_whatever_is_known_of_nobody() {
        for l in [Liveness::Alive, Liveness::Gone, Liveness::Unknown] {
            assert_eq!(decide(None, "mine", NOW, l), LeaseDecision::Take);
        }
    }

    #[test]
    fn the_same_job_keeps_its_lease_even_past_expiry() {
        let held = lease(NOW - Duration::seconds(1));
        assert_eq!(
            decide(Some(&held), "held", NOW, Liveness::Alive),
            LeaseDecision::Keep
        );
    }

    #[test]
    fn a_live_or_unknown_holder_keeps_the_lease_until_it_expires() {
        let held = lease(NOW + Duration::seconds(1));
        for l in [Liveness::Alive, Liveness::Unknown] {
            assert_eq!(
                decide(Some(&held), "mine", NOW, l),
                LeaseDecision::Refuse,
                "{l:?}"
            );
        }
    }

    #[test]
    fn an_expired_lease_of_an_unknown_holder_is_taken_over_at_its_expiry() {
        // At the very instant of expiry the holder has lost it: renewals come every third.
        let held = lease(NOW);
        assert_eq!(
            decide(Some(&held), "mine", NOW, Liveness::Unknown),
            LeaseDecision::TakeOver(TakeoverReason::Expired)
        );
        assert_eq!(
            decide(Some(&held), "mine", NOW, Liveness::Gone),
            LeaseDecision::TakeOver(TakeoverReason::HolderGone)
        );
    }

    #[test]
    fn a_holder_seen_running_on_this_host_keeps_even_an_expired_lease() {
        let held = lease(NOW - Duration::hours(1));
        assert_eq!(
            decide(Some(&held), "mine", NOW, Liveness::Alive),
            LeaseDecision::Refuse
        );
    }

    #[test]
    fn a_gone_holder_loses_its_lease_before_expiry() {
        let held = lease(NOW + Duration::seconds(29));
        assert_eq!(
            decide(Some(&held), "mine", NOW, Liveness::Gone),
            LeaseDecision::TakeOver(TakeoverReason::HolderGone)
        );
    }

    #[test]
    fn a_kind_reads_back_as_stored() {
        for k in [LeaseKind::Provision, LeaseKind::Delivery] {
            assert_eq!(LeaseKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(LeaseKind::parse("Provision"), None);
    }

    #[test]
    fn renewal_comes_every_third_of_the_lease() {
        assert_eq!(renew_interval(Duration::seconds(30)), Duration::seconds(10));
        assert!(renew_interval(Duration::seconds(MIN_LEASE_SECS as i64)) >= Duration::seconds(1));
    }

    #[test]
    fn a_holder_reads_as_station_pid_and_host_without_boot_id() {
        let h = lease(NOW).holder;
        assert_eq!(
            h.to_string(),
            "station station-01 (pid 4242 on desk-1, instance i-1)"
        );
    }
}
