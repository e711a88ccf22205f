//! Issue 17, item 1: revocation needs two operators. `order revoke` / `cert revoke` by one
//! operator only record a request: the certificate stays live (a freshly issued CRL, read by
//! `openssl crl`, does not list it) until a second, different operator approves it; the
//! requester's own approval is refused (E-REQUEST-SAME-OPERATOR); a rejected or cancelled
//! request leaves it live; approved, it is revoked at once and the CRL lists it, the audit
//! trail naming both operators. A revocation that fails after the approval is resumed by
//! `revoke run`.

use super::*;
use crate::revocation::crl_number;
use crate::support::{audit_records, items};

/// A provisioned order; returns its number and its certificate's serial.
async fn provisioned(st: &TestStation, no: &str) -> (String, String) {
    let no = st
        .provisioned(crate::delivery::sms_order(no, "13800138000"))
        .await;
    let shown = st.json(&["order", "show", &no]).await;
    let serial = shown["certificates"][0]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    (no, serial)
}

/// A new CRL issued now (`ca crl`), verified under the CA: whether it lists `serial`.
async fn fresh_crl_lists(st: &TestStation, serial: &str) -> bool {
    st.ok(&["ca", "crl"]).await;
    let text = published_crl_text(st);
    assert!(crl_number(&text) >= 2, "{text}");
    text.contains(&format!("Serial Number: {}", serial.to_uppercase()))
}

