//! This process as a lease holder, whether another holder still runs, and keeping a job's lease
//! alive while the job works (rules: [`crate::domain::lease`]). Every renewal also records the
//! station's heartbeat (`keystation fleet status`).
//!
//! A holder is named by the station id, a random instance id drawn once per process, and where
//! the process runs: the host (host name, boot id and pid namespace, so that a container or a
//! reboot is another "host") with the pid and the kernel's start time of the process. A holder on
//! this same host is probed through `/proc`: no such process, a zombie, or another process under
//! its pid (a different start time) means it is gone, and its lease is taken over at once — a
//! SIGKILLed `provision` blocks nothing; a process seen running keeps its lease. A holder
//! elsewhere (or hidden from this process, or this process itself) is judged by its lease's
//! expiry alone.
//!
//! While a job runs, a background task renews its lease every third of `station.lease_secs`; a
//! renewal that finds the lease gone marks it lost, and the job stops at its next step. Every
//! commit of the job also renews the lease in the same transaction, and fails when the lease is
//! no longer the job's (fencing): a holder that was paused past its expiry and taken over cannot
//! write over its successor.

use super::Station;
use crate::domain::lease::{
    Lease, LeaseDecision, LeaseHolder, LeaseKind, Liveness, decide, renew_interval,
};
use crate::store::StoreError;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use time::{Duration, OffsetDateTime};

/// Where and as what this process runs (read once).
#[derive(Debug, Clone)]
struct ProcessIdentity {
    instance_id: String,
    host: String,
    pid: u32,
    process_start: String,
}

fn process_identity() -> &'static ProcessIdentity {
    static ID: OnceLock<ProcessIdentity> = OnceLock::new();
    ID.get_or_init(|| {
        let instance_id = uuid::Uuid::new_v4().to_string();
        let pid = std::process::id();
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        let host = match (
            read("/proc/sys/kernel/hostname"),
            read("/proc/sys/kernel/random/boot_id"),
            std::fs::read_link("/proc/self/ns/pid").ok(),
        ) {
            (Some(name), Some(boot), Some(ns)) => format!("{name}:{boot}:{}", ns.display()),
            // Without /proc nobody can probe this process: a host nobody else shares makes
            // every other process judge its leases by expiry alone.
            _ => format!("unknown:{instance_id}"),
        };
        let process_start = read(&format!("/proc/{pid}/stat"))
            .as_deref()
            .and_then(parse_proc_stat)
            .map_or_else(|| "unknown".to_string(), |(_, start)| start.to_string());
        ProcessIdentity {
            instance_id,
            host,
            pid,
            process_start,
        }
    })
}

/// State and start time (clock ticks after boot) from the text of `/proc/PID/stat`. The second
/// field, the command name in parentheses, may itself hold spaces and parentheses: the fields
/// after it are counted from its last `)`.
pub fn parse_proc_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

/// Whether `holder` still runs, as far as this process can tell.
pub fn probe(holder: &LeaseHolder) -> Liveness {
    let me = process_identity();
    // Another job of this very process: it may have ended in a panic without releasing.
    if holder.instance_id == me.instance_id || holder.host != me.host {
        return Liveness::Unknown;
    }
    match std::fs::read_to_string(format!("/proc/{}/stat", holder.pid)) {
        // /proc mounted with hidepid hides other users' processes: only a signal probe tells
        // "no such process" from "not yours to see".
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match rustix::process::Pid::from_raw(i32::try_from(holder.pid).unwrap_or(0))
                .map(rustix::process::test_kill_process)
            {
                Some(Err(rustix::io::Errno::SRCH)) => Liveness::Gone,
                _ => Liveness::Unknown,
            }
        }
        Err(_) => Liveness::Unknown,
        Ok(text) => match parse_proc_stat(&text) {
            Some(('Z' | 'X' | 'x', _)) => Liveness::Gone,
            Some((_, start)) if start.to_string() != holder.process_start => Liveness::Gone,
            Some(_) => Liveness::Alive,
            None => Liveness::Unknown,
        },
    }
}

/// True when `lease` keeps every other job out at `now`: it has not expired and its holder may
/// still run (a look; taking a lease decides for good, in its transaction).
pub fn keeps_others_out(lease: &Lease, now: OffsetDateTime) -> bool {
    // No other job's lease id is empty: this asks as a job that does not hold it.
    decide(Some(lease), "", now, probe(&lease.holder)) == LeaseDecision::Refuse
}

impl Station {
    /// This process as a lease holder of this station.
    pub fn lease_holder(&self) -> LeaseHolder {
        let me = process_identity();
        LeaseHolder {
            station_id: self.config.station.id.clone(),
            instance_id: me.instance_id.clone(),
            host: me.host.clone(),
            pid: me.pid,
            process_start: me.process_start.clone(),
        }
    }

