//! Provisioning benchmark: keystation's full job against the raw PKCS#11 floor and against an
//! operator's shell pipeline (`benches/operator.sh`: pkcs11-tool + openssl + the libp11
//! engine), per token, on fresh SoftHSM2 stores on tmpfs and on disk, EC P-256 and RSA-2048,
//! in ONE run. See BENCHMARKS.md for how to read the figures.
//!
//! `cargo bench --bench provision` runs it in full (sizes from `KEYSTATION_BENCH_TOKENS`,
//! default 50; `KEYSTATION_BENCH_PREFILL`, default 500; `KEYSTATION_BENCH_BATCH`, default 1000).
//! Without `--bench` (as `cargo test --all-targets` runs every target) it is a smoke pass:
//! tiny sizes, every path exercised and checked, no figure claimed.
//!
//! Every measurement runs in its own child process (this executable again, `--child ...`) on a
//! new station directory — its own SoftHSM store (CA and vault tokens made by `keystation init`),
//! its own SQLite database — so each starts with one `C_Initialize` on a fresh store, as a
//! station process does.

#[allow(dead_code)] // the test suite's gateway, of which the full path uses a part
#[path = "../tests/it/sms/fake_sms_gateway.rs"]
mod fake_sms_gateway;
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // operators and the SMS webhook
mod figures;
#[path = "provision/full_path.rs"]
mod full_path;

use figures::recorder::{Recorder, Timings, median, rss_kib};
use keystation::config::{Config, KeyAlgorithm};
use keystation::domain::pin::{PinAlphabet, PinPolicy};
use keystation::domain::{OrderState, Pin, SoPin};
use keystation::station::Station;
use keystation::station::batch::BatchOptions;
use keystation::station::hsm::{read_certificate, read_pin_file};
use keystation::station::intake::ImportOptions;
use keystation::station::provision::Step;
use keystation::token::Pkcs11Module;
use keystation::token::floor::{FloorCa, FloorInput, prefill, provision_floor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use zeroize::Zeroizing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const KEYSTATION: &str = env!("CARGO_BIN_EXE_keystation");
const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
/// What a seal holds besides its picture: the maker's and the company's certificates, the
/// fields, the signature (about 2 KB for EC). The floor's and the script's data objects are the
/// seals' pictures plus this (see BENCHMARKS.md).
const SEAL_OVERHEAD: usize = 2 * 1024;
/// The bench orders' seal pictures (the fixtures): a company seal (800x800 PNG, 62 KB) and a
/// legal representative's (400x400 JPEG, 15 KB), as an applicant scans them.
const SEAL_PICTURES: [(&str, &str); 2] = [
    ("company", "seals/company.png"),
    ("legal_rep", "seals/legal_rep.jpg"),
];

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

// ---------------------------------------------------------------------------------------------
// What is measured.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Medium {
    Tmpfs,
    Disk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Subject {
    Floor,
    Keystation,
    Script,
    /// One order at a time from import to PinDelivered (`full_path`).
    FullPath,
}

/// The PKCS#11 module of the CA's and customers' keys (the vault stays on SoftHSM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Module {
    #[default]
    Softhsm,
    /// The project's test token (`tokens/kstoken`, `libkstoken.so`): the only module here that
    /// signs SM2, so the one where SM2 and P-256 are compared.
    Kstoken,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    subject: Subject,
    module: Module,
    algorithm: String,
    medium: Medium,
    /// Tokens already in the store before the measured ones.
    prefill: usize,
    tokens: usize,
    workers: usize,
}

impl Plan {
    fn name(&self) -> String {
        let who = match self.subject {
            Subject::Keystation => format!("keystation-{}w", self.workers),
            Subject::FullPath => format!("full-path-{}w", self.workers),
            s => format!("{s:?}").to_lowercase(),
        };
        let on = match self.module {
            Module::Softhsm => "",
            Module::Kstoken => "/kstoken",
        };
        format!(
            "{who}/{}/{:?}/prefill{}{on}",
            self.algorithm, self.medium, self.prefill
        )
        .to_lowercase()
    }
}

