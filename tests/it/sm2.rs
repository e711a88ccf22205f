//! Issue 18 item 3: SM2 in the station. `keystation demo --algorithm sm2` on the test token
//! (libkstoken.so, TASS's vendor codes): every order delivered; each unit certificate read off
//! its token with pkcs11-tool and checked by OpenSSL (with the default distinguishing ID and no
//! other, and refused with a flipped signature byte) and by gmssl, a second SM2 implementation
//! from another code base; the SM2 seals read off a token verify with `seal verify`, and their
//! signature with `openssl pkeyutl` over the bytes GM/T 0031 says are signed; the SM2 CA's CRL,
//! with a revocation and its reason, verifies with gmssl, and so do its OCSP answers (signed
//! SM2-with-SM3 by the delegated signer), which `openssl ocsp` reads as good and revoked.

use crate::delivery::all_files;
use crate::station::keystation_at;
use crate::support::{assert_success, keystation, run_ok, stdout_json};
use crate::testtoken::module_path;
use der::{Any, Decode, Encode};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use x509_parser::prelude::FromDer;

const SM2_WITH_SM3: &str = "1.2.156.10197.1.501";
const SM2_CURVE: &str = "1.2.156.10197.1.301";
const GMSSL_PYTHON: &str = "/opt/keystation/gmssl/bin/python";

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/setup.sh)")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pkcs11-tool` on the demo's test-token store, optionally logged in with `pin`.
pub fn tool(dir: &Path, args: &[&str], pin: Option<&str>) -> Output {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module")
        .arg(module_path())
        .args(args)
        .env("KSTOKEN_CONF", dir.join("kstoken.conf"));
    if let Some(p) = pin {
        c.args(["--login", "--pin", "env:KS_PIN"]).env("KS_PIN", p);
    }
    c.output()
        .expect("pkcs11-tool must be installed (scripts/setup.sh)")
}

/// `openssl verify` of the SM2 certificate `cert` under `ca`, with the distinguishing ID `distid`.
pub fn verify_cert(ca: &Path, cert: &Path, distid: &str) -> Output {
    openssl(&[
        "verify",
        "-vfyopt",
        &format!("distid:{distid}"),
        "-CAfile",
        s(ca),
        s(cert),
    ])
}

/// gmssl's verdict on the DER SM2 `signature` of `msg` by the SM2 key of the certificate
/// `signer_pem`.
fn gmssl_verifies(signer_pem: &Path, msg: &[u8], signature: &[u8]) -> bool {
    let der = openssl(&["x509", "-in", s(signer_pem), "-outform", "DER"]);
    assert_success(&der, "openssl x509 -outform DER");
    let (_, cert) = x509_parser::parse_x509_certificate(&der.stdout).unwrap();
    let point = cert.public_key().subject_public_key.data.to_vec();
    assert_eq!(point[0], 0x04);
    // The message (a seal's carries its picture) goes through stdin.
    let script = "import sys, gmssl.sm2 as s\n\
                  k, sig, msg = sys.argv[1], sys.argv[2], sys.stdin.buffer.read()\n\
                  ok = s.CryptSM2(private_key=None, public_key=k, asn1=True).verify_with_sm3(sig, msg)\n\
                  print('ok' if ok else 'bad')\n";
    let mut child = Command::new(GMSSL_PYTHON)
        .args([
            "-c",
            script,
            &hex::encode(&point[1..]),
            &hex::encode(signature),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{GMSSL_PYTHON}: {e} (run scripts/setup.sh)"));
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(msg).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "gmssl verify");
    String::from_utf8_lossy(&out.stdout).trim() == "ok"
}

/// The SM2 `signature` over `signed` by the key of the certificate `signer` (PEM):
/// `openssl pkeyutl` verifies it with the default distinguishing ID and not with another, and
/// gmssl accepts it. Its files go to `tmp`, named after `what`.
#[track_caller]
fn sm2_signature_verifies(tmp: &Path, what: &str, signer: &Path, signed: &[u8], signature: &[u8]) {
    let key = tmp.join(format!("{what}-signer-key.pem"));
    let out = openssl(&[
        "x509",
        "-in",
        s(signer),
        "-pubkey",
        "-noout",
        "-out",
        s(&key),
    ]);
    assert_success(&out, &format!("openssl x509 -pubkey ({what})"));
    let (msg, sig) = (
        tmp.join(format!("{what}.tbs")),
        tmp.join(format!("{what}.sig")),
    );
    std::fs::write(&msg, signed).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let pkeyutl = |distid: &str| {
        openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            s(&key),
            "-rawin",
            "-digest",
            "sm3",
            "-in",
            s(&msg),
            "-sigfile",
            s(&sig),
            "-pkeyopt",
            &format!("distid:{distid}"),
        ])
    };
    let verified = pkeyutl("1234567812345678");
    assert!(verified.status.success(), "{what}: {verified:?}");
    assert!(!pkeyutl("1234567812345679").status.success(), "{what}");
    assert!(
        gmssl_verifies(signer, signed, signature),
        "gmssl rejects the {what}"
    );
}

