//! Issue 14, item 3: takeover. A station that died mid-job leaves its order to the others; what
//! the one taking it does follows from where the journal says the job stopped and from where the
//! key is (`domain::takeover`): on the key when it is within reach (the stations share one key
//! store here, as if the operator had carried the key over), on a new key when it is not (the key
//! stayed at the dead desk: its certificate is revoked). A live holder is never taken from, and
//! an order that failed at its station stays there unless started over.

use super::{Desk, Fleet, details, signal, softhsm_token_dir};
use crate::support::{audit_records, spawn_to_failpoint};
use serde_json::Value;
use std::process::{Child, Stdio};

/// `provision ORDER` at `desk`, paused at failpoint `point`; returned once it got there.
fn paused_at(desk: &Desk, order: &str, point: &str) -> Child {
    let mut cmd = desk.command(&["provision", order]);
    cmd.stdout(Stdio::null());
    spawn_to_failpoint(cmd, point, "pause")
}

fn killed(mut child: Child) {
    signal(child.id(), "-KILL");
    child.wait().unwrap();
}

/// The order's one `provision.taken_over` record's details.
fn taken_over(desk: &Desk, order: &str) -> Value {
    let audit = desk.json(&["audit", "show", "--order", order]);
    let found = audit_records(&audit, "provision.taken_over");
    assert_eq!(found.len(), 1, "{audit:#}");
    assert_eq!(found[0]["station_id"], desk.id.as_str());
    details(found[0])
}

fn certificates(desk: &Desk, order: &str) -> Vec<Value> {
    desk.json(&["order", "show", order])["certificates"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_killed_stations_order_goes_on_on_its_key_when_the_key_is_within_reach() {
    let fleet = Fleet::new(2);
    let order = &fleet.approved_orders(1)[0];
    let (desk1, desk2) = (fleet.desk(1), fleet.desk(2));
    let holder = paused_at(desk1, order, "provision.write_seals.started");

    // While desk 1's job lives, desk 2 is refused.
    let out = desk2.run(&["--json", "provision", order]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "E-LEASE-HELD", "{v}");

    killed(holder);
    let report = desk2.json(&["provision", order]);
    // The certificate was on the key: the job goes on after it, nothing is redone.
    assert_eq!(
        report["steps_run"],
        serde_json::json!(["claim", "write_seals", "finish"]),
        "{report}"
    );
    let d = taken_over(desk2, order);
    assert_eq!(d["from_station"], "desk-1");
    assert_eq!(d["decision"], "resume_here");
    assert_eq!(d["journal_point"], "certificate_on_key");
    assert_eq!(d["key_in_reach"], true);
    let show = desk2.json(&["order", "show", order]);
    assert_eq!(show["state"], "Provisioned");
    assert_eq!(show["token"]["station_id"], "desk-2");
    assert_eq!(show["token"]["token_serial"], report["token_serial"]);
    let certs = certificates(desk2, order);
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0]["status"], "on_token");
    super::check_passes(desk2);
    desk1.json(&["audit", "verify"]);
}

#[test]
fn a_key_left_at_the_dead_station_is_lost_its_certificate_revoked_and_a_new_key_made() {
    let fleet = Fleet::new(2);
    let order = &fleet.approved_orders(1)[0];
    let (desk1, desk2) = (fleet.desk(1), fleet.desk(2));
    killed(paused_at(desk1, order, "provision.write_seals.started"));
    let before = desk1.json(&["order", "show", order]);
    let old_serial = before["token"]["token_serial"]
        .as_str()
        .unwrap()
        .to_string();
    let old_cert = certificates(desk1, order)[0]["serial"].clone();
    // The key stays at desk 1: out of desk 2's reach.
    let token = softhsm_token_dir(&desk1.dir.join("tokens"), &old_serial);
    std::fs::remove_dir_all(token).unwrap();

    let report = desk2.json(&["provision", order]);
    assert_ne!(report["token_serial"], old_serial.as_str(), "{report}");
    assert_eq!(report["steps_run"][1], "init_token", "{report}");
    let d = taken_over(desk2, order);
    assert_eq!(d["decision"], "key_lost");
    assert_eq!(d["journal_point"], "certificate_on_key");
    assert_eq!(d["key_in_reach"], false);
    let certs = certificates(desk2, order);
    assert_eq!(certs.len(), 2, "{certs:?}");
    let revoked: Vec<&Value> = certs.iter().filter(|c| c["status"] == "revoked").collect();
    assert_eq!(revoked.len(), 1, "{certs:?}");
    assert_eq!(revoked[0]["serial"], old_cert);
    let revocation = desk2.json(&["order", "show", order]);
    let show = revocation["token"].clone();
    assert_eq!(show["station_id"], "desk-2");
    super::check_passes(desk2);
    desk2.json(&["audit", "verify"]);
}

#[test]
fn a_failed_order_stays_with_its_station_unless_started_over() {
    let fleet = Fleet::new(2);
    let order = &fleet.approved_orders(1)[0];
    let (desk1, desk2) = (fleet.desk(1), fleet.desk(2));
    let out = desk1
        .command(&["provision", order])
        .env(
            "KEYSTATION_FAILPOINTS",
            "provision.generate_key.started=error",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(desk1.json(&["order", "show", order])["state"], "Failed");

    let out = desk2.run(&["--json", "provision", order]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "E-ORDER-CLAIMED", "{v}");
    assert!(v["message"].as_str().unwrap().contains("--reinit"), "{v}");
    // Nothing was written: still desk 1's, still Failed.
    let show = desk2.json(&["order", "show", order]);
    assert_eq!(show["state"], "Failed");
    assert_eq!(show["token"]["station_id"], "desk-1");

    // Started over here, once a second operator approved it: a new attempt on the key (within
    // reach), from the beginning.
    crate::support::approved_reinit(&desk2.config(), order);
    let report = desk2.json(&["provision", order, "--reinit"]);
    assert_eq!(report["steps_run"][1], "init_token", "{report}");
    assert_eq!(taken_over(desk2, order)["decision"], "resume_here");
    super::check_passes(desk2);
}
