//! Throughput benchmark (issue 8): order import + validation into SQLite and PostgreSQL, and SMS
//! delivery from the outbox to a loopback webhook gateway.
//!
//! `cargo bench --bench throughput` (cargo passes `--bench`): full sizes, 2,000 orders and 1,000
//! messages; a table on stdout and the figures as JSON in `target/bench/throughput.json`.
//! Without `--bench` (as `cargo test --all-targets` runs it): a smoke run of 20 orders and 20
//! messages that asserts correctness only, never timings. `KEYSTATION_BENCH_ORDERS` and
//! `KEYSTATION_BENCH_MESSAGES` override the sizes.
//!
//! Everything goes through the station's own code: stations are made by `keystation init`, orders
//! are the demo's generated ones, messages come from real provisioning on SoftHSM (token directory
//! on /dev/shm when it exists; the databases stay on disk), shipping and the delivery worker. The
//! gateway is the integration tests' fake (`tests/it/sms/fake_sms_gateway.rs`), which checks the
//! HMAC signature and de-duplicates on `Idempotency-Key`. No PIN is ever printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/it/sms/fake_sms_gateway.rs"]
mod fake_sms_gateway;
mod figures;
// The test suite's PostgreSQL harness: the same server (`KEYSTATION_TEST_PG`), and no skipping.
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;

use fake_sms_gateway::FakeWebhook;
use keystation::clock::SystemClock;
use keystation::config::Config;
use keystation::domain::{DeliveryState, OrderState};
use keystation::station::batch::{BatchOptions, BatchProgress};
use keystation::station::delivery::ShipRequest;
use keystation::station::demo::{generated_orders, write_fixture_pictures};
use keystation::station::intake::ImportOptions;
use keystation::station::provision::{Phase, Progress, ProvisionReport, Step};
use keystation::station::{DeliveryFilter, Station};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const WEBHOOK_SECRET: &str = "bench-webhook-shared-secret";

