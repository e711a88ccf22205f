//! Issue 17, item 1: four-eyes on operator and role changes and on `ca ocsp-signer` (API tokens:
//! `console::api`). With one enabled administrator its changes take effect at once (bootstrap,
//! audited so); with two, `operator add|role|disable|enable` only records a request, the
//! requester's own approval is refused, and a second administrator's approval carries it out
//! and writes the new credential, which then works. `ca ocsp-signer` always needs a second
//! security officer (or administrator). On SQLite and PostgreSQL (the store's new table).
//!
//! These run the binary with explicit credentials (`raw`), as a desk would.

use crate::pg::PgDatabase;
use crate::support::{
    Run, Station, admin_credential, credential_out, numbered_order, raw, refused_with, valid_bundle,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A record's details as JSON.
fn details(r: &Value) -> Value {
    match &r["details"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    }
}

/// The audit records with `action`, newest last.
fn records(st: &Station, action: &str) -> Vec<Value> {
    st.audit()
        .into_iter()
        .filter(|r| r["action"] == action)
        .collect()
}

/// The request a `--json` asking command recorded: its id, after checking it waits.
#[track_caller]
fn requested(run: &Run) -> String {
    let v = run.expect_code(0).json();
    assert_eq!(v["state"], "requested", "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// The operators as `operator list --json` gives them: (name, enabled, roles).
fn operators(st: &Station) -> Vec<(String, bool, Value)> {
    raw(&st.config, None, &["--json", "operator", "list"])
        .expect_code(0)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["enabled"].as_bool().unwrap(),
                o["roles"].clone(),
            )
        })
        .collect()
}

/// The station's only administrator adds `name` with `roles` at once (bootstrap); its
/// credential.
fn add_at_once(st: &Station, name: &str, roles: &str) -> PathBuf {
    let file = st.tmp().join(format!("{name}.credential"));
    let admin = admin_credential(&st.config);
    let args = [
        "--json",
        "operator",
        "add",
        name,
        "--role",
        roles,
        "--credential-out",
        file.to_str().unwrap(),
    ];
    let added = raw(&st.config, Some(&admin), &args).expect_code(0).json();
    assert_eq!(added["name"], name, "{added}");
    file
}

