//! Job leases (rules in [`crate::domain::lease`]): read, take, renew, release.
//!
//! Taking a lease reads the row, lets the domain decide and writes the result inside one
//! writing transaction; every writing transaction holds the audit head first
//! ([`super::Store::begin_write`]), so on both backends no two processes decide on the same row
//! at once. Renewals are not audited (one every few seconds per job would drown the trail); the
//! audit records of the transactions that take, take over and release a lease say who held it.

use super::{DbContext, Store, StoreError, Tx};
use crate::clock::{format_utc, parse_utc};
use crate::domain::lease::{Lease, LeaseDecision, LeaseHolder, LeaseKind, Liveness, decide};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::Duration;

/// The outcome of [`Tx::take_lease`] when the lease is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTaken {
    /// Take, Keep or TakeOver (never Refuse: that is [`StoreError::LeaseHeld`]).
    pub decision: LeaseDecision,
    /// The lease that was there before, when it was someone else's.
    pub previous: Option<Lease>,
}

/// What a job asks for.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// What for.
    pub kind: LeaseKind,
    /// Which one.
    pub subject: &'a str,
    /// This job's fencing token.
    pub lease_id: &'a str,
    /// This process.
    pub holder: &'a LeaseHolder,
    /// How long it holds unless renewed.
    pub ttl: Duration,
}

pub(super) const LEASE_COLUMNS: &str = "kind, subject, lease_id, station_id, instance_id, host, pid, \
     process_start, acquired_at, expires_at";

pub(super) fn lease(r: &AnyRow) -> Result<Lease, StoreError> {
    let read = |e: sqlx::Error| StoreError::Db {
        context: "reading a lease",
        source: e,
    };
    let kind: String = r.try_get("kind").map_err(read)?;
    let kind = LeaseKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("lease kind {kind:?}")))?;
    let time = |col: &str| -> Result<time::OffsetDateTime, StoreError> {
        let text: String = r.try_get(col).map_err(read)?;
        parse_utc(&text).ok_or_else(|| StoreError::Corrupt(format!("lease {col} {text:?}")))
    };
    let pid: i64 = r.try_get("pid").map_err(read)?;
    Ok(Lease {
        kind,
        subject: r.try_get("subject").map_err(read)?,
        lease_id: r.try_get("lease_id").map_err(read)?,
        holder: LeaseHolder {
            station_id: r.try_get("station_id").map_err(read)?,
            instance_id: r.try_get("instance_id").map_err(read)?,
            host: r.try_get("host").map_err(read)?,
            pid: u32::try_from(pid).map_err(|_| StoreError::Corrupt(format!("lease pid {pid}")))?,
            process_start: r.try_get("process_start").map_err(read)?,
        },
        acquired_at: time("acquired_at")?,
        expires_at: time("expires_at")?,
    })
}