/// `order revoke` by [`ALICE`]; returns the request id.
async fn request_revoke(st: &TestStation, no: &str) -> String {
    let r = st
        .json(&[
            "order",
            "revoke",
            no,
            "--reason",
            "keyCompromise",
            "--detail",
            "经办人报告私钥泄露",
            "--operator",
            ALICE,
        ])
        .await;
    assert_eq!(r["state"], "requested", "{r:#}");
    assert_eq!(r["kind"], "revoke", "{r:#}");
    assert_eq!(r["requested_by"], ALICE);
    r["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_stays_pending_until_a_second_operator_approves_it() {
    let st = TestStation::init().await;
    let (no, serial) = provisioned(&st, "FE-REV-1").await;

    // Requested: nothing revoked, the order as it was, the certificate not in a new CRL.
    let id = request_revoke(&st, &no).await;
    assert_eq!(st.order_state(&no).await, "Provisioned");
    assert!(!fresh_crl_lists(&st, &serial).await);
    let out = st
        .run(&[
            "order",
            "revoke",
            &no,
            "--reason",
            "superseded",
            "--operator",
            BOB,
        ])
        .await;
    assert_refused(&out, "E-REQUEST-OPEN");

    // The requester cannot approve her own request, nor carry it out unapproved.
    let out = st
        .run(&["revoke", "approve", &id, "--operator", ALICE])
        .await;
    assert!(assert_refused(&out, "E-REQUEST-SAME-OPERATOR").contains(ALICE));
    let out = st.run(&["revoke", "run", &id, "--operator", ALICE]).await;
    assert!(assert_refused(&out, "E-REQUEST-TRANSITION").contains("approv"));
    // Another kind's commands do not take it: the kinds stay apart.
    let out = st.run(&["retire", "run", &id, "--operator", BOB]).await;
    assert_refused(&out, "E-USAGE");
    assert_eq!(st.order_state(&no).await, "Provisioned");
    assert!(!fresh_crl_lists(&st, &serial).await);
    let shown = st.json(&["revoke", "show", &id]).await;
    assert_eq!(shown["state"], "requested", "{shown:#}");

    // A second operator approves: revoked at once, the CRL lists it.
    let done = st
        .json(&[
            "revoke",
            "approve",
            &id,
            "--operator",
            BOB,
            "--note",
            "已核实",
        ])
        .await;
    assert_eq!(done["request"]["state"], "done", "{done:#}");
    assert_eq!(done["request"]["decided_by"], BOB);
    let report = &done["order"];
    assert_eq!(report["from"], "Provisioned", "{done:#}");
    assert_eq!(report["certificates"], serde_json::json!([serial]));
    assert_eq!(report["crl"]["outcome"], "issued", "{done:#}");
    assert_eq!(report["four_eyes"]["requested_by"], ALICE, "{done:#}");
    assert_eq!(report["four_eyes"]["approved_by"], BOB, "{done:#}");
    assert_eq!(st.order_state(&no).await, "Revoked");
    let text = crl_lists(&st, &serial);
    assert!(text.contains("Key Compromise"), "{text}");
    // Settled: not approved or run again.
    let out = st.run(&["revoke", "run", &id, "--operator", BOB]).await;
    assert_refused(&out, "E-REQUEST-TRANSITION");

    // The audit trail: asked by alice, approved by bob, carried out by bob naming both.
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    let asked = audit_records(&audit, "service.requested");
    assert_eq!(asked.len(), 1, "{audit:#}");
    assert_eq!(asked[0]["actor"], ALICE);
    let approved = audit_records(&audit, "service.approved");
    assert_eq!(approved[0]["actor"], BOB, "{audit:#}");
    let d: Value = serde_json::from_str(approved[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        (d["requested_by"].as_str(), d["decided_by"].as_str()),
        (Some(ALICE), Some(BOB))
    );
    let revoked = audit_records(&audit, "order.revoked");
    assert_eq!(revoked.len(), 1, "{audit:#}");
    assert_eq!(revoked[0]["actor"], BOB);
    let d: Value = serde_json::from_str(revoked[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(d["four_eyes"]["request_id"], id.as_str(), "{d:#}");
    assert_eq!(d["four_eyes"]["requested_by"], ALICE, "{d:#}");
    assert_eq!(d["four_eyes"]["approved_by"], BOB, "{d:#}");
    assert_eq!(audit_records(&audit, "service.done").len(), 1, "{audit:#}");
    let listed = st.json(&["revoke", "list", "--order", &no]).await;
    assert_eq!(items(&listed).len(), 1, "{listed:#}");
    st.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_cancelled_revoke_leaves_the_certificate_live() {
    let st = TestStation::init().await;
    let (no, serial) = provisioned(&st, "FE-REV-2").await;

    let id = request_revoke(&st, &no).await;
    let out = st
        .run(&[
            "revoke",
            "reject",
            &id,
            "--operator",
            ALICE,
            "--reason",
            "自己的",
        ])
        .await;
    assert_refused(&out, "E-REQUEST-SAME-OPERATOR");
    let rejected = st
        .json(&[
            "revoke",
            "reject",
            &id,
            "--operator",
            BOB,
            "--reason",
            "材料不足",
        ])
        .await;
    assert_eq!(rejected["state"], "rejected", "{rejected:#}");
    let out = st.run(&["revoke", "approve", &id, "--operator", BOB]).await;
    assert_refused(&out, "E-REQUEST-TRANSITION");
    assert_eq!(st.order_state(&no).await, "Provisioned");
    assert!(!fresh_crl_lists(&st, &serial).await);

    // Withdrawn by the requester herself (no second pair of eyes needed to revoke nothing).
    let id = request_revoke(&st, &no).await;
    let cancelled = st
        .json(&["revoke", "cancel", &id, "--operator", ALICE])
        .await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled:#}");
    assert_eq!(st.order_state(&no).await, "Provisioned");
    assert!(!fresh_crl_lists(&st, &serial).await);
    let listed = st.json(&["revoke", "list", "--state", "cancelled"]).await;
    assert_eq!(items(&listed).len(), 1, "{listed:#}");
    st.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_revoke_whose_revocation_failed_is_carried_out_by_revoke_run() {
    let st = TestStation::init().await;
    let (no, serial) = provisioned(&st, "FE-REV-3").await;
    let id = request_revoke(&st, &no).await;

    // Approved, then the revocation fails: the approval stands, the request is failed with its
    // error, nothing is revoked.
    let out = st
        .run_env(
            &["revoke", "approve", &id, "--operator", BOB],
            &[("KEYSTATION_FAILPOINTS", "revoke.run=error")],
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the revocation was meant to fail: {stderr}"
    );
    assert!(
        stderr.contains("the approval stands") && stderr.contains(&format!("revoke run {id}")),
        "{stderr}"
    );
    let shown = st.json(&["revoke", "show", &id]).await;
    assert_eq!(shown["state"], "failed", "{shown:#}");
    assert_eq!(shown["decided_by"], BOB, "{shown:#}");
    assert!(
        shown["last_error"].as_str().unwrap().contains("revoke.run"),
        "{shown:#}"
    );
    assert_eq!(st.order_state(&no).await, "Provisioned");
    assert!(!fresh_crl_lists(&st, &serial).await);

    // `revoke run` carries it out (any security officer: the decision was made by two).
    let done = st.json(&["revoke", "run", &id, "--operator", ALICE]).await;
    assert_eq!(done["request"]["state"], "done", "{done:#}");
    assert_eq!(done["order"]["four_eyes"]["approved_by"], BOB, "{done:#}");
    assert_eq!(st.order_state(&no).await, "Revoked");
    assert!(fresh_crl_lists(&st, &serial).await);
    st.ok(&["audit", "verify"]).await;
}
