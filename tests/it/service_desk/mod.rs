//! Issue 16 items 3 and 7 (first part): the service desk. PIN reset on a delivered key at the
//! desk — requested by one operator, approved by a second, run against the real SoftHSM token,
//! the new PIN delivered by the order's channel exactly as at issuance and checked with
//! `pkcs11-tool`; the run killed at every journaled step and resumed; a key reported lost,
//! revoked keyCompromise at once (cessationOfOperation when broken) and seen so in the published
//! CRL by `openssl crl`; a returned key retired (wiped) and reused; and the store's request
//! records on SQLite and PostgreSQL.

mod crash;
mod lost;
mod pin_reset;
mod retire;
mod revoke;
mod store;
mod unlock;
mod unlock_store;

use crate::delivery::{TestStation, gateway_agent_takes, pin_in_spool_file};
use serde_json::Value;
use std::process::Output;

/// The requester and the approver: two different operators.
pub const ALICE: &str = "alice";
pub const BOB: &str = "bob";

/// An SMS order provisioned, shipped and its first PIN delivered (PinDelivered); returns the
/// order number and that PIN (as the gateway received it).
pub async fn delivered_sms_order(st: &TestStation, order_no: &str) -> (String, String) {
    let no = st.shipped_sms(order_no).await;
    let pin = deliver_pin(st, &no).await;
    assert_eq!(st.order_state(&no).await, "PinDelivered");
    (no, pin)
}

/// Runs the delivery worker until the order's one due SMS reached the gateway agent and was
/// confirmed; returns the PIN the agent received (exactly one message).
pub async fn deliver_pin(st: &TestStation, no: &str) -> String {
    st.deliver_once().await;
    let agent = st.dir.path().join("gateway-agent");
    let taken = gateway_agent_takes(&st.data_dir().join("spool/sms"), &agent);
    assert_eq!(taken.len(), 1, "exactly one message for {no}: {taken:?}");
    let pin = pin_in_spool_file(&taken[0]);
    st.deliver_once().await;
    pin
}

/// Whether `pin` opens the order's token as its user (`pkcs11-tool --login`), the PIN passed
/// through the environment, never on a command line.
pub fn pin_opens_token(st: &TestStation, order_no: &str, pin: &str) -> bool {
    crate::delivery::pin_login(st, order_no, pin)
        .output()
        .unwrap()
        .status
        .success()
}

/// `pin-reset request` by [`ALICE`]; returns the request id.
pub async fn request_reset(st: &TestStation, no: &str) -> String {
    let r = st
        .json(&[
            "pin-reset",
            "request",
            no,
            "--reason",
            "客户遗忘证书密码",
            "--evidence",
            "营业执照原件 + 经办人身份证",
            "--operator",
            ALICE,
        ])
        .await;
    assert_eq!(r["state"], "requested", "{r:#}");
    assert_eq!(r["requested_by"], ALICE);
    r["id"].as_str().unwrap().to_string()
}

/// A refused command: exit 2, and its stderr names `code`.
#[track_caller]
pub fn assert_refused(out: &Output, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("error[{code}]")), "{stderr}");
    stderr
}

/// The deliveries of an order with the given PIN generation.
pub async fn deliveries_of_generation(st: &TestStation, no: &str, generation: i64) -> Vec<Value> {
    st.deliveries(no)
        .await
        .into_iter()
        .filter(|d| d["pin_generation"] == generation)
        .collect()
}
