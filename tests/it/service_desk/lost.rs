//! A key reported lost: revoked keyCompromise at once (the published CRL says so, as `openssl
//! crl` reads it), its token binding closed, its open PIN reset cancelled, all audited.

use super::*;
use crate::support::audit_records;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_key_is_revoked_key_compromise_at_once_and_its_binding_closed() {
    let st = TestStation::init().await;
    let (no, _pin) = delivered_sms_order(&st, "DESK-LOST").await;
    let open = request_reset(&st, &no).await;

    // The operator is named, or nothing happens.
    let out = st.run(&["order", "lost", &no, "--operator", " "]).await;
    assert!(assert_refused(&out, "E-USAGE").contains("--operator"));
    assert_eq!(st.order_state(&no).await, "PinDelivered");

    let report = st
        .json(&[
            "order",
            "lost",
            &no,
            "--operator",
            ALICE,
            "--detail",
            "客户来电：证书介质遗失",
        ])
        .await;
    assert_eq!(report["from"], "PinDelivered", "{report:#}");
    let certs: Vec<String> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(certs.len(), 1, "{report:#}");
    assert!(report["binding_closed"].is_string(), "{report:#}");
    assert!(report["token_serial"].is_string(), "{report:#}");
    assert_eq!(report["requests_cancelled"], serde_json::json!([open]));
    assert_eq!(report["crl"]["outcome"], "issued", "{report:#}");
    assert_eq!(st.order_state(&no).await, "Revoked");

    // The published CRL, verified under the CA, lists it as Key Compromise.
    let text = crl_lists(&st, &certs[0]);
    assert!(text.contains("Key Compromise"), "{text}");

    // The store: revoked keyCompromise, no binding left, the request cancelled.
    assert_eq!(revocation_reason(&st, &certs[0]).await, "keyCompromise");
    assert!(!has_active_binding(&st, &no).await);
    assert_eq!(
        st.json(&["pin-reset", "show", &open]).await["state"],
        "cancelled"
    );

    // Audited in the revocation's transaction; a second report is refused.
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    assert_eq!(audit_records(&audit, "order.reported_lost").len(), 1);
    assert_eq!(audit_records(&audit, "order.revoked").len(), 1);
    let out = st.run(&["order", "lost", &no, "--operator", BOB]).await;
    assert_refused(&out, "E-ORDER-TRANSITION");
    let out = st.run(&reset_request(&no, "e", BOB)).await;
    assert_refused(&out, "E-OPERATION-REFUSED");
    st.ok(&["audit", "verify"]).await;
    st.ok(&["check"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_key_is_revoked_cessation_of_operation_at_once_and_its_binding_closed() {
    let st = TestStation::init().await;
    let (no, _pin) = delivered_sms_order(&st, "DESK-BROKEN").await;
    let report = st
        .json(&[
            "order",
            "lost",
            &no,
            "--broken",
            "--operator",
            ALICE,
            "--detail",
            "介质损坏，无法识别",
        ])
        .await;
    assert_eq!(report["broken"], true, "{report:#}");
    assert!(report["binding_closed"].is_string(), "{report:#}");
    let certs = report["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1, "{report:#}");
    let cert = certs[0].as_str().unwrap();
    assert_eq!(st.order_state(&no).await, "Revoked");
    let text = crl_lists(&st, cert);
    assert!(text.contains("Cessation Of Operation"), "{text}");
    assert!(!text.contains("Key Compromise"), "{text}");
    assert_eq!(revocation_reason(&st, cert).await, "cessationOfOperation");
    assert!(!has_active_binding(&st, &no).await);
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    assert_eq!(audit_records(&audit, "order.reported_broken").len(), 1);
    assert_eq!(audit_records(&audit, "order.reported_lost").len(), 0);
    st.ok(&["audit", "verify"]).await;
}
