//! Issue 7: crash safety proven by killing the real binary (SIGKILL) at every journaled step of
//! provisioning, restarting it, and checking the invariants with `keystation check`.

use crate::station::{TestStation, full_order, keystation, order_json};
use crate::support::{assert_success, items};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Every failpoint of the provisioning job, in the order a run passes them.
pub const PROVISION_POINTS: &[&str] = &[
    "provision.init_token.started",
    "provision.init_token.before_init",
    "provision.init_token.before_done",
    "provision.init_pin.started",
    "provision.init_pin.before_done",
    "provision.generate_key.started",
    "provision.generate_key.before_done",
    "provision.issue_certificate.started",
    "provision.issue_certificate.before_done",
    "provision.write_certificate.started",
    "provision.write_certificate.before_done",
    "provision.write_seals.started",
    "provision.write_seals.before_done",
    "provision.finish.started",
    "provision.finish.before_done",
];

/// Runs `keystation ARGS` with `point=pause`, waits until it reports the failpoint, SIGKILLs it.
pub fn kill_at(st: &TestStation, args: &[&str], point: &str) {
    let mut child = keystation()
        .arg("--config")
        .arg(st.config())
        .args(args)
        .env("KEYSTATION_FAILPOINTS", format!("{point}=pause"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keystation");
    let stderr = child.stderr.take().unwrap();
    let marker = format!("failpoint {point} reached");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker) {
                let _ = tx.send(true);
            }
        }
    });
    let start = Instant::now();
    let reached = rx.recv_timeout(Duration::from_secs(60)).unwrap_or(false);
    child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix: no cleanup, no commit
    let status = child.wait().unwrap();
    assert!(
        reached,
        "{point} not reached within {:?} ({status})",
        start.elapsed()
    );
}

#[test]
fn killing_provisioning_at_every_step_loses_nothing() {
    let st = TestStation::new();
    for (i, point) in PROVISION_POINTS.iter().enumerate() {
        let no = format!("K-{i:02}");
        st.import_approved(&full_order(&no));
        kill_at(&st, &["provision", &no], point);
        // Right after the crash the invariants hold (work in progress is only noted) ...
        let report = st.check_passes(&format!("after kill at {point}"));
        let notes: Vec<&str> = items(&report["findings"])
            .iter()
            .filter(|f| f["order_no"] == no.as_str())
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert!(notes.contains(&"job_unfinished"), "{point}: {notes:?}");
        // ... and a restart finishes the order.
        let out = st.run(&["provision", &no, "--json"], &[]);
        assert_success(&out, &format!("{point}: resume"));
        assert_eq!(
            st.json(&["order", "show", &no])["state"],
            "Provisioned",
            "{point}"
        );
        let report = st.check_passes(&format!("after resuming from {point}"));
        let left: Vec<&serde_json::Value> = items(&report["findings"])
            .iter()
            .filter(|f| f["order_no"] == no.as_str())
            .collect();
        assert!(left.is_empty(), "{point}: {left:?}");
    }
    st.ok(&["audit", "verify"]);
}

#[test]
fn check_reports_each_broken_invariant() {
    let st = TestStation::new();
    for no in ["C-1", "C-2", "C-3"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
        st.ok(&["provision", no]);
    }
    st.check_passes("fresh station");
    let (rt, mut db) = st.sqlite();
    let sql = |db: &mut sqlx::SqliteConnection, q: &str| {
        rt.block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(q.to_string())).execute(db))
            .unwrap();
    };
    // C-1: its undelivered PIN disappears.
    sql(&mut db, "DELETE FROM sealed_pins WHERE order_no = 'C-1'");
    // C-2: a certificate the CA signed is neither on a token nor revoked.
    sql(
        &mut db,
        "UPDATE certificates SET status = 'issued' WHERE order_no = 'C-2'",
    );
    // C-3: its certificate is deleted from the token (a public object: no login needed).
    let key_id = st.json(&["order", "show", "C-3"])["token"]["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let del = crate::station::pkcs11_tool(
        &st,
        &[
            "--token-label",
            "C-3",
            "--delete-object",
            "--type",
            "cert",
            "--id",
            &key_id,
        ],
        None,
    );
    assert_success(&del, "pkcs11-tool --delete-object");
    let violations = st.violations();
    for (no, rule) in [
        ("C-1", "pin_missing"),
        ("C-2", "certificate_orphan"),
        ("C-2", "certificate_count"),
        ("C-3", "token_certificate"),
    ] {
        assert!(
            violations.iter().any(|v| v.is(no, rule)),
            "no {rule} for {no}: {violations:#?}"
        );
    }
}

/// How a delivery killed at a point must end after a restart.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AfterRestart {
    /// Delivered exactly once.
    Delivered,
    /// Left to an operator: the outcome cannot be known, so nothing is sent again.
    NeedsOperator,
}

