//! The SM2 dual certificate (双证书) on the test token (`tokens/kstoken`): the encryption key
//! pair made by the station's key management, sent to the token as an `SM2EnvelopedKey`
//! encrypted to its SIGNING key, imported with the module's unwrap mechanism (vendor table), and
//! then decrypting ON the token what OpenSSL encrypted to it.
//!
//! In-process use of the module runs in a child process with its own configuration, as in
//! `testtoken`.

use crate::testtoken::{SO_PIN, TestToken, USER_PIN, child, module_path, openssl, sm2_spki_pem};
use keystation::ca::sm2_envelope::EncryptionKeyPair;
use keystation::config::KeyAlgorithm;
use keystation::domain::{Pin, SoPin};
use keystation::random::OsRandom;
use keystation::token::Pkcs11Module;
use std::path::Path;
use zeroize::Zeroizing;

const ENC_LABEL: &str = "company encryption";

/// Child side: a token with an SM2 signing key; the encryption key pair enveloped to it,
/// imported, and used to decrypt OpenSSL's ciphertext. Leaves the envelope in `dir`.
fn import_and_decrypt_in_child(dir: &Path) {
    let pin = Pin::from_secret(Zeroizing::new(USER_PIN.to_string()));
    let so = SoPin::from_secret(Zeroizing::new(SO_PIN.to_string()));
    let module = Pkcs11Module::load(Some(&module_path())).unwrap();
    let mut t = module.first_blank().unwrap().expect("a blank slot");
    t.init_token(&so, "DUAL").unwrap();
    t.login_so(&so).unwrap().init_user_pin(&pin).unwrap();
    t.refresh().unwrap();
    let s = t.login_user(&pin).unwrap();
    let signing = s
        .generate_key_pair(KeyAlgorithm::Sm2, b"sig", "company")
        .unwrap();

    let enc = EncryptionKeyPair::generate(&OsRandom).unwrap();
    let envelope = enc.envelope_to(&signing.public_raw, &OsRandom).unwrap();
    std::fs::write(dir.join("envelope.der"), &envelope).unwrap();

    // A tampered envelope is refused by the token and leaves no key behind.
    let mut tampered = envelope.clone();
    let n = tampered.len() - 1;
    tampered[n] ^= 0x01;
    assert!(
        s.import_sm2_envelope(b"sig", &tampered, b"enc", ENC_LABEL)
            .is_err()
    );
    assert!(s.find_private_key(b"enc").unwrap().is_none());
    // An envelope made for another signing key is refused too.
    let stranger = EncryptionKeyPair::generate(&OsRandom).unwrap();
    let misaddressed = enc.envelope_to(stranger.public_point(), &OsRandom).unwrap();
    assert!(
        s.import_sm2_envelope(b"sig", &misaddressed, b"enc", ENC_LABEL)
            .is_err()
    );

    let imported = s
        .import_sm2_envelope(b"sig", &envelope, b"enc", ENC_LABEL)
        .unwrap();
    assert_eq!(imported.public_raw, enc.public_point());
    let key = s.find_private_key(b"enc").unwrap().unwrap();
    let a = s.private_key_attributes(key).unwrap();
    assert!(
        a.token && a.private && a.sensitive && !a.extractable,
        "{a:?}"
    );
    assert!(!a.sign, "an encryption key does not sign: {a:?}");
    assert!(!a.local, "made by the station, not on the token: {a:?}");
    assert!(s.private_value_is_protected(key).unwrap());

    // OpenSSL encrypts to the encryption public key; the token decrypts.
    std::fs::write(dir.join("enc-pub.pem"), sm2_spki_pem(enc.public_point())).unwrap();
    let msg = "会话密钥 session key 0123456789".as_bytes();
    std::fs::write(dir.join("msg.bin"), msg).unwrap();
    let out = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        dir.join("enc-pub.pem").to_str().unwrap(),
        "-in",
        dir.join("msg.bin").to_str().unwrap(),
        "-out",
        dir.join("ct.bin").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let ct = std::fs::read(dir.join("ct.bin")).unwrap();
    assert_eq!(s.sm2_decrypt(b"enc", &ct).unwrap(), msg);
    // The signing key may not decrypt, and a ciphertext for another key does not decrypt.
    assert!(s.sm2_decrypt(b"sig", &ct).is_err());
    let mut bad = ct.clone();
    let n = bad.len() - 1;
    bad[n] ^= 0x01;
    assert!(s.sm2_decrypt(b"enc", &bad).is_err());
}

