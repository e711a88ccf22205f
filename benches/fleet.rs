//! Fleet benchmark (issue 14): provisioning throughput of an installation of 1, 2 and 3 stations
//! on one PostgreSQL queue, and the database work one order costs.
//!
//! For each station count, a fresh installation (`keystation init`, the others joining it with
//! its station PIN and its SoftHSM store) gets `KEYSTATION_BENCH_FLEET_ORDERS` generated,
//! approved orders (default 300); every station then runs `keystation provision --all-approved
//! --workers 2` at once, each its own process, and the clock runs from the first start to the
//! last exit: tokens per second, token work included (key generation on SoftHSM, CA signature,
//! seals). The stations' token store is on /dev/shm when it exists; the database is the test
//! server's (`KEYSTATION_TEST_PG`, on disk).
//!
//! The database work per order is measured on one station apart, with the driver's statement
//! log on (`KEYSTATION_LOG=sqlx::query=debug`, one line per statement the station sends: its
//! round trips) and PostgreSQL's own count of committed transactions for the database
//! (`pg_stat_database.xact_commit`: explicit transactions and single statements alike).
//!
//! `cargo bench --bench fleet`; without `--bench` (as `cargo test --all-targets` runs it) a smoke
//! run of 3 orders per station count that checks every order ends Provisioned and claims no
//! figure. Figures as JSON in `target/bench/fleet.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod figures;

use figures::{keystation, ok};
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;

use keystation::clock::SystemClock;
use keystation::config::Config;
use keystation::station::Station;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

/// An installation of `n` stations under `root` on the database `url`; their configurations.
fn installation(root: &Path, url: &str, n: usize) -> Vec<PathBuf> {
    let first = root.join("desk-1");
    ok(keystation()
        .args([
            "init",
            "--generate-pins",
            "--station-id",
            "desk-1",
            "--database-url",
            url,
        ])
        .arg("--dir")
        .arg(&first));
    for i in 2..=n {
        ok(keystation()
            .arg("init")
            .arg("--dir")
            .arg(root.join(format!("desk-{i}")))
            .args(["--station-id", &format!("desk-{i}"), "--database-url", url])
            .arg("--pin-file")
            .arg(first.join("secrets/station-hsm.pin"))
            .arg("--softhsm2-conf")
            .arg(first.join("softhsm2.conf")));
    }
    // The installation's operators are every desk's.
    figures::register_operators(&first.join("station.toml"), &["bench"]);
    (1..=n)
        .map(|i| root.join(format!("desk-{i}/station.toml")))
        .collect()
}

/// Transactions PostgreSQL committed (and rolled back) in the database of `url` so far.
async fn transactions(url: &str) -> i64 {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query(
        "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(&mut c)
    .await
    .unwrap()
    .get(0);
    c.close().await.unwrap();
    n
}

/// Every station's `provision --all-approved --workers 2` at once; seconds to the last exit,
/// and the statements they sent when `log` is on.
fn batches(configs: &[PathBuf], log: bool) -> (f64, usize) {
    let start = Instant::now();
    let children: Vec<_> = configs
        .iter()
        .map(|c| {
            let mut cmd = keystation();
            cmd.arg("--config")
                .arg(c)
                .arg("--credential")
                .arg(figures::credential(&configs[0], "bench"))
                .args(["--json", "provision", "--all-approved", "--workers", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if log {
                cmd.env("KEYSTATION_LOG", "sqlx::query=debug");
            }
            cmd.spawn().unwrap()
        })
        .collect();
    let mut statements = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["failed"], json!([]), "{summary}");
        statements += stderr.lines().filter(|l| l.contains("sqlx::query")).count();
    }
    (start.elapsed().as_secs_f64(), statements)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let orders: usize = std::env::var("KEYSTATION_BENCH_FLEET_ORDERS")
        .map(|v| {
            v.parse()
                .expect("KEYSTATION_BENCH_FLEET_ORDERS is a number")
        })
        .unwrap_or(if bench { 300 } else { 3 });
    let mode = if bench { "bench" } else { "smoke" };
    let shm_root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let (rt, load) = figures::start();
    println!("fleet ({mode}): {orders} orders, load {}", load.trim());

    // The database work of one order, on one station with the statement log on.
    let per_order = {
        let probe = if bench { 50 } else { orders };
        let db = rt.block_on(pg::PgDatabase::create());
        let root = tempfile::Builder::new()
            .prefix("ks-fleet-")
            .tempdir_in(&shm_root)
            .unwrap();
        let configs = installation(root.path(), &db.url, 1);
        rt.block_on(figures::orders::approved(
            &configs[0],
            &root.path().join("apps"),
            probe,
        ));
        let before = rt.block_on(transactions(&db.url));
        let (_, statements) = batches(&configs, true);
        // The backends' counts reach pg_stat_database when they end, or within a second.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let after = rt.block_on(transactions(&db.url));
        let per = |n: f64| n / probe as f64;
        json!({
            "orders": probe,
            "statements_per_order": per(statements as f64),
            // Less the reading of the counter itself.
            "transactions_per_order": per((after - before - 1) as f64),
        })
    };
    println!(
        "per order: {:.1} statements (round trips), {:.1} transactions",
        per_order["statements_per_order"].as_f64().unwrap(),
        per_order["transactions_per_order"].as_f64().unwrap()
    );

    let mut rows = Vec::new();
    for stations in 1..=3 {
        let db = rt.block_on(pg::PgDatabase::create());
        let root = tempfile::Builder::new()
            .prefix("ks-fleet-")
            .tempdir_in(&shm_root)
            .unwrap();
        let configs = installation(root.path(), &db.url, stations);
        rt.block_on(figures::orders::approved(
            &configs[0],
            &root.path().join("apps"),
            orders,
        ));
        let (seconds, _) = batches(&configs, false);
        let provisioned = rt.block_on(async {
            let station = Station::open(Config::load(&configs[0]).unwrap(), Arc::new(SystemClock))
                .await
                .unwrap();
            let n = station
                .fleet_status()
                .await
                .unwrap()
                .orders
                .iter()
                .filter(|c| c.state == "Provisioned")
                .map(|c| c.count)
                .sum::<i64>();
            station.close().await;
            n
        });
        assert_eq!(provisioned, orders as i64, "every order ends Provisioned");
        let rate = orders as f64 / seconds;
        println!(
            "{stations} station(s) x 2 workers: {orders} tokens in {seconds:.1} s = {rate:.1} tokens/s"
        );
        rows.push(json!({"stations": stations, "orders": orders, "seconds": seconds, "tokens_per_second": rate}));
    }
    let report = json!({"mode": mode, "loadavg_at_start": load.trim(), "per_order": per_order, "stations": rows});
    figures::write("fleet", bench, &report);
}
