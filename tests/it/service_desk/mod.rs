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
use crate::revocation::{published, verified_crl_text};
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

/// `pin-reset request NO --reason … --evidence EVIDENCE --operator OPERATOR`.
pub fn reset_request<'a>(no: &'a str, evidence: &'a str, operator: &'a str) -> [&'a str; 9] {
    [
        "pin-reset",
        "request",
        no,
        "--reason",
        "客户遗忘证书密码",
        "--evidence",
        evidence,
        "--operator",
        operator,
    ]
}

/// `pin-reset request` by [`ALICE`]; returns the request id.
pub async fn request_reset(st: &TestStation, no: &str) -> String {
    let r = st
        .json(&reset_request(no, "营业执照原件 + 经办人身份证", ALICE))
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

/// The station's published CRL, verified under its CA: its text (`openssl crl -text`).
pub fn published_crl_text(st: &TestStation) -> String {
    verified_crl_text(&published(&st.data_dir()), &st.data_dir().join("ca/ca.pem"))
}

/// The published CRL, verified under the CA, lists certificate `serial`: its text.
#[track_caller]
pub fn crl_lists(st: &TestStation, serial: &str) -> String {
    let text = published_crl_text(st);
    assert!(
        text.contains(&format!("Serial Number: {}", serial.to_uppercase())),
        "{text}"
    );
    text
}

/// Whether order `no` has an active key binding in the store.
pub async fn has_active_binding(st: &TestStation, no: &str) -> bool {
    let no = crate::support::order_no(no);
    st.read_store(async |s| s.active_binding(&no).await.unwrap().is_some())
        .await
}

/// The reason the store records for certificate `serial`'s revocation.
pub async fn revocation_reason(st: &TestStation, serial: &str) -> String {
    let serial = crate::support::cert_serial(serial);
    st.read_store(async |s| s.revocation(&serial).await.unwrap().unwrap().reason)
        .await
}

/// The certificates the store holds for order `no`.
pub async fn certificates_of(
    st: &TestStation,
    no: &str,
) -> Vec<keystation::store::CertificateRecord> {
    let no = crate::support::order_no(no);
    st.read_store(async |s| s.certificates_of_order(&no).await.unwrap())
        .await
}

/// Request `id` of `kind` (`pin-reset`, `unlock`) approved by [`BOB`], then run by [`ALICE`]
/// with the failpoints `spec` (`POINT=abort`, `POINT=error`): the run's output.
pub async fn approved_and_run_with(st: &TestStation, kind: &str, id: &str, spec: &str) -> Output {
    st.ok(&[kind, "approve", id, "--operator", BOB]).await;
    st.run_env(
        &[kind, "run", id, "--operator", ALICE],
        &[("KEYSTATION_FAILPOINTS", spec)],
    )
    .await
}

/// `out` is a run killed at the failpoint `point`.
#[track_caller]
pub fn crashed_at(out: &Output, point: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("failpoint {point} reached")),
        "{point}: the run was meant to crash there: {stderr}"
    );
}

/// The certificate at `pem` verifies under the station's CA (`openssl verify`).
#[track_caller]
pub fn verifies_under_the_ca(st: &TestStation, pem: &std::path::Path) {
    let ca = st.data_dir().join("ca/ca.pem");
    let [ca, pem] = [&ca, pem].map(|p| p.to_str().unwrap());
    let (ok, out) = crate::support::openssl(&["verify", "-CAfile", ca, pem]);
    assert!(ok, "{out}");
}