/// gmssl refuses `signature` over `signed` with one byte flipped.
#[track_caller]
fn gmssl_refuses_flipped(signer: &Path, signed: &[u8], signature: &[u8], what: &str) {
    let mut flipped = signature.to_vec();
    let at = flipped.len() - 3;
    flipped[at] ^= 0x01;
    assert!(
        !gmssl_verifies(signer, signed, &flipped),
        "gmssl accepts a flipped {what}"
    );
}

/// The certificate chosen by `selector` (`["--label", LABEL]`, `["--id", HEX]`) on token
/// `token` of the demo's test-token store, read by pkcs11-tool into `der` and converted by
/// openssl to PEM beside it: the PEM's path.
#[track_caller]
pub fn certificate_off_token(dir: &Path, token: &str, selector: [&str; 2], der: &Path) -> PathBuf {
    let [by, chosen] = selector;
    let args = ["--token-label", token, "--read-object", "--type", "cert"];
    let read = tool(
        dir,
        &[&args[..], &[by, chosen, "--output-file", s(der)]].concat(),
        None,
    );
    assert_success(&read, &format!("pkcs11-tool --read-object {by} {chosen}"));
    let pem = der.with_extension("pem");
    let conv = openssl(&["x509", "-inform", "DER", "-in", s(der), "-out", s(&pem)]);
    assert_success(&conv, "openssl x509");
    pem
}

