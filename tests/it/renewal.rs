//! Issue 16 item 5: renewal (证书更新). `order renew` is refused before the 30-day window and
//! for an order without a live certificate; inside the window (the station in this process on
//! a fixed clock) it makes ORDER-R1 with the form and documents carried over by hash, which is
//! reviewed and provisioned like a new order onto a new key. Then the company has two
//! certificates: the new one on the new token (read back with pkcs11-tool) verifying with
//! `openssl verify -crl_check`, the old one revoked as superseded and in the CRL that
//! provisioning issued (`openssl crl -text`: reason Superseded).

use crate::ocsp::{ca_pem, certificate_pem};
use crate::revocation::{crl_as_pem, openssl, published, relying_party, verified_crl_text};
use crate::service_desk::assert_refused;
use crate::station::{TestStation, order_json, pkcs11_tool};
use crate::support::{audit_records, items};
use keystation::clock::{FixedClock, format_utc, parse_utc};
use keystation::error_code::Coded;
use keystation::station::renewal::{RenewalError, RenewalReport};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// `order renew` run by a station opened in this process with its clock at `at`.
fn renew_at(
    st: &TestStation,
    order_no: &str,
    at: time::OffsetDateTime,
) -> Result<RenewalReport, RenewalError> {
    // The operator this process acts as, by its credential.
    let credential = crate::support::operator_credential(&st.config(), "desk-alice").unwrap();
    let rt = crate::support::runtime();
    rt.block_on(async {
        let cfg = keystation::config::Config::load(&st.config()).unwrap();
        let station = keystation::station::Station::open(cfg, Arc::new(FixedClock::new(at)))
            .await
            .unwrap()
            .with_credential(Some(credential));
        let no = keystation::domain::OrderNo::parse(order_no).unwrap();
        let r = station.renew_order(&no, "desk-alice").await;
        station.close().await;
        r
    })
}

fn renew_cli(st: &TestStation, order_no: &str) -> std::process::Output {
    st.run(
        &["order", "renew", order_no, "--operator", "desk-alice"],
        &[],
    )
}

fn certificate(show: &Value) -> &Value {
    let certs = items(&show["certificates"]);
    assert_eq!(certs.len(), 1, "{show:#}");
    &certs[0]
}

/// A main-key order `no` imported, approved and provisioned: what `provision` printed, the
/// certificate's serial and its end of validity.
fn provisioned(st: &TestStation, no: &str) -> (Value, String, time::OffsetDateTime) {
    st.import_approved(&order_json(no, "legal_rep_phone", "company", "main"));
    let report = st.json(&["provision", no]);
    let serial = string(&report, "certificate_serial");
    let not_after = parse_utc(report["not_after"].as_str().unwrap()).unwrap();
    (report, serial, not_after)
}

/// The string `field` of a report.
fn string(report: &Value, field: &str) -> String {
    report[field].as_str().unwrap().to_string()
}

/// The DER bytes of the certificate at `pem`, as `openssl x509 -outform DER` writes them.
#[track_caller]
fn der_of(st: &TestStation, pem: &Path) -> Vec<u8> {
    let der = st.tmp().join("new.der");
    let [pem_file, der_file] = [pem, &der].map(|p| p.to_str().unwrap());
    let (ok, out) = openssl(&["x509", "-in", pem_file, "-outform", "DER", "-out", der_file]);
    assert!(ok, "{out}");
    std::fs::read(&der).unwrap()
}

/// Relying parties, through the published CRL `crl_der`: `new_pem` verifies against the CA,
/// the old certificate `old_serial` is refused as revoked.
#[track_caller]
fn new_verifies_old_is_revoked(
    st: &TestStation,
    ca: &Path,
    crl_der: &Path,
    new_pem: &Path,
    old_serial: &str,
) {
    let crl_pem = st.tmp().join("crl.pem");
    crl_as_pem(crl_der, &crl_pem);
    let (ok, out) = relying_party(ca, &crl_pem, new_pem);
    assert!(ok && out.contains("OK"), "{out}");
    let (ok, out) = relying_party(ca, &crl_pem, &certificate_pem(st, old_serial));
    assert!(!ok && out.contains("certificate revoked"), "{out}");
}

