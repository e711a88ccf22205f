//! Issue 12, item 1: the operator's way out of what `check` finds — `keystation cert revoke
//! SERIAL`, once a second operator approved the request (issue 17), revokes exactly that
//! certificate (recorded in `revocations`, audited with both operators), refuses unknown or
//! already revoked serials and the only certificate of a provisioned order (exit 2), and `check`
//! then no longer reports the duplicate.

use crate::station::{TestStation, order_json};
use crate::support::{audit_records, items};
use serde_json::Value;

fn revoke<'a>(serial: &'a str, reason: &'a str, operator: &'a str) -> [&'a str; 7] {
    [
        "cert",
        "revoke",
        serial,
        "--reason",
        reason,
        "--operator",
        operator,
    ]
}

#[track_caller]
fn refused(st: &TestStation, args: &[&str], says: &str) {
    let out = st.run(args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

#[test]
fn revoking_one_named_certificate_clears_a_duplicate_and_nothing_else() {
    let st = TestStation::new();
    let no = "DUP-1";
    st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    let report = st.json(&["provision", no]);
    let kept = report["certificate_serial"].as_str().unwrap().to_string();

    // What two racing processes left before the lease: a second live certificate of the order.
    let duplicate = "7e57000000000000000000000000d0b1";
    let (rt, mut db) = st.sqlite();
    rt.block_on(
        sqlx::query(
            "INSERT INTO certificates (serial, order_no, binding_id, token_serial, der, \
             fingerprint_sha256, not_before, not_after, status, issued_at) \
             SELECT $1, order_no, binding_id, 'other-token', der, fingerprint_sha256, not_before, \
             not_after, status, issued_at FROM certificates WHERE serial = $2",
        )
        .bind(duplicate)
        .bind(&kept)
        .execute(&mut db),
    )
    .unwrap();
    assert!(
        st.violations()
            .iter()
            .any(|v| v.is(no, "certificate_count")),
        "check must see the duplicate"
    );

    // Refused, changing nothing: an unknown serial, a made-up reason, no operator, not hex.
    refused(
        &st,
        &revoke("00ff00ff", "superseded", "alice"),
        "no certificate 00ff00ff",
    );
    refused(&st, &revoke(duplicate, "duplicate", "alice"), "--reason");
    refused(&st, &revoke(duplicate, "superseded", " "), "--operator");
    refused(&st, &revoke("not-hex", "superseded", "alice"), "SERIAL");

    // The duplicate, named as openssl prints serials (upper case, colons).
    let shouted = "7E:57:00:00:00:00:00:00:00:00:00:00:00:00:D0:B1";
    // Four-eyes: alice's request revokes nothing until a second operator approves it.
    let done = st.revoke(&[
        "cert",
        "revoke",
        shouted,
        "--reason",
        "superseded",
        "--detail",
        "second issuance of a race",
        "--operator",
        "alice",
    ]);
    assert_eq!(done["serial"], duplicate);
    assert_eq!(done["order_no"], no);
    assert_eq!(done["previous_status"], "on_token");
    assert_eq!(done["still_live"], serde_json::json!([kept]));

    // Exactly that certificate: recorded in revocations with the operator, the other untouched.
    let rows: Vec<(String, String, String, String)> = rt
        .block_on(
            sqlx::query_as(
                "SELECT c.serial, c.status, COALESCE(r.reason, ''), COALESCE(r.revoked_by, '') \
                 FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial \
                 WHERE c.order_no = $1 ORDER BY c.serial",
            )
            .bind(no)
            .fetch_all(&mut db),
        )
        .unwrap();
    let mut expected = vec![
        (
            kept.clone(),
            "on_token".into(),
            String::new(),
            String::new(),
        ),
        (
            duplicate.to_string(),
            "revoked".into(),
            "superseded".into(),
            crate::support::SECOND_OFFICER.into(),
        ),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    let audit = st.json(&["audit", "show", "--order", no]);
    let record = audit_records(&audit, "certificate.revoked")
        .pop()
        .unwrap_or_else(|| panic!("no audit record: {audit:#}"))
        .clone();
    assert_eq!(record["actor"], crate::support::SECOND_OFFICER);
    assert_eq!(record["cert_serial"], duplicate);
    let details: Value = serde_json::from_str(record["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["four_eyes"]["requested_by"], "alice", "{details:#}");
    assert_eq!(
        details["four_eyes"]["approved_by"],
        crate::support::SECOND_OFFICER
    );
    assert_eq!(st.json(&["order", "show", no])["state"], "Provisioned");

    // check no longer reports the duplicate: all invariants hold.
    assert_eq!(st.violations(), vec![]);
    st.ok(&["check"]);

    // Again: already revoked. The only certificate on the order's token: refused, with the way.
    refused(
        &st,
        &revoke(duplicate, "superseded", "alice"),
        "already revoked",
    );
    refused(&st, &revoke(&kept, "superseded", "alice"), "order revoke");
    let live: Vec<Value> = items(&st.json(&["order", "show", no])["certificates"])
        .iter()
        .filter(|c| c["status"] == "on_token")
        .cloned()
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["serial"], kept.as_str());
    st.ok(&["check"]);
    st.ok(&["audit", "verify"]);
}
