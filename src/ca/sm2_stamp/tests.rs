#![allow(clippy::unwrap_used)]
//! SM2 certificates and requests from the one builder, signed by a software SM2 key standing for
//! a token, checked by x509-parser (structure), by this crate's SM2 verification and by OpenSSL.

use super::super::csr::{signed_request, verify_csr};
use super::super::issuance::self_signed_ca;
use super::super::profile::self_signed_ca_params;
use super::super::testkit::{
    HIGH_BIT_SERIAL, URLS, beijing, ca_profile, issue_sample, openssl, openssl_ok, p256, parse,
    sample_order, write_pem,
};
use crate::domain::KeyAlgorithm;
use crate::x509::verify_signed_by;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use sm2::dsa::signature::Signer;

/// A software SM2 key behind rcgen's `SigningKey`, as the token signer is: DER signatures with
/// the default distinguishing ID, the P-256 placeholder as algorithm.
struct SoftSm2 {
    key: sm2::dsa::SigningKey,
    point: Vec<u8>,
}

impl SoftSm2 {
    fn new(seed: u8) -> SoftSm2 {
        let key =
            sm2::dsa::SigningKey::from_slice(crate::sm2::DEFAULT_DISTID, &[seed; 32]).unwrap();
        let point = key.verifying_key().to_sec1_bytes().to_vec();
        SoftSm2 { key, point }
    }

    fn spki(&self) -> Vec<u8> {
        crate::sm2::spki_der(&self.point).unwrap()
    }
}

