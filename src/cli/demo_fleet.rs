//! `keystation demo --stations N --database-url URL`: the demo on an installation of N stations
//! sharing one PostgreSQL queue ([`crate::station::demo::fleet`]). Station 1 creates the
//! installation, the others join it (as `init` does, with the installation's station PIN and its
//! SoftHSM store); each then runs as its own processes.

use super::error::io_error;
use super::opts::{DemoArgs, InitArgs};
use super::{CliError, output};
use crate::config::Config;
use crate::station::demo::fleet::{FleetDemo, share_channels};
use crate::station::error_code as ec;
use crate::station::setup::claim_demo_dir;
use crate::station::{OperationContext, Station};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Station `i`'s directory in the demo's.
pub(super) fn station_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("station-{i}"))
}

pub(super) async fn run(
    args: &DemoArgs,
    stations: usize,
    database_url: &str,
    json: bool,
    operation: &OperationContext,
) -> Result<(), CliError> {
    if stations == 0 {
        return Err(CliError::usage("--stations must be at least 1"));
    }
    let dir = &args.dir;
    claim_demo_dir(dir)?;
    let first = station_dir(dir, 1);
    let mut configs = Vec::new();
    for i in 1..=stations {
        let station = station_dir(dir, i);
        let config = station.join(crate::config::FILE_NAME);
        if !config.exists() {
            eprintln!(
                "demo: station {i}: {}",
                if i == 1 {
                    "creating the installation"
                } else {
                    "joining it"
                }
            );
            let joining = i > 1;
            super::init::create(
                &InitArgs {
                    dir: station.clone(),
                    station_id: format!("station-{i}"),
                    database_url: Some(database_url.to_string()),
                    pin_file: joining.then(|| first.join("secrets/station-hsm.pin")),
                    so_pin_file: None,
                    generate_pins: !joining,
                    ca_organization: None,
                    ca_common_name: None,
                    ca_algorithm: None,
                    key_algorithm: None,
                    existing_ca_cert: None,
                    ca_token_label: None,
                    ca_key_label: None,
                    softhsm2_conf: joining.then(|| first.join("softhsm2.conf")),
                    pkcs11_module: None,
                },
                operation,
            )
            .await?;
        }
        share_channels(&config, &dir.join("shared")).map_err(|e| {
            io_error(
                format!("pointing {} at the shared channels", config.display()),
                e,
            )
        })?;
        configs.push(config);
    }
    let station = Station::open_for(Config::load(&configs[0])?, operation).await?;
    let binary =
        std::env::current_exe().map_err(|e| io_error("finding the keystation binary".into(), e))?;
    let say: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|line: &str| eprintln!("demo: {line}"));
    let report = station
        .run_fleet_demo(
            &FleetDemo {
                configs: configs.clone(),
                binary,
                logs: dir.join("logs"),
                generated: args.orders,
                workers: args.workers,
            },
            say,
        )
        .await?;
    if json {
        output::json(&serde_json::json!({"dir": dir, "report": report}))?;
    } else {
        if report.already_ran {
            println!(
                "The demo already ran in {}: every order is PinDelivered.\n",
                dir.display()
            );
        }
        println!(
            "{} orders on {stations} stations in {:.1} s: {}",
            report.rows.len(),
            report.seconds,
            if report.complete {
                "every PIN delivered"
            } else {
                "NOT every PIN delivered"
            }
        );
        let rows: Vec<Vec<String>> = report
            .per_station
            .iter()
            .map(|(id, n)| vec![id.clone(), n.to_string()])
            .collect();
        output::table(&["STATION", "ORDERS PROVISIONED"], &rows);
        println!();
        println!("where things are:");
        for c in &configs {
            println!("  station             {}", c.display());
        }
        println!(
            "  database            {}",
            crate::config::redacted_url(database_url)
        );
        println!("  shared spool, bank  {}", dir.join("shared").display());
        println!("  stations' output    {}", dir.join("logs").display());
        println!(
            "  keystation --config {} fleet status   # stations, leases, queue",
            configs[0].display()
        );
        println!(
            "  keystation --config {} check          # invariants",
            configs[0].display()
        );
    }
    if report.complete {
        Ok(())
    } else {
        let missing = report
            .rows
            .iter()
            .filter(|r| r.state != crate::domain::OrderState::PinDelivered)
            .count();
        Err(CliError::verdict(
            ec::DEMO_INCOMPLETE,
            format!("demo incomplete: {missing} order(s) not PinDelivered; re-run to continue"),
        ))
    }
}