    /// How long a lease holds unless renewed (`station.lease_secs`).
    pub fn lease_ttl(&self) -> Duration {
        Duration::seconds(i64::try_from(self.config.station.lease_secs).unwrap_or(i64::MAX))
    }

    /// Renews the job `lease_id`'s leases on `subjects` in a transaction of its own, with this
    /// station's heartbeat.
    async fn renew_leases(
        &self,
        kind: LeaseKind,
        subjects: &[String],
        lease_id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for subject in subjects {
            tx.renew_lease(kind, subject, lease_id, self.lease_ttl())
                .await?;
        }
        tx.heartbeat(&self.lease_holder()).await?;
        tx.commit().await
    }
}

/// A lease the job holds (on one subject, or on several taken together under one lease id: a
/// bank file's deliveries), renewed in the background until dropped.
#[derive(Debug)]
pub struct KeptLease {
    lease_id: String,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl KeptLease {
    /// Starts renewing `lease_id` (just taken) on `kind`/`subject`.
    pub fn start(station: &Station, kind: LeaseKind, subject: &str, lease_id: &str) -> KeptLease {
        KeptLease::start_many(station, kind, vec![subject.to_string()], lease_id)
    }

    /// Starts renewing `lease_id` (just taken) on every one of `subjects`, in one transaction
    /// each time; lost as soon as one of them is.
    pub fn start_many(
        station: &Station,
        kind: LeaseKind,
        subjects: Vec<String>,
        lease_id: &str,
    ) -> KeptLease {
        let lost = Arc::new(AtomicBool::new(false));
        let every = renew_interval(station.lease_ttl()).unsigned_abs();
        let (station, id, flag) = (station.clone(), lease_id.to_string(), lost.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match station.renew_leases(kind, &subjects, &id).await {
                    Ok(()) => {}
                    Err(e @ StoreError::LeaseLost { .. }) => {
                        tracing::error!(kind = kind.as_str(), error = %e, "lease lost");
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The database is away for a moment: the next renewal (or the job's next
                    // commit) tries again; two may fail before the lease expires.
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), error = %e, "could not renew a lease")
                    }
                }
            }
        });
        KeptLease {
            lease_id: lease_id.to_string(),
            lost,
            renewal,
        }
    }

    /// The job's fencing token.
    pub fn lease_id(&self) -> &str {
        &self.lease_id
    }

    /// True once a renewal found the lease taken by another process.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops the background renewal (before the commit that releases the lease, which a late
    /// renewal would otherwise report as lost). The job's own commits still renew it.
    pub fn stop_renewing(&self) {
        self.renewal.abort();
    }
}

impl Drop for KeptLease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (key (station) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 \
                    3 0 987654 12345 67 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(parse_proc_stat(text), Some(('S', 987_654)));
        assert_eq!(
            parse_proc_stat(&text.replace(") S ", ") Z ")),
            Some(('Z', 987_654))
        );
        assert_eq!(parse_proc_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_proc_stat("no parenthesis"), None);
    }

    #[test]
    fn a_running_process_reads_as_alive_and_a_vanished_one_on_this_host_as_gone() {
        let me = process_identity();
        // /proc/self/stat parses here (Linux): the start time is known.
        assert_ne!(me.process_start, "unknown");
        let holder = |instance: &str, host: &str, pid: u32, start: &str| LeaseHolder {
            station_id: "s".into(),
            instance_id: instance.into(),
            host: host.into(),
            pid,
            process_start: start.into(),
        };
        // This very process: another of its jobs may have died in a panic; the expiry tells.
        assert_eq!(
            probe(&holder(
                &me.instance_id,
                &me.host,
                me.pid,
                &me.process_start
            )),
            Liveness::Unknown
        );
        // Another instance under this very pid and start time: that process runs (it is us).
        assert_eq!(
            probe(&holder("other", &me.host, me.pid, &me.process_start)),
            Liveness::Alive
        );
        // The same pid with another start time: the pid was reused, the holder is gone.
        assert_eq!(
            probe(&holder("other", &me.host, me.pid, "1")),
            Liveness::Gone
        );
        // A pid above the kernel's maximum (4194304) never exists, nor does a pid 0 holder.
        assert_eq!(probe(&holder("other", &me.host, 0, "1")), Liveness::Unknown);
        assert_eq!(
            probe(&holder("other", &me.host, 4_194_305, "1")),
            Liveness::Gone
        );
        // Another host: only the expiry tells.
        assert_eq!(
            probe(&holder("other", "desk-2:boot:pid:[1]", 4_194_305, "1")),
            Liveness::Unknown
        );
    }
}
