//! `keystation demo --stations N --database-url URL`: the pipeline on an installation of N
//! stations sharing one PostgreSQL queue. Each station is its own directory with its own id
//! (`station-1` created the installation, the others joined it, all reaching one SoftHSM store
//! as the shared HSM) and runs as its own processes — `provision --all-approved --workers W` and
//! `deliver run`, the very commands an operator runs at a desk. This process does what is not a
//! station's: the intake and review at station 1, and the SIMULATED gateway agent and bank
//! ([`super::peers`]) over the installation's shared spool and bank directories. It ends when
//! every order is PinDelivered, or when the stations' batches have ended and orders are left.

use super::{DemoError, DemoRow, step_err};
use crate::domain::OrderState;
use crate::station::Station;
use crate::station::fleet::FleetStatus;
use crate::station::setup::set_line;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the installation's stations are set to work one queue: their channels' directories are
/// the installation's (one spool for the gateway agent, one bank exchange), each PIN delivery is
/// queued as its order is provisioned, and `deliver run` looks every second.
pub fn share_channels(config: &Path, shared: &Path) -> std::io::Result<()> {
    let mut text = std::fs::read_to_string(config)?;
    for (key, dir) in [
        ("spool_dir", "spool/sms"),
        ("outbound_dir", "bank/outbound"),
        ("inbound_dir", "bank/inbound"),
    ] {
        let path = shared.join(dir);
        crate::private_files::create_dir(&path)?;
        let value = toml::Value::String(path.display().to_string()).to_string();
        text = set_line(&text, key, &value);
    }
    text = set_line(&text, "trigger", "\"on_provisioned\"");
    text = set_line(&text, "poll_interval_secs", "1");
    crate::private_files::write_file(config, text.as_bytes())
}

/// The stations of a fleet demo and how to run them.
#[derive(Debug, Clone)]
pub struct FleetDemo {
    /// Each station's `station.toml`, station 1 first.
    pub configs: Vec<PathBuf>,
    /// The `keystation` binary the stations run as.
    pub binary: PathBuf,
    /// Where the stations' processes write their output.
    pub logs: PathBuf,
    /// Generate this many orders (default: the three fixture orders).
    pub generated: Option<usize>,
    /// Provisioning workers per station.
    pub workers: usize,
}

/// What a fleet demo did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetReport {
    /// Every order of the demo.
    pub rows: Vec<DemoRow>,
    /// The orders each station provisioned (by its binding), station by station.
    pub per_station: Vec<(String, usize)>,
    /// The installation at the end.
    pub status: FleetStatus,
    /// True when every order reached PinDelivered.
    pub complete: bool,
    /// True when a previous run had delivered every order already (no station was started).
    pub already_ran: bool,
    /// Seconds from the first station process to the last PIN delivered.
    pub seconds: f64,
}

/// A station's process, stopped when dropped (a demo that fails leaves no worker behind).
struct StationProcess {
    child: Child,
}

impl StationProcess {
    fn spawn(
        demo: &FleetDemo,
        config: &Path,
        name: &str,
        args: &[&str],
    ) -> Result<StationProcess, DemoError> {
        let station = config
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::private_files::create_dir(&demo.logs)?;
        let log = |ext: &str| {
            let path = demo.logs.join(format!("{station}-{name}.{ext}"));
            std::fs::File::create(path)
        };
        let child = Command::new(&demo.binary)
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log("out")?)
            .stderr(log("err")?)
            .spawn()?;
        Ok(StationProcess { child })
    }

    /// Still running.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks it to stop as Ctrl-C would (it finishes what it has in hand), and waits.
    fn interrupt(&mut self) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        let _ = self.child.wait();
    }
}

impl Drop for StationProcess {
    fn drop(&mut self) {
        if self.running() {
            self.interrupt();
        }
    }
}

impl Station {
    /// Runs the fleet demo from station 1 (this station): see the module docs.
    pub async fn run_fleet_demo(
        &self,
        demo: &FleetDemo,
        say: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<FleetReport, DemoError> {
        self.demo_operators()
            .await
            .map_err(|e| step_err("operators")(e.to_string()))?;
        let order_nos = self.demo_intake(demo.generated, &say).await?;
        let already_ran = self
            .states(&order_nos)
            .await?
            .iter()
            .all(|s| *s == OrderState::PinDelivered);
        let started = Instant::now();
        let workers = demo.workers.max(1).to_string();
        // Provisioning is an operator's act: each station's batch proves the demo's desk operator.
        let desk = self.config.data_dir().join("demo-desk.credential");
        let desk = desk.to_string_lossy();
        let mut senders = Vec::new();
        let mut batches = Vec::new();
        for config in demo.configs.iter().filter(|_| !already_ran) {
            senders.push(StationProcess::spawn(
                demo,
                config,
                "deliver",
                &["deliver", "run"],
            )?);
            batches.push(StationProcess::spawn(
                demo,
                config,
                "provision",
                &[
                    "--credential",
                    &desk,
                    "provision",
                    "--all-approved",
                    "--workers",
                    &workers,
                ],
            )?);
        }
        if !already_ran {
            say(&format!(
                "{} stations at work: each runs `provision --all-approved --workers {workers}` and \
             `deliver run` (their output in {})",
                demo.configs.len(),
                demo.logs.display()
            ));
        }
        let mut batches_over_at: Option<Instant> = None;
        loop {
            self.simulated_gateway(&say).await?;
            self.simulated_bank(&say).await?;
            let states = self.states(&order_nos).await?;
            if states.iter().all(|s| *s == OrderState::PinDelivered) {
                break;
            }
            if batches.iter_mut().all(|b| !b.running()) {
                // Once no station provisions any more, what is provisioned is delivered within
                // a few passes; an order left unprovisioned waits for an operator.
                let since = *batches_over_at.get_or_insert_with(Instant::now);
                let unprovisioned = states.iter().any(|s| {
                    matches!(
                        s,
                        OrderState::Approved | OrderState::Provisioning | OrderState::Failed
                    )
                });
                if unprovisioned || since.elapsed() > Duration::from_secs(60) {
                    say("the stations' batches ended with orders left; stopping");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        for s in &mut senders {
            s.interrupt();
        }
        drop(batches);
        let _ = self.anchor_after_change().await;
        let mut rows = Vec::new();
        for no in &order_nos {
            rows.push(self.demo_row(no).await?);
        }
        let status = self
            .fleet_status()
            .await
            .map_err(|e| step_err("status")(e.to_string()))?;
        let mut per_station: Vec<(String, usize)> = status
            .stations
            .iter()
            .map(|s| (s.station.station_id.clone(), 0))
            .collect();
        for b in self
            .store
            .active_bindings()
            .await
            .map_err(|e| step_err("status")(e.to_string()))?
        {
            if let Some(entry) = per_station.iter_mut().find(|(id, _)| *id == b.station_id) {
                entry.1 += 1;
            }
        }
        let complete = rows.iter().all(|r| r.state == OrderState::PinDelivered);
        Ok(FleetReport {
            rows,
            per_station,
            status,
            complete,
            already_ran,
            seconds,
        })
    }
}