impl Tx {
    /// The lease on `kind`/`subject`, read inside this transaction.
    pub async fn lease(
        &mut self,
        kind: LeaseKind,
        subject: &str,
    ) -> Result<Option<Lease>, StoreError> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE kind = $1 AND subject = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind.as_str())
            .bind(subject)
            .fetch_optional(self.conn())
            .await
            .ctx("reading a lease")?
            .map(|r| lease(&r))
            .transpose()
    }

    /// Takes (or renews) the lease `want` asks for, unless a holder that may still run has it:
    /// then [`StoreError::LeaseHeld`]. `probe` tells whether the current holder still runs.
    pub async fn take_lease(
        &mut self,
        want: &LeaseRequest<'_>,
        probe: &(dyn Fn(&LeaseHolder) -> Liveness + Send + Sync),
    ) -> Result<LeaseTaken, StoreError> {
        let now = self.now();
        // Nobody holds it (the usual case): taken in one statement.
        if self.insert_lease(want, now, true).await? {
            return Ok(LeaseTaken {
                decision: LeaseDecision::Take,
                previous: None,
            });
        }
        let current = self.lease(want.kind, want.subject).await?;
        let liveness = current
            .as_ref()
            .map_or(Liveness::Unknown, |l| probe(&l.holder));
        let decision = decide(current.as_ref(), want.lease_id, now, liveness);
        match decision {
            LeaseDecision::Refuse => {
                let held = current.ok_or_else(|| {
                    StoreError::Corrupt("a lease refused without a holder".into())
                })?;
                return Err(StoreError::LeaseHeld {
                    subject: held.subject,
                    holder: held.holder.to_string(),
                    expires_at: format_utc(held.expires_at),
                });
            }
            LeaseDecision::Keep => {
                self.renew_lease(want.kind, want.subject, want.lease_id, want.ttl)
                    .await?;
                return Ok(LeaseTaken {
                    decision,
                    previous: None,
                });
            }
            LeaseDecision::Take | LeaseDecision::TakeOver(_) => {}
        }
        if let Some(old) = &current {
            self.release_lease(want.kind, want.subject, &old.lease_id)
                .await?;
        }
        self.insert_lease(want, now, false).await?;
        Ok(LeaseTaken {
            decision,
            previous: current,
        })
    }

    /// Inserts the lease `want` asks for, acquired at `now`; with `only_if_free`, a lease
    /// already there is left as it is. True when the row was written.
    async fn insert_lease(
        &mut self,
        want: &LeaseRequest<'_>,
        now: time::OffsetDateTime,
        only_if_free: bool,
    ) -> Result<bool, StoreError> {
        let h = want.holder;
        let or_nothing = if only_if_free {
            " ON CONFLICT (kind, subject) DO NOTHING"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO leases (kind, subject, lease_id, station_id, instance_id, host, pid, \
             process_start, acquired_at, renewed_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10){or_nothing}"
        );
        let written = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(want.kind.as_str())
            .bind(want.subject)
            .bind(want.lease_id)
            .bind(&h.station_id)
            .bind(&h.instance_id)
            .bind(&h.host)
            .bind(i64::from(h.pid))
            .bind(&h.process_start)
            .bind(format_utc(now))
            .bind(format_utc(now + want.ttl))
            .execute(self.conn())
            .await
            .ctx("taking a lease")?
            .rows_affected();
        Ok(written == 1)
    }

    /// Extends the job `lease_id`'s lease to now + `ttl`; [`StoreError::LeaseLost`] when the
    /// lease is no longer that job's (released, or taken over after it expired).
    pub async fn renew_lease(
        &mut self,
        kind: LeaseKind,
        subject: &str,
        lease_id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let renewed = sqlx::query(
            "UPDATE leases SET renewed_at = $1, expires_at = $2 \
             WHERE kind = $3 AND subject = $4 AND lease_id = $5",
        )
        .bind(format_utc(now))
        .bind(format_utc(now + ttl))
        .bind(kind.as_str())
        .bind(subject)
        .bind(lease_id)
        .execute(self.conn())
        .await
        .ctx("renewing a lease")?
        .rows_affected();
        if renewed == 0 {
            return Err(StoreError::LeaseLost {
                subject: subject.to_string(),
            });
        }
        Ok(())
    }

    /// Releases the job `lease_id`'s lease; false (and nothing changed) when it is not that
    /// job's any more.
    pub async fn release_lease(
        &mut self,
        kind: LeaseKind,
        subject: &str,
        lease_id: &str,
    ) -> Result<bool, StoreError> {
        let released =
            sqlx::query("DELETE FROM leases WHERE kind = $1 AND subject = $2 AND lease_id = $3")
                .bind(kind.as_str())
                .bind(subject)
                .bind(lease_id)
                .execute(self.conn())
                .await
                .ctx("releasing a lease")?
                .rows_affected();
        Ok(released == 1)
    }
}

impl Store {
    /// The lease on `kind`/`subject`, if any (a look; [`Tx::take_lease`] decides).
    pub async fn lease(&self, kind: LeaseKind, subject: &str) -> Result<Option<Lease>, StoreError> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE kind = $1 AND subject = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(kind.as_str())
            .bind(subject)
            .fetch_optional(self.pool())
            .await
            .ctx("reading a lease")?
            .map(|r| lease(&r))
            .transpose()
    }
}