/// What a child reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Samples {
    /// Per-token time, ms (keystation: from a worker taking the order to the order Provisioned).
    per_token_ms: Vec<f64>,
    /// Whole run, s.
    wall_s: f64,
    /// Peak resident set of the child, KiB.
    peak_rss_kib: u64,
    /// (tokens done, resident KiB) along the run (keystation only).
    rss_kib: Vec<(usize, u64)>,
    /// Median time per journaled step, ms (keystation only).
    step_median_ms: Vec<(String, f64)>,
    /// Skipped, and why.
    skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Stats {
    n: usize,
    median_ms: f64,
    p95_ms: f64,
    min_ms: f64,
    max_ms: f64,
    tokens_per_s: f64,
}

fn stats(s: &Samples) -> Option<Stats> {
    if s.per_token_ms.is_empty() {
        return None;
    }
    let mut v = s.per_token_ms.clone();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some(Stats {
        n: v.len(),
        median_ms: at(0.5),
        p95_ms: at(0.95),
        min_ms: v[0],
        max_ms: v[v.len() - 1],
        tokens_per_s: if s.wall_s > 0.0 {
            v.len() as f64 / s.wall_s
        } else {
            0.0
        },
    })
}

// ---------------------------------------------------------------------------------------------
// The parent: plans, station directories, the table and the JSON.

fn env_usize(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number"))?),
        Err(_) => Ok(default),
    }
}

fn parent(full: bool) -> Result<(), BoxError> {
    let (tokens, prefill_n, batch) = if full {
        (
            env_usize("KEYSTATION_BENCH_TOKENS", 50)?,
            env_usize("KEYSTATION_BENCH_PREFILL", 500)?,
            env_usize("KEYSTATION_BENCH_BATCH", 1000)?,
        )
    } else {
        (3, 5, 6)
    };
    let algorithms: &[&str] = if full {
        &["ecdsa-p256", "rsa-2048"]
    } else {
        &["ecdsa-p256"]
    };
    let media: &[Medium] = if full {
        &[Medium::Tmpfs, Medium::Disk]
    } else {
        &[Medium::Tmpfs]
    };
    let script_tools = script_tools();
    if let Err(why) = &script_tools {
        println!("script: SKIPPED, {why}");
    }

    let mut plans = Vec::new();
    for alg in algorithms {
        for &medium in media {
            let p = |subject, workers, prefill| Plan {
                subject,
                module: Module::Softhsm,
                algorithm: alg.to_string(),
                medium,
                prefill,
                tokens,
                workers,
            };
            plans.push(p(Subject::Floor, 1, 0));
            plans.push(p(Subject::Keystation, 1, 0));
            if *alg == "ecdsa-p256" && medium == Medium::Tmpfs {
                plans.push(p(Subject::FullPath, 1, 0));
            }
            plans.push(p(Subject::Keystation, 2, 0));
            plans.push(p(Subject::Script, 1, 0));
            if *alg == "ecdsa-p256" {
                plans.push(p(Subject::Floor, 1, prefill_n));
                plans.push(p(Subject::Keystation, 1, prefill_n));
                plans.push(p(Subject::Script, 1, prefill_n));
            }
        }
    }
    // SM2 against P-256, both on the test token (the only module here that signs SM2).
    for alg in ["sm2", "ecdsa-p256"] {
        plans.push(Plan {
            subject: Subject::Keystation,
            module: Module::Kstoken,
            algorithm: alg.into(),
            medium: Medium::Tmpfs,
            prefill: 0,
            tokens,
            workers: 1,
        });
    }
    let memory_plan = Plan {
        subject: Subject::Keystation,
        module: Module::Softhsm,
        algorithm: "ecdsa-p256".into(),
        medium: Medium::Tmpfs,
        prefill: 0,
        tokens: batch,
        workers: 2,
    };

    let mut results: Vec<(Plan, Samples)> = Vec::new();
    let started = Instant::now();
    for plan in plans.iter().chain([&memory_plan]) {
        let name = plan.name();
        eprint!("bench: {name:<44} ");
        let samples = if plan.subject == Subject::Script {
            match &script_tools {
                Ok(()) => measure(plan)?,
                Err(why) => Samples {
                    skipped: Some(why.clone()),
                    ..Samples::default()
                },
            }
        } else {
            measure(plan)?
        };
        match (stats(&samples), &samples.skipped) {
            (_, Some(why)) => eprintln!("skipped: {why}"),
            (Some(s), None) => eprintln!(
                "median {:8.1} ms  p95 {:8.1}  {:7.1} tokens/s",
                s.median_ms, s.p95_ms, s.tokens_per_s
            ),
            (None, None) => return Err(format!("{name}: no sample").into()),
        }
        if !full && samples.skipped.is_none() && samples.per_token_ms.len() != plan.tokens {
            return Err(format!(
                "{name}: {} of {} tokens measured",
                samples.per_token_ms.len(),
                plan.tokens
            )
            .into());
        }
        results.push((plan.clone(), samples));
    }
    let report = report(&results, &memory_plan, full);
    print_report(&report);
    let out = PathBuf::from(MANIFEST).join("target/bench");
    std::fs::create_dir_all(&out)?;
    let file = out.join(if full {
        "provision.json"
    } else {
        "provision-smoke.json"
    });
    let mut doc = report;
    doc["total_s"] = json!(started.elapsed().as_secs_f64());
    doc["machine"] = machine();
    std::fs::write(&file, serde_json::to_vec_pretty(&doc)?)?;
    println!("\nwritten: {}", file.display());
    if !full {
        println!("(smoke pass: sizes too small for figures; run `cargo bench --bench provision`)");
    }
    Ok(())
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let softhsm = Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "softhsm": softhsm,
        "loadavg_at_end": read("/proc/loadavg").trim(),
    })
}