/// `keystation demo --algorithm sm2 --dir DIR`, which must succeed: its output.
pub fn sm2_demo(dir: &Path) -> Output {
    let out = keystation()
        .args(["demo", "--algorithm", "sm2", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert_success(&out, "keystation demo --algorithm sm2");
    out
}

/// The signed part and the signature of a DER certificate.
fn tbs_and_signature(cert_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    (
        cert.tbs_certificate.as_ref().to_vec(),
        cert.signature_value.data.to_vec(),
    )
}

/// The PIN of `order` as its SMS carried it (`...密码:XXXX，...`).
fn sms_pin(dir: &Path, order: &str) -> String {
    for f in all_files(&dir.join("simulated-sms-gateway")) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        if v["order_no"] == order {
            let text = v["text"].as_str().unwrap();
            let after = text.split("密码:").nth(1).unwrap();
            return after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
        }
    }
    panic!("no SMS for {order}");
}

#[test]
fn the_sm2_demo_delivers_sm2_certificates_and_seals_that_openssl_and_gmssl_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = sm2_demo(&dir);
    crate::support::map_os_user_to_desk(&dir.join("station.toml"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("demo: CRL 1 published at"), "{said}");
    let orders = crate::demo::delivered_orders(&dir);
    let cfg = std::fs::read_to_string(dir.join("station.toml")).unwrap();
    assert!(cfg.contains("libkstoken.so"), "{cfg}");
    // The station's own check reads the SM2 keys back and finds them as provisioned.
    run_ok(&mut keystation_at(&dir, &["check"]));

    let ca = dir.join("ca/ca.pem");
    let ca_text = openssl(&["x509", "-in", s(&ca), "-noout", "-text"]);
    assert!(
        String::from_utf8_lossy(&ca_text.stdout).contains("SM2-with-SM3"),
        "{ca_text:?}"
    );
    for order in &orders {
        let no = order["order_no"].as_str().unwrap();
        // The unit certificate, read off the token by pkcs11-tool.
        let der_path = tmp.path().join(format!("{no}.der"));
        let pem = certificate_off_token(&dir, no, ["--label", no], &der_path);
        let ok = verify_cert(&ca, &pem, "1234567812345678");
        assert!(ok.status.success(), "{no}: {ok:?}");
        assert!(!verify_cert(&ca, &pem, "1234567812345679").status.success());

        let mut flipped = std::fs::read(&der_path).unwrap();
        let at = flipped.len() - 3;
        flipped[at] ^= 0x01;
        let bad_der = tmp.path().join(format!("{no}-flipped.der"));
        std::fs::write(&bad_der, &flipped).unwrap();
        let bad_pem = tmp.path().join(format!("{no}-flipped.pem"));
        let conv = openssl(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            s(&bad_der),
            "-out",
            s(&bad_pem),
        ]);
        assert_success(&conv, "openssl x509 (flipped)");
        let rejected = verify_cert(&ca, &bad_pem, "1234567812345678");
        assert!(
            !rejected.status.success(),
            "{no}: a flipped signature verified"
        );

        let dump = openssl(&["asn1parse", "-inform", "DER", "-in", s(&der_path)]);
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("SM2-with-SM3"), "{dump}");
        assert!(dump.contains(":SM2") || dump.contains(SM2_CURVE), "{dump}");
        let cert_der = std::fs::read(&der_path).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            SM2_WITH_SM3
        );

        // gmssl, another code base, accepts the same signature and refuses the flipped one.
        let (tbs, sig) = tbs_and_signature(&std::fs::read(&der_path).unwrap());
        assert!(gmssl_verifies(&ca, &tbs, &sig), "{no}: gmssl rejects");
        let (tbs, sig) = tbs_and_signature(&flipped);
        assert!(
            !gmssl_verifies(&ca, &tbs, &sig),
            "{no}: gmssl accepts a flipped one"
        );
    }

    // SM2 seals, read off KS-DEMO-0001 (two seals) with the PIN its SMS carried.
    let pin = sms_pin(&dir, "KS-DEMO-0001");
    let mut seals = Vec::new();
    for label in ["seal:company", "seal:legal_rep"] {
        let path: PathBuf = tmp.path().join(format!("{}.der", label.replace(':', "-")));
        let read = tool(
            &dir,
            &[
                "--token-label",
                "KS-DEMO-0001",
                "--read-object",
                "--type",
                "data",
                "--label",
                label,
                "--output-file",
                s(&path),
            ],
            Some(&pin),
        );
        assert_success(&read, &format!("pkcs11-tool --read-object {label}"));
        seals.push(path);
    }
    let maker = dir.join("ca/seal-maker.pem");
    for seal in &seals {
        let verdict = run_ok(&mut keystation_at(
            &dir,
            &["--json", "seal", "verify", s(seal), "--ca", s(&ca)],
        ));
        let verdict = stdout_json(&verdict);
        assert!(verdict.to_string().contains(SM2_WITH_SM3), "{verdict}");

        // GM/T 0031: the maker signs SEQUENCE { eSealInfo, cert, signAlgID }, the SESeal
        // without its signedValue. Rebuilt here from the seal's DER, not by the station.
        let parts = Vec::<Any>::from_der(&std::fs::read(seal).unwrap()).unwrap();
        assert_eq!(parts.len(), 4, "SESeal has four fields");
        let alg: const_oid::ObjectIdentifier =
            const_oid::ObjectIdentifier::from_der(&parts[2].to_der().unwrap()).unwrap();
        assert_eq!(alg.to_string(), SM2_WITH_SM3, "signAlgID");
        let signed = parts[..3].to_vec().to_der().unwrap();
        let signature = der::asn1::BitString::from_der(&parts[3].to_der().unwrap())
            .unwrap()
            .raw_bytes()
            .to_vec();
        sm2_signature_verifies(tmp.path(), "seal", &maker, &signed, &signature);
    }

    // The CRL of an SM2 CA: signed with SM2-with-SM3 on the test token, number 2 from `ca crl`,
    // 3 after a revocation, which it lists with its reason. gmssl checks the signature (OpenSSL's
    // `crl -verify` sets no SM2 distinguishing ID for a CRL).
    let crl_file = dir.join("crl/unit-ca.crl");
    let issued = stdout_json(&run_ok(&mut keystation_at(&dir, &["--json", "ca", "crl"])));
    assert_eq!(issued["number"], 2, "{issued}");
    let requested = run_ok(&mut keystation_at(
        &dir,
        &[
            "order",
            "revoke",
            "KS-DEMO-0002",
            "--reason",
            "keyCompromise",
            "--operator",
            "alice",
        ],
    ));
    let id = crate::support::request_id(&String::from_utf8_lossy(&requested.stdout));
    run_ok(&mut keystation_at(
        &dir,
        &crate::support::approve_revoke_args(&id),
    ));
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(&crl_file),
        "-text",
        "-noout",
    ]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("SM2-with-SM3") && text.contains("Key Compromise"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 CRL Number: \n                3\n"),
        "{text}"
    );
    let der = std::fs::read(&crl_file).unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let (tbs, sig) = (
        crl.tbs_cert_list.as_ref().to_vec(),
        crl.signature_value.data.to_vec(),
    );
    assert!(gmssl_verifies(&ca, &tbs, &sig), "gmssl rejects the CRL");
    gmssl_refuses_flipped(&ca, &tbs, &sig, "CRL");

    sm2_ocsp_answers(&dir, tmp.path());
    sm2_audit_anchors(&dir);
}