#[test]
fn renewal_supersedes_the_old_certificate_once_the_new_key_has_its_own() {
    let st = TestStation::new();
    let (old, old_serial, not_after) = provisioned(&st, "REN-1");
    let opens = format_utc(not_after - time::Duration::days(30));

    // A fresh certificate: refused, naming the date renewal opens; nothing made.
    let stderr = assert_refused(&renew_cli(&st, "REN-1"), "E-RENEWAL-NOT-OPEN");
    assert!(stderr.contains(&opens), "{stderr}");
    let just_before = not_after - time::Duration::days(30) - time::Duration::seconds(1);
    let e = renew_at(&st, "REN-1", just_before).unwrap_err();
    assert_eq!(e.code().to_string(), "E-RENEWAL-NOT-OPEN", "{e}");
    // No live certificate: an order not provisioned yet, and one that is expired.
    st.import_approved(&order_json("REN-2", "legal_rep_phone", "company", "main"));
    assert_refused(&renew_cli(&st, "REN-2"), "E-RENEWAL-NO-CERTIFICATE");
    let e = renew_at(&st, "REN-1", not_after).unwrap_err();
    assert_eq!(e.code().to_string(), "E-RENEWAL-NO-CERTIFICATE", "{e}");
    assert_refused(&renew_cli(&st, "NO-SUCH"), "E-ORDER-NOT-FOUND");
    let orders: Vec<String> = items(&st.json(&["order", "list"]))
        .iter()
        .map(|o| o["order_no"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(orders, ["REN-1", "REN-2"]);

    // 20 days before notAfter: REN-1-R1, Submitted, same company, documents by the same hashes.
    let at = not_after - time::Duration::days(20);
    let report = renew_at(&st, "REN-1", at).unwrap();
    assert_eq!(report.order_no, "REN-1-R1");
    assert_eq!(report.certificate, old_serial);
    // One renewal at a time.
    let e = renew_at(&st, "REN-1", at).unwrap_err();
    assert_eq!(e.code().to_string(), "E-RENEWAL-PENDING", "{e}");
    let original = st.json(&["order", "show", "REN-1"]);
    let renewal = st.json(&["order", "show", "REN-1-R1"]);
    assert_eq!(renewal["state"], "Submitted");
    assert_eq!(renewal["renewal_of"], "REN-1");
    assert_eq!(original["renewals"][0]["order_no"], "REN-1-R1");
    assert_eq!(renewal["order"]["company"], original["order"]["company"]);
    assert_eq!(renewal["order"]["order_no"], "REN-1-R1");
    let hashes = |v: &Value| -> Vec<(String, String)> {
        items(&v["attachments"])
            .iter()
            .map(|a| (a["kind"].to_string(), a["sha256"].to_string()))
            .collect()
    };
    assert!(!hashes(&original).is_empty());
    assert_eq!(hashes(&renewal), hashes(&original));
    let text = st.ok(&["order", "show", "REN-1-R1"]);
    assert!(text.contains("renewal of   REN-1"), "{text}");

    // Reviewed like a new order: not provisioned before approval.
    let out = st.run(&["provision", "REN-1-R1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    st.ok(&["order", "approve", "REN-1-R1", "--operator", "reviewer"]);
    let new = st.json(&["provision", "REN-1-R1"]);
    let new_serial = new["certificate_serial"].as_str().unwrap().to_string();
    assert_ne!(new_serial, old_serial);
    assert_ne!(new["token_serial"], old["token_serial"], "a new key");
    assert_ne!(new["key_id"].as_str(), None);
    assert_eq!(new["revoked"], serde_json::json!([old_serial]));

    // Two certificates for the company: the old one revoked as superseded, the new on its token.
    let original = st.json(&["order", "show", "REN-1"]);
    let renewal = st.json(&["order", "show", "REN-1-R1"]);
    assert_eq!(certificate(&original)["status"], "revoked");
    assert_eq!(certificate(&renewal)["status"], "on_token");
    assert_eq!(renewal["state"], "Provisioned");
    let on_token = st.read_object("REN-1-R1", "cert", new["key_id"].as_str().unwrap());
    let new_pem = certificate_pem(&st, &new_serial);
    assert_eq!(on_token, der_of(&st, &new_pem));

    // The CRL provisioning issued lists the old certificate, reason Superseded, not the new one.
    let ca = ca_pem(&st);
    let crl_der = published(&st.path());
    let text = verified_crl_text(&crl_der, &ca);
    let listed = text.split("Serial Number: ").skip(1).collect::<Vec<_>>();
    assert_eq!(listed.len(), 1, "{text}");
    assert!(listed[0].starts_with(&old_serial.to_uppercase()), "{text}");
    assert!(listed[0].contains("Superseded"), "{text}");
    assert!(!text.contains(&new_serial.to_uppercase()), "{text}");

    // Relying parties: the new certificate verifies against CA and CRL, the old one is revoked.
    new_verifies_old_is_revoked(&st, &ca, &crl_der, &new_pem, &old_serial);

    // Audited: the renewal order's making, the supersession, and the chain holds.
    let audit = st.json(&["audit", "show"]);
    let made = audit_records(&audit, "order.renewal_requested");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["order_no"], "REN-1-R1");
    let revoked: Vec<&Value> = audit_records(&audit, "certificate.revoked")
        .into_iter()
        .filter(|r| r["cert_serial"] == old_serial.as_str())
        .collect();
    assert_eq!(revoked.len(), 1, "{audit:#}");
    assert!(
        revoked[0]["details"]
            .as_str()
            .unwrap()
            .contains("superseded"),
        "{:#}",
        revoked[0]
    );
    st.ok(&["audit", "verify"]);
    let report = st.check_passes("after the renewal");
    assert!(
        items(&report["findings"])
            .iter()
            .any(|f| f["rule"] == "renewed" && f["order_no"] == "REN-1"),
        "{report:#}"
    );

    // The renewal is done: a second renewal of the original is refused (its certificate is
    // revoked); the renewal order itself renews from its own window.
    assert_refused(&renew_cli(&st, "REN-1"), "E-RENEWAL-NO-CERTIFICATE");
}

/// The renewal's store records on both backends, one query text: the link, the form under the
/// new number, attachments carried over by hash (no second blob), renewals listed.
async fn store_exercise(url: &str) {
    use crate::delivery::store_backends::{actor, new_order, now};
    use keystation::domain::{OrderNo, OrderState};
    use keystation::store::{HashedBytes, NewAttachment, Store};
    let store = Store::connect(url).await.unwrap();
    let mut original = new_order("BJ20261124-0031");
    original.attachments = vec![NewAttachment {
        role: "document",
        kind: "business_license",
        file_name: "license.png".into(),
        media_type: "image/png",
        content: HashedBytes::new(b"license bytes".to_vec()),
        normalized: None,
    }];
    store
        .insert_orders(&[original.clone()], &actor(), now())
        .await
        .unwrap();
    let no = OrderNo::parse("BJ20261124-0031").unwrap();
    let mut renewal = original.order.clone();
    renewal.order_no = OrderNo::parse("BJ20261124-0031-R1").unwrap();
    let renewal_no = OrderNo::parse(&renewal.order_no).unwrap();
    let mut tx = store.begin_write(now()).await.unwrap();
    assert!(!tx.order_exists(&renewal_no).await.unwrap());
    let carried = tx.insert_renewal_order(&no, &renewal).await.unwrap();
    assert_eq!(carried.len(), 1);
    assert!(tx.order_exists(&renewal_no).await.unwrap());
    assert_eq!(
        tx.renewal_of_in_tx(&renewal_no).await.unwrap().as_deref(),
        Some("BJ20261124-0031")
    );
    assert_eq!(tx.renewal_of_in_tx(&no).await.unwrap(), None);
    tx.commit().await.unwrap();

    let rec = store.order(&renewal_no).await.unwrap().unwrap();
    assert_eq!(rec.state, OrderState::Submitted);
    assert_eq!(rec.renewal_of.as_deref(), Some("BJ20261124-0031"));
    assert_eq!(rec.order.company, original.order.company);
    let before = store.order(&no).await.unwrap().unwrap();
    assert_eq!(before.renewal_of, None);
    assert_eq!(rec.attachments, before.attachments);
    let (_, content) = store
        .attachment_content(&renewal_no, "document", "business_license")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(content, b"license bytes");
    let links = store.renewals_of(&no).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].order_no, "BJ20261124-0031-R1");
    assert_eq!(
        store.renewal_of(&renewal_no).await.unwrap().as_deref(),
        Some("BJ20261124-0031")
    );
    // A renewal of an order that does not exist stores nothing.
    let mut tx = store.begin_write(now()).await.unwrap();
    let mut ghost = original.order.clone();
    ghost.order_no = OrderNo::parse("GHOST-R1").unwrap();
    assert!(
        tx.insert_renewal_order(&OrderNo::parse("GHOST").unwrap(), &ghost)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn renewal_records_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    store_exercise(&crate::delivery::store_backends::sqlite_url(&dir)).await;
}

#[tokio::test]
async fn renewal_records_on_postgres() {
    let db = crate::pg::PgDatabase::create().await;
    store_exercise(&db.url).await;
}

/// A renewal whose provisioning stops just before its last commit leaves the old certificate
/// live (the customer keeps a working key); resuming it supersedes the old one then, once.
#[test]
fn an_interrupted_renewal_revokes_the_old_certificate_only_when_it_finishes() {
    let st = TestStation::new();
    let (_, old_serial, not_after) = provisioned(&st, "REN-5");
    let r = renew_at(&st, "REN-5", not_after - time::Duration::days(3)).unwrap();
    assert_eq!(r.order_no, "REN-5-R1");
    st.ok(&["order", "approve", "REN-5-R1", "--operator", "reviewer"]);

    st.provision_failing_at("REN-5-R1", "provision.finish.before_done");
    let original = st.json(&["order", "show", "REN-5"]);
    assert_eq!(certificate(&original)["status"], "on_token", "{original:#}");
    assert_eq!(st.json(&["order", "show", "REN-5-R1"])["state"], "Failed");

    let resumed = st.json(&["provision", "REN-5-R1"]);
    assert_eq!(resumed["revoked"], serde_json::json!([old_serial]));
    let original = st.json(&["order", "show", "REN-5"]);
    assert_eq!(certificate(&original)["status"], "revoked");
    let text = verified_crl_text(&published(&st.path()), &ca_pem(&st));
    assert_eq!(text.matches("Superseded").count(), 1, "{text}");
    assert!(text.contains(&old_serial.to_uppercase()), "{text}");
    st.check_passes("after the resumed renewal");
}

/// Issue 16 item 5 (rest): the company brings its key to the desk. The renewal is provisioned
/// onto that same token (`provision ORDER-R1 --token SERIAL`): no `C_InitToken`, a new key
/// pair and certificate beside the old ones, the old certificate revoked as superseded in the
/// commit that records the new one on the token, and only then the old key pair and
/// certificate removed — pkcs11-tool lists exactly the new ones.
#[test]
fn renewal_at_the_desk_puts_the_new_key_on_the_companys_existing_token() {
    let st = TestStation::new();
    let (old, old_serial, not_after) = provisioned(&st, "REN-2");
    let (old_key, token) = (string(&old, "key_id"), string(&old, "token_serial"));
    let report = renew_at(&st, "REN-2", not_after - time::Duration::days(20)).unwrap();
    assert_eq!(report.order_no, "REN-2-R1");
    st.ok(&["order", "approve", "REN-2-R1", "--operator", "reviewer"]);

    let new = st.json(&["provision", "REN-2-R1", "--token", &token]);
    assert_eq!(new["token_serial"], token.as_str(), "the same key");
    let new_key = new["key_id"].as_str().unwrap().to_string();
    let new_serial = new["certificate_serial"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key, "a new key pair");
    assert_eq!(new["revoked"], serde_json::json!([old_serial]));

    // On the token (still labelled REN-2), as pkcs11-tool lists its public objects: the new
    // public key and certificate only (the old key pair went with one call, private key too).
    let out = pkcs11_tool(&st, &["--token-label", "REN-2", "--list-objects"], None);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{listing}");
    assert!(
        listing.contains(&format!("ID:         {new_key}")),
        "{listing}"
    );
    assert!(!listing.contains(&old_key), "{listing}");
    assert_eq!(listing.matches("Public Key Object").count(), 1, "{listing}");
    assert_eq!(
        listing.matches("Certificate Object").count(),
        1,
        "{listing}"
    );
    // Logged in with the renewal's new PIN: one private key, the new one; the old one is gone.
    st.run_child(
        "renewal::renewal_private_keys_child",
        &[
            ("KS_RENEWAL_ORDER", "REN-2-R1"),
            ("KS_RENEWAL_LABEL", "REN-2"),
            ("KS_RENEWAL_NEW_KEY", &new_key),
            ("KS_RENEWAL_OLD_KEY", &old_key),
        ],
    );
    let on_token = st.read_object("REN-2", "cert", &new_key);
    let new_pem = certificate_pem(&st, &new_serial);
    assert_eq!(on_token, der_of(&st, &new_pem));

    // The new certificate verifies under the CA and its CRL; the old one is revoked superseded.
    let ca = ca_pem(&st);
    let crl_der = published(&st.path());
    let text = verified_crl_text(&crl_der, &ca);
    assert!(text.contains(&old_serial.to_uppercase()), "{text}");
    assert!(text.contains("Superseded"), "{text}");
    new_verifies_old_is_revoked(&st, &ca, &crl_der, &new_pem, &old_serial);

    let audit = st.json(&["audit", "show"]);
    assert_eq!(audit_records(&audit, "provision.old_key_removed").len(), 1);
    st.ok(&["audit", "verify"]);
    st.check_passes("after the renewal at the desk");
}

/// Child half of [`renewal_at_the_desk_puts_the_new_key_on_the_companys_existing_token`]: the
/// renewal's user PIN unsealed from the vault logs in with `pkcs11-tool`, which lists exactly
/// one private key, the new one (does nothing when run on its own).
#[test]
fn renewal_private_keys_child() {
    let Some(dir) = crate::station::child_station() else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    let pin = crate::station::unseal_pins(&dir, &var("KS_RENEWAL_ORDER")).0;
    let out = std::process::Command::new("pkcs11-tool")
        .args(["--module", crate::station::softhsm_module()])
        .args(["--token-label", &var("KS_RENEWAL_LABEL")])
        .args(["--login", "--pin", "env:KS_TEST_PIN", "--list-objects"])
        .env("KS_TEST_PIN", &pin)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        listing.matches("Private Key Object").count(),
        1,
        "{listing}"
    );
    let new_key = var("KS_RENEWAL_NEW_KEY");
    let old_key = var("KS_RENEWAL_OLD_KEY");
    // The private key's block: from its heading to the next object's.
    let start = listing.find("Private Key Object").unwrap() + "Private Key Object".len();
    let private = listing[start..].split("Object;").next().unwrap();
    assert!(
        private.contains(&format!("ID:         {new_key}")),
        "{listing}"
    );
    assert!(!listing.contains(&old_key), "{listing}");
}

/// A renewal at the desk stopped after its certificate was issued but before it was on the key:
/// the original's certificate is still valid and on the key, and the next run makes a new
/// attempt WITHOUT re-initialising the key (the original's certificate survives it), revokes the
/// unwritten certificate, and in the end leaves only the final key pair and certificate.
#[test]
fn an_interrupted_renewal_at_the_desk_never_wipes_the_companys_key() {
    let st = TestStation::new();
    let (old, old_serial, not_after) = provisioned(&st, "REN-6");
    let (old_key, token) = (string(&old, "key_id"), string(&old, "token_serial"));
    renew_at(&st, "REN-6", not_after - time::Duration::days(5)).unwrap();
    st.ok(&["order", "approve", "REN-6-R1", "--operator", "reviewer"]);

    let out = st.run(
        &["provision", "REN-6-R1", "--token", &token],
        &[(
            "KEYSTATION_FAILPOINTS",
            "provision.issue_certificate.before_done=error",
        )],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = st.json(&["order", "show", "REN-6"]);
    assert_eq!(certificate(&original)["status"], "on_token", "{original:#}");
    let listing = |st: &TestStation| {
        let out = pkcs11_tool(st, &["--token-label", "REN-6", "--list-objects"], None);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = listing(&st);
    assert!(
        before.contains(&format!("ID:         {old_key}")),
        "{before}"
    );
    assert_eq!(before.matches("Certificate Object").count(), 1, "{before}");

    let resumed = st.json(&["provision", "REN-6-R1"]);
    assert_eq!(resumed["token_serial"], token.as_str());
    let new_key = resumed["key_id"].as_str().unwrap().to_string();
    let revoked = resumed["revoked"].as_array().unwrap();
    assert_eq!(
        revoked.len(),
        2,
        "the unwritten one and the original's: {resumed:#}"
    );
    assert!(
        revoked.iter().any(|s| s == old_serial.as_str()),
        "{resumed:#}"
    );
    let after = listing(&st);
    assert!(after.contains(&format!("ID:         {new_key}")), "{after}");
    assert_eq!(after.matches("Public Key Object").count(), 1, "{after}");
    assert_eq!(after.matches("Certificate Object").count(), 1, "{after}");
    let original = st.json(&["order", "show", "REN-6"]);
    assert_eq!(certificate(&original)["status"], "revoked");
    st.check_passes("after the resumed renewal at the desk");
}