fn env_size(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// `keystation init --dir DIR --generate-pins EXTRA...` (the real binary).
fn init_station(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keystation"))
        .arg("init")
        .arg("--dir")
        .arg(dir)
        .arg("--generate-pins")
        .args(extra)
        .env_remove("KEYSTATION_CONFIG")
        .env_remove("KEYSTATION_FAILPOINTS")
        .output()
        .expect("running keystation init");
    assert!(
        out.status.success(),
        "keystation init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join("station.toml");
    figures::register_operators(
        &config,
        &["bench-intake", "bench-reviewer", "bench-shipping"],
    );
    config
}

async fn open_station(config: &Path) -> Station {
    let cfg = Config::load(config).expect("loading station.toml");
    Station::open(cfg, Arc::new(SystemClock))
        .await
        .expect("opening the station")
}

/// `station` acting as the registered operator `name` (by the credential
/// `figures::register_operators` wrote).
fn as_operator(station: &Station, config: &Path, name: &str) -> Station {
    station
        .clone()
        .with_credential(Some(figures::credential(config, name)))
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// 1. Order import + validation.
// ---------------------------------------------------------------------------------------------

/// Generates `n` orders with their pictures in a fresh directory under `root`.
fn order_file(root: &Path, n: usize) -> PathBuf {
    let dir = root.join("applications");
    write_fixture_pictures(&dir).expect("writing the fixture pictures");
    generated_orders(&dir, n).expect("generating orders")
}

/// Checks that all `n` orders of the run ended in `state`, then closes the station.
async fn close_with_every_order_in(station: &Station, state: OrderState, n: usize) {
    let orders = station.list_orders(Some(state)).await.unwrap();
    assert_eq!(orders.len(), n, "every order {state:?}");
    station.close().await;
}

/// Imports `n` generated orders into a fresh station; returns the time of `import_orders`.
async fn bench_import(config: &Path, root: &Path, n: usize) -> Duration {
    let station = open_station(config).await;
    let file = order_file(root, n);
    let opts = ImportOptions {
        operator: Some("bench-intake".into()),
        uscc_checksum_override: None,
    };
    let t = Instant::now();
    let report = as_operator(&station, config, "bench-intake")
        .import_orders(&file, &opts)
        .await
        .expect("importing the generated orders");
    let elapsed = t.elapsed();
    assert_eq!(report.imported.len(), n, "every order imported");
    close_with_every_order_in(&station, OrderState::Submitted, n).await;
    elapsed
}

// ---------------------------------------------------------------------------------------------
// 2. SMS delivery.
// ---------------------------------------------------------------------------------------------

struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str, _: Step, _: Phase) {}
}

impl BatchProgress for Quiet {
    fn begin(&self, _: usize) {}
    fn finished(&self, order_no: &str, result: &Result<ProvisionReport, String>) {
        if let Err(e) = result {
            eprintln!("provisioning {order_no} failed: {e}");
        }
    }
}

/// The generated orders, all with an SMS channel (corporate transfers become legal-rep phone).
fn sms_order_file(root: &Path, n: usize) -> PathBuf {
    let file = order_file(root, n);
    let mut orders: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for o in orders.as_array_mut().unwrap() {
        if o["auth_method"] == "corporate_transfer" {
            o["auth_method"] = json!("legal_rep_phone");
            o.as_object_mut().unwrap().remove("corporate_account");
        }
    }
    std::fs::write(&file, serde_json::to_vec(&orders).unwrap()).unwrap();
    file
}

struct SmsFigures {
    setup: Duration,
    deliver: Duration,
    /// The most requests the gateway handled at once.
    max_in_flight: usize,
}

/// Provisions and ships `n` SMS orders, then times `deliver_run` until all are sent.
async fn bench_sms(config: &Path, root: &Path, n: usize) -> SmsFigures {
    let fake = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
    figures::use_webhook(config, &fake.url, WEBHOOK_SECRET);
    let station = open_station(config).await;
    let hsm = station.open_hsm().await.expect("opening the station's HSM");

    let setup = Instant::now();
    let file = sms_order_file(root, n);
    let report = as_operator(&station, config, "bench-intake")
        .import_orders(&file, &ImportOptions::default())
        .await
        .expect("importing");
    for no in &report.imported {
        as_operator(&station, config, "bench-reviewer")
            .approve_order(no, "bench-reviewer", None)
            .await
            .unwrap();
    }
    let summary = as_operator(&station, config, "bench-reviewer")
        .provision_batch(
            &hsm,
            BatchOptions {
                workers: 2,
                limit: None,
            },
            Arc::new(Quiet),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .expect("provisioning");
    assert_eq!(summary.ok.len(), n, "every order provisioned");
    for (i, no) in report.imported.iter().enumerate() {
        let shipped = as_operator(&station, config, "bench-shipping")
            .ship(&ShipRequest {
                order_no: no.clone(),
                tracking_no: format!("SF{:010}", i + 1),
                carrier: None,
                operator: Some("bench-shipping".into()),
            })
            .await
            .expect("shipping");
        assert!(shipped.delivery_id.is_some(), "{no}: no delivery queued");
    }
    // Every CLI command anchors the audit trail when it ends; the set-up calls the station
    // directly, so it anchors once here. Otherwise the delivery pass timed below would verify
    // and anchor the set-up's records (about 22 per order) as well as its own.
    station
        .anchor_audit(&hsm)
        .await
        .expect("anchoring the set-up's audit records");
    let setup = setup.elapsed();

    let channels = station.delivery_channels().expect("building the channels");
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let run = station
        .deliver_run(&hsm, &channels, true, stop_rx)
        .await
        .expect("deliver run");
    let deliver = t.elapsed();

    // Correctness: every delivery confirmed once, every message at the gateway exactly once.
    assert_eq!(run.events.len(), n, "one state change per delivery");
    let confirmed = station
        .delivery_status(&DeliveryFilter {
            order_no: None,
            state: Some(DeliveryState::Confirmed),
        })
        .await
        .unwrap();
    assert_eq!(confirmed.len(), n, "every delivery confirmed");
    let received = fake.received();
    assert_eq!(received.len(), n, "every message reached the gateway");
    assert_eq!(fake.requests(), n, "no message sent twice");
    assert_eq!(fake.rejected_signatures(), 0);
    close_with_every_order_in(&station, OrderState::PinDelivered, n).await;
    SmsFigures {
        setup,
        deliver,
        max_in_flight: fake.max_in_flight(),
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n_orders = env_size("KEYSTATION_BENCH_ORDERS", if bench { 2000 } else { 20 });
    let n_messages = env_size("KEYSTATION_BENCH_MESSAGES", if bench { 1000 } else { 20 });
    assert!(n_orders > 0 && n_messages > 0, "sizes must be positive");
    let mode = if bench { "bench" } else { "smoke" };

    // Databases on disk; SoftHSM token directory of the SMS station on /dev/shm.
    let disk = tempfile::Builder::new()
        .prefix("ks-bench-")
        .tempdir()
        .unwrap();
    let shm_root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let shm = tempfile::Builder::new()
        .prefix("ks-bench-")
        .tempdir_in(&shm_root)
        .unwrap();

    // The SMS station first: SoftHSM reads SOFTHSM2_CONF once, when the module is loaded, and
    // the variable must be set before any other thread exists.
    let sms_db = disk.path().join("sms-station.db");
    let sms_config = init_station(
        &shm.path().join("sms"),
        &[
            "--database-url",
            &format!("sqlite://{}?mode=rwc", sms_db.display()),
        ],
    );
    let softhsm_conf = shm.path().join("sms/softhsm2.conf");
    // SAFETY: no other thread exists yet (the runtime is built below); the value is a path.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &softhsm_conf);
    }
    let sqlite_config = init_station(&disk.path().join("import-sqlite"), &[]);

    let (rt, load) = figures::start();
    println!(
        "throughput ({mode}): {n_orders} orders, {n_messages} messages, {} CPU(s), load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let results = rt.block_on(async {
        let sqlite =
            bench_import(&sqlite_config, &disk.path().join("orders-sqlite"), n_orders).await;

        let pg = {
            let db = pg::PgDatabase::create().await;
            let config = init_station(&disk.path().join("import-pg"), &["--database-url", &db.url]);
            bench_import(&config, &disk.path().join("orders-pg"), n_orders).await
        };

        let sms = bench_sms(&sms_config, &disk.path().join("orders-sms"), n_messages).await;
        (sqlite, pg, sms)
    });
    let (sqlite, pg, sms) = results;

    let mut rows = vec![(
        "import + validation, SQLite".to_string(),
        n_orders,
        sqlite,
        "orders/s",
    )];
    rows.push((
        "import + validation, PostgreSQL".to_string(),
        n_orders,
        pg,
        "orders/s",
    ));
    rows.push((
        "SMS delivery, webhook (loopback)".to_string(),
        n_messages,
        sms.deliver,
        "messages/s",
    ));

    println!(
        "{:<36} {:>8} {:>10} {:>14}",
        "benchmark", "items", "seconds", "rate"
    );
    for (name, n, t, unit) in &rows {
        println!(
            "{name:<36} {n:>8} {:>10.3} {:>9.0} {unit}",
            t.as_secs_f64(),
            rate(*n, *t)
        );
    }
    println!(
        "(SMS set-up: import, approval, SoftHSM provisioning and shipping of {n_messages} orders took {:.1} s, not measured above; \
         at most {} requests at the gateway at once)",
        sms.setup.as_secs_f64(),
        sms.max_in_flight
    );

    let figure = |n: usize, t: Duration| json!({"items": n, "seconds": t.as_secs_f64(), "per_second": rate(n, t)});
    let report = json!({
        "mode": mode,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "loadavg_at_start": load.trim(),
        "import_sqlite": figure(n_orders, sqlite),
        "import_postgres": figure(n_orders, pg),
        "sms_webhook": figure(n_messages, sms.deliver),
        "sms_setup_seconds": sms.setup.as_secs_f64(),
        "sms_gateway_max_in_flight": sms.max_in_flight,
    });
    figures::write("throughput", bench, &report);
}