/// The SM2 installation's audit anchors: its anchor key on record is SM2 (`station.initialized`),
/// an SM2 key pair labelled `keystation:audit-anchor` on the CA token (pkcs11-tool); every
/// command anchored and `audit verify` checks their SM2-with-SM3 signatures: one flipped byte in
/// a stored anchor's signature is named.
fn sm2_audit_anchors(dir: &Path) {
    let records = stdout_json(&run_ok(&mut keystation_at(
        dir,
        &["--json", "audit", "show"],
    )));
    let init = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "station.initialized")
        .expect("station.initialized");
    let details: serde_json::Value =
        serde_json::from_str(init["details"].as_str().unwrap()).unwrap();
    let spki = details["audit_anchor_spki"].as_str().unwrap().to_string();
    // id-ecPublicKey on sm2p256v1 (OID 1.2.156.10197.1.301).
    assert!(spki.contains("06082a811ccf5501822d"), "{spki}");

    let cfg = std::fs::read_to_string(dir.join("station.toml")).unwrap();
    let ca_label = cfg
        .lines()
        .skip_while(|l| l.trim() != "[ca]")
        .find_map(|l| l.trim().strip_prefix("token_label = "))
        .map(|v| v.split('"').nth(1).unwrap().to_string())
        .expect("[ca] token_label");
    let listed = tool(dir, &["--token-label", &ca_label, "--list-objects"], None);
    assert_success(&listed, "pkcs11-tool --list-objects (CA token)");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("keystation:audit-anchor"), "{listed}");

    let verdict = stdout_json(&run_ok(&mut keystation_at(
        dir,
        &["--json", "audit", "verify"],
    )));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert!(verdict["anchors"].as_i64().unwrap() >= 3, "{verdict}");

    // One byte of the first anchor's signature flipped (its last hex digit), as someone with
    // the database file could: the signature no longer verifies under the SM2 key on record.
    let mut db = crate::audit::Attacker::at(&dir.join("station.toml"));
    db.exec(
        "UPDATE audit_anchors SET signature = substr(signature, 1, length(signature) - 1) || \
         CASE substr(signature, -1) WHEN '0' THEN '1' ELSE '0' END \
         WHERE seq = (SELECT MIN(seq) FROM audit_anchors)",
    );
    let out = keystation_at(dir, &["--json", "audit", "verify"])
        .output()
        .unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["code"], "E-AUDIT-BROKEN", "{verdict}");
    assert!(
        verdict["message"]
            .as_str()
            .unwrap()
            .contains("has an invalid signature"),
        "{verdict}"
    );
}