impl PublicKeyData for SoftSm2 {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for SoftSm2 {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let sig: sm2::dsa::Signature = self.key.sign(msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

fn sm2_ca(key: &SoftSm2) -> Vec<u8> {
    let now = beijing(2026, 3, 1, 10, 0, 0);
    let params = self_signed_ca_params(&ca_profile(), now, [0x42; 16]).unwrap();
    self_signed_ca(&params, key, &key.spki()).unwrap()
}

const SM2_WITH_SM3: &str = "1.2.156.10197.1.501";

/// A signed structure names its algorithm twice, outside and inside what is signed: both say
/// SM2-with-SM3.
fn assert_signed_with_sm2_with_sm3(
    outer: &x509_parser::x509::AlgorithmIdentifier<'_>,
    inner: &x509_parser::x509::AlgorithmIdentifier<'_>,
) {
    assert_eq!(outer.algorithm.to_id_string(), SM2_WITH_SM3);
    assert_eq!(inner.algorithm.to_id_string(), SM2_WITH_SM3);
}

#[test]
fn an_sm2_ca_signs_itself_with_sm2_with_sm3_and_an_sm2_public_key() {
    let key = SoftSm2::new(7);
    let der = sm2_ca(&key);
    let ca = parse(&der);
    assert_signed_with_sm2_with_sm3(&ca.signature_algorithm, &ca.tbs_certificate.signature);
    assert!(ca.signature_algorithm.parameters.is_none());
    assert_eq!(ca.public_key().raw, key.spki().as_slice());
    assert!(ca.is_ca());
    verify_signed_by(&ca, ca.public_key()).unwrap();
}

#[test]
fn an_sm2_unit_certificate_carries_the_p256_profile_and_openssl_verifies_it() {
    let ca_key = SoftSm2::new(7);
    let ca_der = sm2_ca(&ca_key);
    let company = SoftSm2::new(9);
    let csr = signed_request("Mallory", &company, &company.spki()).unwrap();
    let info = verify_csr(&csr).unwrap();
    assert_eq!(info.key, KeyAlgorithm::Sm2);
    let now = beijing(2026, 3, 2, 9, 30, 0);
    let cert = issue_sample(&info.spki_der, &ca_der, &ca_key, now);

    // The same order issued by a P-256 CA for a P-256 key: the same extensions in the same
    // order, the same subject and validity.
    let p_ca_key = p256();
    let p_ca = super::super::testkit::make_ca(&p_ca_key, now);
    let p_company = p256();
    let p_cert = issue_sample(&p_company.subject_public_key_info(), &p_ca, &p_ca_key, now);
    let (sm2_cert, p256_cert) = (parse(&cert), parse(&p_cert));
    let oids = |c: &x509_parser::certificate::X509Certificate<'_>| {
        c.extensions()
            .iter()
            .map(|e| (e.oid.to_id_string(), e.critical))
            .collect::<Vec<_>>()
    };
    assert_eq!(oids(&sm2_cert), oids(&p256_cert));
    assert!(
        oids(&sm2_cert)
            .iter()
            .any(|(o, _)| o == "1.2.156.10260.4.1.4")
    );
    assert_eq!(sm2_cert.subject().as_raw(), p256_cert.subject().as_raw());
    assert_eq!(sm2_cert.validity(), p256_cert.validity());
    assert_eq!(
        sm2_cert.signature_algorithm.algorithm.to_id_string(),
        SM2_WITH_SM3
    );
    assert_eq!(sm2_cert.public_key().raw, company.spki().as_slice());

    // OpenSSL, with the default distinguishing ID, as the independent verifier.
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
    let cert_pem = write_pem(dir.path(), "cert", "x509", &cert);
    let (ca_s, cert_s) = (ca_pem.to_str().unwrap(), cert_pem.to_str().unwrap());
    let at = (now + time::Duration::hours(1))
        .unix_timestamp()
        .to_string();
    let verify = |distid: &str, cert: &str| {
        openssl(&[
            "verify", "-attime", &at, "-vfyopt", distid, "-CAfile", ca_s, cert,
        ])
    };
    let (ok, out, err) = verify("distid:1234567812345678", cert_s);
    assert!(ok, "{out}{err}");
    let (ok, _, _) = verify("distid:1234567812345679", cert_s);
    assert!(!ok, "another distinguishing ID must not verify");
    let mut flipped = cert.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 0x01;
    let bad_pem = write_pem(dir.path(), "bad", "x509", &flipped);
    let (ok, _, _) = verify("distid:1234567812345678", bad_pem.to_str().unwrap());
    assert!(!ok, "a flipped signature byte must not verify");
    let dump = openssl_ok(&["asn1parse", "-in", cert_s]);
    assert!(
        dump.contains("1.2.156.10197.1.501") || dump.contains("SM2-with-SM3"),
        "{dump}"
    );
    assert!(
        dump.contains("sm2") || dump.contains("1.2.156.10197.1.301"),
        "{dump}"
    );
}

#[test]
fn an_sm2_request_whose_signature_was_altered_is_refused() {
    let company = SoftSm2::new(9);
    let mut csr = signed_request("A", &company, &company.spki()).unwrap();
    let last = csr.len() - 2;
    csr[last] ^= 0x01;
    assert!(matches!(
        verify_csr(&csr),
        Err(crate::ca::CaError::CsrSignature(_))
    ));
}

#[test]
fn an_sm2_crl_is_signed_with_sm2_with_sm3_and_openssl_checks_its_signature() {
    use super::super::crl::{RevocationReason, RevokedEntry, build_crl};
    use x509_parser::prelude::FromDer;
    let key = SoftSm2::new(9);
    let ca_der = sm2_ca(&key);
    let this = time::macros::datetime!(2026-03-02 00:00 UTC);
    let revoked = [RevokedEntry {
        serial: HIGH_BIT_SERIAL.to_vec(),
        revoked_at: time::macros::datetime!(2026-03-01 12:00 UTC),
        reason: RevocationReason::KeyCompromise,
    }];
    let der = build_crl(
        &ca_der,
        &key,
        &revoked,
        5,
        this,
        this + time::Duration::days(1),
    )
    .unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    assert_signed_with_sm2_with_sm3(&crl.signature_algorithm, &crl.tbs_cert_list.signature);
    // A wrong key is refused before signing.
    let other = SoftSm2::new(10);
    assert!(
        build_crl(
            &ca_der,
            &other,
            &revoked,
            5,
            this,
            this + time::Duration::days(1)
        )
        .is_err()
    );

    // OpenSSL reads it; its `crl -verify` sets no SM2 distinguishing ID for a CRL (as for a
    // root's self-signature, OpenSSL issues 23471 and 32744), so the signature is checked with
    // `pkeyutl` over the TBSCertList, with the default ID and refused with another.
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
    let crl_pem = write_pem(dir.path(), "crl", "crl", &der);
    let text = openssl_ok(&["crl", "-text", "-noout", "-in", crl_pem.to_str().unwrap()]);
    assert!(
        text.contains("SM2-with-SM3") && text.contains("Key Compromise"),
        "{text}"
    );
    let key_pem = dir.path().join("ca-key.pem");
    openssl_ok(&[
        "x509",
        "-in",
        ca_pem.to_str().unwrap(),
        "-pubkey",
        "-noout",
        "-out",
        key_pem.to_str().unwrap(),
    ]);
    let (tbs, sig) = (dir.path().join("crl.tbs"), dir.path().join("crl.sig"));
    std::fs::write(&tbs, crl.tbs_cert_list.as_ref()).unwrap();
    std::fs::write(&sig, &crl.signature_value.data).unwrap();
    let verify = |distid: &str| {
        openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            key_pem.to_str().unwrap(),
            "-rawin",
            "-digest",
            "sm3",
            "-in",
            tbs.to_str().unwrap(),
            "-sigfile",
            sig.to_str().unwrap(),
            "-pkeyopt",
            &format!("distid:{distid}"),
        ])
        .0
    };
    assert!(verify("1234567812345678"));
    assert!(!verify("1234567812345679"));
}

