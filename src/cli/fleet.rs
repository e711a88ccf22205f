//! `keystation fleet status [--json]`: the installation's stations, their last heartbeat, the
//! leases their processes hold, and the queue depth per state.

use super::opts::FleetCmd;
use super::{CliError, output};
use crate::station::Station;

pub(super) async fn run(station: &Station, cmd: FleetCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        FleetCmd::Status => {
            let status = station.fleet_status().await?;
            if json {
                return output::json(&status);
            }
            println!(
                "installation seen from station {} at {}",
                status.this_station, status.at
            );
            let rows: Vec<Vec<String>> = status
                .stations
                .iter()
                .map(|s| {
                    let live = s.leases.iter().filter(|l| l.live).count();
                    vec![
                        s.station.station_id.clone(),
                        s.station.registered_by.clone(),
                        s.station
                            .last_heartbeat_at
                            .clone()
                            .unwrap_or_else(|| "-".into()),
                        match (&s.station.last_host, s.station.last_pid) {
                            (Some(h), Some(p)) => format!("{h} pid {p}"),
                            _ => "-".into(),
                        },
                        format!("{live} live, {} abandoned", s.leases.len() - live),
                    ]
                })
                .collect();
            output::table(
                &["STATION", "REGISTERED", "LAST HEARTBEAT", "WHERE", "LEASES"],
                &rows,
            );
            for s in &status.stations {
                for l in &s.leases {
                    println!(
                        "  {} {} {} (pid {} on {}, until {}){}",
                        s.station.station_id,
                        l.kind,
                        l.subject,
                        l.pid,
                        l.host,
                        l.expires_at,
                        if l.live {
                            ""
                        } else {
                            " — abandoned: another station may take it over"
                        }
                    );
                }
            }
            let depth = |counts: &[crate::station::fleet::StateCount]| {
                if counts.is_empty() {
                    return "none".to_string();
                }
                counts
                    .iter()
                    .map(|c| format!("{} {}", c.state, c.count))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("orders:     {}", depth(&status.orders));
            println!("deliveries: {}", depth(&status.deliveries));
            Ok(())
        }
    }
}
