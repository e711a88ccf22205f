//! Issue 14, item 1: installation vs station. A second `init` on a database that holds an
//! installation joins it — registered, verified against the HSM it reaches — and changes none of
//! the installation's material: the first station's `audit verify` still passes. What would make
//! a second installation over the first, a duplicate station id and an HSM that is not the
//! installation's are refused, with nothing written.

use super::{Fleet, details};
use crate::support::audit_records;
use crate::support::{run_ok, stdout_json};
use serde_json::Value;

#[test]
fn a_second_init_joins_the_installation_and_changes_none_of_its_material() {
    let fleet = Fleet::new(1);
    let before = fleet.material();
    // CA, tokens, seal maker, audit anchor, and the OCSP signer (certificate, key id).
    assert_eq!(before.len(), 7, "{before:?}");
    let recorded = |name: &str| {
        before
            .iter()
            .find(|r| r[0] == name)
            .map(|r| r[1].clone())
            .unwrap()
    };
    let desk1 = fleet.desk(1);
    desk1.json(&["audit", "verify"]);

    // `init --generate-pins` on the installation's database would make a second installation
    // over the first (what `init` did before): refused, nothing written.
    let mut second = crate::support::keystation();
    second
        .args([
            "--json",
            "init",
            "--generate-pins",
            "--station-id",
            "desk-x",
        ])
        .arg("--dir")
        .arg(fleet.tmp().join("desk-x"))
        .args(["--database-url", &fleet.db.url]);
    let out = second.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(stdout_json(&out)["code"], "E-USAGE");
    assert!(!fleet.tmp().join("desk-x/station.toml").exists());
    assert_eq!(fleet.material(), before);

    // Joining: with the installation's station PIN and its HSM.
    let mut join = fleet.join_command("desk-2");
    join.arg("--json");
    let joined = stdout_json(&run_ok(&mut join));
    assert_eq!(joined["joined"], true, "{joined}");
    assert_eq!(
        joined["material"]["ca_fingerprint"].as_str(),
        Some(recorded("ca_fingerprint").as_str()),
        "{joined}"
    );
    assert_eq!(
        fleet.material(),
        before,
        "the installation's material changed"
    );
    let stations = fleet.sql("SELECT station_id, registered_by FROM stations ORDER BY station_id");
    assert_eq!(stations, [["desk-1", "init"], ["desk-2", "join"]]);

    // The first station's audit trail still verifies, anchor and all; so does the new one's,
    // and the join is recorded by the station that joined.
    let verdict = desk1.json(&["audit", "verify"]);
    assert_eq!(verdict["ok"], true, "{verdict}");
    let desk2 = super::Desk {
        id: "desk-2".into(),
        dir: fleet.tmp().join("desk-2"),
    };
    assert_eq!(desk2.json(&["audit", "verify"])["ok"], true);
    let audit = desk1.json(&["audit", "show"]);
    let join_record = audit_records(&audit, "station.joined");
    assert_eq!(join_record.len(), 1, "{audit:#}");
    assert_eq!(join_record[0]["station_id"], "desk-2");
    assert_eq!(join_record[0]["actor"], "station:desk-2");
    assert_eq!(
        details(join_record[0])["installation"]["vault_token_serial"],
        recorded("vault_token_serial").as_str()
    );
    assert_eq!(
        audit_records(&audit, "station.initialized")[0]["station_id"],
        "desk-1"
    );
    // The joined station reads the CA the installation made.
    assert_eq!(
        std::fs::read(desk2.dir.join("ca/ca.pem")).unwrap(),
        std::fs::read(desk1.dir.join("ca/ca.pem")).unwrap()
    );
    // And its OCSP signer, from the installation's records.
    assert_eq!(
        std::fs::read(desk2.dir.join("ca/ocsp-signer.pem")).unwrap(),
        std::fs::read(desk1.dir.join("ca/ocsp-signer.pem")).unwrap()
    );
    let status = desk2.json(&["fleet", "status"]);
    let ids: Vec<&str> = status["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["station_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["desk-1", "desk-2"], "{status}");
}

#[test]
fn a_duplicate_station_id_or_a_foreign_hsm_is_refused_and_nothing_is_written() {
    let fleet = Fleet::new(1);
    let before = fleet.material();
    let refused = |mut cmd: std::process::Command, dir: &str, code: i32, error: &str| {
        cmd.arg("--json");
        let out = cmd.output().unwrap();
        let v: Value = stdout_json(&out);
        assert_eq!(out.status.code(), Some(code), "{v}");
        assert_eq!(v["code"], error, "{v}");
        assert!(!fleet.tmp().join(dir).join("station.toml").exists());
        assert!(
            !fleet
                .tmp()
                .join(dir)
                .join("secrets/station-hsm.pin")
                .exists()
        );
        assert_eq!(fleet.material(), before);
        v
    };

    // The id of a station the installation has.
    let shared = fleet.desk(1).dir.join("softhsm2.conf");
    let dup = fleet.join_command_at("desk-1", "desk-1b", &shared);
    refused(dup, "desk-1b", 2, "E-STATION-EXISTS");

    // No HSM given: the station cannot reach the installation's.
    let mut bare = crate::support::keystation();
    bare.args([
        "init",
        "--station-id",
        "desk-3",
        "--database-url",
        &fleet.db.url,
    ])
    .arg("--dir")
    .arg(fleet.tmp().join("desk-3"))
    .arg("--pin-file")
    .arg(fleet.desk(1).dir.join("secrets/station-hsm.pin"));
    refused(bare, "desk-3", 2, "E-USAGE");

    // Another installation's HSM (its own CA and vault tokens, under the same labels).
    let other = crate::station::TestStation::new();
    let foreign = fleet.join_command_at("desk-4", "desk-4", &other.softhsm_conf());
    let v = refused(foreign, "desk-4", 1, "E-INSTALLATION-MISMATCH");
    assert!(v["message"].as_str().unwrap().contains("CA token"), "{v}");
    let stations = fleet.sql("SELECT station_id FROM stations ORDER BY station_id");
    assert_eq!(stations, [["desk-1"]]);
    fleet.desk(1).json(&["audit", "verify"]);
}