#[test]
fn an_sm2_encryption_certificate_has_the_signing_ones_subject_and_encipherment_key_usage() {
    use super::super::issuance::issue_encryption_certificate;
    use super::super::sm2_envelope::EncryptionKeyPair;
    let ca_key = SoftSm2::new(7);
    let ca_der = sm2_ca(&ca_key);
    let now = beijing(2026, 3, 2, 9, 30, 0);
    let order = sample_order();
    let signing = SoftSm2::new(9);
    let sign_cert = issue_sample(&signing.spki(), &ca_der, &ca_key, now);
    let enc = EncryptionKeyPair::generate(&crate::random::SeededRandom::new(5)).unwrap();
    let enc_spki = crate::sm2::spki_der(enc.public_point()).unwrap();
    let mut serial = HIGH_BIT_SERIAL;
    serial[15] ^= 1;
    let enc_cert =
        issue_encryption_certificate(&order, &enc_spki, &ca_der, &ca_key, &serial, now, URLS)
            .unwrap();
    let (s, e) = (parse(&sign_cert), parse(&enc_cert));
    assert_eq!(s.subject().as_raw(), e.subject().as_raw());
    assert_eq!(e.public_key().raw, enc_spki.as_slice());
    assert_eq!(e.signature_algorithm.algorithm.to_id_string(), SM2_WITH_SM3);
    let ku = e.key_usage().unwrap().unwrap().value;
    assert!(ku.key_encipherment() && ku.data_encipherment());
    assert!(!ku.digital_signature() && !ku.non_repudiation());
    assert!(e.extended_key_usage().unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
    let enc_pem = write_pem(dir.path(), "enc", "x509", &enc_cert);
    let at = (now + time::Duration::hours(1))
        .unix_timestamp()
        .to_string();
    let (ok, out, err) = openssl(&[
        "verify",
        "-attime",
        &at,
        "-vfyopt",
        "distid:1234567812345678",
        "-CAfile",
        ca_pem.to_str().unwrap(),
        enc_pem.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let text = openssl_ok(&["x509", "-noout", "-text", "-in", enc_pem.to_str().unwrap()]);
    assert!(
        text.contains("Key Encipherment, Data Encipherment"),
        "{text}"
    );
    assert!(!text.contains("Digital Signature"), "{text}");
}
