//! Several stations, one installation: the stations registered to it and their heartbeats, the
//! claim of the next approved order (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and what
//! `keystation fleet status` reads (stations, leases, queue depth per state).
//!
//! Claiming the next order: on PostgreSQL the claim transaction first picks the oldest approved
//! order with `SELECT ... FOR UPDATE SKIP LOCKED`, so two stations claiming at once pick two
//! different orders without waiting for each other; only then does it take the audit head
//! ([`Store::begin_write`]'s lock), under which the claim is written. A transaction holding the
//! audit head that then wants the row another claim picked (an operator's `provision ORDER` on
//! that very order) is a deadlock PostgreSQL breaks by failing one of the two: a serialisation
//! failure the caller retries ([`super::Retry`]). SQLite keeps its single writer: the claim takes
//! the write lock first and reads the oldest approved order under it.

use super::{Backend, DbContext, Store, StoreError, Tx, id_column};
use crate::clock::format_utc;
use crate::domain::lease::{Lease, LeaseHolder};
use crate::domain::{BindingId, OrderNo, OrderState};
use time::OffsetDateTime;

/// How a station came to the installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// It created the installation (`init` on an empty database).
    Init,
    /// It joined an existing installation.
    Join,
}

impl Registration {
    fn as_str(self) -> &'static str {
        match self {
            Registration::Init => "init",
            Registration::Join => "join",
        }
    }
}

/// A station of the installation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct StationRecord {
    /// Its id (`station.id`).
    pub station_id: String,
    /// When it was registered.
    pub registered_at: String,
    /// `init`, `join`, or `backfill` (a station of an installation older than the registry).
    pub registered_by: String,
    /// The last heartbeat of one of its processes (a lease renewed, a delivery pass).
    pub last_heartbeat_at: Option<String>,
    /// The host that process ran on.
    pub last_host: Option<String>,
    /// Its pid.
    pub last_pid: Option<i64>,
}

/// The installation's material as its database records it (written once, when the installation
/// was created; a joining station verifies its HSM against it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installation {
    /// SHA-256 fingerprint of the CA certificate (hex).
    pub ca_fingerprint: String,
    /// Serial of the CA token.
    pub ca_token_serial: String,
    /// Serial of the vault token.
    pub vault_token_serial: String,
    /// SHA-256 fingerprint of the seal maker's certificate.
    pub seal_maker_fingerprint: String,
    /// SubjectPublicKeyInfo of the audit anchor key (hex).
    pub audit_anchor_spki: String,
}

/// How many orders or deliveries are in one state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct StateCount {
    /// The state, as stored.
    pub state: String,
    /// How many.
    pub count: i64,
}

impl Tx {
    /// Registers station `id`; [`StoreError::StationExists`] when an installation already has a
    /// station of that id.
    pub async fn register_station(
        &mut self,
        id: &str,
        how: Registration,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO stations (station_id, registered_at, registered_by) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(&now)
        .bind(how.as_str())
        .execute(self.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::StationExists(id.to_string())
            }
            _ => StoreError::Db {
                context: "registering a station",
                source: e,
            },
        })?;
        Ok(())
    }

    /// Records the installation's material, once: [`StoreError::InstallationExists`] when this
    /// database already holds an installation (it is never overwritten: the first station's
    /// audit anchor and CA depend on it).
    pub async fn record_installation(&mut self, inst: &Installation) -> Result<(), StoreError> {
        for (name, value) in [
            ("ca_fingerprint", &inst.ca_fingerprint),
            ("ca_token_serial", &inst.ca_token_serial),
            ("vault_token_serial", &inst.vault_token_serial),
            ("seal_maker_fingerprint", &inst.seal_maker_fingerprint),
            ("audit_anchor_spki", &inst.audit_anchor_spki),
        ] {
            let added = sqlx::query(
                "INSERT INTO station_material (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(value)
            .execute(self.conn())
            .await
            .ctx("recording the installation")?
            .rows_affected();
            if added == 0 {
                return Err(StoreError::InstallationExists);
            }
        }
        Ok(())
    }

    /// Records a heartbeat of `holder`'s station (nothing when the station is not registered).
    pub async fn heartbeat(&mut self, holder: &LeaseHolder) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let host = holder.host.split(':').next().unwrap_or_default();
        sqlx::query(
            "UPDATE stations SET last_heartbeat_at = $1, last_host = $2, last_pid = $3 \
             WHERE station_id = $4",
        )
        .bind(&now)
        .bind(host)
        .bind(i64::from(holder.pid))
        .bind(&holder.station_id)
        .execute(self.conn())
        .await
        .ctx("recording a heartbeat")?;
        Ok(())
    }

    /// Moves an order's binding to `station` (a takeover that goes on on the same key).
    pub async fn set_binding_station(
        &mut self,
        binding_id: &BindingId,
        station: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE token_bindings SET station_id = $1 WHERE binding_id = $2")
            .bind(station)
            .bind(binding_id.as_str())
            .execute(self.conn())
            .await
            .ctx("moving a binding to another station")?;
        Ok(())
    }
}

