//! `keystation fleet status`: the installation seen from any of its stations — every station
//! with its last heartbeat, the leases each one's processes hold (and whether each still keeps
//! the others out, or is left by a gone or expired holder for another station to take over), and
//! how many orders and PIN deliveries are in each state.

use super::Station;
use super::lease::keeps_others_out;
use crate::clock::format_utc;
use crate::store::StoreError;
pub use crate::store::{StateCount, StationRecord};

/// One lease as `fleet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseView {
    /// `provision` (subject: an order) or `deliver` (subject: a delivery).
    pub kind: &'static str,
    /// The order number or delivery id.
    pub subject: String,
    /// The holding process: pid and host.
    pub pid: u32,
    /// Host name of the holder.
    pub host: String,
    /// Until when it holds unless renewed.
    pub expires_at: String,
    /// True while it keeps every other process out; false once its holder is known gone or
    /// its lease expired (another station may take the job over).
    pub live: bool,
}

/// One station as `fleet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StationStatus {
    /// The station as registered (an id that holds leases but was never registered shows with
    /// `registered_by = "unregistered"`).
    #[serde(flatten)]
    pub station: StationRecord,
    /// The leases its processes hold.
    pub leases: Vec<LeaseView>,
}

/// What `keystation fleet status` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetStatus {
    /// The station asking.
    pub this_station: String,
    /// When the status was read.
    pub at: String,
    /// Every station, by id.
    pub stations: Vec<StationStatus>,
    /// Orders per state.
    pub orders: Vec<StateCount>,
    /// PIN deliveries per state.
    pub deliveries: Vec<StateCount>,
}

impl Station {
    /// Records that this station's process is at work (its heartbeat in `fleet status`); lease
    /// renewals record it too.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        tx.heartbeat(&self.lease_holder()).await?;
        tx.commit().await
    }

    /// The installation's stations, leases and queue depth (see the module docs).
    pub async fn fleet_status(&self) -> Result<FleetStatus, StoreError> {
        let now = self.clock.now();
        let mut stations: Vec<StationStatus> = self
            .store
            .stations()
            .await?
            .into_iter()
            .map(|station| StationStatus {
                station,
                leases: Vec::new(),
            })
            .collect();
        for lease in self.store.leases().await? {
            let view = LeaseView {
                kind: lease.kind.as_str(),
                subject: lease.subject.clone(),
                pid: lease.holder.pid,
                host: lease
                    .holder
                    .host
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                expires_at: format_utc(lease.expires_at),
                live: keeps_others_out(&lease, now),
            };
            let id = &lease.holder.station_id;
            match stations.iter_mut().find(|s| s.station.station_id == *id) {
                Some(s) => s.leases.push(view),
                None => stations.push(StationStatus {
                    station: StationRecord {
                        station_id: id.clone(),
                        registered_at: String::new(),
                        registered_by: "unregistered".into(),
                        last_heartbeat_at: None,
                        last_host: None,
                        last_pid: None,
                    },
                    leases: vec![view],
                }),
            }
        }
        Ok(FleetStatus {
            this_station: self.config.station.id.clone(),
            at: format_utc(now),
            stations,
            orders: self.store.orders_per_state().await?,
            deliveries: self.store.deliveries_per_state().await?,
        })
    }
}
