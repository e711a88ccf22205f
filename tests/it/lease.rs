//! Issue 12, item 1: one order, one live process. Two `provision` processes on one order, or two
//! `provision --all-approved` batches over the same queue, end with exactly one live certificate
//! per order; a process that holds an order's lease is refused to others while it lives, and a
//! SIGKILLed holder's order is resumed at once. SQLite and PostgreSQL alike.

use crate::pg::PgDatabase;
use crate::station::{TestStation, keystation, order_json};
use crate::support::{audit_record, items, spawn_to_failpoint, stdout_json, strings};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

fn sqlite_station() -> (TestStation, Option<PgDatabase>) {
    (TestStation::new(), None)
}

fn pg_station() -> (TestStation, Option<PgDatabase>) {
    let db = PgDatabase::create_blocking();
    let st = TestStation::with_args(&["--database-url", &db.url]);
    (st, Some(db))
}

/// Leases of 3 s, renewed every second (the shortest the configuration allows).
fn short_leases(st: &TestStation) {
    let text = std::fs::read_to_string(st.config()).unwrap();
    assert!(text.contains("lease_secs = 30"), "{text}");
    std::fs::write(
        st.config(),
        text.replace("lease_secs = 30", "lease_secs = 3"),
    )
    .unwrap();
}

/// Runs `sql` (with `order_no` as `$1`) on the station's database, as another process with
/// access to it would; returns the rows' first columns as text.
fn sql(st: &TestStation, db: Option<&PgDatabase>, sql: &str, order_no: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let url = db.map_or_else(
        || format!("sqlite://{}", st.path().join("station.db").display()),
        |d| d.url.clone(),
    );
    let rt = crate::support::runtime();
    rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(order_no)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect()
    })
}

fn spawn(st: &TestStation, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = keystation();
    c.arg("--config")
        .arg(st.config())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn keystation")
}

/// The order's certificates that are not revoked, from `order show`.
fn live_certificates(st: &TestStation, no: &str) -> Vec<Value> {
    items(&st.json(&["order", "show", no])["certificates"])
        .iter()
        .filter(|c| c["status"] != "revoked")
        .cloned()
        .collect()
}

/// What a successful provisioning report announced is what the database bound.
#[track_caller]
fn report_matches_database(st: &TestStation, report: &Value) {
    let no = report["order_no"].as_str().unwrap();
    let show = st.json(&["order", "show", no]);
    assert_eq!(show["state"], "Provisioned", "{no}");
    assert_eq!(
        show["token"]["token_serial"], report["token_serial"],
        "{no}: the report announces one token, the database binds another"
    );
    let live = live_certificates(st, no);
    assert_eq!(live.len(), 1, "{no}: {live:?}");
    assert_eq!(live[0]["serial"], report["certificate_serial"], "{no}");
    assert_eq!(live[0]["status"], "on_token", "{no}");
}

fn two_provision_processes_on_one_order_issue_one_certificate(
    st: &TestStation,
    _: Option<&PgDatabase>,
) {
    let no = "RACE-1";
    st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    let a = spawn(st, &["--json", "provision", no], &[]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let b = spawn(st, &["--json", "provision", no], &[]);
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut provisioned = 0;
    for out in &outs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {
                provisioned += 1;
                report_matches_database(st, &serde_json::from_slice(&out.stdout).unwrap());
            }
            // The loser is refused as bad usage: the order is another process's, or done.
            Some(2) => assert!(
                stderr.contains("being provisioned by") || stderr.contains("already provisioned"),
                "{stderr}"
            ),
            other => panic!("exit {other:?}: {stderr}"),
        }
    }
    assert_eq!(provisioned, 1, "exactly one process provisions the order");
    assert_eq!(live_certificates(st, no).len(), 1);
    st.check_passes("after two processes");
    st.ok(&["audit", "verify"]);
}

/// Starts `provision NO` paused at `point` (a live holder); returns it once it got there.
fn paused_at(st: &TestStation, no: &str, point: &str) -> Child {
    let mut cmd = keystation();
    cmd.arg("--config")
        .arg(st.config())
        .args(["provision", no])
        .stdout(Stdio::piped());
    spawn_to_failpoint(cmd, point, "pause")
}

