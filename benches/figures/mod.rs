//! What the throughput benches share: where their figures go.

use std::path::{Path, PathBuf};

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
