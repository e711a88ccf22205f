//! Issue 17, item 1: registered operators. `init` makes the first administrator (its credential
//! beside station.toml); an administrator adds, lists, disables operators and sets their roles;
//! the station resolves who acts from the credential file and refuses an unregistered or
//! disabled operator, one without the role, a credential that is not theirs, and leaves the
//! last administrator in place. The audit trail names the registered operator.
//!
//! These run the binary WITHOUT the shared helpers' credential plumbing (`raw`), so that what
//! is refused is what a desk would see.

use crate::support::{
    Run, Station, admin_credential, credential_out, numbered_order, os_user, raw, refused_with,
    revoke_order_args, valid_bundle, write_order,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The admin adds `name` with `roles`; its credential's path.
#[track_caller]
fn add(st: &Station, name: &str, roles: &str) -> PathBuf {
    let file = st.tmp().join(format!("{name}.credential"));
    let admin = admin_credential(&st.config);
    raw(
        &st.config,
        Some(&admin),
        &["operator", "add", name, "--role", roles, "--credential-out"],
    )
    .expect_code(2); // --credential-out needs its FILE: clap's usage error
    let args = credential_out(&["operator", "add", name, "--role", roles], &file);
    raw(&st.config, Some(&admin), &args).expect_code(0);
    file
}

/// A station with one Submitted order; its number.
fn with_order(st: &Station) -> String {
    let bundle = valid_bundle();
    let file = numbered_order(bundle.path(), "OPS-0001");
    st.import(&file, &[]).expect_code(0);
    // The bundle's documents were read at import; the directory may go.
    drop(bundle);
    "OPS-0001".into()
}

/// A station with one Submitted order and the reviewer rita: the station, the order's number
/// and rita's credential.
fn with_order_and_rita() -> (Station, String, PathBuf) {
    let st = Station::sqlite();
    let no = with_order(&st);
    let rita = add(&st, "rita", "reviewer");
    (st, no, rita)
}

/// `order approve NO --operator NAME` with `credential` (or none), nothing added.
fn approve(st: &Station, credential: Option<&Path>, no: &str, name: &str) -> Run {
    raw(
        &st.config,
        credential,
        &["order", "approve", no, "--operator", name],
    )
}

/// The `order.approved` record names rita.
#[track_caller]
fn approved_by_rita(st: &Station) {
    let audit = st.audit();
    let approved = audit
        .iter()
        .find(|r| r["action"] == "order.approved")
        .unwrap();
    assert_eq!(approved["actor"], "rita", "{approved}");
}

#[test]
fn init_makes_an_administrator_who_adds_lists_and_changes_operators() {
    let st = Station::sqlite();
    // Proofs are what this test is about: no desk operator proven by the OS user.
    st.unmap_os_user();
    let admin = admin_credential(&st.config);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&admin).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "admin credential mode");
    }
    let rita = add(&st, "rita", "reviewer");
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&rita).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode, 0o600);
    // Written once: the same file is never overwritten.
    let again = raw(
        &st.config,
        Some(&admin),
        &[
            "operator",
            "add",
            "rita2",
            "--role",
            "reviewer",
            "--credential-out",
            rita.to_str().unwrap(),
        ],
    );
    refused_with(&again, "E-OPERATOR-CREDENTIAL");
    // A name taken.
    let dup = raw(
        &st.config,
        Some(&admin),
        &[
            "operator",
            "add",
            "rita",
            "--role",
            "auditor",
            "--credential-out",
            st.tmp().join("x").to_str().unwrap(),
        ],
    );
    refused_with(&dup, "E-OPERATOR-EXISTS");

    let list = raw(&st.config, None, &["--json", "operator", "list"]);
    let list = list.expect_code(0).json();
    // Without the helpers' desk operator.
    let list: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] != crate::support::DESK_OPERATOR)
        .collect();
    let names: Vec<(&str, &str, bool)> = list
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap(),
                o["created_by"].as_str().unwrap(),
                o["enabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names[0].0, "admin");
    assert!(names[0].1.starts_with("station:"), "{list:?}");
    assert_eq!(names[1], ("rita", "admin", true), "{list:?}");
    assert_eq!(
        list[1]["roles"],
        serde_json::json!(["reviewer"]),
        "{list:?}"
    );

    // Roles set, then disabled: each audited with the administrator.
    raw(
        &st.config,
        Some(&admin),
        &["operator", "role", "rita", "--set", "reviewer,auditor"],
    )
    .expect_code(0);
    raw(&st.config, Some(&admin), &["operator", "disable", "rita"]).expect_code(0);
    let audit = st.audit();
    let changes: Vec<&Value> = audit
        .iter()
        .filter(|r| r["action"] == "operator.changed")
        .collect();
    assert_eq!(changes.len(), 2, "{audit:?}");
    assert!(changes.iter().all(|r| r["actor"] == "admin"));
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "operator.added" && r["actor"] == "admin")
    );
    let details = |r: &Value| -> Value {
        match &r["details"] {
            Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        }
    };
    assert_eq!(details(changes[0])["roles"], "reviewer,auditor");
    assert_eq!(details(changes[1])["enabled"], false);
    // No credential in the trail.
    let token = std::fs::read_to_string(&rita).unwrap();
    let trail = serde_json::to_string(&audit).unwrap();
    assert!(!trail.contains(token.trim()));
    assert!(!trail.contains(&token.trim()["ksop1_".len()..]));

    // The last enabled administrator stays one; a non-administrator manages nothing.
    refused_with(
        &raw(&st.config, Some(&admin), &["operator", "disable", "admin"]),
        "E-OPERATOR-LAST-ADMIN",
    );
    let sam = add(&st, "sam", "security_officer");
    refused_with(
        &raw(&st.config, Some(&sam), &["operator", "disable", "admin"]),
        "E-OPERATOR-ROLE",
    );
    // Managing operators needs the credential, not a name.
    refused_with(
        &raw(&st.config, None, &["operator", "disable", "sam"]),
        "E-OPERATOR-CREDENTIAL",
    );
    st.audit_verifies();
}