impl Store {
    /// Begins the claim transaction of the next approved order (see the module docs): the
    /// transaction, holding the audit head, and the order it picked — none when no approved
    /// order is left that no other claim is picking.
    pub async fn begin_claim_next(
        &self,
        now: OffsetDateTime,
    ) -> Result<(Tx, Option<OrderNo>), StoreError> {
        self.begin_claim_next_except(now, &[]).await
    }

    /// [`Store::begin_claim_next`], passing over the approved orders in `skip` (the claim found
    /// them not to be claimable now, e.g. a secondary key whose main key is no longer live).
    pub async fn begin_claim_next_except(
        &self,
        now: OffsetDateTime,
        skip: &[OrderNo],
    ) -> Result<(Tx, Option<OrderNo>), StoreError> {
        let approved = OrderState::Approved.as_str();
        // `$2, $3, ...`: one placeholder per skipped order, the numbers bound below.
        let except = if skip.is_empty() {
            String::new()
        } else {
            format!(
                " AND order_no NOT IN ({})",
                super::placeholders(2, skip.len())
            )
        };
        match self.backend {
            Backend::Postgres => {
                let mut inner = self.pool.begin().await.ctx("beginning a transaction")?;
                let sql = format!(
                    "SELECT order_no FROM orders WHERE state = $1{except} \
                     ORDER BY submitted_at, order_no LIMIT 1 FOR UPDATE SKIP LOCKED"
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(approved);
                for no in skip {
                    q = q.bind(no.as_str());
                }
                let picked = q
                    .fetch_optional(&mut *inner)
                    .await
                    .ctx("picking the next approved order")?
                    .map(|r| id_column(&r, "order_no", "orders.order_no"))
                    .transpose()
                    .ctx("picking the next approved order")?;
                Ok((Tx::locked(inner, now).await?, picked))
            }
            Backend::Sqlite => {
                let mut tx = self.begin_write(now).await?;
                let sql = format!(
                    "SELECT order_no FROM orders WHERE state = $1{except} \
                     ORDER BY submitted_at, order_no LIMIT 1"
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(approved);
                for no in skip {
                    q = q.bind(no.as_str());
                }
                let picked = q
                    .fetch_optional(tx.conn())
                    .await
                    .ctx("picking the next approved order")?
                    .map(|r| id_column(&r, "order_no", "orders.order_no"))
                    .transpose()
                    .ctx("picking the next approved order")?;
                Ok((tx, picked))
            }
        }
    }

    /// The installation this database holds, if one was created in it; an installation whose
    /// material is recorded in part is corrupt.
    pub async fn installation(&self) -> Result<Option<Installation>, StoreError> {
        let ca_fingerprint = self.material("ca_fingerprint").await?;
        let ca_token_serial = self.material("ca_token_serial").await?;
        let vault_token_serial = self.material("vault_token_serial").await?;
        let seal_maker_fingerprint = self.material("seal_maker_fingerprint").await?;
        let audit_anchor_spki = self.material("audit_anchor_spki").await?;
        match (
            ca_fingerprint,
            ca_token_serial,
            vault_token_serial,
            seal_maker_fingerprint,
            audit_anchor_spki,
        ) {
            (None, None, None, None, None) => Ok(None),
            (Some(a), Some(b), Some(c), Some(d), Some(e)) => Ok(Some(Installation {
                ca_fingerprint: a,
                ca_token_serial: b,
                vault_token_serial: c,
                seal_maker_fingerprint: d,
                audit_anchor_spki: e,
            })),
            _ => Err(StoreError::Corrupt(
                "the installation's material is recorded in part only".into(),
            )),
        }
    }

    /// The stations of the installation, by id.
    pub async fn stations(&self) -> Result<Vec<StationRecord>, StoreError> {
        sqlx::query_as(
            "SELECT station_id, registered_at, registered_by, last_heartbeat_at, last_host, \
             last_pid FROM stations ORDER BY station_id",
        )
        .fetch_all(self.pool())
        .await
        .ctx("reading the stations")
    }

    /// Every lease held, of every kind, oldest first.
    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let sql = format!(
            "SELECT {} FROM leases ORDER BY acquired_at, kind, subject",
            super::lease::LEASE_COLUMNS
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .ctx("reading the leases")?
            .iter()
            .map(super::lease::lease)
            .collect()
    }

    /// How many orders are in each state (states without any are left out).
    pub async fn orders_per_state(&self) -> Result<Vec<StateCount>, StoreError> {
        self.count_per_state("orders").await
    }

    /// How many PIN deliveries are in each state.
    pub async fn deliveries_per_state(&self) -> Result<Vec<StateCount>, StoreError> {
        self.count_per_state("deliveries").await
    }

    async fn count_per_state(&self, table: &'static str) -> Result<Vec<StateCount>, StoreError> {
        // `table` is one of two constants above.
        let sql =
            format!("SELECT state, COUNT(*) AS count FROM {table} GROUP BY state ORDER BY state");
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .ctx("counting per state")
    }
}
