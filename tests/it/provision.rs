//! Issue 3: an approved order provisioned onto a real SoftHSM token — key on the token and
//! non-extractable, CA-issued certificate with the unit profile, written back under the key's
//! CKA_ID; PINs recoverable only through the vault; failures at every step resumable without
//! orphan certificates; tokens of other orders untouched.

use crate::station::{
    TestStation, full_order, keystation_at, open_station, order_json, pkcs11_tool, token_binding,
};
use crate::support::{assert_success, audit_records, items, openssl, run_ok, stdout_json, strings};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use x509_parser::prelude::*;

fn provision(st: &TestStation, no: &str) -> Value {
    st.json(&["provision", no])
}

fn write_der(st: &TestStation, name: &str, der: &[u8]) -> PathBuf {
    let p = st.tmp().join(name);
    std::fs::write(&p, der).unwrap();
    p
}

/// `openssl x509`: the DER certificate `der` as PEM in `pem`.
fn pem_of(der: &Path, pem: &Path) {
    run_ok(
        Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(der)
            .arg("-out")
            .arg(pem),
    );
}

/// `openssl verify`: the PEM certificate `pem` chains to the CA certificate `ca`.
fn assert_verifies(ca: &Path, pem: &Path) {
    let (ok, msg) = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        pem.to_str().unwrap(),
    ]);
    assert!(ok && msg.contains(": OK"), "openssl verify: {msg}");
}

/// The first extension of `cert` that `pick` takes.
fn extension<T>(cert: &X509Certificate, pick: impl Fn(&ParsedExtension) -> Option<T>) -> T {
    cert.extensions()
        .iter()
        .find_map(|e| pick(e.parsed_extension()))
        .expect("the extension")
}

/// Reads the certificate with `key_id` off the token (public object, no login).
fn token_cert(st: &TestStation, label: &str, key_id: &str) -> Vec<u8> {
    st.read_object(label, "cert", key_id)
}

fn check_profile(st: &TestStation, report: &Value, rsa: bool) {
    let label = report["token_label"].as_str().unwrap();
    let key_id = report["key_id"].as_str().unwrap();
    let der = token_cert(st, label, key_id);

    // The token's certificate is the one the database recorded.
    let show = st.json(&["order", "show", label]);
    let certs = items(&show["certificates"]);
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0]["status"], "on_token");
    assert_eq!(certs[0]["serial"], report["certificate_serial"]);
    assert_eq!(show["token"]["token_serial"], report["token_serial"]);
    assert_eq!(
        certs[0]["fingerprint_sha256"].as_str().unwrap(),
        keystation::x509::sha256_fingerprint(&der)
    );

    // openssl, independently.
    let cert_file = write_der(st, "unit.der", &der);
    let pem = st.tmp().join("unit.pem");
    pem_of(&cert_file, &pem);
    let ca = st.path().join("ca/ca.pem");
    assert_verifies(&ca, &pem);
    let (ok, text) = openssl(&[
        "x509",
        "-in",
        pem.to_str().unwrap(),
        "-noout",
        "-text",
        "-nameopt",
        "utf8,sep_comma_plus",
    ]);
    assert!(ok, "{text}");
    for needle in [
        "O=北京示例科技有限公司",
        "CN=北京示例科技有限公司",
        "OU=信息部",
        "ST=北京市",
        "serialNumber=91110000600037341L",
        "X509v3 Key Usage: critical",
        "Digital Signature, Non Repudiation",
        "TLS Web Client Authentication, E-mail Protection",
        "URI:http://crl.keystation.invalid/unit-ca.crl",
        "1.2.156.10260.4.1.4",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "15:59:59",
    ] {
        assert!(
            text.contains(needle),
            "openssl x509 -text lacks {needle:?}:\n{text}"
        );
    }

    // x509-parser, field by field.
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let ca_pem = std::fs::read(&ca).unwrap();
    let (_, ca_pem) = parse_x509_pem(&ca_pem).unwrap();
    let ca_cert = ca_pem.contents;
    let (_, ca_x) = X509Certificate::from_der(&ca_cert).unwrap();
    assert_eq!(cert.issuer().as_raw(), ca_x.subject().as_raw());
    assert!(cert.raw_serial().len() >= 8, "serial of at least 64 bits");
    assert!(cert.raw_serial()[0] & 0x80 == 0, "positive serial");
    let not_after = cert.validity().not_after.to_datetime();
    assert_eq!(
        (not_after.hour(), not_after.minute(), not_after.second()),
        (15, 59, 59)
    );
    let nb = cert.validity().not_before.to_datetime();
    let nb_bj = nb.to_offset(keystation::clock::BEIJING);
    let na_bj = not_after.to_offset(keystation::clock::BEIJING);
    assert_eq!(na_bj.year(), nb_bj.year() + 1);
    assert_eq!(
        (na_bj.month(), na_bj.day()),
        (nb_bj.month(), nb_bj.day()),
        "same calendar day a year later"
    );
    let uscc = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.2.156.10260.4.1.4")
        .expect("USCC extension");
    assert!(!uscc.critical);
    assert!(uscc.value.ends_with(b"91110000600037341L"));
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && ku.value.non_repudiation());
    assert!(!ku.value.key_cert_sign() && !ku.value.key_encipherment());
    let eku = cert.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.client_auth && eku.value.email_protection && !eku.value.server_auth);
    let aki = extension(&cert, |p| match p {
        ParsedExtension::AuthorityKeyIdentifier(a) => {
            a.key_identifier.as_ref().map(|k| k.0.to_vec())
        }
        _ => None,
    });
    let ca_ski = extension(&ca_x, |p| match p {
        ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
        _ => None,
    });
    assert_eq!(aki, ca_ski);
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    assert_eq!(
        sig_oid,
        if rsa {
            "1.2.840.113549.1.1.11"
        } else {
            "1.2.840.10045.4.3.2"
        }
    );

    // The certificate's public key IS the token's public key.
    assert_eq!(
        st.read_object(label, "pubkey", key_id),
        cert.public_key().raw
    );

    // Certificate and public key objects share the key's CKA_ID (public listing, no login).
    let out = pkcs11_tool(st, &["--token-label", label, "--list-objects"], None);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listing.matches(&format!("ID:         {key_id}")).count(),
        2,
        "{listing}"
    );
    assert!(listing.contains("Certificate Object"));
}

