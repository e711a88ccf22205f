//! A half-written import leaves either every order of the file or none: the process is killed
//! (SIGKILL) or aborts while its transaction holds all orders but has not committed, on SQLite
//! and on PostgreSQL. Afterwards nothing is stored, the audit trail verifies, and the same file
//! imports completely.

use crate::pg::PgDatabase;
use crate::support::{Station, valid_bundle, valid_orders, write_order};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const FAILPOINT: &str = "import.before_commit";
const REACHED: &str = "keystation: failpoint import.before_commit reached";
/// Generous: a debug binary on a busy 2-core CI machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Kills the child if the test fails before it did (a paused keystation would live forever).
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The three valid orders as one array file, next to their documents.
fn batch(bundle: &Path) -> PathBuf {
    let orders: Vec<Value> = valid_orders().into_iter().map(|(_, v)| v).collect();
    write_order(bundle, "batch.json", &Value::Array(orders))
}

/// Starts `order import FILE` with the failpoint set to `action`; stderr is read line by line on
/// a thread and sent to the returned channel.
fn start_import(station: &Station, file: &Path, action: &str) -> (Killer, mpsc::Receiver<String>) {
    let mut child = station
        .command(&["order", "import", file.to_str().unwrap()])
        .env("KEYSTATION_FAILPOINTS", format!("{FAILPOINT}={action}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Killer(child), rx)
}

/// Waits for a stderr line containing `needle`; panics with everything seen otherwise.
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no stderr line {needle:?} ({e:?}); stderr so far:\n{seen:#?}"),
        }
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "keystation did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing of the interrupted import is visible, the trail is intact, and the file then imports
/// in full.
fn nothing_stored_then_whole_file_imports(station: &Station, file: &Path) {
    assert!(
        station.list().is_empty(),
        "an interrupted import left orders: {:?}",
        station.list()
    );
    assert_eq!(station.audit_verifies(), 0);

    station.import(file, &[]).expect_code(0);
    assert_eq!(
        station.order_numbers(),
        ["KS-DEMO-0001", "KS-DEMO-0002", "KS-DEMO-0003"]
    );
    assert_eq!(station.audit_verifies(), 3);
}

fn killed_while_paused_before_commit(station: &Station) {
    let bundle = valid_bundle();
    let file = batch(bundle.path());
    let (mut child, stderr) = start_import(station, &file, "pause");
    wait_for_line(&stderr, REACHED);

    // Every order is written inside the open transaction; other processes see none of it.
    assert!(station.list().is_empty());

    child.0.kill().unwrap(); // SIGKILL on Unix: no destructor, no rollback by the process
    let status = wait_exit(&mut child.0);
    assert_eq!(status.signal(), Some(9), "{status:?}");

    nothing_stored_then_whole_file_imports(station, &file);
}

fn aborted_before_commit(station: &Station) {
    let bundle = valid_bundle();
    let file = batch(bundle.path());
    let (mut child, stderr) = start_import(station, &file, "abort");
    wait_for_line(&stderr, &format!("failpoint {FAILPOINT} reached: aborting"));
    let status = wait_exit(&mut child.0);
    assert!(!status.success(), "{status:?}");
    assert_eq!(status.signal(), Some(6), "SIGABRT expected: {status:?}");

    nothing_stored_then_whole_file_imports(station, &file);
}

#[test]
fn sqlite_import_killed_before_commit_leaves_nothing() {
    killed_while_paused_before_commit(&Station::sqlite());
}

#[test]
fn sqlite_import_aborted_before_commit_leaves_nothing() {
    aborted_before_commit(&Station::sqlite());
}

#[test]
fn postgres_import_killed_before_commit_leaves_nothing() {
    let db = PgDatabase::create_blocking();
    killed_while_paused_before_commit(&Station::with_database(&db.url));
}

#[test]
fn postgres_import_aborted_before_commit_leaves_nothing() {
    let db = PgDatabase::create_blocking();
    aborted_before_commit(&Station::with_database(&db.url));
}
