#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ca::testkit::{csr_of, openssl_ok, p256, rsa};
use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384, PublicKeyData};

/// RSA keys longer than the 2048 bits the station generates are accepted too: they report the
/// station's RSA scheme and their real length.
#[test]
fn csr_is_verified_and_only_its_key_is_used() {
    for (key, algorithm, bits) in [
        (p256(), KeyAlgorithm::EcdsaP256, 256),
        (rsa(2048), KeyAlgorithm::Rsa2048, 2048),
        (rsa(3072), KeyAlgorithm::Rsa2048, 3072),
    ] {
        let info = verify_csr(&csr_of(&key)).unwrap();
        assert_eq!((info.key, info.key_bits), (algorithm, bits));
        assert_eq!(info.spki_der, key.subject_public_key_info());
    }
}

#[test]
fn csr_with_broken_signature_is_refused() {
    // P-256, then RSA.
    for key in [p256(), rsa(2048)] {
        let csr = csr_of(&key);
        // Change one letter of the CSR's subject: still well-formed, the signature no longer
        // fits.
        let at = csr.windows(7).position(|w| w == b"Mallory").unwrap();
        let mut tampered = csr.clone();
        tampered[at] = b'W';
        assert!(matches!(
            verify_csr(&tampered),
            Err(CaError::CsrSignature(_))
        ));
        // And the untampered one passes, so the refusal above is the signature's.
        assert!(verify_csr(&csr).is_ok());
    }
}

#[test]
fn csr_with_weak_or_foreign_keys_is_refused() {
    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let err = verify_csr(&csr_of(&p384)).unwrap_err();
    assert!(
        matches!(&err, CaError::UnsupportedKey { what: "CSR", reason } if reason.contains("curve")),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let gen_csr = |name: &str, args: &[&str]| {
        let out = dir.path().join(name);
        let key = dir.path().join(format!("{name}.key"));
        let mut all = vec![
            "req", "-new", "-nodes", "-subj", "/CN=weak", "-outform", "DER",
        ];
        all.extend_from_slice(args);
        all.extend([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
        ]);
        openssl_ok(&all);
        std::fs::read(out).unwrap()
    };
    let rsa1024 = gen_csr("rsa1024.csr", &["-newkey", "rsa:1024", "-sha256"]);
    let err = verify_csr(&rsa1024).unwrap_err();
    assert!(err.to_string().contains("RSA key of 1024 bits"), "{err}");

    // Right key, wrong digest: refused by algorithm, before any signature check.
    let p256_sha384 = gen_csr(
        "p256-sha384.csr",
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-sha384",
        ],
    );
    let err = verify_csr(&p256_sha384).unwrap_err();
    assert!(err.to_string().contains("only ecdsa-with-SHA256"), "{err}");
    let rsa_sha1 = gen_csr("rsa-sha1.csr", &["-newkey", "rsa:2048", "-sha1"]);
    let err = verify_csr(&rsa_sha1).unwrap_err();
    assert!(
        err.to_string().contains("only sha256WithRSAEncryption"),
        "{err}"
    );
    // openssl's own good CSR passes (an independent encoder).
    let good = gen_csr(
        "good.csr",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    assert_eq!(verify_csr(&good).unwrap().key, KeyAlgorithm::EcdsaP256);

    assert!(matches!(
        verify_csr(b"not a csr"),
        Err(CaError::CsrMalformed(_))
    ));
    let mut trailing = csr_of(&p256());
    trailing.push(0);
    assert!(matches!(
        verify_csr(&trailing),
        Err(CaError::CsrMalformed(_))
    ));
}