/// The half of the test that needs the PINs: runs in a child bound to the station's SoftHSM.
fn check_pins_in_child(dir: &Path, order_no: &str) {
    let (user_pin, so_pin) = crate::station::unseal_pins(dir, order_no);
    let (rt, station, hsm) = open_station(dir);
    let (binding, serial) = token_binding(&rt, &station, order_no);
    let module = crate::station::softhsm_module();
    let tool = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = Command::new("pkcs11-tool");
        c.arg("--module")
            .arg(module)
            .args(["--token-label", order_no])
            .args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    // The unsealed user PIN logs in; the private key is there, sensitive and never extractable.
    let out = tool(
        &[
            "--login",
            "--pin",
            "env:P",
            "--list-objects",
            "--type",
            "privkey",
        ],
        &[("P", &user_pin)],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_success(&out, "user login");
    assert!(text.contains("Private Key Object"), "{text}");
    assert!(
        text.contains("sensitive") && text.contains("never extractable"),
        "{text}"
    );
    // A wrong PIN is refused (so the login above proved something).
    let out = tool(
        &["--login", "--pin", "env:P", "--list-objects"],
        &[("P", "not-the-pin")],
    );
    assert!(!out.status.success());
    // The SO PIN re-derived from the recorded identity logs in as SO (an SO login needs a
    // read-write session; "change the SO PIN to itself" is the one pkcs11-tool operation that
    // opens one without changing the token).
    let so_login = |pin: &str| {
        tool(
            &[
                "--login",
                "--login-type",
                "so",
                "--so-pin",
                "env:S",
                "--change-pin",
                "--new-pin",
                "env:S",
            ],
            &[("S", pin)],
        )
    };
    assert_success(&so_login(&so_pin), "SO login");
    assert!(!so_login("not-the-so-pin").status.success());
    // The key attributes, read through the library as well.
    rt.block_on(async {
        tokio::task::block_in_place(|| {
            let mut t = hsm
                .module()
                .find(&[keystation::token::TokenSelector::Serial(
                    serial.parse().unwrap(),
                )])
                .unwrap();
            let pin =
                keystation::domain::Pin::from_secret(zeroize::Zeroizing::new(user_pin.clone()));
            let s = t.login_user(&pin).unwrap();
            let id = hex::decode(binding.key_id.as_deref().unwrap()).unwrap();
            let key = s.find_private_key(&id).unwrap().unwrap();
            let a = s.private_key_attributes(key).unwrap();
            assert!(
                a.sensitive && !a.extractable && a.never_extractable && a.token && a.private,
                "{a:?}"
            );
            // Export attempt: C_GetAttributeValue(CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1)
            // must be refused with CKR_ATTRIBUTE_SENSITIVE. (pkcs11-tool cannot even try: it
            // does not read private keys at all, so it is no independent witness here.)
            assert!(s.private_value_is_protected(key).unwrap());
        })
    });
    // No plaintext PIN anywhere in the database files.
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("station.db") {
            let bytes = std::fs::read(&p).unwrap();
            for secret in [&user_pin, &so_pin] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{name} contains a PIN in clear"
                );
            }
        }
    }
}

