//! Crashes at the worst moments (failpoints: `pause` + SIGKILL, or `abort`) and revoked orders:
//! a transfer is emitted at most once, an SMS is never sent blindly twice, and a revoked order's
//! PIN is never sent.

use super::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs `deliver run --once` with failpoint `name=pause`, waits until the worker reports it
/// reached it, and SIGKILLs it there.
async fn kill_at(st: &TestStation, name: &str) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_keystation"))
        .arg("--config")
        .arg(&st.config)
        .args(["deliver", "run", "--once"])
        .env("KEYSTATION_FAILPOINTS", format!("{name}=pause"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let marker = format!("failpoint {name} reached");
    let reached = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(&marker) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(reached, "the worker never reached {name}");
    child.kill().await.unwrap();
    child.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_bank_file_was_written_never_makes_a_second_file() {
    let st = TestStation::init().await;
    let no = st.shipped(bank_order(BANK_ORDER), "SF1").await;

    // Killed after the file is published, before the station records it.
    kill_at(&st, "deliver.bank.after_write").await;
    let files = st.files_in("bank/outbound");
    assert_eq!(files.len(), 1);
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "sending", "recorded before writing: {d:#}");
    assert_eq!(
        d["bank_file"].as_str().unwrap(),
        files[0].file_name().unwrap().to_str().unwrap()
    );
    let before = std::fs::read(&files[0]).unwrap();

    // Restart: the file is found, recorded as emitted, not written again.
    let run = st.deliver_once().await;
    assert_eq!(run["events"].as_array().unwrap().len(), 1, "{run:#}");
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "sent", "{d:#}");
    assert_eq!(st.files_in("bank/outbound"), files, "no second file");
    assert_eq!(std::fs::read(&files[0]).unwrap(), before, "not rewritten");
    xmllint(&files[0], "pain.001.001.10.xsd");
    st.deliver_once().await;
    assert_eq!(st.files_in("bank/outbound").len(), 1);

    // And it is confirmable.
    let status = pain002_file(
        &st.data_dir().join("bank/inbound"),
        "acsc.xml",
        d["bank_message_id"].as_str().unwrap(),
        &[(d["end_to_end_id"].as_str().unwrap(), "ACSC", None)],
    );
    st.ok(&["bank", "import", status.to_str().unwrap()]).await;
    assert_eq!(st.delivery(&no).await["state"], "confirmed");
    assert_eq!(st.order_state(&no).await, "PinDelivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_before_the_bank_file_was_written_goes_to_the_operator_never_a_second_file() {
    let st = TestStation::init().await;
    let no = st.shipped(bank_order(BANK_ORDER), "SF1").await;
    st.deliver_aborted_at("deliver.bank.before_write").await;
    assert!(st.files_in("bank/outbound").is_empty());

    // The file name was recorded but there is no file: never written, or already collected by
    // the bank's agent? Nobody can tell, so no file is written; the operator asks the bank.
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(d["state"], "needs_operator", "{d:#}");
    assert!(d["last_error"].as_str().unwrap().contains("Ask the bank"));
    assert!(st.files_in("bank/outbound").is_empty());
    st.deliver_once().await;
    assert!(st.files_in("bank/outbound").is_empty());

    let id = d["id"].as_str().unwrap();
    let plain = st.run(&["deliver", "retry", id, "--operator", "op1"]).await;
    assert_eq!(plain.status.code(), Some(2), "a file may have been emitted");
    st.ok(&[
        "deliver",
        "retry",
        id,
        "--operator",
        "op1",
        "--force-new-transfer",
    ])
    .await;
    st.deliver_once().await;
    let files = st.files_in("bank/outbound");
    assert_eq!(files.len(), 1);
    assert_eq!(st.delivery(&no).await["state"], "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_crashes_resolve_from_the_spool_directory() {
    let st = TestStation::init().await;
    let a = st.shipped_sms("BJ20261124-0001").await;

    // Crash after the claim, before the file: the spool has no file, so nothing was published;
    // the restart sends it (once).
    st.deliver_aborted_at("deliver.sms.before_send").await;
    assert_eq!(st.delivery(&a).await["state"], "sending");
    assert!(st.files_in("spool/sms").is_empty());
    st.deliver_once().await;
    let d = st.delivery(&a).await;
    assert_eq!(d["state"], "sent", "{d:#}");
    assert_eq!(st.files_in("spool/sms").len(), 1);

    // Crash after the file was published: found at restart, not written again.
    let b = st
        .shipped(sms_order("BJ20261124-0002", "13700137000"), "SF2")
        .await;
    kill_at(&st, "deliver.sms.after_send").await;
    assert_eq!(st.delivery(&b).await["state"], "sending");
    let spool = st.files_in("spool/sms");
    assert_eq!(spool.len(), 2);
    let id = st.delivery(&b).await["id"].as_str().unwrap().to_string();
    let file = spool
        .iter()
        .find(|p| p.to_string_lossy().contains(&id))
        .unwrap()
        .clone();
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    st.deliver_once().await;
    let d = st.delivery(&b).await;
    assert_eq!(d["state"], "sent", "{d:#}");
    assert_eq!(st.files_in("spool/sms").len(), 2);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
    // The agent acknowledges both; they are confirmed and the station's copies removed.
    let agent = st.dir.path().join("gateway-agent");
    assert_eq!(
        gateway_agent_takes(&st.data_dir().join("spool/sms"), &agent).len(),
        2
    );
    st.deliver_once().await;
    for no in [&a, &b] {
        assert_eq!(st.delivery(no).await["state"], "confirmed");
    }
    let left: Vec<PathBuf> = st
        .files_in("spool/sms")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Crash after publishing, and the agent took the message (receipt written, message
    // removed, as the contract allows) before the restart: the receipt confirms it, nothing
    // is published again.
    let c = st
        .shipped(sms_order("BJ20261124-0003", "13600136000"), "SF3")
        .await;
    kill_at(&st, "deliver.sms.after_send").await;
    let id = st.delivery(&c).await["id"].as_str().unwrap().to_string();
    gateway_agent_takes(&st.data_dir().join("spool/sms"), &agent);
    std::fs::remove_file(st.data_dir().join(format!("spool/sms/{id}.json"))).unwrap();
    st.deliver_once().await;
    assert_eq!(st.delivery(&c).await["state"], "confirmed");
    assert!(!st.data_dir().join(format!("spool/sms/{id}.json")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_orders_pin_is_never_sent() {
    let st = TestStation::init().await;
    let sms = st.provisioned(sms_order(SMS_ORDER, "13800138000")).await;
    let bank = st.provisioned(bank_order(BANK_ORDER)).await;
    st.ok(&["ship", &sms, "--tracking", "SF1"]).await;
    st.ok(&["ship", &bank, "--tracking", "SF2"]).await;

    // 1. Revoked behind the worker's back (the order's state only, its delivery still queued):
    //    the worker re-reads the order before sending and cancels instead.
    {
        let store = st.store().await;
        let mut tx = store
            .begin_write(keystation::clock::Clock::now(
                &keystation::clock::SystemClock,
            ))
            .await
            .unwrap();
        tx.transition(
            &order_no(&sms),
            None,
            keystation::domain::OrderEvent::Revoke,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    }
    assert_eq!(st.delivery(&sms).await["state"], "queued");

    // 2. Revoked by the operator command: revocation recorded, delivery cancelled, sealed PIN
    //    destroyed, in one transaction.
    let r = st
        .revoke(&[
            "order",
            "revoke",
            &bank,
            "--reason",
            "keyCompromise",
            "--detail",
            "key lost in transit",
            "--operator",
            "op1",
        ])
        .await;
    assert_eq!(r["certificates"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(r["deliveries_cancelled"].as_array().unwrap().len(), 1);
    assert_eq!(r["sealed_pin_destroyed"], true);
    let bad = st
        .run(&[
            "order",
            "revoke",
            &sms,
            "--reason",
            "because",
            "--operator",
            "op1",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(2), "not an RFC 5280 reason");

    let run = st.deliver_once().await;
    let d = st.delivery_any(&sms).await;
    assert_eq!(d["state"], "cancelled", "{run:#}");
    assert!(d["cancel_reason"].as_str().unwrap().contains("Revoked"));
    assert!(st.files_in("spool/sms").is_empty(), "nothing was sent");
    assert!(st.files_in("bank/outbound").is_empty(), "nothing was sent");
    assert_eq!(st.delivery_any(&bank).await["state"], "cancelled");
    assert_eq!(st.order_state(&sms).await, "Revoked");
    assert_eq!(st.order_state(&bank).await, "Revoked");
    // And it can never be retried.
    let id = d["id"].as_str().unwrap();
    assert_eq!(
        st.run(&["deliver", "retry", id, "--operator", "op1"])
            .await
            .status
            .code(),
        Some(2)
    );
    let store = st.store().await;
    assert!(store.sealed_pin(&order_no(&bank)).await.unwrap().is_none());
    let certs = store.certificates_of_order(&order_no(&bank)).await.unwrap();
    assert!(certs.iter().all(|c| c.status.as_str() == "revoked"));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_message_taken_without_a_receipt_is_reported_and_waits_for_it() {
    let st = TestStation::init().await;
    let no = st.shipped_sms("BJ20261124-0009").await;
    st.deliver_once().await;
    let id = st.delivery(&no).await["id"].as_str().unwrap().to_string();
    // An agent that breaks the contract: it removes the message without a receipt.
    let message = st.data_dir().join(format!("spool/sms/{id}.json"));
    std::fs::remove_file(&message).unwrap();
    st.deliver_once().await;
    let d = st.delivery(&no).await;
    assert_eq!(
        d["state"], "sent",
        "never sent again, never confirmed blindly: {d:#}"
    );
    assert!(
        d["last_error"].as_str().unwrap().contains("no receipt"),
        "{d:#}"
    );
    assert!(!message.exists(), "not published again");
    // Its receipt, late, still confirms it.
    std::fs::write(st.data_dir().join(format!("spool/sms/{id}.sent")), "{}").unwrap();
    st.deliver_once().await;
    assert_eq!(st.delivery(&no).await["state"], "confirmed");
    assert_eq!(st.order_state(&no).await, "PinDelivered");
}
