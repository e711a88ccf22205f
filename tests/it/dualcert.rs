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