#[test]
fn an_enveloped_encryption_key_is_imported_on_the_token_and_decrypts_there() {
    if let Some(dir) = child() {
        return import_and_decrypt_in_child(&dir);
    }
    let tt = TestToken::new("");
    tt.run_child(
        "dualcert::an_enveloped_encryption_key_is_imported_on_the_token_and_decrypts_there",
    );
    // pkcs11-tool, the independent client, sees both key pairs.
    let objects = tt.ok(
        &["--token-label", "DUAL", "--login", "--list-objects"],
        Some(USER_PIN),
        None,
    );
    assert_eq!(
        objects.matches("Private Key Object").count(),
        2,
        "{objects}"
    );
    assert_eq!(objects.matches("Public Key Object").count(), 2, "{objects}");
    assert!(objects.contains(ENC_LABEL), "{objects}");
    // The envelope has the GB/T 35276 shape: SM4-ECB, an SM2Cipher, two BIT STRINGs.
    let dump = openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        tt.path("envelope.der").to_str().unwrap(),
    ]);
    assert!(dump.status.success(), "{dump:?}");
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("1.2.156.10197.1.104.1") || dump.to_lowercase().contains("sm4-ecb"),
        "{dump}"
    );
    assert_eq!(dump.matches("BIT STRING").count(), 2, "{dump}");
}