#[test]
fn killing_delivery_at_every_step_loses_nothing_and_sends_nothing_twice() {
    for (point, auth, expected) in [
        (
            "deliver.sms.before_send",
            "legal_rep_phone",
            AfterRestart::Delivered,
        ),
        (
            "deliver.sms.after_send",
            "legal_rep_phone",
            AfterRestart::Delivered,
        ),
        (
            "deliver.bank.before_write",
            "corporate_transfer",
            AfterRestart::NeedsOperator,
        ),
        (
            "deliver.bank.after_write",
            "corporate_transfer",
            AfterRestart::Delivered,
        ),
    ] {
        let st = TestStation::new();
        let no = "KD-1";
        st.import_approved(&order_json(no, auth, "company", "main"));
        st.ok(&["provision", no]);
        st.ok(&["ship", no, "--tracking", "SF0001"]);
        kill_at(&st, &["deliver", "run", "--once"], point);
        st.check_passes(&format!("after kill at {point}"));
        // Exit 1 when the restart leaves the delivery to an operator, 0 when it went out.
        let restart = st.run(&["deliver", "run", "--once"], &[]);
        assert_eq!(
            restart.status.code(),
            Some(i32::from(expected == AfterRestart::NeedsOperator)),
            "{point}: {}",
            String::from_utf8_lossy(&restart.stderr)
        );

        let status = st.json(&["deliver", "status"]);
        let d = items(&status)
            .iter()
            .find(|d| d["order_no"] == no)
            .unwrap()
            .clone();
        let outbound = st.path().join("bank/outbound");
        let bank_files = |e2e: &str| {
            std::fs::read_dir(&outbound)
                .map(|dir| {
                    dir.filter_map(Result::ok)
                        .filter(|e| {
                            std::fs::read_to_string(e.path())
                                .unwrap_or_default()
                                .contains(&format!("<EndToEndId>{e2e}</EndToEndId>"))
                        })
                        .count()
                })
                .unwrap_or(0)
        };
        match (auth, expected) {
            ("corporate_transfer", AfterRestart::Delivered) => {
                let e2e = d["end_to_end_id"].as_str().unwrap();
                assert_eq!(bank_files(e2e), 1, "{point}: exactly one transfer file");
                assert_eq!(d["state"], "sent", "{point}: {d}");
                let msg = d["bank_message_id"].as_str().unwrap();
                let file = outbound.join(d["bank_file"].as_str().unwrap());
                let transfer = std::fs::read(&file).unwrap();
                let report =
                    crate::delivery::pain002_file(st.tmp(), "ack.xml", msg, &[(e2e, "ACSC", None)]);
                st.ok(&["bank", "import", report.to_str().unwrap()]);
                assert_eq!(
                    st.json(&["order", "show", no])["state"],
                    "PinDelivered",
                    "{point}"
                );
                assert!(
                    !file.exists(),
                    "{point}: the confirmed transfer's copy is removed"
                );
                st.check_passes(&format!("after restarting from {point}"));
                // check would notice two transfer files for the same payment.
                let copies = [outbound.join("copy-1.xml"), outbound.join("copy-2.xml")];
                for c in &copies {
                    std::fs::write(c, &transfer).unwrap();
                }
                let out = st.run(&["check"], &[]);
                assert_eq!(out.status.code(), Some(1));
                assert!(String::from_utf8_lossy(&out.stdout).contains("transfer_twice"));
                for c in copies {
                    std::fs::remove_file(c).unwrap();
                }
            }
            ("corporate_transfer", AfterRestart::NeedsOperator) => {
                let e2e = d["end_to_end_id"].as_str().unwrap();
                assert_eq!(d["state"], "needs_operator", "{point}: {d}");
                assert_eq!(
                    bank_files(e2e),
                    0,
                    "{point}: no file may appear after the crash"
                );
                assert_eq!(
                    st.json(&["order", "show", no])["state"],
                    "Shipped",
                    "{point}"
                );
            }
            (_, _) => {
                assert_eq!(d["state"], "sent", "{point}: {d}");
                // The gateway agent takes what the spool holds: exactly one SMS.
                let spool = st.path().join("spool/sms");
                let taken =
                    crate::delivery::gateway_agent_takes(&spool, &st.tmp().join("gateway-agent"));
                assert_eq!(taken.len(), 1, "{point}: exactly one SMS");
                st.ok(&["deliver", "run", "--once"]);
                assert_eq!(
                    st.json(&["order", "show", no])["state"],
                    "PinDelivered",
                    "{point}"
                );
            }
        }
        st.check_passes(&format!("after restarting from {point}"));
        st.ok(&["audit", "verify"]);
    }
}
