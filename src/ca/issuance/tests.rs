#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ca::profile::{MIN_SERIAL_BYTES, maker_cert_params, self_signed_ca_params};
use crate::ca::testkit::{
    CRL_URL, HIGH_BIT_SERIAL, MislabelledToken, URLS, beijing, ca_profile as profile, issue_sample,
    make_ca, openssl_ok, openssl_verify, p256, parse, sample_order, write_pem,
};
use crate::ca::{CaError, profile::validity_end};
use crate::x509::checked_serial;
use rcgen::{KeyPair, PublicKeyData};
use time::macros::datetime;

#[test]
fn serials_are_positive_minimal_and_bounded() {
    let ok = |s: &[u8]| checked_serial("serial", s, MIN_SERIAL_BYTES).map_err(CaError::from);
    assert!(ok(&[0x01; 8]).is_ok());
    assert!(ok(&HIGH_BIT_SERIAL).is_ok());
    assert!(ok(&[0x7f; 20]).is_ok());
    for bad in [
        &[0x01u8; 7][..], // 56 bits
        &[0x00, 1, 2, 3, 4, 5, 6, 7, 8][..],
        &[0x80; 20][..], // 21 octets with the sign byte
        &[0x01; 21][..],
        &[][..],
    ] {
        assert!(
            matches!(
                ok(bad),
                Err(CaError::InvalidInput {
                    field: "serial",
                    ..
                })
            ),
            "{bad:02x?}"
        );
    }
    for random in [[0u8; 16], [0xff; 16], HIGH_BIT_SERIAL] {
        let s = serial_from_random(random);
        assert!(ok(&s).is_ok());
        assert!((0x40..0x80).contains(&s[0]));
        assert_eq!(s[1..], random[1..]);
    }

    // In a certificate: a serial without the top bit is written as is.
    let ca_key = p256();
    let now = beijing(2025, 5, 20, 12, 0, 0);
    let ca_der = make_ca(&ca_key, now);
    let spki = p256().subject_public_key_info();
    let serial = serial_from_random(HIGH_BIT_SERIAL);
    let der = issue_unit_certificate(&sample_order(), &spki, &ca_der, &ca_key, &serial, now, URLS)
        .unwrap();
    assert_eq!(parse(&der).raw_serial(), serial.as_slice());
    assert_eq!(cert_summary(&der).unwrap().serial_hex, hex::encode(serial));
    let err = issue_unit_certificate(
        &sample_order(),
        &spki,
        &ca_der,
        &ca_key,
        &[0x01; 7],
        now,
        URLS,
    )
    .unwrap_err();
    assert!(err.to_string().contains("serial"), "{err}");
}

#[test]
fn ca_key_not_matching_ca_certificate_is_detected() {
    let now = beijing(2025, 5, 20, 12, 0, 0);
    let ca_key = p256();
    let ca_der = make_ca(&ca_key, now);
    let other = p256();
    let spki = p256().subject_public_key_info();
    let order = sample_order();
    let serial = [0x33; 16];

    // A different key altogether: refused before the token is asked to sign.
    let err =
        issue_unit_certificate(&order, &spki, &ca_der, &other, &serial, now, URLS).unwrap_err();
    assert!(matches!(err, CaError::CaKeyMismatch { .. }), "{err}");

    // Right public key, wrong private key: caught by verifying the signature afterwards.
    let token = MislabelledToken {
        public: &ca_key,
        private: &other,
    };
    let err =
        issue_unit_certificate(&order, &spki, &ca_der, &token, &serial, now, URLS).unwrap_err();
    assert!(
        matches!(&err, CaError::CaKeyMismatch { what } if what.contains("does not verify")),
        "{err}"
    );
    // The seal maker path and the self-signed CA take the same care.
    let params = maker_cert_params("Station 1", "示例CA", now, 1, &serial, CRL_URL).unwrap();
    assert!(matches!(
        issue_seal_maker_cert(&params, &spki, &ca_der, &token),
        Err(CaError::CaKeyMismatch { .. })
    ));
    let ca_params = self_signed_ca_params(&profile(), now, [7; 16]).unwrap();
    assert!(matches!(
        self_signed_ca(&ca_params, &token, &token.subject_public_key_info()),
        Err(CaError::CaKeyMismatch { .. })
    ));
    // Control: the honest token issues.
    let honest = MislabelledToken {
        public: &ca_key,
        private: &ca_key,
    };
    assert!(issue_unit_certificate(&order, &spki, &ca_der, &honest, &serial, now, URLS).is_ok());
}

