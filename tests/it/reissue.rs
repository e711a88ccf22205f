//! Issue 16 item 7: reissue (补办). Refused while the original's key is in service; after the
//! key is reported lost, `order reissue` requests ORDER-B1 and, once a second operator approved
//! (issue 17: never the requester), it is made under the same identity (company, form,
//! documents by hash), Submitted and reviewed anew, one at a time; provisioned onto a new key,
//! its certificate verifies with `openssl verify` under the CA while the original's is in the
//! CRL as revoked.

use crate::delivery::TestStation;
use crate::service_desk::{
    ALICE, BOB, assert_refused, certificates_of, crl_lists, delivered_sms_order,
    verifies_under_the_ca,
};
use crate::support::{audit_records, certificate_as_pem, items};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_key_is_reissued_under_the_same_identity_onto_a_new_key() {
    let st = TestStation::init().await;
    let (no, _pin) = delivered_sms_order(&st, "REISSUE-1").await;

    // The key is in service: no reissue.
    let out = st
        .run(&["order", "reissue", &no, "--operator", ALICE])
        .await;
    let stderr = assert_refused(&out, "E-REISSUE-REFUSED");
    assert!(stderr.contains("order lost"), "{stderr}");
    let out = st
        .run(&["order", "reissue", "NO-SUCH", "--operator", ALICE])
        .await;
    assert_refused(&out, "E-ORDER-NOT-FOUND");

    let lost = st.json(&["order", "lost", &no, "--operator", ALICE]).await;
    let old_cert = lost["certificates"][0].as_str().unwrap().to_string();
    let old_key = lost["token_serial"].as_str().unwrap().to_string();

    let request = st.json(&["order", "reissue", &no, "--operator", BOB]).await;
    assert_eq!(request["state"], "requested", "{request:#}");
    assert_eq!(request["kind"], "reissue", "{request:#}");
    let id = request["id"].as_str().unwrap().to_string();
    let b1 = format!("{no}-B1");
    // Nothing made until a second operator approves; the requester cannot.
    let out = st
        .run(&["reissue", "approve", &id, "--operator", BOB])
        .await;
    assert_refused(&out, "E-REQUEST-SAME-OPERATOR");
    let out = st.run(&["order", "show", &b1]).await;
    assert_refused(&out, "E-ORDER-NOT-FOUND");
    let report = st
        .json(&["reissue", "approve", &id, "--operator", ALICE])
        .await;
    assert_eq!(report["four_eyes"]["requested_by"], BOB, "{report:#}");
    assert_eq!(report["four_eyes"]["approved_by"], ALICE, "{report:#}");
    let shown = st.json(&["reissue", "show", &id]).await;
    assert_eq!(shown["state"], "done", "{shown:#}");
    assert_eq!(report["order_no"], b1.as_str(), "{report:#}");
    assert_eq!(report["reissue_of"], no.as_str());
    assert_eq!(report["disposition"], "lost");
    assert!(report["attachments"].as_u64().unwrap() > 0, "{report:#}");
    // One at a time.
    let out = st.run(&["order", "reissue", &no, "--operator", BOB]).await;
    assert!(assert_refused(&out, "E-REISSUE-REFUSED").contains(&b1));

    // The same identity, reviewed anew.
    let original = st.json(&["order", "show", &no]).await;
    let reissue = st.json(&["order", "show", &b1]).await;
    assert_eq!(reissue["state"], "Submitted");
    assert_eq!(reissue["reissue_of"], no.as_str());
    assert_eq!(original["key_disposition"], "lost");
    assert_eq!(original["reissues"][0]["order_no"], b1.as_str());
    let text = st.ok(&["order", "show", &b1]).await;
    assert!(text.contains(&format!("reissue of   {no}")), "{text}");
    assert_eq!(reissue["order"]["company"], original["order"]["company"]);
    assert_eq!(reissue["order"]["order_no"], b1.as_str());
    let hashes = |v: &serde_json::Value| -> Vec<String> {
        items(&v["attachments"])
            .iter()
            .map(|a| format!("{}:{}", a["kind"], a["sha256"]))
            .collect()
    };
    assert_eq!(hashes(&reissue), hashes(&original));
    let out = st.run(&["provision", &b1]).await;
    assert_eq!(out.status.code(), Some(2), "not provisioned before review");
    st.ok(&["order", "approve", &b1, "--operator", "reviewer"])
        .await;
    let new = st.json(&["provision", &b1]).await;
    let new_cert = new["certificate_serial"].as_str().unwrap().to_string();
    assert_ne!(new_cert, old_cert);
    assert_ne!(new["token_serial"].as_str().unwrap(), old_key, "a new key");

    // The new certificate verifies under the CA; the old one is revoked, in the CRL.
    let certs = certificates_of(&st, &b1).await;
    assert_eq!(certs.len(), 1);
    let pem = certificate_as_pem(st.dir.path(), &new_cert, &certs[0].der);
    verifies_under_the_ca(&st, &pem);
    let crl = crl_lists(&st, &old_cert);
    assert!(
        !crl.contains(&format!("Serial Number: {}", new_cert.to_uppercase())),
        "{crl}"
    );
    let audit = st.json(&["audit", "show", "--order", &b1]).await;
    let made = audit_records(&audit, "order.reissue_requested");
    assert_eq!(made.len(), 1, "{audit:#}");
    assert_eq!(made[0]["actor"], ALICE, "{audit:#}");
    let d: serde_json::Value = serde_json::from_str(made[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(d["four_eyes"]["requested_by"], BOB, "{d:#}");
    assert_eq!(d["four_eyes"]["approved_by"], ALICE, "{d:#}");
    st.ok(&["audit", "verify"]).await;
}
