//! A hub of slow keys (issue 19, item 4): real USB keys spend hundreds of milliseconds on a key
//! generation and tens on a signature or a PIN check, so a desk with a hub of 16 keys gets its
//! throughput from keeping all 16 busy at once. This bench provisions the same number of keys
//! with 1 worker and with one worker per key, on the project's test token (`libkstoken`) with
//! its latency mode on, and reports tokens/s of each and their ratio.
//!
//! The keys' device time (`[latency]` of the station's `kstoken.conf`): a signature 80 ms and a
//! PIN check 10 ms, the published figures quoted in `tokens/kstoken/kstoken.conf.example`, and a
//! key generation of 300 ms, assumed (no published figure for an SM2 key was found). The CA's
//! token, on the same module here, stands for an HSM partition and spends none
//! (`none_for_labels`); the vault stays on SoftHSM. Each key does one thing at a time, as a real
//! one does; different keys work at once.
//!
//! `cargo bench --bench hub` runs it (keys: `KEYSTATION_BENCH_HUB_KEYS`, default 16). Without
//! `--bench` (as `cargo test --all-targets` runs every target) it is a smoke pass: 3 keys, a few
//! milliseconds of latency, every order checked Provisioned, no figure claimed.
//!
//! Each measurement runs in its own child process on a new station directory, so the module's
//! configuration (read once, at `C_Initialize`) is the one written for it.

#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
mod figures;

use figures::recorder::{Recorder, Timings, median};
use keystation::config::Config;
use keystation::domain::OrderState;
use keystation::station::Station;
use keystation::station::batch::BatchOptions;
use keystation::station::intake::ImportOptions;
use keystation::station::provision::Step;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.iter().position(|a| a == "--child") {
        Some(i) => child(&args[i + 1..]),
        None => parent(args.iter().any(|a| a == "--bench")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A key's device time per operation, ms.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Latency {
    keygen_ms: u64,
    sign_ms: u64,
    login_ms: u64,
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    keys: usize,
    workers: usize,
    latency: Latency,
}

/// What a child reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Samples {
    /// Per key, from its order's claim to Provisioned, ms.
    per_token_ms: Vec<f64>,
    /// The batch, s.
    wall_s: f64,
    /// Median time per journaled step, ms.
    step_median_ms: Vec<(String, f64)>,
}

fn env_usize(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|_| format!("{name}={v}: not a number"))?),
        Err(_) => Ok(default),
    }
}

fn parent(full: bool) -> Result<(), BoxError> {
    let (keys, latency) = if full {
        (
            env_usize("KEYSTATION_BENCH_HUB_KEYS", 16)?.max(1),
            Latency {
                keygen_ms: 300,
                sign_ms: 80,
                login_ms: 10,
            },
        )
    } else {
        (
            3,
            Latency {
                keygen_ms: 6,
                sign_ms: 3,
                login_ms: 1,
            },
        )
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut rows = Vec::new();
    for workers in [1, keys] {
        let plan = Plan {
            keys,
            workers,
            latency,
        };
        let s = measure(&plan)?;
        if s.per_token_ms.len() != keys {
            return Err(format!(
                "{workers} worker(s): {} of {keys} keys timed",
                s.per_token_ms.len()
            )
            .into());
        }
        rows.push((plan, s));
    }
    if std::env::var_os("KEYSTATION_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(stores_root());
    }
    let tokens_per_s = |s: &Samples| s.per_token_ms.len() as f64 / s.wall_s;
    let one = tokens_per_s(&rows[0].1);
    let all = tokens_per_s(&rows[1].1);
    let report = json!({
        "bench": "hub",
        "load_at_start": load.trim(),
        "claimed": full,
        "keys": keys,
        "latency_ms": latency,
        "rows": rows.iter().map(|(p, s)| json!({
            "workers": p.workers,
            "wall_s": s.wall_s,
            "tokens_per_s": tokens_per_s(s),
            "per_token_median_ms": median(&mut s.per_token_ms.clone()),
            "step_median_ms": s.step_median_ms,
        })).collect::<Vec<_>>(),
        "speedup": all / one,
    });
    figures::write("hub", full, &report);
    if full {
        println!(
            "{keys} slow keys (keygen {} ms, sign {} ms, login {} ms):",
            latency.keygen_ms, latency.sign_ms, latency.login_ms
        );
        for (p, s) in &rows {
            println!(
                "  {:>2} worker(s): {:.2} tokens/s, median {:.0} ms per key, batch {:.2} s",
                p.workers,
                tokens_per_s(s),
                median(&mut s.per_token_ms.clone()),
                s.wall_s
            );
            let steps: Vec<String> = s
                .step_median_ms
                .iter()
                .map(|(n, ms)| format!("{n} {ms:.0}"))
                .collect();
            println!("      median ms per step: {}", steps.join(", "));
        }
        println!("  {keys} workers / 1 worker: {:.1}x", all / one);
    } else {
        println!(
            "hub smoke: {keys} keys provisioned with 1 and {keys} workers (no figure claimed)"
        );
    }
    Ok(())
}

fn stores_root() -> PathBuf {
    // tmpfs: the keys' device time is the subject, not the disk's.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join(format!("keystation-bench-hub-{}", std::process::id()))
    } else {
        std::env::temp_dir().join(format!("keystation-bench-hub-{}", std::process::id()))
    }
}

