//! Issue 6: batch issuance over many tokens; one injected failure does not stop the others.

use crate::station::{TestStation, order_json};
use crate::support::strings;

#[test]
fn batch_provisions_many_orders_concurrently_and_a_failure_stops_only_its_order() {
    let st = TestStation::new();
    let orders: Vec<String> = (0..8).map(|i| format!("BATCH-{i:02}")).collect();
    for (i, no) in orders.iter().enumerate() {
        let seals = ["company_and_legal_rep", "company", "none"][i % 3];
        st.import_approved(&order_json(no, "legal_rep_phone", seals, "main"));
    }
    let out = st.run(
        &["provision", "--all-approved", "--workers", "3", "--json"],
        &[(
            "KEYSTATION_FAILPOINTS",
            "provision.generate_key.started@BATCH-03=error",
        )],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"].as_array().unwrap().len(), 7, "{summary}");
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0][0], "BATCH-03");
    assert!(failed[0][1].as_str().unwrap().contains("injected failure"));

    let mut serials = std::collections::HashSet::new();
    for no in &orders {
        let show = st.json(&["order", "show", no]);
        if no == "BATCH-03" {
            assert_eq!(show["state"], "Failed");
            continue;
        }
        assert_eq!(show["state"], "Provisioned", "{no}");
        assert!(
            serials.insert(show["token"]["token_serial"].as_str().unwrap().to_string()),
            "one token per order"
        );
    }
    // The failed order is resumable on its own.
    assert_eq!(st.json(&["provision", "BATCH-03"])["order_no"], "BATCH-03");
    assert_eq!(
        st.json(&["order", "show", "BATCH-03"])["state"],
        "Provisioned"
    );
    st.ok(&["audit", "verify"]);

    // Nothing left: a second batch has nothing to do and succeeds.
    let again = st.json(&["provision", "--all-approved"]);
    assert_eq!(again["ok"].as_array().unwrap().len(), 0);
}

#[test]
fn batch_limit_takes_the_oldest_orders_first() {
    let st = TestStation::new();
    for no in ["LIM-1", "LIM-2", "LIM-3"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "none", "main"));
    }
    let s = st.json(&[
        "provision",
        "--all-approved",
        "--limit",
        "2",
        "--workers",
        "1",
    ]);
    let done: Vec<&str> = strings(&s["ok"], "order_no");
    assert_eq!(done, ["LIM-1", "LIM-2"]);
    assert_eq!(st.json(&["order", "show", "LIM-3"])["state"], "Approved");
}

/// Each listing of the slots reads every token in the store (about 0.4 ms per listing with 500
/// SoftHSM tokens): a batch lists them once per order, at the claim, whose blank token the job's
/// `init_token` then initialises without looking for one again. Counted by the token layer's
/// test simulator (a line per listing): a batch of three orders lists the slots twice more than
/// a batch of one.
#[test]
fn a_batch_lists_the_slots_once_per_order() {
    let st = TestStation::new();
    let sim = st.tmp().join("token-sim.json");
    let listings = st.tmp().join("token-sim.json.listings");
    let listings_of_batch = |orders: &[&str]| -> usize {
        for no in orders {
            st.import_approved(&order_json(no, "legal_rep_phone", "none", "main"));
        }
        std::fs::write(&sim, r#"{"tokens": {}}"#).unwrap();
        let _ = std::fs::remove_file(&listings);
        let out = st.run(
            &["provision", "--all-approved", "--workers", "1", "--json"],
            &[("KEYSTATION_TOKEN_SIM", sim.to_str().unwrap())],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            summary["ok"].as_array().unwrap().len(),
            orders.len(),
            "{summary}"
        );
        std::fs::read_to_string(&listings).unwrap().lines().count()
    };
    let one = listings_of_batch(&["LIST-1"]);
    let three = listings_of_batch(&["LIST-2", "LIST-3", "LIST-4"]);
    assert_eq!(
        three - one,
        2,
        "one listing per order ({one} for one order, {three} for three)"
    );
}

#[test]
fn ctrl_c_finishes_the_order_in_hand_and_starts_no_other() {
    use std::io::{BufRead, BufReader};
    let st = TestStation::new();
    for no in ["SIG-1", "SIG-2", "SIG-3"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "none", "main"));
    }
    let mut child = crate::station::keystation()
        .arg("--config")
        .arg(st.config())
        .args(["provision", "--all-approved", "--workers", "1"])
        .env(
            "KEYSTATION_FAILPOINTS",
            "provision.generate_key.started@SIG-1=sleep1500",
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line
            .unwrap()
            .contains("failpoint provision.generate_key.started@SIG-1 reached")
        {
            break;
        }
    }
    // Ctrl-C while SIG-1 is in the middle of its job.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", rest.join("\n"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(stopped)"), "{stdout}");
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
    assert_eq!(
        st.json(&["order", "show", "SIG-1"])["state"],
        "Provisioned",
        "the order in hand is finished"
    );
    for no in ["SIG-2", "SIG-3"] {
        assert_eq!(
            st.json(&["order", "show", no])["state"],
            "Approved",
            "{no} was started"
        );
    }
    st.ok(&["check"]);
}