#[test]
fn provisioned_token_holds_a_non_extractable_key_and_a_ca_issued_unit_certificate() {
    let Some(st) = TestStation::unless_child(&[], |dir| check_pins_in_child(dir, "P-EC-1")) else {
        return;
    };
    st.import_approved(&full_order("P-EC-1"));
    let report = provision(&st, "P-EC-1");
    assert_eq!(report["key_algorithm"], "ecdsa-p256");
    assert_eq!(
        st.json(&["order", "show", "P-EC-1"])["state"],
        "Provisioned"
    );
    check_profile(&st, &report, false);
    st.run_child(
        "provision::provisioned_token_holds_a_non_extractable_key_and_a_ca_issued_unit_certificate",
        &[],
    );
}

#[test]
fn rsa_2048_ca_and_keys_work_the_same_way() {
    let Some(st) = TestStation::unless_child(&["--ca-algorithm", "rsa-2048"], |dir| {
        check_pins_in_child(dir, "P-RSA-1")
    }) else {
        return;
    };
    let cfg = std::fs::read_to_string(st.config()).unwrap();
    let cfg = cfg.replace(
        "[product]\nkey_algorithm = \"ecdsa-p256\"",
        "[product]\nkey_algorithm = \"rsa-2048\"",
    );
    std::fs::write(st.config(), cfg).unwrap();
    st.import_approved(&order_json("P-RSA-1", "legal_rep_phone", "company", "main"));
    let report = provision(&st, "P-RSA-1");
    assert_eq!(report["key_algorithm"], "rsa-2048");
    check_profile(&st, &report, true);
    st.run_child("provision::rsa_2048_ca_and_keys_work_the_same_way", &[]);
}

/// Certificates of an order by status, and the revocations recorded in the audit trail.
fn cert_statuses(st: &TestStation, no: &str) -> (Vec<String>, usize) {
    let show = st.json(&["order", "show", no]);
    let statuses = strings(&show["certificates"], "status");
    let audit = st.json(&["audit", "show", "--order", no]);
    let revocations = audit_records(&audit, "certificate.revoked").len();
    (
        statuses.into_iter().map(String::from).collect(),
        revocations,
    )
}

#[test]
fn a_failure_at_any_step_is_resumed_and_leaves_no_unrevoked_orphan_certificate() {
    let st = TestStation::new();
    let points = crate::crash::PROVISION_POINTS;
    for (i, point) in points.iter().enumerate() {
        let no = format!("F-{i:02}");
        st.import_approved(&full_order(&no));
        let failing = st.provision_failing_at(&no, point);
        assert!(
            String::from_utf8_lossy(&failing.stderr).contains("injected failure"),
            "{point}"
        );
        assert_eq!(
            st.json(&["order", "show", &no])["state"],
            "Failed",
            "{point}"
        );

        let report = provision(&st, &no);
        let show = st.json(&["order", "show", &no]);
        assert_eq!(show["state"], "Provisioned", "{point}");
        let (statuses, revocations) = cert_statuses(&st, &no);
        // Exactly one live certificate, on the token; everything else revoked and recorded.
        assert_eq!(
            statuses.iter().filter(|s| *s == "on_token").count(),
            1,
            "{point}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| s == "on_token" || s == "revoked"),
            "{point}: orphan certificate left: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| *s == "revoked").count(),
            revocations,
            "{point}"
        );
        if point.starts_with("provision.issue_certificate.before_done") {
            assert_eq!(
                revocations, 1,
                "the signed-but-unrecorded certificate must be revoked"
            );
        }
        // The token holds exactly one certificate: the live one.
        let der = token_cert(&st, &no, report["key_id"].as_str().unwrap());
        assert_eq!(
            keystation::x509::sha256_fingerprint(&der),
            report["certificate_fingerprint"].as_str().unwrap(),
            "{point}"
        );
        let out = pkcs11_tool(
            &st,
            &["--token-label", &no, "--list-objects", "--type", "cert"],
            None,
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .matches("Certificate Object")
                .count(),
            1,
            "{point}"
        );
    }
    st.ok(&["audit", "verify"]);
}

