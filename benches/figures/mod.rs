//! What the throughput benches share: the runtime they run on, the load they start under, and
//! where their figures go.

use std::path::{Path, PathBuf};

/// The multi-threaded runtime a bench runs on (two workers), and the load average it starts
/// under (`/proc/loadavg`, trimmed; recorded with the figures).
pub fn start() -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    (rt, load.trim().to_string())
}

/// Writes `report` as `NAME.json` (a `--bench` run) or `NAME-smoke.json` (a smoke run) under
/// `$CARGO_TARGET_DIR/bench/`, and says where.
pub fn write(name: &str, bench: bool, report: &serde_json::Value) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(if bench {
        format!("{name}.json")
    } else {
        format!("{name}-smoke.json")
    });
    std::fs::write(&out, serde_json::to_vec_pretty(report).unwrap()).unwrap();
    println!("figures written to {}", out.display());
}
