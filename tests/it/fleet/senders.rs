//! Issue 14, item 4: `deliver run` on every station at once. A delivery is claimed by one
//! sender, which holds its sender lease until the outcome is recorded: another station's worker
//! leaves a delivery that a live sender is sending alone, and takes over one whose sender died
//! (resolving it from the channel, never sending it twice).

use super::{Fleet, details, signal};
use crate::delivery::gateway_agent_takes;
use crate::support::{audit_records, spawn_to_failpoint};
use serde_json::Value;
use std::process::{Child, Stdio};

/// `deliver run --once --json` at desk `i`, stopped at failpoint `point` (`pause` or `sleepN`);
/// returned once it got there.
fn worker_at(fleet: &Fleet, i: usize, point: &str, action: &str) -> Child {
    let mut cmd = fleet
        .desk(i)
        .command(&["--json", "deliver", "run", "--once"]);
    cmd.stdout(Stdio::piped());
    spawn_to_failpoint(cmd, point, action)
}

fn delivery_of(fleet: &Fleet, order: &str) -> (String, String, String) {
    let rows = fleet.sql(&format!(
        "SELECT id, state, CAST(attempts AS TEXT) FROM deliveries WHERE order_no = '{order}'"
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    (rows[0][0].clone(), rows[0][1].clone(), rows[0][2].clone())
}

#[test]
fn a_live_senders_delivery_is_left_alone_and_a_dead_ones_taken_over_once() {
    let fleet = Fleet::new(2);
    fleet.share_channels();
    let orders = fleet.approved_orders(3);
    // Two SMS orders (the generated orders cycle phone, bank transfer, bank card).
    let (live, dead) = (&orders[0], &orders[2]);
    fleet.desk(1).json(&["provision", live]);
    let spool = fleet.shared().join("spool/sms");

    // 1. Desk 1 is sending `live` (it waits 4 s before the channel): desk 2 leaves it alone.
    let sender = worker_at(&fleet, 1, "deliver.sms.before_send", "sleep4000");
    let (id, state, attempts) = delivery_of(&fleet, live);
    assert_eq!((state.as_str(), attempts.as_str()), ("sending", "1"));
    let status = fleet.desk(2).json(&["fleet", "status"]);
    let desk1_leases = &status["stations"][0]["leases"];
    assert!(
        desk1_leases
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "deliver" && l["subject"] == id.as_str() && l["live"] == true),
        "{status:#}"
    );
    let other = fleet.desk(2).run(&["--json", "deliver", "run", "--once"]);
    let report: Value = serde_json::from_slice(&other.stdout).unwrap();
    let touched: Vec<&Value> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["delivery_id"] == id.as_str())
        .collect();
    assert!(
        touched.is_empty(),
        "desk 2 touched a delivery in flight: {report:#}"
    );
    assert_eq!(
        delivery_of(&fleet, live).2,
        "1",
        "a second attempt was made"
    );
    let out = sender.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(delivery_of(&fleet, live).1, "sent");

    // 2. Desk 1's worker dies while sending `dead`: desk 2 takes the delivery over, finds
    //    nothing published, and sends it — once.
    fleet.desk(1).json(&["provision", dead]);
    let (dead_id, ..) = delivery_of(&fleet, dead);
    let mut killed = worker_at(&fleet, 1, "deliver.sms.before_send", "pause");
    assert_eq!(delivery_of(&fleet, dead).1, "sending");
    signal(killed.id(), "-KILL");
    killed.wait().unwrap();
    fleet.desk(2).json(&["deliver", "run", "--once"]);
    let taken = gateway_agent_takes(&spool, &fleet.tmp().join("gateway"));
    let mut ids: Vec<String> = taken
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    let mut want = vec![id.clone(), dead_id.clone()];
    want.sort();
    assert_eq!(ids, want, "each delivery published exactly once");
    fleet.desk(2).json(&["deliver", "run", "--once"]);
    for o in [live, dead] {
        assert_eq!(
            fleet.desk(2).json(&["order", "show", o])["state"],
            "PinDelivered"
        );
    }
    let audit = fleet.desk(2).json(&["audit", "show", "--order", dead]);
    let takeover = audit_records(&audit, "delivery.sender_taken_over");
    assert_eq!(takeover.len(), 1, "{audit:#}");
    assert_eq!(takeover[0]["station_id"], "desk-2");
    assert_eq!(details(takeover[0])["reason"], "holder_gone");
    super::check_passes(fleet.desk(2));
    fleet.desk(1).json(&["audit", "verify"]);
}
