//! What the benches share: the runtime they run on, the load they start under, where their
//! figures go, and how they run the `keystation` binary.

#[allow(dead_code)] // the fleet and OCSP benches' only
pub mod orders;
#[allow(dead_code)] // the provisioning benches' only
pub mod recorder;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `keystation` binary of this build, with none of the environment a developer's shell may
/// carry (config, failpoints, log level).
pub fn keystation() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keystation"));
    c.env_remove("KEYSTATION_CONFIG")
        .env_remove("KEYSTATION_FAILPOINTS")
        .env_remove("KEYSTATION_LOG");
    c
}

/// Runs `cmd`, which must succeed; its output.
pub fn ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The credential file of operator `name` that [`register_operators`] wrote for the station of
/// `config`.
pub fn credential(config: &Path, name: &str) -> PathBuf {
    config
        .parent()
        .expect("station.toml is in a directory")
        .join(format!("{name}.credential"))
}

/// Registers `names` as operators (reviewer, provisioner, security officer) at the station of
/// `config`, by the administrator credential `init` wrote beside it; each one's credential file.
pub fn register_operators(config: &Path, names: &[&str]) -> Vec<PathBuf> {
    let dir = config.parent().expect("station.toml is in a directory");
    names
        .iter()
        .map(|name| {
            let file = credential(config, name);
            ok(keystation()
                .arg("--config")
                .arg(config)
                .arg("--credential")
                .arg(dir.join("admin.credential"))
                .args(["operator", "add", name])
                .args(["--role", "reviewer,provisioner,security_officer"])
                .arg("--credential-out")
                .arg(&file));
            file
        })
        .collect()
}

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

/// Makes the SMS channel of the station of `config` the generic webhook at `url` (the test
/// suite's loopback gateway), with its shared `secret` written beside it (mode 0600).
#[allow(dead_code)] // the benches that deliver SMS: throughput, provision (full path)
pub fn use_webhook(config: &Path, url: &str, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    let dir = config.parent().unwrap();
    let secret_file = dir.join("secrets/sms-webhook.secret");
    std::fs::create_dir_all(secret_file.parent().unwrap()).unwrap();
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(config).unwrap();
    let mut replaced = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            if !replaced && l.trim_start().starts_with("kind =") {
                replaced = true;
                "kind = \"webhook\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(replaced, "no delivery.sms kind in station.toml");
    out.push(String::new());
    out.push(format!(
        "[delivery.sms.webhook]\nurl = \"{url}\"\nsecret_file = \"secrets/sms-webhook.secret\""
    ));
    std::fs::write(config, out.join("\n") + "\n").unwrap();
}