/// The SM2 CA's OCSP answers from `keystation serve`: `openssl ocsp` reads KS-DEMO-0001 as good
/// and KS-DEMO-0002 as revoked (keyCompromise); the answer names SM2-with-SM3, and its signature
/// over tbsResponseData verifies with `openssl pkeyutl` (default distinguishing ID, not another)
/// and gmssl under the delegated signer's key, whose certificate OpenSSL checks against the CA.
fn sm2_ocsp_answers(dir: &Path, tmp: &Path) {
    let ca = dir.join("ca/ca.pem");
    let signer = dir.join("ca/ocsp-signer.pem");
    let ok = verify_cert(&ca, &signer, "1234567812345678");
    assert!(ok.status.success(), "OCSP signer certificate: {ok:?}");
    let serve = crate::ocsp::Serve::start(&dir.join("station.toml"));
    let ask = |no: &str| {
        let respout = tmp.join(format!("{no}.ocsp"));
        let out = openssl(&[
            "ocsp",
            "-issuer",
            s(&ca),
            "-cert",
            s(&tmp.join(format!("{no}.pem"))),
            "-url",
            &serve.url,
            "-noverify",
            "-respout",
            s(&respout),
        ]);
        assert_success(&out, &format!("openssl ocsp {no}"));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            std::fs::read(&respout).unwrap(),
        )
    };
    let (good, _) = ask("KS-DEMO-0001");
    assert!(good.contains(": good"), "{good}");
    let (revoked, der) = ask("KS-DEMO-0002");
    assert!(
        revoked.contains(": revoked") && revoked.contains("keyCompromise"),
        "{revoked}"
    );
    drop(serve);

    // OCSPResponse { status, [0] ResponseBytes { id-pkix-ocsp-basic, OCTET STRING
    // BasicOCSPResponse { tbsResponseData, signatureAlgorithm, signature, [0] certs } } }
    let top = Vec::<Any>::from_der(&der).unwrap();
    let bytes = Vec::<Any>::from_der(top[1].value()).unwrap();
    let basic = der::asn1::OctetString::from_der(&bytes[1].to_der().unwrap()).unwrap();
    let basic = Vec::<Any>::from_der(basic.as_bytes()).unwrap();
    let tbs = basic[0].to_der().unwrap();
    let alg: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::from_der(basic[1].value()).unwrap();
    assert_eq!(alg.to_string(), SM2_WITH_SM3, "signatureAlgorithm");
    assert_eq!(basic[1].value().len(), 10, "SM2-with-SM3 has no parameters");
    let signature = der::asn1::BitString::from_der(&basic[2].to_der().unwrap())
        .unwrap()
        .raw_bytes()
        .to_vec();
    sm2_signature_verifies(tmp, "ocsp", &signer, &tbs, &signature);
    gmssl_refuses_flipped(&signer, &tbs, &signature, "OCSP answer");
}