/// A new station on the test token, its keys slowed down, and one measurement in a child.
fn measure(plan: &Plan) -> Result<Samples, BoxError> {
    let dir = stores_root().join(format!("w{}", plan.workers));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.parent().ok_or("no parent")?)?;
    figures::ok(
        figures::keystation()
            .args(["init", "--generate-pins", "--station-id", "hub"])
            .args(["--ca-algorithm", "sm2", "--key-algorithm", "sm2"])
            .arg("--pkcs11-module")
            .arg(kstoken_path()?)
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null()),
    );
    let config = dir.join("station.toml");
    figures::register_operators(&config, &["hub-intake", "hub-reviewer"]);
    let cfg = Config::load(&config)?;
    // The module's file, as init wrote it, with the keys' device time added.
    let conf = dir.join("kstoken.conf");
    let mut text = std::fs::read_to_string(&conf)?;
    if text.contains("[latency]") {
        return Err(format!("{} already has a [latency] section", conf.display()).into());
    }
    let l = plan.latency;
    text.push_str(&format!(
        "\n[latency]\nkeygen_ms = {}\nsign_ms = {}\nlogin_ms = {}\nnone_for_labels = [{:?}]\n",
        l.keygen_ms, l.sign_ms, l.login_ms, cfg.ca.token_label
    ));
    std::fs::write(&conf, text)?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(serde_json::to_string(plan)?)
        .arg(&dir)
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .env("KSTOKEN_CONF", &conf)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("the child of {} worker(s) failed", plan.workers).into());
    }
    let samples = serde_json::from_slice(&out.stdout)?;
    if std::env::var_os("KEYSTATION_BENCH_KEEP").is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(samples)
}

/// The test token built beside this benchmark (`kstoken` is a dev-dependency).
fn kstoken_path() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let so = exe
        .parent()
        .ok_or("the benchmark has no directory")?
        .join("libkstoken.so");
    if !so.exists() {
        return Err(format!("{} is missing (cargo build -p kstoken)", so.display()).into());
    }
    Ok(so)
}

/// The child: import and approve `keys` orders, then one batch of `workers` workers over them.
fn child(args: &[String]) -> Result<(), BoxError> {
    let [plan, dir] = args else {
        return Err(format!("bad child arguments {args:?}").into());
    };
    let plan: Plan = serde_json::from_str(plan)?;
    let dir = Path::new(dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let samples = rt.block_on(async {
        let cfg = Config::load(&dir.join("station.toml"))?;
        let station = Station::open(cfg, Arc::new(keystation::clock::SystemClock)).await?;
        let config = dir.join("station.toml");
        let as_operator = |name| {
            station
                .clone()
                .with_credential(Some(figures::credential(&config, name)))
        };
        let apps = dir.join("applications");
        keystation::station::demo::write_fixture_pictures(&apps)?;
        let file = keystation::station::demo::generated_orders(&apps, plan.keys)?;
        let options = ImportOptions {
            operator: Some("hub-intake".into()),
            uscc_checksum_override: None,
        };
        as_operator("hub-intake")
            .import_orders(&file, &options)
            .await?;
        for o in station.list_orders(Some(OrderState::Submitted)).await? {
            as_operator("hub-reviewer")
                .approve_order(&o.order_no, "hub-reviewer", Some("benchmark"))
                .await?;
        }
        let hsm = station.open_hsm().await?;
        let recorder = Arc::new(Recorder(Mutex::new(Timings::default())));
        let all = Instant::now();
        let summary = as_operator("hub-reviewer")
            .provision_batch(
                &hsm,
                BatchOptions {
                    workers: plan.workers,
                    limit: None,
                },
                recorder.clone(),
                Arc::new(AtomicBool::new(false)),
            )
            .await?;
        let wall_s = all.elapsed().as_secs_f64();
        let mut t = recorder.with(std::mem::take);
        if !summary.failed.is_empty() || summary.ok.len() != plan.keys {
            return Err(format!(
                "{} of {} provisioned; failed: {:?}",
                summary.ok.len(),
                plan.keys,
                t.failed
            )
            .into());
        }
        let provisioned = station
            .list_orders(Some(OrderState::Provisioned))
            .await?
            .len();
        if provisioned != plan.keys {
            return Err(format!("{provisioned} of {} orders Provisioned", plan.keys).into());
        }
        let steps: Vec<(String, f64)> = Step::AFTER_CLAIM
            .iter()
            .filter_map(|s| Some((s.name().to_string(), median(t.steps.get_mut(s)?))))
            .collect();
        Ok::<_, BoxError>(Samples {
            per_token_ms: t.per_token_ms,
            wall_s,
            step_median_ms: steps,
        })
    })?;
    println!("{}", serde_json::to_string(&samples)?);
    Ok(())
}