fn a_live_holder_is_refused_and_a_killed_one_resumed(st: &TestStation, db: Option<&PgDatabase>) {
    let no = "HOLD-1";
    short_leases(st);
    st.import_approved(&order_json(no, "legal_rep_phone", "none", "main"));
    st.import_approved(&order_json("HOLD-2", "legal_rep_phone", "none", "main"));
    let mut holder = paused_at(st, no, "provision.generate_key.started");

    // While its job is stuck inside a step, the holder renews its lease in the background.
    let renewed = "SELECT renewed_at FROM leases WHERE subject = $1 AND renewed_at > acquired_at";
    let mut waited = 0;
    while sql(st, db, renewed, no).is_empty() {
        assert!(waited < 300, "the lease was never renewed");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }

    // A second process is refused while the holder lives: exit 2, naming the holder.
    let out = st.run(&["provision", no], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("being provisioned by"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", holder.id())), "{stderr}");

    // A batch skips the held order (not a failure of its own) and does the rest.
    let summary = st.json(&["provision", "--all-approved"]);
    assert_eq!(summary["failed"], serde_json::json!([]), "{summary}");
    assert_eq!(strings(&summary["ok"], "order_no"), ["HOLD-2"], "{summary}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{summary}");
    assert_eq!(skipped[0][0], no, "{summary}");
    assert_eq!(st.json(&["order", "show", no])["state"], "Provisioning");

    // The holder dies without a word (no release, no failure record): its order is resumed at
    // once, without waiting for the lease to expire.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let report = st.json(&["provision", no]);
    report_matches_database(st, &report);
    st.check_passes("after resuming the killed holder's order");
    let audit = st.json(&["audit", "show", "--order", no]);
    let taken_over = audit_record(&audit, "provision.lease_taken_over");
    let details: Value = serde_json::from_str(taken_over["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["reason"], "holder_gone", "{details}");
    assert_eq!(
        details["previous"]["pid"].as_u64(),
        Some(u64::from(holder.id())),
        "{details}"
    );
    st.ok(&["audit", "verify"]);
}

fn a_holder_that_lost_its_lease_writes_nothing_more(st: &TestStation, db: Option<&PgDatabase>) {
    let no = "FENCE-1";
    short_leases(st);
    st.import_approved(&order_json(no, "legal_rep_phone", "none", "main"));
    // The holder stops for 5 s inside generate_key; meanwhile its lease is taken from it, as a
    // station that found it expired would (issue 14): the row now carries another job's id.
    let mut holder = spawn(
        st,
        &["provision", no],
        &[(
            "KEYSTATION_FAILPOINTS",
            "provision.generate_key.started=sleep5000",
        )],
    );
    let stderr = holder.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let marker = "failpoint provision.generate_key.started reached";
    assert!(lines.by_ref().any(|l| l.contains(marker)));
    let stolen = sql(
        st,
        db,
        "UPDATE leases SET lease_id = 'taken-over' WHERE subject = $1 RETURNING lease_id",
        no,
    );
    assert_eq!(stolen, ["taken-over"]);
    let rest: Vec<String> = lines.collect();
    let status = holder.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("the lease on {no} was lost"))),
        "{rest:?}"
    );
    // Nothing after the takeover reached the database: no certificate reserved, no step done
    // after the claim (init_token and init_pin waited in the group commit the fence refused),
    // no failure recorded over the new holder's order.
    let certs = sql(
        st,
        db,
        "SELECT serial FROM certificates WHERE order_no = $1",
        no,
    );
    assert_eq!(certs, Vec::<String>::new());
    let done = sql(
        st,
        db,
        "SELECT step FROM provision_steps WHERE order_no = $1 AND status = 'done' ORDER BY step",
        no,
    );
    assert_eq!(done, ["claim"]);
    assert_eq!(st.json(&["order", "show", no])["state"], "Provisioning");
    // The "other station" never came: its lease names the dead holder, so this station resumes.
    report_matches_database(st, &st.json(&["provision", no]));
    st.check_passes("after the fenced holder's order was resumed");
    st.ok(&["audit", "verify"]);
}

fn two_concurrent_batches_issue_one_certificate_per_order(
    st: &TestStation,
    _: Option<&PgDatabase>,
) {
    let orders: Vec<String> = (0..20).map(|i| format!("DUO-{i:02}")).collect();
    for (i, no) in orders.iter().enumerate() {
        let seals = ["company", "none"][i % 2];
        st.import_approved(&order_json(no, "legal_rep_phone", seals, "main"));
    }
    let args = ["--json", "provision", "--all-approved", "--workers", "2"];
    let a = spawn(st, &args, &[]);
    let b = spawn(st, &args, &[]);
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut by_batch: HashMap<String, usize> = HashMap::new();
    let mut skipped_somewhere = HashSet::new();
    for (i, out) in outs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "batch {i}: {stderr}");
        let summary = stdout_json(out);
        assert_eq!(
            summary["failed"],
            serde_json::json!([]),
            "batch {i}: {summary}"
        );
        for r in items(&summary["ok"]) {
            let no = r["order_no"].as_str().unwrap().to_string();
            assert!(
                by_batch.insert(no.clone(), i).is_none(),
                "{no} reported provisioned by both batches"
            );
            report_matches_database(st, r);
        }
        for s in items(&summary["skipped"]) {
            skipped_somewhere.insert(s[0].as_str().unwrap().to_string());
        }
        // The per-order line a batch prints names the token the database bound.
        for line in stderr.lines().filter(|l| l.contains(" ok: token ")) {
            let mut words = line.split_whitespace();
            let no = words.nth(1).unwrap();
            let token = line.split(" ok: token ").nth(1).unwrap();
            let token = token.split_whitespace().next().unwrap();
            let show = st.json(&["order", "show", no]);
            assert_eq!(show["token"]["token_serial"], token, "{line}");
        }
    }
    for no in &orders {
        assert!(
            by_batch.contains_key(no),
            "{no} provisioned by neither batch"
        );
        assert_eq!(live_certificates(st, no).len(), 1, "{no}");
    }
    for no in &skipped_somewhere {
        assert!(
            by_batch.contains_key(no),
            "{no} skipped but never provisioned"
        );
    }
    st.check_passes("after two concurrent batches");
    st.ok(&["audit", "verify"]);
}

/// Every case on both backends: `lease::sqlite::<case>` and `lease::postgres::<case>`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        on_both_backends!(@ sqlite, sqlite_station, $($case),*);
        on_both_backends!(@ postgres, pg_station, $($case),*);
    };
    (@ $backend:ident, $station:ident, $($case:ident),*) => {
        mod $backend {
            $(
                #[test]
                fn $case() {
                    let (st, db) = super::$station();
                    super::$case(&st, db.as_ref());
                }
            )*
        }
    };
}

on_both_backends!(
    two_provision_processes_on_one_order_issue_one_certificate,
    a_live_holder_is_refused_and_a_killed_one_resumed,
    a_holder_that_lost_its_lease_writes_nothing_more,
    two_concurrent_batches_issue_one_certificate_per_order,
);
