//! The bank channel: pain.001 files (valid against the official schema, one per delivery or one
//! per pass), and what the bank's pain.002 / camt.054 answers do — and do not — change.

use super::*;
use crate::support::{audit_records, items};

/// Provisions and ships `n` bank orders; returns their numbers.
async fn shipped_bank_orders(st: &TestStation, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 1..=n {
        let no = st
            .provisioned(bank_order(&format!("SH20261124-000{i}")))
            .await;
        st.ok(&["ship", &no, "--tracking", &format!("SF{i}")]).await;
        out.push(no);
    }
    out
}

/// One bank order shipped and its transfer written: the order, its delivery, the EndToEndId.
async fn transfer_sent(st: &TestStation) -> (String, Value, String) {
    let no = shipped_bank_orders(st, 1).await.remove(0);
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    let e2e = d["end_to_end_id"].as_str().unwrap().to_string();
    (no, d, e2e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_writes_one_valid_file_and_a_group_status_confirms_all() {
    let st = TestStation::init().await;
    st.set("batch", "true");
    let orders = shipped_bank_orders(&st, 2).await;
    st.deliver_once().await;
    let files = st.files_in("bank/outbound");
    assert_eq!(files.len(), 1, "{files:?}");
    xmllint(&files[0], "pain.001.001.10.xsd");
    assert_eq!(pins_in_pain001(&files[0]).len(), 2);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("<NbOfTxs>2</NbOfTxs>") && text.contains("<CtrlSum>0.02</CtrlSum>"));
    let a = st.delivery(&orders[0]).await;
    let b = st.delivery(&orders[1]).await;
    assert_eq!(a["state"], "sent");
    assert_eq!(a["bank_file"], b["bank_file"]);
    assert_eq!(a["bank_message_id"], b["bank_message_id"]);
    assert_ne!(a["end_to_end_id"], b["end_to_end_id"]);

    // A report with only a group status (no transaction details) covers the whole file.
    use keystation::delivery::bank::{Pain002Report, write_pain002};
    let msg_id = a["bank_message_id"].as_str().unwrap();
    let report = Pain002Report {
        message_id: "ICBC-STS-GROUP-1".into(),
        original_message_id: msg_id.into(),
        group_status: Some("ACCP".into()),
        group_reason_code: None,
        group_reason_text: None,
        payment_infos: vec![],
        transactions: vec![],
    };
    let path = st.dir.path().join("group.xml");
    std::fs::write(
        &path,
        write_pain002(&report, time::macros::datetime!(2026-11-24 16:00 +08:00)).unwrap(),
    )
    .unwrap();
    xmllint(&path, "pain.002.001.11.xsd");
    let imported = st.json(&["bank", "import", path.to_str().unwrap()]).await;
    assert_eq!(
        imported["changes"].as_array().unwrap().len(),
        2,
        "{imported:#}"
    );
    assert!(
        imported["moved_to"].is_null(),
        "a file from elsewhere stays where it is"
    );
    assert!(path.exists());
    for no in &orders {
        assert_eq!(st.delivery(no).await["state"], "confirmed");
        assert_eq!(st.order_state(no).await, "PinDelivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_fails_the_delivery_and_only_a_confirmed_new_transfer_retries_it() {
    let st = TestStation::init().await;
    let (no, d, e2e) = transfer_sent(&st).await;
    let inbound = st.data_dir().join("bank/inbound");
    let status = pain002_file(
        &inbound,
        "rjct.xml",
        d["bank_message_id"].as_str().unwrap(),
        &[(&e2e, "RJCT", Some("AC04"))],
    );
    st.ok(&["bank", "import", status.to_str().unwrap()]).await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "failed", "{d:#}");
    assert!(d["last_error"].as_str().unwrap().contains("AC04"));
    assert_eq!(st.order_state(&no).await, "Shipped");
    let id = d["id"].as_str().unwrap().to_string();

    // A file was emitted: a plain retry is refused (it could be a second transfer).
    let plain = st
        .run(&["deliver", "retry", &id, "--operator", "op1"])
        .await;
    assert_eq!(plain.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("--force-new-transfer"));

    // The operator confirms with the bank that nothing was transferred.
    let r = st
        .json(&[
            "deliver",
            "retry",
            &id,
            "--operator",
            "op1",
            "--force-new-transfer",
        ])
        .await;
    let new_id = r["delivery_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, id);
    let all = st.deliveries(&no).await;
    let old = all.iter().find(|x| x["id"] == id.as_str()).unwrap();
    assert_eq!(old["state"], "cancelled");
    assert_eq!(old["superseded_by"], new_id.as_str());
    st.deliver_once().await;
    // The rejected transfer's file is settled (its only transfer failed at the bank): the
    // station's copy is gone. The new transfer has a new file.
    let files = st.files_in("bank/outbound");
    assert_eq!(files.len(), 1, "a new file for the new transfer: {files:?}");
    assert_ne!(
        files[0].file_name().unwrap().to_string_lossy(),
        format!("{e2e}.xml")
    );
    for f in &files {
        xmllint(f, "pain.001.001.10.xsd");
    }
    let new = st.delivery(&no).await;
    assert_eq!(new["state"], "sent");
    assert_ne!(new["end_to_end_id"], e2e.as_str(), "a new EndToEndId");
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    assert!(
        items(&audit)
            .iter()
            .any(|r| r["action"] == "delivery.retried" && r["actor"] == "op1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camt054_booked_debit_confirms_and_mismatching_references_change_nothing() {
    let st = TestStation::init().await;
    let (no, d, e2e) = transfer_sent(&st).await;
    let inbound = st.data_dir().join("bank/inbound");

    // Wrong amount: reported, nothing changes.
    let wrong = camt054_file(&inbound, "amount.xml", &e2e, "0.02");
    st.bank_import_refused(&wrong, "not 0.01 CNY").await;
    // Unknown EndToEndId, in a pain.002: reported, nothing changes.
    let unknown = pain002_file(
        &inbound,
        "unknown.xml",
        "KS-NOT-OURS-0001",
        &[("KSNOTOURS0001", "ACSC", None)],
    );
    st.bank_import_refused(&unknown, "unknown EndToEndId").await;
    // Our EndToEndId under another message id: a mismatch, never guessed.
    let mismatch = pain002_file(
        &inbound,
        "mismatch.xml",
        "KS-OTHER-MSG-01",
        &[(&e2e, "ACSC", None)],
    );
    st.bank_import_refused(&mismatch, "does not match").await;
    // Pending status: stays sent.
    let pending = pain002_file(
        &inbound,
        "pdng.xml",
        d["bank_message_id"].as_str().unwrap(),
        &[(&e2e, "PDNG", None)],
    );
    let r = st
        .json(&["bank", "import", pending.to_str().unwrap()])
        .await;
    assert_eq!(r["pending"].as_array().unwrap().len(), 1);
    assert_eq!(st.delivery(&no).await["state"], "sent");

    // The booked debit of 0.01 CNY: confirmed.
    let booked = camt054_file(&inbound, "booked.xml", &e2e, "0.01");
    let r = st.json(&["bank", "import", booked.to_str().unwrap()]).await;
    assert_eq!(r["changes"][0]["to"], "confirmed", "{r:#}");
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    // Every imported file was filed away; the audit trail has one record per import.
    assert!(
        st.files_in("bank/inbound")
            .iter()
            .all(|p| p.ends_with("processed"))
    );
    let audit = st.json(&["audit", "show"]).await;
    let imports = audit_records(&audit, "bank.imported").len();
    assert_eq!(imports, 5);

    // Not a bank file at all: exit 2, nothing changes.
    let junk = st.dir.path().join("junk.xml");
    std::fs::write(&junk, "<Document xmlns=\"urn:example\"/>").unwrap();
    assert_eq!(
        st.run(&["bank", "import", junk.to_str().unwrap()])
            .await
            .status
            .code(),
        Some(2)
    );
}