/// The SM2 demo's station switched to dual certificates provisions one more order: the token
/// holds the signing certificate and, beside it under its own CKA_ID, the encryption
/// certificate (keyEncipherment + dataEncipherment, verified by OpenSSL with the default ID);
/// the database holds the encryption key's escrow copy only sealed, and its public key is the
/// certificate's.
#[test]
fn an_sm2_station_with_dual_certificates_provisions_both_certificates_and_escrows_the_key() {
    use crate::station::{full_order, keystation_at};
    use crate::support::{assert_success, run_ok};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    crate::sm2::sm2_demo(&dir);
    let config = dir.join("station.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("[product]").unwrap();
    let line = text[at..].find("key_algorithm = \"sm2\"").unwrap() + at;
    let end = text[line..].find('\n').unwrap() + line;
    let text = format!("{}\ndual_certificate = true{}", &text[..end], &text[end..]);
    std::fs::write(&config, text).unwrap();
    crate::support::map_os_user_to_desk(&config);

    let no = "KS-DUAL-0001";
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let seals = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seals");
    for f in ["company.png", "legal_rep.jpg"] {
        std::fs::copy(seals.join(f), app.join(f)).unwrap();
    }
    let order = app.join("order.json");
    std::fs::write(&order, serde_json::to_vec(&full_order(no)).unwrap()).unwrap();
    run_ok(&mut keystation_at(
        &dir,
        &["order", "import", order.to_str().unwrap()],
    ));
    run_ok(&mut keystation_at(
        &dir,
        &["order", "approve", no, "--operator", "张伟"],
    ));
    // Killed once the encryption key is on the token, before anything of it committed ...
    let killed = keystation_at(&dir, &["provision", no])
        .env(
            "KEYSTATION_FAILPOINTS",
            "provision.dual_certificate.imported=abort",
        )
        .output()
        .unwrap();
    assert!(!killed.status.success(), "{killed:?}");
    // ... a re-run starts a new attempt (the token wiped, the first attempt's certificates
    // revoked as superseded) and finishes.
    run_ok(&mut keystation_at(&dir, &["provision", no]));

    // Two certificates on the token, the encryption one under the signing key's id + "-enc".
    let list = ["--token-label", no, "--list-objects", "--type", "cert"];
    let listed = crate::sm2::tool(&dir, &list, None);
    assert_success(&listed, "pkcs11-tool --list-objects");
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert_eq!(listed.matches("Certificate Object").count(), 2, "{listed}");
    let ids: Vec<String> = listed
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ID:"))
        .map(|id| id.trim().to_string())
        .collect();
    let enc_id = ids
        .iter()
        .find(|id| id.ends_with(&hex::encode("-enc")))
        .unwrap_or_else(|| panic!("no encryption certificate: {listed}"))
        .clone();
    let enc_der = tmp.path().join("enc.der");
    let enc_pem = crate::sm2::certificate_off_token(&dir, no, ["--id", &enc_id], &enc_der);
    let ca = dir.join("ca/ca.pem");
    let verified = crate::sm2::verify_cert(&ca, &enc_pem, "1234567812345678");
    assert_success(&verified, "openssl verify (encryption certificate)");
    let shown = openssl(&["x509", "-in", enc_pem.to_str().unwrap(), "-noout", "-text"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("Key Encipherment, Data Encipherment"),
        "{shown}"
    );
    assert!(shown.contains("SM2-with-SM3"), "{shown}");

    // The escrow copy: one row, sealed (KSP1 ‖ IV ‖ ciphertext ‖ tag), for the certificate's key.
    let enc_cert = std::fs::read(&enc_der).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&enc_cert).unwrap();
    let point = cert.public_key().subject_public_key.data.to_vec();
    let serial = hex::encode(cert.raw_serial());
    let rt = crate::support::runtime();
    let rows: Vec<(String, String, Vec<u8>)> = rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("station.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as("SELECT serial, public_point, sealed FROM escrowed_keys WHERE order_no = $1")
            .bind(no)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(
        rows.len(),
        1,
        "one escrowed key: the killed attempt's never committed"
    );
    let certs: Vec<(String, String)> = rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("station.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as("SELECT purpose, status FROM certificates WHERE order_no = $1")
            .bind(no)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    });
    let count = |p: &str, st: &str| certs.iter().filter(|c| c.0 == p && c.1 == st).count();
    assert_eq!(count("encryption", "revoked"), 1, "{certs:?}");
    assert_eq!(count("encryption", "on_token"), 1, "{certs:?}");
    assert_eq!(count("signing", "revoked"), 1, "{certs:?}");
    assert_eq!(count("signing", "on_token"), 1, "{certs:?}");
    assert_eq!(certs.len(), 4, "{certs:?}");
    let (row_serial, row_point, sealed) = &rows[0];
    assert_eq!(
        row_serial.trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    assert_eq!(row_point, &hex::encode(&point));
    assert!(sealed.starts_with(b"KSP1"), "sealed by the vault");
    assert_eq!(
        sealed.len(),
        4 + 12 + 32 + 16,
        "IV, the 32-byte key, the tag"
    );
    // The station's check still finds the order's token as provisioned.
    run_ok(&mut keystation_at(&dir, &["check"]));

    // OpenSSL encrypts to the encryption certificate's key; the child decrypts on the token.
    let enc_pub = tmp.path().join("enc-pub.pem");
    let key = openssl(&[
        "x509",
        "-in",
        enc_pem.to_str().unwrap(),
        "-pubkey",
        "-noout",
        "-out",
        enc_pub.to_str().unwrap(),
    ]);
    assert_success(&key, "openssl x509 -pubkey");
    std::fs::write(dir.join("dual-msg.bin"), MESSAGE).unwrap();
    let enc = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        enc_pub.to_str().unwrap(),
        "-in",
        dir.join("dual-msg.bin").to_str().unwrap(),
        "-out",
        dir.join("dual-ct.bin").to_str().unwrap(),
    ]);
    assert_success(&enc, "openssl pkeyutl -encrypt");
    crate::support::run_child_test(
        "dualcert::escrow_child",
        [
            ("SOFTHSM2_CONF", dir.join("softhsm2.conf").into_os_string()),
            ("KSTOKEN_CONF", dir.join("kstoken.conf").into_os_string()),
            (ESCROW_CHILD, dir.clone().into_os_string()),
        ],
    );
}

