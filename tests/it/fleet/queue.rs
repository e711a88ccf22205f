//! Issue 14, item 2: a station claims the next approved order with `FOR UPDATE SKIP LOCKED`
//! inside the claim transaction. Two claims at once pick two different orders: the second skips
//! the row the first holds instead of waiting for it (and then finding it claimed).

use super::Fleet;
use keystation::store::Store;
use std::time::Duration;

#[test]
fn two_claims_at_once_pick_two_orders() {
    let fleet = Fleet::new(1);
    let orders = fleet.approved_orders(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::connect(&fleet.db.url).await.unwrap();
        let now = keystation::clock::Clock::now(&keystation::clock::SystemClock);
        // The first claim picks the oldest order and holds its row (and the audit head).
        let (first, picked) = store.begin_claim_next(now).await.unwrap();
        assert_eq!(
            picked.as_ref().map(|n| n.as_str()),
            Some(orders[0].as_str())
        );
        // A second claim meanwhile: it picks the next order at once, then waits for the audit
        // head the first holds.
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let (tx, picked) = store.begin_claim_next(now).await.unwrap();
                drop(tx);
                picked
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !second.is_finished(),
            "the second claim did not wait for the audit head"
        );
        // The first gives up: its order is free again, but the second had already skipped it.
        drop(first);
        let picked = second.await.unwrap();
        assert_eq!(
            picked.as_ref().map(|n| n.as_str()),
            Some(orders[1].as_str())
        );
        // Both rolled back: both orders are still approved, and the next claim starts over.
        let (tx, picked) = store.begin_claim_next(now).await.unwrap();
        assert_eq!(
            picked.as_ref().map(|n| n.as_str()),
            Some(orders[0].as_str())
        );
        drop(tx);
        store.close().await;
    });
}

/// A batch that cannot use the installation's HSM takes no order: each would only fail at its
/// first step (it did, order after order, before the batch looked first).
#[test]
fn a_batch_without_the_hsm_takes_no_order() {
    let fleet = Fleet::new(1);
    let orders = fleet.approved_orders(2);
    let desk = fleet.desk(1);
    let vault = fleet
        .sql("SELECT value FROM station_material WHERE name = 'vault_token_serial'")
        .remove(0)
        .remove(0);
    std::fs::remove_dir_all(super::softhsm_token_dir(&desk.dir.join("tokens"), &vault)).unwrap();
    let out = desk.run(&["--json", "provision", "--all-approved"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no order was taken"),
        "{v}"
    );
    for no in &orders {
        assert_eq!(desk.json(&["order", "show", no])["state"], "Approved");
    }
}
