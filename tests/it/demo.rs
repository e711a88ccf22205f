//! Issue 6 (the main job) and issue 7 (secret hygiene): `keystation demo` end to end; the keys it
//! leaves are read with pkcs11-tool and logged in to with the PINs as delivered; and with trace
//! logging on, no PIN appears anywhere the station wrote except the intended message.

use crate::delivery::{all_files as files_under, memos_in_pain001};
use crate::station::{keystation, keystation_at, softhsm_module};
use crate::support::{assert_success, items, run_ok, stdout_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The three fixture orders of the demo run in `dir` (`order list --json`), each checked to
/// have reached PinDelivered.
pub fn delivered_orders(dir: &Path) -> Vec<Value> {
    let orders = stdout_json(&run_ok(&mut keystation_at(
        dir,
        &["order", "list", "--json"],
    )));
    let orders = items(&orders).to_vec();
    assert_eq!(orders.len(), 3);
    assert!(
        orders.iter().all(|o| o["state"] == "PinDelivered"),
        "{orders:?}"
    );
    orders
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The PIN in an SMS text (`...密码:XXXX，...`) or a transfer memo (`PIN XXXX REF ...`).
fn pin_in(text: &str) -> Option<String> {
    let after = text
        .split("密码:")
        .nth(1)
        .or_else(|| text.split("PIN ").nth(1))?;
    let pin: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (pin.len() >= 6).then_some(pin)
}

#[test]
fn the_demo_delivers_every_pin_and_leaks_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = keystation()
        .args(["demo", "--dir"])
        .arg(&dir)
        .env("KEYSTATION_LOG", "trace")
        .output()
        .unwrap();
    let logs = [out.stdout.clone(), out.stderr.clone()].concat();
    assert_success(&out, "keystation demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pkcs11-tool") && stdout.contains("SOFTHSM2_CONF="),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[simulated bank]"),
        "the simulated bank is labelled: {stderr}"
    );

    // Every fixture order reached PinDelivered.
    let orders = delivered_orders(&dir);

    // The PINs, as delivered: the messages as the simulated gateway and bank received them.
    // The station's own copies (spool, outbound) are gone once confirmed: the scan below finds
    // each PIN in its one received message and nowhere else.
    let mut delivered: Vec<(String, String, PathBuf)> = Vec::new(); // (order, pin, message file)
    for f in files_under(&dir.join("simulated-sms-gateway")) {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let pin = pin_in(v["text"].as_str().unwrap()).unwrap();
        delivered.push((v["order_no"].as_str().unwrap().to_string(), pin, f));
    }
    for f in files_under(&dir.join("simulated-bank")) {
        let memo = memos_in_pain001(&f).remove(0);
        let order = orders
            .iter()
            .find(|o| o["auth_method"] == "corporate_transfer")
            .unwrap()["order_no"]
            .as_str()
            .unwrap()
            .to_string();
        delivered.push((order, pin_in(&memo).unwrap(), f));
    }
    assert_eq!(delivered.len(), 3, "{delivered:?}");

    // Each key is readable with pkcs11-tool and opens with the PIN its message carried.
    for (order, pin, _) in &delivered {
        let out = run_ok(
            Command::new("pkcs11-tool")
                .arg("--module")
                .arg(softhsm_module())
                .args([
                    "--token-label",
                    order,
                    "--login",
                    "--pin",
                    "env:P",
                    "--list-objects",
                ])
                .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
                .env("P", pin),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Private Key Object") && text.contains("Certificate Object"),
            "{order}: {text}"
        );
    }

    // Secret hygiene: each PIN is in its one message file and nowhere else — not in the
    // trace-level logs, the database and its WAL, the token directory, the audit trail, or any
    // other file the station wrote. The station's own HSM PIN only in its 0600 PIN file.
    let station_pin = std::fs::read_to_string(dir.join("secrets/station-hsm.pin"))
        .unwrap()
        .trim()
        .to_string();
    let all_files = files_under(&dir);
    assert!(all_files.iter().any(|f| f.ends_with("station.db")));
    for (order, pin, message) in &delivered {
        assert!(!contains(&logs, pin), "{order}'s PIN is in the logs");
        for f in &all_files {
            let hit = contains(&std::fs::read(f).unwrap(), pin);
            assert_eq!(
                hit,
                f == message,
                "{order}'s PIN {} {}",
                if hit { "found in" } else { "missing from" },
                f.display()
            );
        }
    }
    assert!(
        !contains(&logs, &station_pin),
        "the station PIN is in the logs"
    );
    for f in &all_files {
        if !f.ends_with("secrets/station-hsm.pin") {
            assert!(
                !contains(&std::fs::read(f).unwrap(), &station_pin),
                "station PIN in {}",
                f.display()
            );
        }
    }

    // The invariants hold and the trail verifies.
    for args in [&["check"][..], &["audit", "verify"][..]] {
        run_ok(&mut keystation_at(&dir, args));
    }

    // Re-running is safe: it says the demo already ran.
    let again = keystation()
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already ran"));

    // A directory holding something else is refused, untouched.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "keep me").unwrap();
    let refused = keystation()
        .args(["demo", "--dir"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn the_demo_with_200_generated_orders_and_2_workers_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo200");
    let out = run_ok(keystation().args(["demo", "--dir"]).arg(&dir).args([
        "--orders",
        "200",
        "--workers",
        "2",
        "--json",
    ]));
    let v = stdout_json(&out);
    let rows = items(&v["report"]["rows"]);
    assert_eq!(rows.len(), 200);
    assert!(
        rows.iter().all(|r| r["state"] == "PinDelivered"),
        "not all delivered"
    );
    let tokens: std::collections::HashSet<&str> = rows
        .iter()
        .map(|r| r["token_serial"].as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), 200, "one token per order");
    run_ok(&mut keystation_at(&dir, &["check"]));
}
