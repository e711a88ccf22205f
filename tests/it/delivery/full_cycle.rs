//! The whole cycle on one station: provision -> ship -> deliver run --once -> PinDelivered, by
//! SMS (spool, confirmed by the gateway agent's receipt) and by bank transfer (pain.001,
//! confirmed by a pain.002 ACSC), then a scan of everything the station wrote for the PINs: once
//! confirmed, the station keeps no copy of a message (issue 12, item 6).

use super::*;
use crate::support::{audit_record, strings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_ship_deliver_confirm_and_no_pin_left_anywhere() {
    let st = TestStation::init().await;
    let sms_no = st
        .provisioned(sms_order(SMS_ORDER, "+86 138-0013-8000"))
        .await;
    let bank_no = st.provisioned(bank_order(BANK_ORDER)).await;

    // Nothing is queued before the key ships (trigger on_shipped, the default).
    assert!(st.deliveries(&sms_no).await.is_empty());
    let shipped = st
        .json(&[
            "ship",
            &sms_no,
            "--tracking",
            "SF1234567890",
            "--carrier",
            "顺丰",
            "--operator",
            "op1",
        ])
        .await;
    assert_eq!(shipped["state"], "Shipped");
    assert!(shipped["delivery_id"].is_string());
    st.ok(&["ship", &bank_no, "--tracking", "SF1234567891"])
        .await;
    // A second shipment of the same order is refused (exit 2).
    let again = st.run(&["ship", &sms_no, "--tracking", "X"]).await;
    assert_eq!(again.status.code(), Some(2));

    let sms = st.delivery(&sms_no).await;
    assert_eq!(sms["state"], "queued");
    assert_eq!(sms["channel"], "sms");
    assert_eq!(sms["destination_masked"], "138****8000");
    let bank = st.delivery(&bank_no).await;
    assert_eq!(bank["channel"], "bank");
    assert_eq!(bank["destination_masked"], "****5671");

    let run = st.deliver_once().await;
    assert_eq!(run["events"].as_array().unwrap().len(), 2, "{run:#}");

    // SMS: spool file published; it waits for the gateway agent's receipt.
    let sms = st.delivery(&sms_no).await;
    assert_eq!(sms["state"], "sent", "{sms:#}");
    assert_eq!(st.order_state(&sms_no).await, "Shipped");
    let spool = st.files_in("spool/sms");
    assert_eq!(spool.len(), 1, "{spool:?}");
    let hmac = sms["message_hmac"].as_str().unwrap();
    assert_eq!(hmac.len(), 64, "HMAC-SHA256 hex");
    // The agent takes it (its own copy, outside the station) and writes its receipt; the next
    // pass confirms it and removes the station's copy.
    let agent = st.dir.path().join("gateway-agent");
    let taken = gateway_agent_takes(&st.data_dir().join("spool/sms"), &agent);
    assert_eq!(taken.len(), 1);
    let sms_pin = pin_in_spool_file(&taken[0]);
    assert_eq!(sms_pin.len(), 8);
    let run = st.deliver_once().await;
    assert_eq!(run["events"][0]["to"], "confirmed", "{run:#}");
    assert_eq!(st.delivery(&sms_no).await["state"], "confirmed");
    assert_eq!(st.order_state(&sms_no).await, "PinDelivered");
    let spool: Vec<String> = st
        .files_in("spool/sms")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(spool, [format!("{}.sent", sms["id"].as_str().unwrap())]);

    // Bank: one pain.001, valid against the official schema, waiting for the bank.
    let bank = st.delivery(&bank_no).await;
    assert_eq!(bank["state"], "sent", "{bank:#}");
    assert_eq!(st.order_state(&bank_no).await, "Shipped");
    let outbound = st.files_in("bank/outbound");
    assert_eq!(outbound.len(), 1, "{outbound:?}");
    xmllint(&outbound[0], "pain.001.001.10.xsd");
    let bank_pins = pins_in_pain001(&outbound[0]);
    assert_eq!(bank_pins.len(), 1);
    let bank_pin = bank_pins[0].clone();
    // The bank's agent uploads it: the bank's copy.
    let banks_copy = agent.join("bank.pain001.xml");
    std::fs::copy(&outbound[0], &banks_copy).unwrap();
    let e2e = bank["end_to_end_id"].as_str().unwrap();
    let msg_id = bank["bank_message_id"].as_str().unwrap();
    assert_eq!(
        outbound[0].file_name().unwrap().to_str().unwrap(),
        format!("{e2e}.xml"),
        "the file name is derived from the delivery"
    );

    // The delivered PINs are the tokens' PINs.
    assert_pin_opens_token(&st, &sms_no, &sms_pin);
    assert_pin_opens_token(&st, &bank_no, &bank_pin);

    // A further pass finds nothing to do: nothing is ever sent twice.
    let run = st.deliver_once().await;
    assert!(run["events"].as_array().unwrap().is_empty(), "{run:#}");
    assert_eq!(st.files_in("spool/sms").len(), 1);
    assert_eq!(st.files_in("bank/outbound").len(), 1);

    // The bank answers ACSC: confirmed, PinDelivered, the file moves to processed/, and the
    // station's copy of the pain.001 is removed (the bank has its own).
    let inbound = st.data_dir().join("bank/inbound");
    let status = pain002_file(&inbound, "status-1.xml", msg_id, &[(e2e, "ACSC", None)]);
    let imported = st.bank_import_by_finance(&status).await;
    assert_eq!(
        imported["changes"].as_array().unwrap().len(),
        1,
        "{imported:#}"
    );
    assert_eq!(imported["changes"][0]["to"], "confirmed");
    assert!(imported["moved_to"].as_str().unwrap().contains("processed"));
    assert_eq!(
        imported["removed_bank_files"],
        serde_json::json!([format!("{e2e}.xml")])
    );
    assert!(st.files_in("bank/outbound").is_empty());
    assert!(!status.exists());
    assert_eq!(st.delivery(&bank_no).await["state"], "confirmed");
    assert_eq!(st.order_state(&bank_no).await, "PinDelivered");

    // Idempotent: importing the same report again changes nothing and says so.
    let processed = PathBuf::from(imported["moved_to"].as_str().unwrap());
    st.bank_import_refused(&processed, "already confirmed")
        .await;

    // Sealed PINs destroyed; the receipts are in the audit trail; the chain verifies.
    let store = st.store().await;
    assert!(
        store
            .sealed_pin(&order_no(&sms_no))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .sealed_pin(&order_no(&bank_no))
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
    let audit = st.json(&["audit", "show", "--order", &bank_no]).await;
    let receipt = audit_record(&audit, "delivery.confirmed");
    let details: Value = serde_json::from_str(receipt["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["receipt"]["channel"], "bank");
    assert_eq!(details["receipt"]["destination"], "****5671");
    assert_eq!(details["receipt"]["end_to_end_id"], e2e);
    assert!(details["receipt"]["message_hmac"].as_str().unwrap().len() == 64);
    assert_eq!(details["sealed_pin_destroyed"], true);
    st.ok(&["audit", "verify"]).await;

    // Retrying a confirmed delivery is impossible.
    let id = st.delivery(&sms_no).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let retry = st
        .run(&["deliver", "retry", &id, "--operator", "op1"])
        .await;
    assert_eq!(retry.status.code(), Some(2));

    // The PINs exist only in the one message each that the gateway and the bank received:
    // nowhere in the data directory once confirmed (not the spool, not outbound, not the
    // database's SQLite file, WAL or SHM), not in the logs (trace level).
    let logs = st.logs();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "logs were captured at trace level"
    );
    for (pin, received) in [(&sms_pin, &taken[0]), (&bank_pin, &banks_copy)] {
        assert!(!logs.contains(pin.as_str()), "PIN {pin} found in the logs");
        let leaks = files_containing(&st.data_dir(), pin.as_bytes(), &[]);
        assert!(leaks.is_empty(), "PIN found in {leaks:?}");
        let text = std::fs::read_to_string(received).unwrap();
        assert_eq!(text.matches(pin.as_str()).count(), 1);
    }
    // And no temp file was left behind.
    let temps: Vec<PathBuf> = all_files(&st.data_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_provisioned_trigger_queues_in_the_provisioning_transaction() {
    let st = TestStation::init().await;
    st.set("trigger", "\"on_provisioned\"");
    let no = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    // Queued by `provision` itself, before any shipment.
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "queued");
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    let actions: Vec<&str> = strings(&audit, "action");
    let provisioned = actions
        .iter()
        .position(|a| *a == "order.provisioned")
        .unwrap();
    assert_eq!(actions[provisioned + 1], "delivery.queued", "{actions:?}");

    st.deliver_once().await;
    gateway_agent_takes(
        &st.data_dir().join("spool/sms"),
        &st.dir.path().join("gateway-agent"),
    );
    st.deliver_once().await;
    assert_eq!(st.delivery(&no).await["state"], "confirmed");
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    // Shipping afterwards is recorded, the order stays PinDelivered, nothing new is queued.
    let shipped = st.json(&["ship", &no, "--tracking", "EMS001"]).await;
    assert_eq!(shipped["state"], "PinDelivered");
    assert!(shipped["delivery_id"].is_null());
    assert_eq!(st.deliveries(&no).await.len(), 1);
}
