//! Issue 13, item 1: one operation per command. The error a command prints carries its stable
//! code and the command's operation id, and every audit record the command wrote carries the
//! same id — a failed provisioning run (a failpoint) and the successful run that resumes it.

use crate::station::{TestStation, order_json};
use serde_json::Value;
use std::collections::BTreeSet;

/// The audit records after `seq`, as `audit show --json` lists them.
fn records_after(st: &TestStation, seq: i64) -> Vec<Value> {
    st.json(&["audit", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["seq"].as_i64().unwrap() > seq)
        .cloned()
        .collect()
}

fn last_seq(st: &TestStation) -> i64 {
    records_after(st, 0)
        .last()
        .map(|r| r["seq"].as_i64().unwrap())
        .unwrap_or(0)
}

/// The operation id of the `error[CODE]: ... (operation ID)` line on stderr.
fn operation_of_error_line(stderr: &str, code: &str) -> String {
    let prefix = format!("error[{code}]: ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line:\n{stderr}"));
    let id = line
        .rsplit_once("(operation ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no operation id at the end of: {line}"));
    uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id}: not a UUID ({e})"));
    id.to_string()
}

fn operation_ids(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r["operation_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_failed_command_names_its_code_and_operation_and_its_records_carry_that_id() {
    let st = TestStation::new();
    let no = "OP-0001";
    st.import_approved(&order_json(
        no,
        "legal_rep_phone",
        "company_and_legal_rep",
        "main",
    ));
    let before = last_seq(&st);

    // Provisioning fails at a failpoint after it claimed the order and ran three steps.
    let failing = st.run(
        &["--json", "provision", no],
        &[(
            "KEYSTATION_FAILPOINTS",
            "provision.issue_certificate.started=error",
        )],
    );
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert_eq!(failing.status.code(), Some(1), "{stderr}");
    let id = operation_of_error_line(&stderr, "E-PROVISION-STEP");
    assert!(stderr.contains("injected failure"), "{stderr}");
    // --json: the same code and id in the one JSON document on stdout.
    let doc: Value = serde_json::from_slice(&failing.stdout).unwrap();
    assert_eq!(doc["error"], "failure", "{doc}");
    assert_eq!(doc["code"], "E-PROVISION-STEP", "{doc}");
    assert_eq!(doc["operation_id"], id.as_str(), "{doc}");

    // Every record of that run — the claim, the steps, the failure — has the error's id.
    let failed_run = records_after(&st, before);
    let actions: Vec<&str> = failed_run
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(failed_run.len() >= 4, "{actions:?}");
    assert_eq!(
        operation_ids(&failed_run),
        BTreeSet::from([id.clone()]),
        "{failed_run:#?}"
    );

    // The run that resumes it succeeds; all its records share one id of their own.
    let after_failure = last_seq(&st);
    st.json(&["provision", no]);
    let resumed = records_after(&st, after_failure);
    let actions: Vec<&str> = resumed
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(resumed.len() >= 4, "{actions:?}");
    let ids = operation_ids(&resumed);
    assert_eq!(ids.len(), 1, "{resumed:#?}");
    assert!(
        !ids.contains(&id),
        "a new command, a new operation: {ids:?}"
    );
    assert_eq!(st.json(&["order", "show", no])["state"], "Provisioned");
}

#[test]
fn a_refused_command_names_its_code_and_operation() {
    let st = TestStation::new();
    let out = st.run(&["provision", "NO-SUCH-ORDER"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    operation_of_error_line(&stderr, "E-ORDER-NOT-FOUND");

    let out = st.run(&["--json", "order", "show", "NO-SUCH-ORDER"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let id = operation_of_error_line(&stderr, "E-ORDER-NOT-FOUND");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "usage", "{doc}");
    assert_eq!(doc["code"], "E-ORDER-NOT-FOUND", "{doc}");
    assert_eq!(doc["operation_id"], id.as_str(), "{doc}");
}

#[test]
fn a_batch_writes_every_order_under_the_one_operation_its_verdict_names() {
    let st = TestStation::new();
    for no in ["OPB-0001", "OPB-0002"] {
        st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    }
    let before = last_seq(&st);
    // Two orders in one command; the second fails at its seals.
    let out = st.run(
        &["provision", "--all-approved", "--workers", "2"],
        &[(
            "KEYSTATION_FAILPOINTS",
            "provision.write_seals.started@OPB-0002=error",
        )],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let id = operation_of_error_line(&stderr, "E-PROVISION-BATCH");

    let batch = records_after(&st, before);
    let orders: BTreeSet<&str> = batch
        .iter()
        .filter_map(|r| r["order_no"].as_str())
        .collect();
    assert_eq!(
        orders,
        BTreeSet::from(["OPB-0001", "OPB-0002"]),
        "{batch:#?}"
    );
    assert!(
        batch.iter().any(|r| r["action"] == "provision.failed"),
        "{batch:#?}"
    );
    assert_eq!(operation_ids(&batch), BTreeSet::from([id]), "{batch:#?}");
}

/// The console's way in: one station opened once, bound to each request's operation. What an
/// operator does in one operation is recorded under that operation's id, not the station's
/// first one and not a fresh one per record.
#[test]
fn a_station_bound_to_an_operation_records_its_operators_under_that_id() {
    use keystation::station::{OperationContext, Station};

    let st = TestStation::new();
    for no in ["OPL-0001", "OPL-0002"] {
        let file = st.write_order(&order_json(no, "legal_rep_phone", "company", "main"));
        st.ok(&["order", "import", file.to_str().unwrap()]);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The operators this process acts as, by their credentials.
    let [alice, bob] =
        ["alice", "bob"].map(|name| crate::support::operator_credential(&st.config(), name));
    let cfg = keystation::config::Config::load(&st.config()).unwrap();
    let first = OperationContext::new();
    let second = OperationContext::new();
    let station = rt.block_on(Station::open_for(cfg, &first)).unwrap();
    let bound = station.for_operation(&second);
    assert_eq!(station.operation(), &first);
    assert_eq!(bound.operation(), &second);

    let as_alice = station.clone().with_credential(alice);
    assert_eq!(as_alice.operation(), &first);
    rt.block_on(as_alice.approve_order(&"OPL-0001".parse().unwrap(), "alice", Some("checked")))
        .unwrap();
    let as_bob = bound.with_credential(bob);
    assert_eq!(as_bob.operation(), &second);
    rt.block_on(as_bob.reject_order(&"OPL-0002".parse().unwrap(), "bob", "licence expired"))
        .unwrap();

    for (no, operator, operation) in [("OPL-0001", "alice", &first), ("OPL-0002", "bob", &second)] {
        let records = rt
            .block_on(station.audit_records(Some(&no.parse().unwrap())))
            .unwrap();
        let by_operator: Vec<_> = records.iter().filter(|r| r.actor == operator).collect();
        assert!(
            !by_operator.is_empty(),
            "{no}: no record by {operator}: {records:#?}"
        );
        for r in by_operator {
            assert_eq!(r.operation_id, operation.id().as_str(), "{r:#?}");
        }
    }
    rt.block_on(station.close());
}