#[test]
fn an_unregistered_or_disabled_operator_or_a_foreign_credential_is_refused() {
    let st = Station::sqlite();
    let no = with_order(&st);
    st.unmap_os_user();
    let approve = |credential: Option<&Path>, name: &str| approve(&st, credential, &no, name);
    // A name alone proves nothing, registered or not: no credential, no mapped OS user.
    for name in ["ghost", "admin"] {
        let by_name = approve(None, name);
        refused_with(&by_name, "E-OPERATOR-CREDENTIAL");
        assert!(
            by_name.stderr.contains("a name alone proves nothing"),
            "{}",
            by_name.stderr
        );
    }
    // Unregistered: a credential no account has.
    let forged = st.tmp().join("forged.credential");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&forged, format!("ksop1_{}\n", "ab".repeat(32))).unwrap();
        std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    refused_with(&approve(Some(&forged), "ghost"), "E-OPERATOR-CREDENTIAL");
    // Another operator's credential does not make a name.
    let rita = add(&st, "rita", "reviewer");
    let sam = add(&st, "sam", "reviewer");
    let mismatch = approve(Some(&sam), "rita");
    refused_with(&mismatch, "E-OPERATOR-CREDENTIAL");
    assert!(mismatch.stderr.contains("sam"), "{}", mismatch.stderr);
    // A credential open to others is refused, naming the chmod.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rita, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = approve(Some(&rita), "rita");
        refused_with(&open, "E-OPERATOR-CREDENTIAL");
        assert!(open.stderr.contains("chmod 600"), "{}", open.stderr);
        std::fs::set_permissions(&rita, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Disabled.
    raw(
        &st.config,
        Some(&admin_credential(&st.config)),
        &["operator", "disable", "sam"],
    )
    .expect_code(0);
    refused_with(&approve(Some(&sam), "sam"), "E-OPERATOR-DISABLED");
    // Nothing of that changed the order.
    assert_eq!(st.show(&no)["state"], "Submitted");

    // The registered reviewer approves; the record names her.
    approve(Some(&rita), "rita").expect_code(0);
    assert_eq!(st.show(&no)["state"], "Approved");
    approved_by_rita(&st);
    st.audit_verifies();
}

#[test]
fn a_command_acts_as_the_operator_its_os_user_is_mapped_to() {
    let (st, no, rita) = with_order_and_rita();
    let _sam = add(&st, "sam", "reviewer");
    st.unmap_os_user();
    let text = std::fs::read_to_string(&st.config).unwrap();
    let map = |operator: &str| {
        std::fs::write(
            &st.config,
            format!(
                "{text}\n[operator.os_users]\n{:?} = {operator:?}\n",
                os_user()
            ),
        )
        .unwrap();
    };
    // Mapped to an account that does not exist: named as unregistered.
    map("ghost");
    refused_with(&approve(&st, None, &no, "ghost"), "E-OPERATOR-UNKNOWN");
    // Mapped to rita: another name on the command line is refused; hers acts as rita.
    map("rita");
    let other = approve(&st, None, &no, "sam");
    refused_with(&other, "E-OPERATOR-CREDENTIAL");
    assert!(other.stderr.contains("rita"), "{}", other.stderr);
    assert_eq!(st.show(&no)["state"], "Submitted");
    approve(&st, None, &no, "rita").expect_code(0);
    assert_eq!(st.show(&no)["state"], "Approved");
    approved_by_rita(&st);
    // A credential still wins over the mapping: sam's credential is sam, whoever runs it.
    let sam = st.tmp().join("sam.credential");
    let mismatch = raw(
        &st.config,
        Some(&sam),
        &[
            "order",
            "reject",
            &no,
            "--operator",
            "rita",
            "--reason",
            "x",
        ],
    );
    refused_with(&mismatch, "E-OPERATOR-CREDENTIAL");
    assert!(mismatch.stderr.contains("sam"), "{}", mismatch.stderr);
    assert_eq!(st.show(&no)["state"], "Approved");
    drop(rita);
    st.audit_verifies();
}

