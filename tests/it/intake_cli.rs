//! Order intake and review through the real `keystation` binary: exit codes, messages, JSON
//! output, normalisation, the audit trail, and the all-or-nothing rule.

use crate::support::{
    Run, Station, copy_dir, error_violations, fields, items, keystation, order_fixtures, strings,
    valid_bundle, valid_orders, write_order,
};
use keystation::domain::validate::MAX_DOCUMENT_BYTES;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A file that is a PNG by its magic bytes and exactly `size` bytes long (the intake checks type
/// by content and size by length; it never decodes documents).
fn padded_png(path: &Path, size: u64) {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(usize::try_from(size).unwrap(), 0);
    std::fs::write(path, bytes).unwrap();
}

/// The stderr line of a violation: `field: message [code]` (an empty field prints as `(file)`).
fn has_violation_line(stderr: &str, field: &str, code: &str) -> bool {
    let field = if field.is_empty() { "(file)" } else { field };
    stderr
        .lines()
        .any(|l| l.starts_with(&format!("{field}: ")) && l.ends_with(&format!("[{code}]")))
}

/// Exit 2, with a `FIELD: ... [CODE]` line in stderr.
#[track_caller]
fn refused_naming(run: &Run, field: &str, code: &str) {
    run.expect_code(2);
    assert!(
        has_violation_line(&run.stderr, field, code),
        "{}",
        run.stderr
    );
}

fn order_value(index: usize) -> Value {
    valid_orders().swap_remove(index).1
}

#[test]
fn every_invalid_fixture_exits_2_and_names_each_violated_field() {
    let station = Station::sqlite();
    let bundle = tempfile::tempdir().unwrap();
    copy_dir(&order_fixtures().join("invalid"), bundle.path());
    // Not committed (1.5 MiB of padding): one byte over the limit.
    padded_png(
        &bundle.path().join("docs/too_large.png"),
        MAX_DOCUMENT_BYTES + 1,
    );
    let expected: BTreeMap<String, Vec<Value>> =
        serde_json::from_slice(&std::fs::read(bundle.path().join("expected.json")).unwrap())
            .unwrap();
    assert!(
        expected.len() >= 30,
        "only {} invalid fixtures",
        expected.len()
    );

    for (file, violations) in &expected {
        let path = bundle.path().join(file);
        let want: BTreeSet<(String, String)> = violations
            .iter()
            .map(|v| {
                (
                    v["field"].as_str().unwrap().to_string(),
                    v["code"].as_str().unwrap().to_string(),
                )
            })
            .collect();

        // People: exit 2, one `field: message [code]` line per violation on stderr.
        let text = station.import(&path, &[]);
        assert_eq!(text.code, Some(2), "{file}: {text:?}");
        for (field, code) in &want {
            assert!(
                has_violation_line(&text.stderr, field, code),
                "{file}: stderr does not name {field} with [{code}]:\n{}",
                text.stderr
            );
        }
        assert!(text.stdout.is_empty(), "{file}: {}", text.stdout);

        // Machines: exit 2 and exactly the expected errors as JSON on stdout; one rule per file.
        let machine = station.run(&["--json", "order", "import", path.to_str().unwrap()]);
        assert_eq!(machine.code, Some(2), "{file}: {machine:?}");
        let found: BTreeSet<_> = error_violations(&machine.json()).into_iter().collect();
        assert_eq!(found, want, "{file}");
    }

    // Nothing of any of them was stored or audited.
    assert!(station.list().is_empty());
    assert_eq!(station.audit_verifies(), 0);
}

#[test]
fn valid_fixtures_import_and_list_oldest_first() {
    let station = Station::sqlite();
    let mut numbers = Vec::new();
    for (path, _) in valid_orders() {
        let run = station.import(&path, &[]);
        run.expect_code(0);
        let no = run
            .stdout
            .trim()
            .strip_prefix("imported ")
            .unwrap()
            .to_string();
        numbers.push(no);
    }
    assert_eq!(numbers, ["KS-DEMO-0001", "KS-DEMO-0002", "KS-DEMO-0003"]);

    let list = station.list();
    assert_eq!(station.order_numbers(), numbers);
    let summary: Vec<[&str; 3]> = list
        .iter()
        .map(|o| fields(o, ["state", "uscc", "auth_method"]))
        .collect();
    assert_eq!(
        summary,
        [
            ["Submitted", "91110000600037341L", "legal_rep_phone"],
            ["Submitted", "91310115MA1K3BTP2B", "corporate_transfer"],
            ["Submitted", "91110000600037341L", "legal_rep_bank_card"],
        ]
    );
    assert_eq!(station.audit_verifies(), 3);

    // The text listing names every order too.
    let text = station.run(&["order", "list"]);
    text.expect_code(0);
    for no in &numbers {
        assert!(text.stdout.contains(no.as_str()), "{}", text.stdout);
    }
}

#[test]
fn import_json_reports_the_imported_numbers() {
    let station = Station::sqlite();
    let (path, _) = valid_orders().swap_remove(2);
    let v = station
        .run(&["order", "import", path.to_str().unwrap(), "--json"])
        .expect_code(0)
        .json();
    assert_eq!(v["imported"], json!(["KS-DEMO-0003"]));
    assert_eq!(v["warnings"], json!([]));
}

#[test]
fn show_returns_the_normalised_order_with_its_documents() {
    let station = Station::sqlite();
    let (path, raw) = valid_orders().swap_remove(0);
    // The fixture really is typed un-normalised, otherwise this test would prove nothing.
    assert_eq!(raw["order_no"], " ks-demo-0001 ");
    assert_eq!(raw["company"]["uscc"], "9111 0000 6000 3734 1l");
    assert_eq!(raw["legal_rep"]["mobile"], "+86 138-0013-8000");
    station.import(&path, &[]).expect_code(0);

    // Typed the way the customer wrote it: lookups normalise like intake does.
    let shown = station.show("ks-demo-0001");
    let o = &shown["order"];
    assert_eq!(o["order_no"], "KS-DEMO-0001");
    assert_eq!(o["company"]["name"], "北京星河数智科技有限公司");
    assert_eq!(o["company"]["uscc"], "91110000600037341L");
    assert_eq!(o["company"]["phone"], "010-8256 8888");
    assert_eq!(o["legal_rep"]["mobile"], "13800138000");
    assert_eq!(o["legal_rep"]["id_number"], "11010519491231002X");
    assert_eq!(o["handler"]["mobile"], "13910886621");
    assert_eq!(o["handler"]["email"], "li.xiaomei@xinghe-tech.com.cn");
    assert_eq!(o["product"]["seal_service"], "company_and_legal_rep");
    assert_eq!(shown["state"], "Submitted");
    assert_eq!(shown["reviewed_by"], Value::Null);

    // Every document and seal picture is stored, byte for byte (SHA-256 of the fixture file).
    let dir = path.parent().unwrap();
    let attachments = shown["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 7, "{attachments:?}");
    for a in attachments {
        let bytes = std::fs::read(dir.join(a["file_name"].as_str().unwrap())).unwrap();
        assert_eq!(a["sha256"], hex::encode(Sha256::digest(&bytes)), "{a}");
        assert_eq!(a["size"], bytes.len(), "{a}");
    }
    let history: Vec<&str> = strings(&shown["history"], "action");
    assert_eq!(history, ["order.imported"]);

    // The people's view shows the same normalised values.
    let text = station.run(&["order", "show", "KS-DEMO-0001"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("91110000600037341L"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("13800138000"), "{}", text.stdout);
}

#[test]
fn review_records_operator_and_reason_and_refuses_illegal_transitions() {
    let station = Station::sqlite();
    for (path, _) in valid_orders() {
        station.import(&path, &[]).expect_code(0);
    }

    let ok = station.run(&["order", "approve", "KS-DEMO-0001", "--operator", "张伟"]);
    ok.expect_code(0);
    assert_eq!(ok.stdout.trim(), "KS-DEMO-0001 Approved");
    let shown = station.show("KS-DEMO-0001");
    assert_eq!(shown["state"], "Approved");
    assert_eq!(shown["reviewed_by"], "张伟");
    assert!(shown["reviewed_at"].is_string());

    // Review happens once: approving again, or rejecting an approved order, is bad input.
    let twice = station.run(&["order", "approve", "KS-DEMO-0001", "--operator", "张伟"]);
    twice.expect_code(2);
    assert!(
        twice.stderr.contains("KS-DEMO-0001") && twice.stderr.contains("Approved"),
        "{}",
        twice.stderr
    );
    station
        .run(&[
            "order",
            "reject",
            "KS-DEMO-0001",
            "--operator",
            "李娜",
            "--reason",
            "late",
        ])
        .expect_code(2);

    let rejected = station
        .run(&[
            "--json",
            "order",
            "reject",
            "KS-DEMO-0002",
            "--operator",
            "李娜",
            "--reason",
            "营业执照复印件未加盖公章",
        ])
        .expect_code(0)
        .json();
    assert_eq!(
        rejected,
        json!({"order_no": "KS-DEMO-0002", "state": "Rejected", "from": "Submitted",
               "certificates_revoked": [], "binding_released": null, "sealed_pin_destroyed": false})
    );
    let shown = station.show("KS-DEMO-0002");
    assert_eq!(shown["reviewed_by"], "李娜");
    assert_eq!(shown["review_reason"], "营业执照复印件未加盖公章");
    station
        .run(&["order", "approve", "KS-DEMO-0002", "--operator", "张伟"])
        .expect_code(2);

    // A rejection needs a reason, a review needs an operator.
    let no_reason = station.run(&[
        "order",
        "reject",
        "KS-DEMO-0003",
        "--operator",
        "李娜",
        "--reason",
        "  ",
    ]);
    refused_naming(&no_reason, "--reason", "required");
    station
        .run(&["order", "approve", "KS-DEMO-0003", "--operator", " "])
        .expect_code(2);
    station
        .run(&["order", "approve", "KS-DEMO-0003"])
        .expect_code(2);

    // Unknown orders.
    let unknown = station.run(&["order", "approve", "KS-NOPE-0001", "--operator", "张伟"]);
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("KS-NOPE-0001"),
        "{}",
        unknown.stderr
    );
    station
        .run(&["order", "show", "KS-NOPE-0001"])
        .expect_code(2);

    // Listing by state, in any case spelling.
    let by_state = |s: &str| -> Vec<String> {
        station
            .run(&["--json", "order", "list", "--state", s])
            .expect_code(0)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_no"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(by_state("approved"), ["KS-DEMO-0001"]);
    assert_eq!(by_state("Rejected"), ["KS-DEMO-0002"]);
    assert_eq!(by_state("SUBMITTED"), ["KS-DEMO-0003"]);
    station
        .run(&["order", "list", "--state", "shipped-yesterday"])
        .expect_code(2);

    // Exactly one audit record per change that happened; refused attempts left none.
    assert_eq!(station.audit_verifies(), 5);
    let audit = station.audit();
    let reviews: Vec<[&str; 3]> = audit
        .iter()
        .filter(|r| r["action"] != "order.imported")
        .map(|r| fields(r, ["action", "actor", "order_no"]))
        .collect();
    assert_eq!(
        reviews,
        [
            ["order.approved", "张伟", "KS-DEMO-0001"],
            ["order.rejected", "李娜", "KS-DEMO-0002"],
        ]
    );
    let details: Value = serde_json::from_str(audit[4]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["reason"], "营业执照复印件未加盖公章");
}

#[test]
fn uscc_checksum_override_needs_operator_and_reason_and_is_recorded() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let mut order = order_value(0);
    order["order_no"] = json!("KS-PILOT-0001");
    order["company"]["name"] = json!("福州闽江早期试点贸易有限公司");
    order["company"]["uscc"] = json!("91350100M0001TGQXM");
    order["invoice"]["taxpayer_id"] = json!("91350100M0001TGQXM");
    order["shipping"] =
        json!({"province": "福建省", "city": "福州市", "address": "鼓楼区五四路1号"});
    let path = write_order(bundle.path(), "pilot.json", &order);
    let reason = "early pilot code; licence checked against SAMR record";

    let refused = station.import(&path, &[]);
    refused_naming(&refused, "company.uscc", "uscc_checksum");
    // No override without an operator who answers for it.
    station
        .import(&path, &["--accept-uscc-checksum", reason])
        .expect_code(2);
    assert!(station.list().is_empty());

    let accepted = station.import(
        &path,
        &["--accept-uscc-checksum", reason, "--operator", "林芳"],
    );
    accepted.expect_code(0);
    assert!(
        accepted
            .stderr
            .lines()
            .any(|l| l.starts_with("warning: company.uscc:")
                && l.ends_with("[uscc_checksum_overridden]")),
        "{}",
        accepted.stderr
    );

    let shown = station.show("KS-PILOT-0001");
    assert_eq!(shown["order"]["company"]["uscc"], "91350100M0001TGQXM");
    assert_eq!(shown["uscc_override_reason"], reason);
    assert!(
        items(&shown["warnings"])
            .iter()
            .any(|w| w["code"] == "uscc_checksum_overridden"),
        "{shown}"
    );
    let audit = station.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "order.imported");
    assert_eq!(audit[0]["actor"], "林芳");
    let details: Value = serde_json::from_str(audit[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["uscc_override_reason"], reason);
    assert_eq!(details["warnings"], json!(["uscc_checksum_overridden"]));

    // The override covers the checksum only, never a malformed code.
    order["order_no"] = json!("KS-PILOT-0002");
    order["company"]["uscc"] = json!("91A10000600037341L");
    let path = write_order(bundle.path(), "malformed.json", &order);
    let malformed = station.import(
        &path,
        &["--accept-uscc-checksum", reason, "--operator", "林芳"],
    );
    refused_naming(&malformed, "company.uscc", "uscc_region");
}

#[test]
fn duplicate_order_numbers_are_refused() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let (path, _) = valid_orders().swap_remove(0);
    station.import(&path, &[]).expect_code(0);

    // The same file again.
    let again = station.import(&path, &[]);
    refused_naming(&again, "order_no", "order_no_duplicate");

    // Another order under another spelling of the same number.
    let mut other = order_value(2);
    other["order_no"] = json!("ＫＳ-demo-0001");
    let path = write_order(bundle.path(), "same-number.json", &other);
    station.import(&path, &[]).expect_code(2);

    // Twice within one array: refused as a whole, the first one is not stored either.
    let mut second = order_value(2);
    second["order_no"] = json!("KS-DEMO-0002");
    let array = json!([order_value(1), second]);
    let path = write_order(bundle.path(), "twice.json", &array);
    let twice = station.import(&path, &[]);
    refused_naming(&twice, "[1].order_no", "order_no_duplicate");

    assert_eq!(station.order_numbers(), ["KS-DEMO-0001"]);
    assert_eq!(station.audit_verifies(), 1);
}

#[test]
fn keystation_config_variable_replaces_the_flag() {
    let station = Station::sqlite();
    let (path, _) = valid_orders().swap_remove(1);
    let imported = keystation()
        .env("KEYSTATION_CONFIG", &station.config)
        .args(["order", "import"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(imported.status.code(), Some(0), "{imported:?}");
    let listed = keystation()
        .env("KEYSTATION_CONFIG", &station.config)
        .args(["--json", "order", "list"])
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["order_no"], "KS-DEMO-0002");

    // An explicit --config wins over the variable.
    let out = keystation()
        .env("KEYSTATION_CONFIG", "/nonexistent/station.toml")
        .arg("--config")
        .arg(&station.config)
        .args(["order", "show", "KS-DEMO-0002"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // Neither: bad usage, and the message says what to do.
    let none = keystation().args(["order", "list"]).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("--config") && stderr.contains("KEYSTATION_CONFIG"),
        "{stderr}"
    );
}

#[test]
fn array_import_is_all_or_nothing() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let mut orders: Vec<Value> = valid_orders().into_iter().map(|(_, v)| v).collect();
    orders[2]["legal_rep"]["mobile"] = json!("1380013800");
    let path = write_order(bundle.path(), "batch.json", &Value::Array(orders.clone()));
    let refused = station.import(&path, &[]);
    refused_naming(&refused, "[2].legal_rep.mobile", "mobile_invalid");
    assert!(
        station.list().is_empty(),
        "a partly invalid array stored orders"
    );
    assert_eq!(station.audit_verifies(), 0);

    orders[2]["legal_rep"]["mobile"] = json!("158 1735 6642");
    let path = write_order(bundle.path(), "batch.json", &Value::Array(orders));
    let imported = station.import(&path, &[]);
    imported.expect_code(0);
    assert_eq!(
        imported.stdout.lines().collect::<Vec<_>>(),
        [
            "imported KS-DEMO-0001",
            "imported KS-DEMO-0002",
            "imported KS-DEMO-0003"
        ]
    );
    assert_eq!(station.list().len(), 3);
    assert_eq!(station.audit_verifies(), 3);
}

#[test]
fn documents_of_exactly_1_5_mib_are_accepted_one_byte_more_is_not() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    padded_png(&bundle.path().join("docs/at_limit.png"), MAX_DOCUMENT_BYTES);
    padded_png(
        &bundle.path().join("docs/over_limit.png"),
        MAX_DOCUMENT_BYTES + 1,
    );
    assert_eq!(MAX_DOCUMENT_BYTES, 1536 * 1024);

    let mut order = order_value(2);
    order["documents"][0]["file"] = json!("docs/at_limit.png");
    let path = write_order(bundle.path(), "at.json", &order);
    station.import(&path, &[]).expect_code(0);
    let shown = station.show("KS-DEMO-0003");
    let licence = items(&shown["attachments"])
        .iter()
        .find(|a| a["kind"] == "business_license")
        .unwrap()
        .clone();
    assert_eq!(licence["size"], MAX_DOCUMENT_BYTES);

    order["order_no"] = json!("KS-DEMO-0004");
    order["documents"][0]["file"] = json!("docs/over_limit.png");
    let path = write_order(bundle.path(), "over.json", &order);
    let over = station.import(&path, &[]);
    refused_naming(&over, "documents[0].file", "file_too_large");
}

#[test]
fn a_symlink_out_of_the_order_directory_is_refused() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("someone_elses_scan.png");
    std::fs::copy(bundle.path().join("docs/business_license.png"), &secret).unwrap();
    std::os::unix::fs::symlink(&secret, bundle.path().join("docs/escape.png")).unwrap();
    std::os::unix::fs::symlink(
        bundle.path().join("docs/business_license.png"),
        bundle.path().join("docs/alias.png"),
    )
    .unwrap();

    let mut order = order_value(2);
    order["documents"][0]["file"] = json!("docs/escape.png");
    let path = write_order(bundle.path(), "escape.json", &order);
    let refused = station.import(&path, &[]);
    refused_naming(&refused, "documents[0].file", "file_path");

    // A link that stays inside the directory is just another name for the file.
    order["documents"][0]["file"] = json!("docs/alias.png");
    let path = write_order(bundle.path(), "alias.json", &order);
    station.import(&path, &[]).expect_code(0);
}

#[tokio::test]
async fn audit_verify_exits_1_when_a_record_was_altered_behind_the_triggers_back() {
    use sqlx::Connection;
    let station = Station::sqlite();
    for (path, _) in valid_orders().into_iter().take(2) {
        station.import(&path, &[]).expect_code(0);
    }
    assert_eq!(station.audit_verifies(), 2);

    // Someone with write access to the file drops the guard and edits history.
    let db = station.config.parent().unwrap().join("station.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_events_append_only_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let broken = station.run(&["audit", "verify"]);
    broken.expect_code(1);
    assert!(
        broken.stderr.contains("audit record 1 was altered"),
        "{}",
        broken.stderr
    );
    // --json: exactly one JSON document on stdout, the failure.
    let machine = station.run(&["--json", "audit", "verify"]);
    machine.expect_code(1);
    let report = machine.json();
    assert_eq!(report["error"], "failure");
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("audit record 1 was altered"),
        "{report}"
    );
}