#[test]
fn a_token_bound_to_another_order_is_refused_and_left_untouched() {
    let st = TestStation::new();
    st.import_approved(&order_json("B-A", "legal_rep_phone", "company", "main"));
    st.import_approved(&order_json("B-B", "legal_rep_phone", "company", "main"));
    let a = provision(&st, "B-A");
    let serial_a = a["token_serial"].as_str().unwrap().to_string();
    let before = pkcs11_tool(&st, &["--token-label", "B-A", "--list-objects"], None);
    let audit_before = items(&st.json(&["audit", "show", "--order", "B-A"])).len();

    let refused = st.run(&["provision", "B-B", "--token", &serial_a], &[]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&serial_a) && err.contains("bound to order B-A"),
        "{err}"
    );

    let after = pkcs11_tool(&st, &["--token-label", "B-A", "--list-objects"], None);
    assert_eq!(
        before.stdout, after.stdout,
        "the other order's token changed"
    );
    assert_eq!(st.json(&["order", "show", "B-A"])["state"], "Provisioned");
    assert_eq!(
        st.json(&["order", "show", "B-B"])["state"],
        "Approved",
        "nothing was claimed"
    );
    assert_eq!(
        items(&st.json(&["audit", "show", "--order", "B-A"])).len(),
        audit_before
    );

    // A token initialised outside the station is refused as well.
    st.foreign_token("FOREIGN");
    let refused = st.run(&["provision", "B-B", "--token", "FOREIGN"], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("will not erase it"));

    // The order still provisions on a blank token.
    let b = provision(&st, "B-B");
    assert_ne!(b["token_serial"].as_str().unwrap(), serial_a);
}

/// The SoftHSM directory of the token labelled `label` under `tokens`.
fn token_dir_labelled(tokens: &Path, label: &str) -> PathBuf {
    std::fs::read_dir(tokens)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| {
            std::fs::read(d.join("token.object"))
                .is_ok_and(|b| b.windows(label.len()).any(|w| w == label.as_bytes()))
        })
        .unwrap_or_else(|| panic!("no token {label} under {}", tokens.display()))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn init_can_adopt_an_existing_ca_and_refuses_a_mismatched_one() {
    // Station A made a CA; station B is given A's certificate and (a copy of) A's CA token, as a
    // second station of one CA would be given access to the CA's HSM partition.
    let a = TestStation::new();
    let b_dir = a.tmp().join("b");
    let ca_token = token_dir_labelled(&a.path().join("tokens"), "keystation-ca");
    copy_tree(
        &ca_token,
        &b_dir.join("tokens").join(ca_token.file_name().unwrap()),
    );
    let so = a.tmp().join("so.pin");
    keystation::station::hsm::write_secret_file(&so, "an-so-pin-for-b").unwrap();
    let a_pin = a.path().join("secrets/station-hsm.pin");
    let a_ca = a.path().join("ca/ca.pem");
    let init_adopting = |dir: &Path, ca_cert: &Path| {
        crate::station::keystation()
            .args(["init", "--dir"])
            .arg(dir)
            .arg("--existing-ca-cert")
            .arg(ca_cert)
            .arg("--pin-file")
            .arg(&a_pin)
            .arg("--so-pin-file")
            .arg(&so)
            .output()
            .unwrap()
    };
    assert_success(&init_adopting(&b_dir, &a_ca), "init --existing-ca-cert");
    crate::support::map_os_user_to_desk(&b_dir.join("station.toml"));
    assert_eq!(
        std::fs::read(b_dir.join("ca/ca.pem")).unwrap(),
        std::fs::read(&a_ca).unwrap()
    );

    // B issues under A's CA.
    let b_order = order_json("EXT-1", "legal_rep_phone", "company", "main");
    let app = a.write_order(&b_order);
    let b = |args: &[&str]| run_ok(&mut keystation_at(&b_dir, args));
    b(&["order", "import", app.to_str().unwrap()]);
    b(&["order", "approve", "EXT-1", "--operator", "r"]);
    let report = stdout_json(&b(&["provision", "EXT-1", "--json"]));
    let label = report["token_label"].as_str().unwrap();
    let key_id = report["key_id"].as_str().unwrap();
    let cert = {
        let file = a.tmp().join("ext-cert.der");
        run_ok(
            Command::new("pkcs11-tool")
                .arg("--module")
                .arg(crate::station::softhsm_module())
                .args([
                    "--token-label",
                    label,
                    "--read-object",
                    "--type",
                    "cert",
                    "--id",
                    key_id,
                    "-o",
                ])
                .arg(&file)
                .env("SOFTHSM2_CONF", b_dir.join("softhsm2.conf")),
        );
        file
    };
    let pem = a.tmp().join("ext-cert.pem");
    pem_of(&cert, &pem);
    assert_verifies(&a_ca, &pem);
    b(&["check"]);

    // A certificate that is not the token key's is refused, and no station is created.
    let c_dir = a.tmp().join("c");
    copy_tree(
        &ca_token,
        &c_dir.join("tokens").join(ca_token.file_name().unwrap()),
    );
    let out = init_adopting(&c_dir, &a.path().join("ca/seal-maker.pem"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("existing CA"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!c_dir.join("station.toml").exists());
}
