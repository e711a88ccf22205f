//! Issue 14, "must show": three station processes on one PostgreSQL, each running
//! `provision --all-approved --workers 2` and `deliver run` at once over one queue of generated
//! orders, one station SIGKILLed in the middle of its batch. Afterwards every order is
//! PinDelivered exactly once (one SMS message or one bank file per order, counted on disk, where
//! the gateway's and the bank's agents keep what they received), each token is bound to one
//! order, every certificate is on its token or revoked, `check` and `audit verify` pass, the
//! killed station's unfinished orders were taken over by the others, and every audit record
//! names the station that wrote it.
//!
//! It runs at the full size, 300 orders (under a minute in a debug build here).

use super::{Desk, Fleet, check_passes, signal};
use crate::delivery::{gateway_agent_takes, pain002_file, xmllint};
use crate::support::audit_records;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A `keystation` process of a desk, its output in files (hundreds of lines).
struct Proc {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    fn spawn(fleet: &Fleet, desk: &Desk, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let logs = fleet.tmp().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let stdout = logs.join(format!("{}-{name}.out", desk.id));
        let stderr = logs.join(format!("{}-{name}.err", desk.id));
        let mut cmd = desk.command(args);
        cmd.stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc {
            child: cmd.spawn().unwrap(),
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the end; the exit code, stdout and stderr.
    fn finish(&mut self) -> (Option<i32>, String, String) {
        let status = self.child.wait().unwrap();
        (
            status.code(),
            std::fs::read_to_string(&self.stdout).unwrap(),
            self.stderr(),
        )
    }
}

/// A failed assertion must not leave `deliver run` loops behind.
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the agents when the test ends, also when it fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the gateway's and the bank's agents received.
#[derive(Default)]
struct Received {
    /// The gateway's copies of SMS messages.
    sms: Vec<PathBuf>,
    /// The bank's copies of pain.001 files, by name.
    bank_files: BTreeMap<String, PathBuf>,
}

/// Plays the installation's gateway agent and bank until `stop`: SMS messages taken with their
/// receipts; each pain.001 collected once all its transfers are recorded as sent, answered with
/// a pain.002 acceptance that desk 1 imports.
fn agents(fleet: &Fleet, stop: &AtomicBool, received: &mut Received) {
    let shared = fleet.shared();
    let (spool, outbound, inbound) = (
        shared.join("spool/sms"),
        shared.join("bank/outbound"),
        shared.join("bank/inbound"),
    );
    let (gateway, bank) = (fleet.tmp().join("gateway"), fleet.tmp().join("bank"));
    std::fs::create_dir_all(&bank).unwrap();
    while !stop.load(Ordering::SeqCst) {
        received.sms.extend(gateway_agent_takes(&spool, &gateway));
        for entry in std::fs::read_dir(&outbound).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".xml")
                || name.starts_with('.')
                || received.bank_files.contains_key(&name)
            {
                continue;
            }
            let states = fleet.sql(&format!(
                "SELECT state, end_to_end_id, bank_message_id FROM deliveries WHERE bank_file = '{name}'"
            ));
            if states.is_empty() || states.iter().any(|r| r[0] != "sent") {
                continue;
            }
            let copy = bank.join(&name);
            std::fs::copy(&path, &copy).unwrap();
            xmllint(&copy, "pain.001.001.10.xsd");
            let transfers: Vec<(&str, &str, Option<&str>)> = states
                .iter()
                .map(|r| (r[1].as_str(), "ACSC", None))
                .collect();
            let answer = pain002_file(
                &inbound,
                &format!("{name}.pain002.xml"),
                &states[0][2],
                &transfers,
            );
            let out = fleet
                .desk(1)
                .run(&["bank", "import", answer.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "bank import: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            received.bank_files.insert(name, copy);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `done` holds (checked every half second), at most `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Order number -> state, as the database holds them.
fn states(fleet: &Fleet) -> HashMap<String, String> {
    fleet
        .sql("SELECT order_no, state FROM orders")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// The EndToEndIds of a pain.001.
fn end_to_end_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("<EndToEndId>")
        .skip(1)
        .map(|s| s.split("</EndToEndId>").next().unwrap().to_string())
        .collect()
}

fn three_stations(orders: usize) {
    let started = Instant::now();
    let fleet = Fleet::new(3);
    fleet.share_channels();
    let numbers = fleet.approved_orders(orders);
    let (desk1, desk2, desk3) = (fleet.desk(1), fleet.desk(2), fleet.desk(3));

    let stop = Arc::new(AtomicBool::new(false));
    let batch = ["--json", "provision", "--all-approved", "--workers", "2"];
    let deliver = ["deliver", "run"];
    // Desk 3 lingers in each order's `write_seals` (its certificate already on the key), so that
    // when it is killed an order is caught there.
    let slow = [(
        "KEYSTATION_FAILPOINTS",
        "provision.write_seals.started=sleep300",
    )];
    let mut workers = vec![
        Proc::spawn(&fleet, desk1, "deliver", &deliver, &[]),
        Proc::spawn(&fleet, desk2, "deliver", &deliver, &[]),
    ];
    let mut doomed_worker = Proc::spawn(&fleet, desk3, "deliver", &deliver, &[]);
    let batches = vec![
        Proc::spawn(&fleet, desk1, "provision", &batch, &[]),
        Proc::spawn(&fleet, desk2, "provision", &batch, &[]),
    ];
    let mut doomed = Proc::spawn(&fleet, desk3, "provision", &batch, &slow);

    std::thread::scope(|s| {
        let stopping = StopOnDrop(&stop);
        let agents_thread = s.spawn(|| {
            let mut received = Received::default();
            agents(&fleet, &stop, &mut received);
            received
        });

        // Desk 3 is killed in the middle of its batch, with an order inside `write_seals`.
        let marker = "failpoint provision.write_seals.started reached";
        wait_for(Duration::from_secs(300), "desk 3's fifth order", || {
            if let Some(status) = doomed.child.try_wait().unwrap() {
                panic!(
                    "desk 3's batch ended by itself ({status}): {}",
                    doomed.stderr()
                );
            }
            doomed.stderr().matches(marker).count() >= 5
        });
        signal(doomed.child.id(), "-KILL");
        signal(doomed_worker.child.id(), "-KILL");
        let (code, ..) = doomed.finish();
        assert_eq!(code, None, "desk 3 was killed by a signal");
        doomed_worker.finish();

        // The survivors finish the queue, the killed station's orders included; no batch
        // reports an order of another station as its failure.
        let mut provisioned_by: HashMap<String, String> = HashMap::new();
        for (mut b, desk) in batches.into_iter().zip([desk1, desk2]) {
            let (code, stdout, stderr) = b.finish();
            assert_eq!(code, Some(0), "{}: {stderr}", desk.id);
            let summary: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
            for r in summary["ok"].as_array().unwrap() {
                let no = r["order_no"].as_str().unwrap().to_string();
                assert!(
                    provisioned_by.insert(no.clone(), desk.id.clone()).is_none(),
                    "{no} provisioned twice"
                );
            }
        }
        let left: Vec<(String, String)> = states(&fleet)
            .into_iter()
            .filter(|(_, s)| matches!(s.as_str(), "Approved" | "Provisioning" | "Failed"))
            .collect();
        assert!(left.is_empty(), "not provisioned: {left:?}");

        // Every PIN delivered.
        wait_for(Duration::from_secs(600), "every PIN delivered", || {
            states(&fleet).values().all(|s| s == "PinDelivered")
        });
        drop(stopping);
        let received = agents_thread.join().unwrap();
        for w in &mut workers {
            signal(w.child.id(), "-INT");
            let (code, _, stderr) = w.finish();
            assert_eq!(code, Some(0), "{stderr}");
        }

        // Nothing sent after the agents stopped: no message or bank file left untaken.
        let late_sms = gateway_agent_takes(
            &fleet.shared().join("spool/sms"),
            &fleet.tmp().join("gateway"),
        );
        assert!(late_sms.is_empty(), "messages sent late: {late_sms:?}");
        let late_files: Vec<String> = std::fs::read_dir(fleet.shared().join("bank/outbound"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.ends_with(".xml") && !n.starts_with('.') && !received.bank_files.contains_key(n)
            })
            .collect();
        assert!(
            late_files.is_empty(),
            "bank files written late: {late_files:?}"
        );

        // Exactly once, counted on disk: one message or one transfer per order.
        let mut per_order: BTreeMap<String, usize> = BTreeMap::new();
        for m in &received.sms {
            let v: Value = serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap();
            *per_order
                .entry(v["order_no"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let e2e: HashMap<String, String> = fleet
            .sql("SELECT end_to_end_id, order_no FROM deliveries WHERE end_to_end_id IS NOT NULL")
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
        for file in received.bank_files.values() {
            for id in end_to_end_ids(file) {
                let order = e2e
                    .get(&id)
                    .unwrap_or_else(|| panic!("unknown transfer {id}"));
                *per_order.entry(order.clone()).or_default() += 1;
            }
        }
        let all: BTreeSet<&String> = numbers.iter().collect();
        assert_eq!(per_order.keys().collect::<BTreeSet<_>>(), all);
        let twice: Vec<_> = per_order.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "PINs sent more than once: {twice:?}");
        let confirmed = fleet.sql(
            "SELECT order_no FROM deliveries WHERE state = 'confirmed' GROUP BY order_no HAVING COUNT(*) = 1",
        );
        assert_eq!(confirmed.len(), orders);

        // One token per order, one order per token, one live certificate each, on its token.
        let bindings = fleet.sql(
            "SELECT order_no, token_serial, station_id FROM token_bindings WHERE released_at IS NULL",
        );
        assert_eq!(bindings.len(), orders);
        let serials: BTreeSet<&String> = bindings.iter().map(|r| &r[1]).collect();
        assert_eq!(serials.len(), orders, "a token bound to two orders");
        let live = fleet.sql("SELECT order_no, status FROM certificates WHERE status <> 'revoked'");
        assert_eq!(live.len(), orders, "{live:?}");
        assert!(live.iter().all(|r| r[1] == "on_token"), "{live:?}");
        check_passes(desk1);
        for desk in [desk1, desk2, desk3] {
            assert_eq!(desk.json(&["audit", "verify"])["ok"], true);
        }

        // The orders desk 3 had claimed and not finished when it was killed were taken over
        // by the others (and finished by them: every order is delivered), the records say by
        // whom.
        let audit = desk1.json(&["audit", "show"]);
        let by_desk3 = |action: &str| -> BTreeSet<String> {
            audit_records(&audit, action)
                .iter()
                .filter(|r| r["station_id"] == "desk-3")
                .map(|r| r["order_no"].as_str().unwrap().to_string())
                .collect()
        };
        let abandoned: Vec<String> = by_desk3("provision.claimed")
            .difference(&by_desk3("order.provisioned"))
            .cloned()
            .collect();
        assert!(
            !abandoned.is_empty(),
            "desk 3 held no order when it was killed"
        );
        let mut decisions = Vec::new();
        for no in &abandoned {
            let taken: Vec<&Value> = audit_records(&audit, "provision.taken_over")
                .into_iter()
                .filter(|r| r["order_no"] == no.as_str())
                .collect();
            assert_eq!(taken.len(), 1, "{no} was not taken over once: {taken:?}");
            assert_ne!(taken[0]["station_id"], "desk-3");
            let d = super::details(taken[0]);
            decisions.push(format!("{no}: {} at {}", d["decision"], d["journal_point"]));
            assert!(provisioned_by.contains_key(no), "{no}: {provisioned_by:?}");
        }
        let unnamed: Vec<&Value> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                !matches!(
                    r["station_id"].as_str(),
                    Some("desk-1" | "desk-2" | "desk-3")
                )
            })
            .collect();
        assert!(
            unnamed.is_empty(),
            "records without their station: {unnamed:?}"
        );
        let by_station: BTreeMap<&str, usize> =
            bindings.iter().fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r[2].as_str()).or_default() += 1;
                m
            });
        eprintln!(
            "three stations, {orders} orders: {:?} provisioned per station (desk 3 killed after \
             its fifth order, its orders taken over: {decisions:?}), {} SMS, {} bank files, {:.1} s",
            by_station,
            received.sms.len(),
            received.bank_files.len(),
            started.elapsed().as_secs_f64()
        );
    });
}

#[test]
fn three_stations_one_queue_one_killed() {
    three_stations(300);
}