#[test]
fn a_reviewer_can_neither_revoke_nor_decide_a_request() {
    let (st, no, rita) = with_order_and_rita();
    for args in [
        revoke_order_args(&no, "rita").to_vec(),
        vec![
            "cert",
            "revoke",
            "7e57000000000000000000000000d0b1",
            "--reason",
            "keyCompromise",
            "--operator",
            "rita",
        ],
        vec![
            "pin-reset",
            "approve",
            "00000000-0000-0000-0000-000000000000",
            "--operator",
            "rita",
        ],
    ] {
        let run = raw(&st.config, Some(&rita), &args);
        refused_with(&run, "E-OPERATOR-ROLE");
        assert!(run.stderr.contains("rita"), "{args:?}: {}", run.stderr);
    }
    // A security officer is let through to the next check (the request does not exist).
    let sam = add(&st, "sam", "security_officer");
    refused_with(
        &raw(
            &st.config,
            Some(&sam),
            &[
                "pin-reset",
                "approve",
                "00000000-0000-0000-0000-000000000000",
                "--operator",
                "sam",
            ],
        ),
        "E-REQUEST-NOT-FOUND",
    );
}

#[test]
fn every_command_that_changes_an_order_or_issues_a_crl_acts_as_a_proven_operator() {
    let st = Station::sqlite();
    // At a desk whose OS user is mapped, the import is that registered operator's.
    let no = with_order(&st);
    let audit = st.audit();
    let imported = audit
        .iter()
        .find(|r| r["action"] == "order.imported")
        .unwrap();
    assert_eq!(
        imported["actor"],
        crate::support::DESK_OPERATOR,
        "{imported}"
    );
    // So is a CRL issued by hand (`ca crl`), unlike the ones the station issues on its own.
    raw(&st.config, None, &["ca", "crl"]).expect_code(0);
    let audit = st.audit();
    let crl = audit
        .iter()
        .rev()
        .find(|r| r["action"] == "crl.issued")
        .unwrap();
    assert_eq!(crl["actor"], crate::support::DESK_OPERATOR, "{crl}");
    let rita = add(&st, "rita", "reviewer");
    let paul = add(&st, "paul", "provisioner");
    raw(
        &st.config,
        Some(&rita),
        &["order", "approve", &no, "--operator", "rita"],
    )
    .expect_code(0);

    // Without a credential and without the mapping, nothing is taken in, provisioned or
    // shipped: each refusal names the missing proof, and nothing changed.
    st.unmap_os_user();
    let bundle = valid_bundle();
    let (_, mut second) = crate::support::valid_orders().remove(1);
    second["order_no"] = Value::from("OPS-0002");
    let file = write_order(bundle.path(), "ops2.json", &second);
    refused_with(
        &raw(
            &st.config,
            None,
            &["order", "import", file.to_str().unwrap()],
        ),
        "E-OPERATOR-CREDENTIAL",
    );
    refused_with(
        &raw(&st.config, None, &["provision", &no]),
        "E-OPERATOR-CREDENTIAL",
    );
    refused_with(
        &raw(&st.config, None, &["provision", "--all-approved"]),
        "E-OPERATOR-CREDENTIAL",
    );
    refused_with(
        &raw(&st.config, None, &["ship", &no, "--tracking", "SF1"]),
        "E-OPERATOR-CREDENTIAL",
    );
    refused_with(
        &raw(&st.config, None, &["ca", "crl"]),
        "E-OPERATOR-CREDENTIAL",
    );
    // A reviewer proves who they are but may not provision.
    refused_with(
        &raw(&st.config, Some(&rita), &["provision", &no]),
        "E-OPERATOR-ROLE",
    );
    assert_eq!(st.order_numbers(), vec![no.as_str()]);
    assert_eq!(st.show(&no)["state"], "Approved");

    // The provisioner's batch: every record of the job names them.
    let before = st.audit().len();
    raw(&st.config, Some(&paul), &["provision", "--all-approved"]).expect_code(0);
    assert_eq!(st.show(&no)["state"], "Provisioned");
    let job: Vec<Value> = st.audit().split_off(before);
    assert!(
        job.iter().any(|r| r["action"] == "order.provisioned"),
        "{job:#?}"
    );
    for r in &job {
        assert_eq!(r["actor"], "paul", "{r}");
    }
    st.audit_verifies();
}
