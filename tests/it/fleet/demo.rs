//! Issue 14, item 6: `keystation demo --stations N --database-url URL` runs N station
//! processes (separate directories and ids) against one PostgreSQL and ends with every order
//! delivered; a second run finds it done.

use crate::pg::PgDatabase;
use crate::support::{keystation, run_ok, stdout_json};
use serde_json::Value;

#[test]
fn a_fleet_demo_delivers_every_order_from_several_stations() {
    let db = PgDatabase::create_blocking();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    let demo = |extra: &[&str]| {
        let mut cmd = keystation();
        cmd.args(["--json", "demo", "--stations", "2", "--orders", "8"])
            .args(["--database-url", &db.url])
            .arg("--dir")
            .arg(&dir)
            .args(extra);
        let out = cmd.output().unwrap();
        if !out.status.success() {
            // The stations' own output says why.
            let logs: Vec<String> = std::fs::read_dir(dir.join("logs"))
                .map(|d| {
                    d.map(|e| {
                        let p = e.unwrap().path();
                        format!(
                            "--- {}\n{}",
                            p.display(),
                            std::fs::read_to_string(&p).unwrap()
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
            panic!(
                "demo failed: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                logs.join("\n")
            );
        }
        stdout_json(&out)
    };
    let first = demo(&[]);
    let report = &first["report"];
    assert_eq!(report["complete"], true, "{first:#}");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    assert!(
        rows.iter().all(|r| r["state"] == "PinDelivered"),
        "{first:#}"
    );
    // Two stations, registered as such, that provisioned the eight orders between them.
    let per_station: Vec<(String, u64)> = report["per_station"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
        .collect();
    let ids: Vec<&str> = per_station.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["station-1", "station-2"]);
    assert_eq!(per_station.iter().map(|(_, n)| n).sum::<u64>(), 8);
    let registered: Vec<&Value> = report["status"]["stations"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(registered[0]["registered_by"], "init");
    assert_eq!(registered[1]["registered_by"], "join");
    for i in [1, 2] {
        let config = dir.join(format!("station-{i}/station.toml"));
        let mut verify = keystation();
        verify
            .arg("--config")
            .arg(&config)
            .args(["--json", "audit", "verify"]);
        assert_eq!(stdout_json(&run_ok(&mut verify))["ok"], true);
    }
    let mut check = keystation();
    check
        .arg("--config")
        .arg(dir.join("station-1/station.toml"))
        .arg("check");
    run_ok(&mut check);
    // Run again: nothing left to do.
    let again = demo(&[]);
    assert_eq!(again["report"]["already_ran"], true, "{again:#}");
}