#[test]
fn ca_certificate_must_cover_the_issuance() {
    let ca_key = p256();
    let spki = p256().subject_public_key_info();
    let created = beijing(2025, 1, 1, 0, 0, 0);
    // A one-year CA cannot issue a three-year certificate a month later...
    let mut short = profile();
    short.validity_years = 1;
    let params = self_signed_ca_params(&short, created, [2; 16]).unwrap();
    let ca_der = self_signed_ca(&params, &ca_key, &ca_key.subject_public_key_info()).unwrap();
    let mut order = sample_order();
    order.product.years = 3;
    let now = created + time::Duration::days(30);
    let err =
        issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[3; 16], now, URLS).unwrap_err();
    assert!(
        matches!(&err, CaError::CaCertificate(m) if m.contains("renew")),
        "{err}"
    );
    // ... nor issue before it exists or after it expired.
    order.product.years = 1;
    for at in [
        created - time::Duration::days(1),
        created + time::Duration::days(800),
    ] {
        let err = issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[3; 16], at, URLS)
            .unwrap_err();
        assert!(
            matches!(&err, CaError::CaCertificate(m) if m.contains("not valid")),
            "{err}"
        );
    }
    // An end-entity certificate is not a CA.
    let ee =
        issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[3; 16], created, URLS).unwrap();
    let err =
        issue_unit_certificate(&order, &spki, &ee, &ca_key, &[4; 16], created, URLS).unwrap_err();
    assert!(
        matches!(&err, CaError::CaCertificate(m) if m.contains("not a CA")),
        "{err}"
    );
    assert!(matches!(
        issue_unit_certificate(&order, &spki, b"junk", &ca_key, &[4; 16], now, URLS),
        Err(CaError::CaCertificate(_))
    ));
    // Out-of-range instants are errors, never panics in the encoder.
    let ancient = datetime!(1900-01-01 0:00 UTC);
    assert!(self_signed_ca_params(&profile(), ancient, [1; 16]).is_err());
    assert!(validity_end(datetime!(9998-12-31 0:00 UTC), 3).is_err());
}

/// An existing CA made by openssl (the "CA certificate given in config" case), including
/// one whose subject rcgen could not reproduce as an issuer DN.
#[test]
fn external_openssl_ca() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, subject: &str| {
        let (key, cert) = (
            dir.path().join(format!("{name}.key")),
            dir.path().join(name),
        );
        openssl_ok(&[
            "req",
            "-x509",
            "-utf8",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-days",
            "3650",
            "-subj",
            subject,
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-outform",
            "DER",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        let pem = std::fs::read_to_string(key).unwrap();
        (
            KeyPair::from_pem(&pem).unwrap(),
            std::fs::read(cert).unwrap(),
        )
    };
    let (key, ca_der) = make("ext-ca", "/C=CN/O=外部认证中心/CN=External Issuing CA");
    // Issue an hour into the CA's life, read from the certificate, not from the clock.
    let now = parse(&ca_der).validity().not_before.to_datetime() + time::Duration::hours(1);
    let spki = p256().subject_public_key_info();
    let issue = |ca_der: &[u8], key: &KeyPair| {
        issue_unit_certificate(&sample_order(), &spki, ca_der, key, &[0x44; 16], now, URLS)
    };
    let der = issue(&ca_der, &key).unwrap();
    assert_eq!(
        parse(&der).issuer().as_raw(),
        parse(&ca_der).subject().as_raw()
    );
    let ca_pem = write_pem(dir.path(), "ext-ca", "x509", &ca_der);
    let pem = write_pem(dir.path(), "ext-cert", "x509", &der);
    let (ok, out, err) = openssl_verify(&ca_pem, &pem, now + time::Duration::minutes(1), &[]);
    assert!(ok, "{out}{err}");

    let (key, ca_der) = make("two-ou", "/C=CN/O=Org/OU=A/OU=B/CN=Two OU CA");
    let err = issue(&ca_der, &key).unwrap_err();
    assert!(
        matches!(&err, CaError::CaCertificate(m) if m.contains("repeats")),
        "{err}"
    );
}

#[test]
fn summary_reads_back_what_was_issued() {
    let now = beijing(2020, 11, 26, 13, 55, 21);
    let ca_key = p256();
    let ca_der = make_ca(&ca_key, now);
    let spki = p256().subject_public_key_info();
    let der = issue_sample(&spki, &ca_der, &ca_key, now);
    let s = cert_summary(&der).unwrap();
    assert_eq!(s.serial_hex, hex::encode(HIGH_BIT_SERIAL));
    assert_eq!(s.not_before, datetime!(2020-11-26 05:55:21 UTC));
    assert_eq!(s.not_after, datetime!(2021-11-26 15:59:59 UTC));
    assert_eq!(
        s.subject,
        "C=CN, ST=广东省, L=深圳市, O=深圳市示例科技有限公司, OU=投标部, \
         CN=深圳市示例科技有限公司, serialNumber=9144030071526726XG"
    );
    assert_eq!(
        s.issuer,
        "C=CN, O=北京示例数字认证有限公司, CN=示例单位证书 CA"
    );

    let dir = tempfile::tempdir().unwrap();
    let pem = write_pem(dir.path(), "cert", "x509", &der);
    let out = openssl_ok(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-serial",
        "-in",
        pem.to_str().unwrap(),
    ]);
    let fp = out
        .lines()
        .find_map(|l| l.strip_prefix("sha256 Fingerprint="))
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(s.sha256_fingerprint, fp);
    let serial = out.lines().find_map(|l| l.strip_prefix("serial=")).unwrap();
    assert_eq!(s.serial_hex, serial.to_lowercase());
    assert!(matches!(
        cert_summary(b"junk"),
        Err(CaError::CertificateMalformed(_))
    ));
}