fn operator_changes_need_a_second_administrator(st: &Station) {
    let admin = admin_credential(&st.config);
    // Bootstrap: the only administrator adds a second one at once, audited so.
    let bea = add_at_once(st, "bea", "administrator");
    let added = records(st, "operator.added");
    let d = details(added.last().unwrap());
    assert_eq!(d["operator"], "bea");
    assert_eq!(d["bootstrap"], true, "{d}");
    assert!(d.get("four_eyes").is_none(), "{d}");
    let check = raw(&st.config, None, &["--json", "check"]);
    assert_eq!(
        check.json()["operator_changes"],
        "four_eyes",
        "{}",
        check.stdout
    );

    // Now `operator add` only records a request; no credential is written by the asker.
    let olga_file = st.tmp().join("olga.credential");
    let with_out = raw(
        &st.config,
        Some(&admin),
        &[
            "operator",
            "add",
            "olga",
            "--role",
            "reviewer",
            "--credential-out",
            olga_file.to_str().unwrap(),
        ],
    );
    refused_with(&with_out, "E-USAGE");
    assert!(
        with_out.stderr.contains("--credential-out"),
        "{}",
        with_out.stderr
    );
    assert!(!olga_file.exists());
    let add = ["--json", "operator", "add", "olga", "--role", "reviewer"];
    let id = requested(&raw(&st.config, Some(&admin), &add));
    assert!(!operators(st).iter().any(|o| o.0 == "olga"));
    // One open request per operator and kind.
    refused_with(&raw(&st.config, Some(&admin), &add), "E-REQUEST-OPEN");

    // The requester cannot approve it; nothing is written.
    let own = raw(
        &st.config,
        Some(&admin),
        &credential_out(&["operator", "approve", &id], &olga_file),
    );
    refused_with(&own, "E-REQUEST-SAME-OPERATOR");
    assert!(!olga_file.exists());
    // A second administrator's approval needs the file to write the credential to.
    refused_with(
        &raw(&st.config, Some(&bea), &["operator", "approve", &id]),
        "E-USAGE",
    );
    // Neither an operator without the role (a reviewer) may approve it.
    let rita = add_at_once_refused_now(st, &bea);
    refused_with(
        &raw(
            &st.config,
            Some(&rita),
            &["operator", "approve", &id, "--credential-out", "/tmp/x"],
        ),
        "E-OPERATOR-ROLE",
    );
    let approved = raw(
        &st.config,
        Some(&bea),
        &[
            "--json",
            "operator",
            "approve",
            &id,
            "--credential-out",
            olga_file.to_str().unwrap(),
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(approved["request"]["state"], "done", "{approved}");
    assert_eq!(approved["request"]["decided_by"], "bea");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&olga_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(operators(st).contains(&("olga".into(), true, serde_json::json!(["reviewer"]))));
    // Settled: a second approval is refused.
    assert_ne!(
        raw(
            &st.config,
            Some(&bea),
            &["operator", "approve", &id, "--credential-out", "/tmp/y"]
        )
        .code,
        Some(0)
    );
    // The credential works: olga reviews an order.
    let no = with_order(st);
    raw(
        &st.config,
        Some(&olga_file),
        &["order", "approve", &no, "--operator", "olga"],
    )
    .expect_code(0);
    // Audited with both identities, never the credential.
    let added = records(st, "operator.added");
    let olga_added = added
        .iter()
        .find(|r| details(r)["operator"] == "olga")
        .unwrap();
    assert_eq!(olga_added["actor"], "bea");
    let d = details(olga_added);
    assert_eq!(d["four_eyes"]["request_id"], id.as_str(), "{d}");
    assert_eq!(d["four_eyes"]["requested_by"], "admin");
    assert_eq!(d["four_eyes"]["approved_by"], "bea");
    assert!(d.get("bootstrap").is_none(), "{d}");
    let trail = serde_json::to_string(&st.audit()).unwrap();
    let token = std::fs::read_to_string(&olga_file).unwrap();
    assert!(!trail.contains(&token.trim()["ksop1_".len()..]));
    let asked = records(st, "station_request.requested");
    assert!(
        asked
            .iter()
            .any(|r| details(r)["summary"] == "add operator olga (reviewer)")
    );

    // A role change: asked by bea, approved by admin.
    let role = [
        "--json",
        "operator",
        "role",
        "olga",
        "--set",
        "reviewer,auditor",
    ];
    let id = requested(&raw(&st.config, Some(&bea), &role));
    refused_with(
        &raw(&st.config, Some(&bea), &["operator", "approve", &id]),
        "E-REQUEST-SAME-OPERATOR",
    );
    // A role change makes no credential: a file named for one is refused, nothing written.
    let stray = st.tmp().join("stray.credential");
    refused_with(
        &raw(
            &st.config,
            Some(&admin),
            &credential_out(&["operator", "approve", &id], &stray),
        ),
        "E-USAGE",
    );
    assert!(!stray.exists());
    raw(&st.config, Some(&admin), &["operator", "approve", &id]).expect_code(0);
    assert!(operators(st).contains(&(
        "olga".into(),
        true,
        serde_json::json!(["reviewer", "auditor"])
    )));
    // Disable: asked by admin, approved by bea; the credential then acts no more.
    let id = requested(&raw(
        &st.config,
        Some(&admin),
        &["--json", "operator", "disable", "olga"],
    ));
    raw(&st.config, Some(&bea), &["operator", "approve", &id]).expect_code(0);
    assert!(operators(st).iter().any(|o| o.0 == "olga" && !o.1));
    refused_with(
        &raw(
            &st.config,
            Some(&olga_file),
            &["order", "approve", "NONE-1", "--operator", "olga"],
        ),
        "E-OPERATOR-DISABLED",
    );
    let changed = records(st, "operator.changed");
    let last = details(changed.last().unwrap());
    assert_eq!(last["enabled"], false);
    assert_eq!(last["four_eyes"]["requested_by"], "admin");
    assert_eq!(last["four_eyes"]["approved_by"], "bea");

    // Rejected: nothing changes. Cancelled by its requester: nothing changes.
    let id = requested(&raw(
        &st.config,
        Some(&admin),
        &["--json", "operator", "enable", "olga"],
    ));
    refused_with(
        &raw(
            &st.config,
            Some(&admin),
            &["operator", "reject", &id, "--reason", "mine"],
        ),
        "E-REQUEST-SAME-OPERATOR",
    );
    raw(
        &st.config,
        Some(&bea),
        &["operator", "reject", &id, "--reason", "she left"],
    )
    .expect_code(0);
    let id2 = requested(&raw(
        &st.config,
        Some(&admin),
        &["--json", "operator", "add", "pat", "--role", "auditor"],
    ));
    raw(&st.config, Some(&admin), &["operator", "cancel", &id2]).expect_code(0);
    assert!(operators(st).iter().any(|o| o.0 == "olga" && !o.1));
    assert!(!operators(st).iter().any(|o| o.0 == "pat"));
    let listed = raw(&st.config, None, &["--json", "operator", "requests"])
        .expect_code(0)
        .json();
    let mut states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    states.sort_unstable();
    // olga and rita added, olga's roles set and disabled; her enabling rejected, pat cancelled.
    assert_eq!(
        states,
        ["cancelled", "done", "done", "done", "done", "rejected"],
        "{listed}"
    );
    // A CA command does not decide an operator's request.
    refused_with(
        &raw(
            &st.config,
            Some(&bea),
            &["ca", "reject", &id2, "--reason", "x"],
        ),
        "E-USAGE",
    );
    assert!(!records(st, "station_request.rejected").is_empty());
    st.audit_verifies();
}

/// A reviewer `rita`, added while two administrators exist: a request `bea` asks for and the
/// admin approves; her credential.
fn add_at_once_refused_now(st: &Station, bea: &Path) -> PathBuf {
    let admin = admin_credential(&st.config);
    let file = st.tmp().join("rita.credential");
    let id = requested(&raw(
        &st.config,
        Some(bea),
        &["--json", "operator", "add", "rita", "--role", "reviewer"],
    ));
    let args = credential_out(&["operator", "approve", &id], &file);
    raw(&st.config, Some(&admin), &args).expect_code(0);
    file
}

/// A station with one Submitted order; its number.
fn with_order(st: &Station) -> String {
    let bundle = valid_bundle();
    let file = numbered_order(bundle.path(), "FE-0001");
    raw(
        &st.config,
        None,
        &["order", "import", file.to_str().unwrap()],
    )
    .expect_code(0);
    drop(bundle);
    "FE-0001".into()
}

#[test]
fn operator_changes_need_a_second_administrator_on_sqlite() {
    operator_changes_need_a_second_administrator(&Station::sqlite());
}

#[test]
fn operator_changes_need_a_second_administrator_on_postgres() {
    let db = crate::support::runtime().block_on(PgDatabase::create());
    operator_changes_need_a_second_administrator(&Station::with_database(&db.url));
}

#[test]
fn the_only_administrator_changes_operators_at_once_and_check_says_so() {
    let st = Station::sqlite();
    let check = raw(&st.config, None, &["check"]);
    check.expect_code(0);
    assert!(check.stdout.contains("bootstrap"), "{}", check.stdout);
    let olga = add_at_once(&st, "olga", "reviewer");
    assert!(olga.exists());
    let admin = admin_credential(&st.config);
    raw(&st.config, Some(&admin), &["operator", "disable", "olga"]).expect_code(0);
    let changed = records(&st, "operator.changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(details(&changed[0])["bootstrap"], true);
    // Asking for a change without the file its secret goes to is refused, naming the flag.
    let no_file = raw(
        &st.config,
        Some(&admin),
        &["operator", "add", "pat", "--role", "reviewer"],
    );
    refused_with(&no_file, "E-USAGE");
    assert!(
        no_file.stderr.contains("--credential-out"),
        "{}",
        no_file.stderr
    );
    assert!(records(&st, "station_request.requested").is_empty());
    st.audit_verifies();
}

/// `ca ocsp-signer` by `asker`, approved by `approver` (two security officers): what
/// `ca approve --json` printed.
pub fn ocsp_signer_by_two(config: &Path, asker: &Path, approver: &Path) -> Value {
    let asked = raw(config, Some(asker), &["--json", "ca", "ocsp-signer"]);
    let id = requested(&asked);
    raw(config, Some(approver), &["--json", "ca", "approve", &id])
        .expect_code(0)
        .json()
}

#[test]
fn a_new_ocsp_signer_needs_a_second_officer() {
    let st = Station::sqlite();
    // Every command here names its operator by credential; without one, nobody is proven.
    st.unmap_os_user();
    let sam = add_at_once(&st, "sam", "security_officer");
    let sue = add_at_once(&st, "sue", "security_officer");
    let rita = add_at_once(&st, "rita", "reviewer");
    let pem = st.dir().join("ca/ocsp-signer.pem");
    let before = std::fs::read(&pem).unwrap();
    // A reviewer may not ask; a name alone proves nothing.
    refused_with(
        &raw(&st.config, Some(&rita), &["ca", "ocsp-signer"]),
        "E-OPERATOR-ROLE",
    );
    refused_with(
        &raw(&st.config, None, &["ca", "ocsp-signer"]),
        "E-OPERATOR-CREDENTIAL",
    );
    let id = requested(&raw(
        &st.config,
        Some(&sam),
        &["--json", "ca", "ocsp-signer"],
    ));
    // Nothing made yet; the asker cannot approve; an operator change command does not either.
    assert_eq!(std::fs::read(&pem).unwrap(), before);
    refused_with(
        &raw(&st.config, Some(&sam), &["ca", "approve", &id]),
        "E-REQUEST-SAME-OPERATOR",
    );
    refused_with(
        &raw(&st.config, Some(&sue), &["operator", "approve", &id]),
        "E-USAGE",
    );
    assert_eq!(records(&st, "ca.ocsp_signer_issued").len(), 0);
    let approved = raw(&st.config, Some(&sue), &["--json", "ca", "approve", &id])
        .expect_code(0)
        .json();
    assert_eq!(approved["request"]["state"], "done", "{approved}");
    let serial = approved["carried"]["serial"].as_str().unwrap();
    assert_ne!(std::fs::read(&pem).unwrap(), before);
    let issued = records(&st, "ca.ocsp_signer_issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["actor"], "sue");
    let d = details(&issued[0]);
    assert_eq!(d["serial"], serial);
    assert_eq!(d["four_eyes"]["requested_by"], "sam");
    assert_eq!(d["four_eyes"]["approved_by"], "sue");
    // The bootstrap rule never applies to the CA: the only administrator still needs a second.
    let admin = admin_credential(&st.config);
    let id = requested(&raw(
        &st.config,
        Some(&admin),
        &["--json", "ca", "ocsp-signer"],
    ));
    raw(
        &st.config,
        Some(&sam),
        &["ca", "reject", &id, "--reason", "not now"],
    )
    .expect_code(0);
    assert_eq!(records(&st, "ca.ocsp_signer_issued").len(), 1);
    st.audit_verifies();
}

#[test]
fn provision_reinit_needs_an_approved_request_and_consumes_it() {
    use crate::station::{TestStation, order_json};
    let st = TestStation::new();
    let config = st.config();
    st.import_approved(&order_json("FE-RE-1", "legal_rep_phone", "none", "main"));
    st.provision_failing_at("FE-RE-1", "provision.generate_key.started");
    let bound = st.json(&["order", "show", "FE-RE-1"]);
    assert_eq!(bound["state"], "Failed");
    let serial = bound["token"]["token_serial"].as_str().unwrap().to_string();

    // Without a request: refused before anything is touched.
    let reinit = ["--json", "provision", "FE-RE-1", "--reinit"];
    let refused = raw(&config, None, &reinit);
    refused_with(&refused, "E-REINIT-NOT-APPROVED");
    assert!(
        refused.stdout.contains("reinit request FE-RE-1"),
        "{}",
        refused.stdout
    );
    assert_eq!(st.json(&["order", "show", "FE-RE-1"])["state"], "Failed");

    // Asked for by one operator (the request names the bound token), not yet approved.
    let asker = crate::support::operator_credential(&config, "desk-a").unwrap();
    let second = crate::support::operator_credential(&config, "desk-b").unwrap();
    let asked = raw(
        &config,
        Some(&asker),
        &["--json", "reinit", "request", "FE-RE-1"],
    );
    let id = requested(&asked);
    assert_eq!(
        asked.json()["change"]["token_serial"],
        serial.as_str(),
        "{}",
        asked.stdout
    );
    refused_with(&raw(&config, None, &reinit), "E-REINIT-NOT-APPROVED");
    refused_with(
        &raw(&config, Some(&asker), &["reinit", "approve", &id]),
        "E-REQUEST-SAME-OPERATOR",
    );
    // A reviewer-only operator may not decide it.
    let admin = admin_credential(&config);
    let rita = st.tmp().join("rita.credential");
    raw(
        &config,
        Some(&admin),
        &[
            "operator",
            "add",
            "rita",
            "--role",
            "reviewer",
            "--credential-out",
            rita.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    refused_with(
        &raw(&config, Some(&rita), &["reinit", "approve", &id]),
        "E-OPERATOR-ROLE",
    );
    let approved = raw(
        &config,
        Some(&second),
        &["--json", "reinit", "approve", &id],
    )
    .expect_code(0)
    .json();
    assert_eq!(approved["request"]["state"], "approved", "{approved}");
    assert!(approved["carried"].is_null(), "{approved}");

    // Approved: provisioning with --reinit starts the token over and consumes the request.
    let report = raw(&config, None, &reinit).expect_code(0).json();
    assert_eq!(report["steps_run"][1], "init_token", "{report}");
    assert_eq!(
        st.json(&["order", "show", "FE-RE-1"])["state"],
        "Provisioned"
    );
    let listed = raw(&config, None, &["--json", "reinit", "requests"])
        .expect_code(0)
        .json();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "done", "{listed}");
    // The claim's record names both operators.
    let audit = st.json(&["audit", "show"]);
    let claims = crate::support::audit_records(&audit, "provision.claimed");
    let last = details(claims.last().unwrap());
    assert_eq!(last["reinit"], true, "{last}");
    assert_eq!(last["four_eyes"]["request_id"], id.as_str(), "{last}");
    assert_eq!(last["four_eyes"]["requested_by"], "desk-a");
    assert_eq!(last["four_eyes"]["approved_by"], "desk-b");
    st.check_passes("after the approved reinit");
    st.ok(&["audit", "verify"]);
}