const ESCROW_CHILD: &str = "KS_DUAL_ESCROW_CHILD";
const MESSAGE: &[u8] = "会话密钥 for the dual certificate".as_bytes();

/// Child half of the station test (a no-op when run on its own): the escrowed key unsealed by
/// the vault is the certificate's key, its raw scalar appears nowhere in the database file
/// (orders, certificates, escrow, audit trail), and the token decrypts OpenSSL's ciphertext
/// with the imported key, logged in with the order's PIN.
#[test]
fn escrow_child() {
    use crate::station::{open_station, token_binding};
    use keystation::token::TokenSelector;
    let Some(dir) = std::env::var_os(ESCROW_CHILD).map(std::path::PathBuf::from) else {
        return;
    };
    let no = "KS-DUAL-0001";
    let (rt, station, hsm) = open_station(&dir);
    let (binding, serial) = token_binding(&rt, &station, no);
    let store = rt
        .block_on(keystation::store::Store::connect(
            &station.config().database_url(),
        ))
        .unwrap();
    let order = crate::support::order_no(no);
    let escrowed = rt.block_on(store.escrowed_keys(&order)).unwrap();
    let [e] = escrowed.as_slice() else {
        panic!("{escrowed:?}")
    };
    let stored = rt.block_on(store.sealed_pin(&order)).unwrap().unwrap();
    let (secret, pin) = rt.block_on(async {
        tokio::task::block_in_place(|| {
            let v = hsm.vault().unwrap();
            let aad = keystation::token::vault::escrow_aad(no, e.serial.as_str());
            let secret = v.unseal_key(&e.sealed, &aad).unwrap();
            // Bound to its certificate: another serial's AAD does not open it.
            let other = keystation::token::vault::escrow_aad(no, "01");
            assert!(v.unseal_key(&e.sealed, &other).is_err());
            let pin = v
                .unseal_pin(
                    &stored.sealed,
                    &keystation::token::vault::pin_aad(no, &serial),
                )
                .unwrap();
            (secret, pin)
        })
    });
    let pair = EncryptionKeyPair::from_escrow(&secret).unwrap();
    assert_eq!(hex::encode(pair.public_point()), e.public_point);
    let mut db = std::fs::read(dir.join("station.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("station.db-wal")) {
        db.extend(wal);
    }
    assert!(
        !db.windows(32).any(|w| w == &secret[..]),
        "raw scalar in the DB"
    );
    let hex_secret = hex::encode(&secret[..]);
    assert!(
        !String::from_utf8_lossy(&db)
            .to_lowercase()
            .contains(&hex_secret),
        "hex scalar in the DB"
    );

    let ct = std::fs::read(dir.join("dual-ct.bin")).unwrap();
    let key_id = hex::decode(binding.key_id.clone().unwrap()).unwrap();
    let enc_id = [key_id.as_slice(), b"-enc"].concat();
    rt.block_on(async {
        tokio::task::block_in_place(|| {
            let mut t = hsm
                .module()
                .find(&[TokenSelector::Serial(serial.parse().unwrap())])
                .unwrap();
            let s = t.login_user(&pin).unwrap();
            assert_eq!(s.sm2_decrypt(&enc_id, &ct).unwrap(), MESSAGE);
            assert!(
                s.sm2_decrypt(&key_id, &ct).is_err(),
                "the signing key does not decrypt"
            );
        })
    });
}