fn medium_root(medium: Medium) -> PathBuf {
    match medium {
        Medium::Tmpfs => PathBuf::from("/dev/shm/keystation-bench"),
        Medium::Disk => PathBuf::from(MANIFEST).join("target/bench/stores"),
    }
}

/// A new station (CA and vault tokens, database) for one measurement.
fn new_station(plan: &Plan) -> Result<PathBuf, BoxError> {
    let root = medium_root(plan.medium);
    std::fs::create_dir_all(&root)?;
    let dir = root.join(plan.name().replace('/', "_"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let out = Command::new(KEYSTATION)
        .args(["init", "--generate-pins", "--station-id", "bench"])
        .args(["--ca-algorithm", &plan.algorithm])
        .args(["--key-algorithm", &plan.algorithm])
        .args(match plan.module {
            Module::Softhsm => Vec::new(),
            Module::Kstoken => vec!["--pkcs11-module".into(), kstoken_path()?],
        })
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "keystation init failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    figures::register_operators(
        &dir.join("station.toml"),
        &["bench-intake", "bench-reviewer"],
    );
    Ok(dir)
}

/// The test token built beside this benchmark (`kstoken` is a dev-dependency).
fn kstoken_path() -> Result<std::ffi::OsString, BoxError> {
    let exe = std::env::current_exe()?;
    let so = exe
        .parent()
        .ok_or("the benchmark has no directory")?
        .join("libkstoken.so");
    if !so.exists() {
        return Err(format!("{} is missing (cargo build -p kstoken)", so.display()).into());
    }
    Ok(so.into_os_string())
}

fn run_child(dir: &Path, args: &[String]) -> Result<Samples, BoxError> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--child")
        .args(args)
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        // Read only when the station's module is the test token (its init wrote this file).
        .env("KSTOKEN_CONF", dir.join("kstoken.conf"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("child {} failed", args.join(" ")).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn measure(plan: &Plan) -> Result<Samples, BoxError> {
    let dir = new_station(plan)?;
    let d = dir.display().to_string();
    if plan.prefill > 0 {
        run_child(
            &dir,
            &["prefill".into(), d.clone(), plan.prefill.to_string()],
        )?;
    }
    let samples = match plan.subject {
        Subject::Script => script(plan, &dir)?,
        _ => run_child(&dir, &[serde_json::to_string(plan)?, d])?,
    };
    if std::env::var_os("KEYSTATION_BENCH_KEEP").is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(samples)
}

fn script_path() -> PathBuf {
    PathBuf::from(MANIFEST).join("benches/operator.sh")
}

fn script_tools() -> Result<(), String> {
    let out = Command::new("bash")
        .arg(script_path())
        .arg("--check-tools")
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The operator's pipeline, one process tree per token, against the station's CA token.
fn script(plan: &Plan, dir: &Path) -> Result<Samples, BoxError> {
    let cfg = Config::load(&dir.join("station.toml"))?;
    let data = dir.join("seal-data.bin");
    std::fs::write(&data, data_objects()?.concat())?;
    let work = dir.join("script-work");
    std::fs::create_dir_all(&work)?;
    let module = cfg
        .pkcs11
        .module
        .clone()
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    let alg = match plan.algorithm.as_str() {
        "rsa-2048" => "rsa",
        _ => "ec",
    };
    let mut samples = Samples::default();
    let all = Instant::now();
    for i in 0..plan.tokens {
        let t = Instant::now();
        let out = Command::new("bash")
            .arg(script_path())
            .arg("--module")
            .arg(&module)
            .args([
                "--ca-token",
                &cfg.ca.token_label,
                "--ca-key",
                &cfg.ca.key_label,
            ])
            .arg("--ca-cert")
            .arg(cfg.path(&cfg.ca.certificate))
            .arg("--ca-pin-file")
            .arg(cfg.path(&cfg.pkcs11.pin_file))
            .args(["--alg", alg])
            .arg("--data")
            .arg(&data)
            .arg("--work")
            .arg(&work)
            .args(["--label", &format!("SCRIPT-{i:05}")])
            .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
            .stdin(Stdio::null())
            .output()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            return Err(format!(
                "operator.sh failed on token {i}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        samples.per_token_ms.push(ms);
    }
    samples.wall_s = all.elapsed().as_secs_f64();
    Ok(samples)
}

/// One data object per seal of the bench's orders, each the size of that seal: its picture as
/// keystation normalises it, plus [`SEAL_OVERHEAD`]. Incompressible filler.
fn data_objects() -> Result<Vec<Vec<u8>>, BoxError> {
    let fixtures = Path::new(MANIFEST).join("fixtures");
    SEAL_PICTURES
        .iter()
        .map(|(_, file)| {
            let name = Path::new(file).file_name().ok_or("picture name")?;
            let picture = std::fs::read(fixtures.join("seals").join(name))?;
            let len = keystation::seal::normalize_seal_picture(&picture)?
                .png
                .len()
                + SEAL_OVERHEAD;
            Ok((0..len)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect())
        })
        .collect()
}

fn find(results: &[(Plan, Samples)], f: impl Fn(&Plan) -> bool) -> Option<(&Plan, Stats)> {
    results
        .iter()
        .find(|(p, s)| f(p) && s.skipped.is_none())
        .and_then(|(p, s)| stats(s).map(|st| (p, st)))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn report(results: &[(Plan, Samples)], memory: &Plan, full: bool) -> Value {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut groups: Vec<(String, Medium)> = Vec::new();
    for (p, _) in results.iter().filter(|(p, _)| p.module == Module::Softhsm) {
        if !groups.contains(&(p.algorithm.clone(), p.medium)) {
            groups.push((p.algorithm.clone(), p.medium));
        }
    }
    for (p, s) in results {
        if p.tokens == memory.tokens && p.workers == memory.workers && p.subject == memory.subject {
            continue;
        }
        rows.push(json!({
            "name": p.name(), "subject": p.subject, "algorithm": p.algorithm,
            "medium": p.medium, "prefill": p.prefill, "workers": p.workers,
            "stats": stats(s), "skipped": s.skipped, "peak_rss_kib": s.peak_rss_kib,
            "step_median_ms": s.step_median_ms,
        }));
    }
    for (alg, medium) in &groups {
        let get = |subject: Subject, workers: usize, prefill: usize| {
            find(results, |p| {
                p.subject == subject
                    && p.module == Module::Softhsm
                    && p.workers == workers
                    && p.prefill == prefill
                    && &p.algorithm == alg
                    && p.medium == *medium
                    && !(p.tokens == memory.tokens && p.workers == memory.workers)
            })
        };
        let floor = get(Subject::Floor, 1, 0).map(|(_, s)| s.median_ms);
        let ks1 = get(Subject::Keystation, 1, 0).map(|(_, s)| s);
        let ks2 = get(Subject::Keystation, 2, 0).map(|(_, s)| s);
        let script = get(Subject::Script, 1, 0).map(|(_, s)| s.median_ms);
        let full_path = get(Subject::FullPath, 1, 0).map(|(_, s)| s.median_ms);
        let prefill = results.iter().map(|(p, _)| p.prefill).max().unwrap_or(0);
        let ks_full = get(Subject::Keystation, 1, prefill)
            .filter(|_| prefill > 0)
            .map(|(_, s)| s.median_ms);
        let floor_full = get(Subject::Floor, 1, prefill)
            .filter(|_| prefill > 0)
            .map(|(_, s)| s.median_ms);
        let script_full = get(Subject::Script, 1, prefill)
            .filter(|_| prefill > 0)
            .map(|(_, s)| s.median_ms);
        let ks1_median = ks1.as_ref().map(|s| s.median_ms);
        ratios.push(json!({
            "algorithm": alg, "medium": medium,
            "keystation_over_floor": ratio(ks1_median, floor),
            "script_over_keystation": ratio(script, ks1_median),
            "full_path_over_keystation": ratio(full_path, ks1_median),
            "two_workers_throughput_gain": ratio(ks2.as_ref().map(|s| s.tokens_per_s), ks1.as_ref().map(|s| s.tokens_per_s)),
            "prefilled_store": if prefill > 0 && ks_full.is_some() { json!({
                "tokens_already_in_store": prefill,
                "keystation_full_over_empty": ratio(ks_full, ks1_median),
                "floor_full_over_empty": ratio(floor_full, floor),
                "script_full_over_empty": ratio(script_full, script),
                "script_full_over_keystation_full": ratio(script_full, ks_full),
            }) } else { Value::Null },
        }));
    }
    let mem = results
        .iter()
        .find(|(p, _)| {
            p.tokens == memory.tokens
                && p.workers == memory.workers
                && p.subject == memory.subject
                && p.medium == memory.medium
        })
        .map(|(p, s)| {
            json!({
                "tokens": p.tokens, "workers": p.workers, "algorithm": p.algorithm,
                "medium": p.medium, "peak_rss_kib": s.peak_rss_kib, "rss_kib": s.rss_kib,
                "stats": stats(s),
            })
        });
    let on_test_token = |alg: &str| {
        find(results, |p| {
            p.module == Module::Kstoken && p.algorithm == alg
        })
        .map(|(_, s)| s)
    };
    let (sm2, p256) = (on_test_token("sm2"), on_test_token("ecdsa-p256"));
    let test_token = json!({
        "sm2_median_ms": sm2.as_ref().map(|s| s.median_ms),
        "ecdsa_p256_median_ms": p256.as_ref().map(|s| s.median_ms),
        "sm2_over_p256": ratio(sm2.map(|s| s.median_ms), p256.map(|s| s.median_ms)),
    });
    json!({"full": full, "rows": rows, "ratios": ratios, "memory": mem, "test_token": test_token})
}

fn fmt_ratio(v: &Value) -> String {
    v.as_f64()
        .map(|r| format!("{r:.2}x"))
        .unwrap_or_else(|| "-".into())
}

fn print_report(r: &Value) {
    println!(
        "\n{:<44} {:>5} {:>10} {:>10} {:>19} {:>9}",
        "per token", "n", "median ms", "p95 ms", "min-max ms", "tokens/s"
    );
    for row in r["rows"].as_array().into_iter().flatten() {
        let name = row["name"].as_str().unwrap_or("");
        match row["stats"].as_object() {
            Some(s) => println!(
                "{:<44} {:>5} {:>10.1} {:>10.1} {:>19} {:>9.1}",
                name,
                s["n"],
                s["median_ms"].as_f64().unwrap_or(0.0),
                s["p95_ms"].as_f64().unwrap_or(0.0),
                format!(
                    "{:.1}-{:.1}",
                    s["min_ms"].as_f64().unwrap_or(0.0),
                    s["max_ms"].as_f64().unwrap_or(0.0)
                ),
                s["tokens_per_s"].as_f64().unwrap_or(0.0),
            ),
            None => println!(
                "{:<44} skipped: {}",
                name,
                row["skipped"].as_str().unwrap_or("")
            ),
        }
    }
    println!(
        "\n{:<11} {:<6} {:>10} {:>11} {:>10} {:>10} {:>13} {:>12} {:>13}",
        "algorithm",
        "store",
        "ks/floor",
        "script/ks",
        "path/ks",
        "2w gain",
        "ks full/empty",
        "script full",
        "script/ks full"
    );
    for x in r["ratios"].as_array().into_iter().flatten() {
        let pf = &x["prefilled_store"];
        println!(
            "{:<11} {:<6} {:>10} {:>11} {:>10} {:>10} {:>13} {:>12} {:>13}",
            x["algorithm"].as_str().unwrap_or(""),
            x["medium"].as_str().unwrap_or(""),
            fmt_ratio(&x["keystation_over_floor"]),
            fmt_ratio(&x["script_over_keystation"]),
            fmt_ratio(&x["full_path_over_keystation"]),
            fmt_ratio(&x["two_workers_throughput_gain"]),
            fmt_ratio(&pf["keystation_full_over_empty"]),
            fmt_ratio(&pf["script_full_over_empty"]),
            fmt_ratio(&pf["script_full_over_keystation_full"]),
        );
    }
    // The medians per step of the first row `pick` chooses, as one line.
    let steps_of = |pick: &dyn Fn(&Value) -> bool| {
        let row = r["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|row| pick(row))?;
        let line: Vec<String> = row["step_median_ms"]
            .as_array()?
            .iter()
            .filter_map(|s| Some(format!("{} {:.2}", s[0].as_str()?, s[1].as_f64()?)))
            .collect();
        Some(line.join(", "))
    };
    if let Some(line) = steps_of(&|row| {
        row["subject"] == "keystation"
            && row["workers"] == 1
            && row["prefill"] == 0
            && row["medium"] == "tmpfs"
    }) {
        println!("\nkeystation, EC P-256, tmpfs, 1 worker, median ms per step: {line}");
    }
    if let Some(line) = steps_of(&|row| row["subject"] == "full_path") {
        println!("full path, EC P-256, tmpfs, median ms per stage: {line}");
    }
    let t = &r["test_token"];
    println!(
        "\ntest token (libkstoken, no latency configured), keystation 1 worker, median ms per token: \
         SM2 {:.1}, P-256 {:.1}, SM2/P-256 {}",
        t["sm2_median_ms"].as_f64().unwrap_or(f64::NAN),
        t["ecdsa_p256_median_ms"].as_f64().unwrap_or(f64::NAN),
        fmt_ratio(&t["sm2_over_p256"]),
    );
    if let Some(m) = r["memory"].as_object() {
        let rss: Vec<String> = m["rss_kib"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some(format!("{}:{}", p[0].as_u64()?, p[1].as_u64()? / 1024)))
            .collect();
        println!(
            "\nmemory, batch of {} tokens ({} workers): peak RSS {} MiB; RSS (tokens done:MiB) {}",
            m["tokens"],
            m["workers"],
            m["peak_rss_kib"].as_u64().unwrap_or(0) / 1024,
            rss.join(" ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Children: one measurement each, in a process that starts on the station's store.

fn child(args: &[String]) -> Result<(), BoxError> {
    let samples = match args {
        [kind, dir, n] if kind == "prefill" => child_prefill(Path::new(dir), n.parse()?)?,
        [plan, dir] => {
            let plan: Plan = serde_json::from_str(plan)?;
            match plan.subject {
                Subject::Floor => child_floor(&plan, Path::new(dir))?,
                Subject::Keystation => child_keystation(&plan, Path::new(dir))?,
                Subject::FullPath => full_path::child_full_path(&plan, Path::new(dir))?,
                Subject::Script => return Err("the script runs from the parent".into()),
            }
        }
        _ => return Err(format!("bad child arguments {args:?}").into()),
    };
    println!("{}", serde_json::to_string(&samples)?);
    Ok(())
}

fn throwaway_pins() -> (SoPin, Pin) {
    let policy = PinPolicy {
        length: 16,
        alphabet: PinAlphabet::Unambiguous,
    };
    let mut rng = rand::TryRngCore::unwrap_err(rand::rngs::OsRng);
    let so = Pin::generate(&policy, &mut rng);
    let user = Pin::generate(&policy, &mut rng);
    (
        SoPin::from_secret(Zeroizing::new(so.expose_secret().to_string())),
        user,
    )
}

fn child_prefill(dir: &Path, n: usize) -> Result<Samples, BoxError> {
    let cfg = Config::load(&dir.join("station.toml"))?;
    let module = Pkcs11Module::load(cfg.pkcs11.module.as_deref())?;
    let (so, user) = throwaway_pins();
    let t = Instant::now();
    prefill(&module, n, &so, &user)?;
    Ok(Samples {
        wall_s: t.elapsed().as_secs_f64(),
        ..Samples::default()
    })
}

fn algorithm(name: &str) -> KeyAlgorithm {
    match name {
        "rsa-2048" => KeyAlgorithm::Rsa2048,
        _ => KeyAlgorithm::EcdsaP256,
    }
}

fn child_floor(plan: &Plan, dir: &Path) -> Result<Samples, BoxError> {
    let cfg = Config::load(&dir.join("station.toml"))?;
    let module = Pkcs11Module::load(cfg.pkcs11.module.as_deref())?;
    let station_pin = read_pin_file(&cfg.path(&cfg.pkcs11.pin_file))?;
    let ca = FloorCa::open(
        &module,
        &cfg.ca.token_label,
        &cfg.ca.key_label,
        &station_pin,
        cfg.ca.key_algorithm,
    )?;
    let cert = read_certificate(&cfg.path(&cfg.ca.certificate))?;
    let subject = x509_parser::parse_x509_certificate(&cert)
        .map_err(|e| format!("CA certificate: {e}"))?
        .1
        .subject()
        .as_raw()
        .to_vec();
    let data = data_objects()?;
    let data: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    // Sizes of the real thing: a CSR's to-be-signed part (~250 B EC, ~500 B RSA) and a unit
    // certificate's (~700 B).
    let csr_tbs = vec![0x30u8; 500];
    let cert_tbs = vec![0x30u8; 700];
    let mut samples = Samples::default();
    let all = Instant::now();
    for i in 0..plan.tokens {
        let (so, user) = throwaway_pins();
        let label = format!("FLOOR-{i:05}");
        let t = Instant::now();
        provision_floor(
            &module,
            &ca,
            &so,
            &user,
            &FloorInput {
                algorithm: algorithm(&plan.algorithm),
                label: &label,
                csr_tbs: &csr_tbs,
                cert_tbs: &cert_tbs,
                cert_der: &cert,
                cert_subject: &subject,
                data: &data,
            },
        )?;
        samples.per_token_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.wall_s = all.elapsed().as_secs_f64();
    samples.peak_rss_kib = rss_kib("VmHWM:");
    Ok(samples)
}

/// Orders for the benchmark: the demo's generated orders, each shaped like a real main-key order
/// with both seals ([`SEAL_PICTURES`]): two seal objects on every token.
fn bench_orders(apps: &Path, n: usize) -> Result<PathBuf, BoxError> {
    keystation::station::demo::write_fixture_pictures(apps)?;
    let file = keystation::station::demo::generated_orders(apps, n)?;
    let mut orders: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    for o in orders.as_array_mut().into_iter().flatten() {
        o["product"]["seal_service"] = json!("company_and_legal_rep");
        o["seals"] = SEAL_PICTURES
            .iter()
            .map(|(kind, picture)| json!({"kind": kind, "picture": picture}))
            .collect();
        let docs = o["documents"].as_array_mut().ok_or("documents")?;
        if !docs.iter().any(|d| d["kind"] == "seal_collection_form") {
            docs.push(
                json!({"kind": "seal_collection_form", "file": "docs/seal_collection_form.png"}),
            );
        }
    }
    std::fs::write(&file, serde_json::to_vec(&orders)?)?;
    Ok(file)
}

fn child_keystation(plan: &Plan, dir: &Path) -> Result<Samples, BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let cfg = Config::load(&dir.join("station.toml"))?;
        let station = Station::open(cfg, Arc::new(keystation::clock::SystemClock)).await?;
        let config = dir.join("station.toml");
        let as_operator = |name| {
            station
                .clone()
                .with_credential(Some(figures::credential(&config, name)))
        };
        let file = bench_orders(&dir.join("applications"), plan.tokens)?;
        as_operator("bench-intake")
            .import_orders(
                &file,
                &ImportOptions {
                    operator: Some("bench-intake".into()),
                    uscc_checksum_override: None,
                },
            )
            .await?;
        for o in station.list_orders(Some(OrderState::Submitted)).await? {
            as_operator("bench-reviewer")
                .approve_order(&o.order_no, "bench-reviewer", Some("benchmark"))
                .await?;
        }
        let hsm = station.open_hsm().await?;
        let recorder = Arc::new(Recorder(Mutex::new(Timings {
            sample_every: (plan.tokens / 10).max(1),
            ..Timings::default()
        })));
        let all = Instant::now();
        let summary = as_operator("bench-reviewer")
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
        if !summary.failed.is_empty() || summary.ok.len() != plan.tokens {
            return Err(format!(
                "{} of {} provisioned; failed: {:?}; not started: {}",
                summary.ok.len(),
                plan.tokens,
                t.failed,
                summary.not_started.len()
            )
            .into());
        }
        let mut steps: Vec<(String, f64)> = Step::AFTER_CLAIM
            .iter()
            .filter_map(|s| {
                let v = t.steps.get_mut(s)?;
                Some((s.name().to_string(), median(v)))
            })
            .collect();
        steps.retain(|(_, ms)| *ms > 0.0);
        Ok::<_, BoxError>(Samples {
            per_token_ms: t.per_token_ms,
            wall_s,
            peak_rss_kib: rss_kib("VmHWM:"),
            rss_kib: t.rss,
            step_median_ms: steps,
            skipped: None,
        })
    })
}
