//! Unit tests of seal verification: seals built with software keys, then tampered with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::seal::{
    OID_ECDSA_WITH_SHA256, OID_SHA256_WITH_RSA, SealError, SealSigner, SealSpec, SealType,
    build_seal,
};
use const_oid::ObjectIdentifier;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SigningKey,
};
use std::io::Write;
use std::process::{Command, Stdio};
use time::macros::datetime;

const SEAL_START: OffsetDateTime = datetime!(2025-01-01 00:00:00 UTC);
const SEAL_END: OffsetDateTime = datetime!(2025-12-31 15:59:59 UTC);
const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

struct SoftSigner {
    key: KeyPair,
    cert: Vec<u8>,
    oid: ObjectIdentifier,
}

impl SealSigner for SoftSigner {
    fn maker_cert_der(&self) -> &[u8] {
        &self.cert
    }
    fn algorithm_oid(&self) -> ObjectIdentifier {
        self.oid
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.key
            .sign(data)
            .map_err(|e| SealError::Signer(e.to_string()))
    }
}

struct Pki {
    ca_der: Vec<u8>,
    company_der: Vec<u8>,
    signer: SoftSigner,
}

fn params(cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = from;
    p.not_after = to;
    p
}

fn ca() -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut p = params(
        "Test Seal CA",
        datetime!(2020-01-01 00:00:00 UTC),
        datetime!(2035-01-01 00:00:00 UTC),
    );
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    (cert.der().to_vec(), Issuer::new(p, key))
}

/// CA, seal maker (ECDSA P-256 or the given key), company cert valid 2024..2026.
fn pki_with_maker_key(maker_key: KeyPair, oid: ObjectIdentifier) -> Pki {
    let (ca_der, issuer) = ca();
    let maker = params(
        "Seal Maker",
        datetime!(2024-01-01 00:00:00 UTC),
        datetime!(2030-01-01 00:00:00 UTC),
    )
    .signed_by(&maker_key, &issuer)
    .unwrap();
    let company_key = KeyPair::generate().unwrap();
    let company = params(
        "北京示例科技有限公司",
        datetime!(2024-06-01 00:00:00 UTC),
        datetime!(2026-06-01 15:59:59 UTC),
    )
    .signed_by(&company_key, &issuer)
    .unwrap();
    Pki {
        ca_der,
        company_der: company.der().to_vec(),
        signer: SoftSigner {
            key: maker_key,
            cert: maker.der().to_vec(),
            oid,
        },
    }
}

fn new_pki() -> Pki {
    pki_with_maker_key(KeyPair::generate().unwrap(), OID_ECDSA_WITH_SHA256)
}

fn tiny_png() -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(4, 4, image::Rgba([200, 0, 0, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn spec(company_der: &[u8]) -> SealSpec {
    SealSpec {
        seal_type: SealType::Organisation,
        es_id: "11010800000012025".to_owned(),
        vid: "KEYSTATION".to_owned(),
        name: "北京示例科技有限公司".to_owned(),
        company_cert_der: company_der.to_vec(),
        create_date: datetime!(2024-12-20 08:00:00 UTC),
        valid_start: SEAL_START,
        valid_end: SEAL_END,
        picture_png: tiny_png(),
        width_mm: 40,
        height_mm: 40,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn built_seal_verifies_and_tampering_is_detected() {
    let pki = new_pki();
    let spec = spec(&pki.company_der);
    let der = build_seal(&spec, &pki.signer).unwrap();

    let report = verify_seal(&der, &pki.ca_der, Some(&pki.company_der), NOW);
    assert!(report.is_valid(), "{report:#?}");
    let names: Vec<_> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "structure",
            "maker_signature",
            "maker_certificate",
            "maker_validity",
            "seal_validity",
            "company_certificate",
            "token_certificate"
        ]
    );
    let seal = report.seal.as_ref().unwrap();
    assert_eq!(seal.e_seal_info.picture.data.as_bytes(), spec.picture_png);
    assert_eq!(seal.to_der().unwrap(), der);

    // One byte of the picture data.
    let mut tampered = der.clone();
    let at = find(&der, &spec.picture_png) + spec.picture_png.len() / 2;
    tampered[at] ^= 0x01;
    let r = verify_seal(&tampered, &pki.ca_der, None, NOW);
    assert!(!r.is_valid());
    assert_eq!(r.failed(), ["maker_signature"], "{r:#?}");

    // One byte of the signature (the last byte of the seal is the last byte of signedValue).
    let mut tampered = der.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let r = verify_seal(&tampered, &pki.ca_der, None, NOW);
    assert!(!r.is_valid());
    assert_eq!(r.failed(), ["maker_signature"], "{r:#?}");

    // One digit of validEnd: 20251231155959Z -> 20251231155958Z, still a valid date.
    let mut tampered = der.clone();
    let at = find(&der, b"20251231155959Z") + 13;
    tampered[at] = b'8';
    let r = verify_seal(&tampered, &pki.ca_der, None, NOW);
    assert!(!r.is_valid());
    assert_eq!(r.failed(), ["maker_signature"], "{r:#?}");
    assert!(r.check("structure").unwrap().ok);
}

#[test]
fn rsa_maker_key_is_supported() {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl must be installed");
    assert!(out.status.success());
    let key = KeyPair::from_pem(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let pki = pki_with_maker_key(key, OID_SHA256_WITH_RSA);
    let der = build_seal(&spec(&pki.company_der), &pki.signer).unwrap();
    let report = verify_seal(&der, &pki.ca_der, None, NOW);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(
        report.seal.unwrap().sign_alg_id,
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11")
    );
}

#[test]
fn garbage_yields_failed_structure_only() {
    for garbage in [
        &b""[..],
        b"\x30\x03\x02\x01",
        b"not a seal at all",
        &[0xff; 64],
    ] {
        let r = verify_seal(garbage, b"also garbage", None, NOW);
        assert!(!r.is_valid());
        assert_eq!(r.checks.len(), 1);
        assert_eq!(r.checks[0].name, "structure");
        assert!(!r.checks[0].ok);
        assert!(r.seal.is_none());
    }
    // An empty report is not valid either.
    let empty = SealReport {
        seal: None,
        checks: vec![],
    };
    assert!(!empty.is_valid());
}

#[test]
fn time_ca_and_token_failures_name_their_check() {
    let pki = new_pki();
    let der = build_seal(&spec(&pki.company_der), &pki.signer).unwrap();

    let expired = verify_seal(&der, &pki.ca_der, None, datetime!(2026-01-01 00:00:00 UTC));
    assert_eq!(expired.failed(), ["seal_validity"]);
    let early = verify_seal(&der, &pki.ca_der, None, datetime!(2024-12-31 23:59:59 UTC));
    assert_eq!(early.failed(), ["seal_validity"]);

    let other = new_pki();
    let wrong_ca = verify_seal(&der, &other.ca_der, None, NOW);
    assert_eq!(
        wrong_ca.failed(),
        ["maker_certificate", "company_certificate"]
    );

    let wrong_token = verify_seal(&der, &pki.ca_der, Some(&other.company_der), NOW);
    assert_eq!(wrong_token.failed(), ["token_certificate"]);

    // A CA certificate without cA=true: the maker's own cert used as "CA".
    let not_ca = verify_seal(&der, &pki.signer.cert, None, NOW);
    assert!(not_ca.failed().contains(&"maker_certificate"));

    // Seal validity beyond the company certificate's notAfter (2026-06-01).
    let mut long = spec(&pki.company_der);
    long.valid_end = datetime!(2027-01-01 00:00:00 UTC);
    let der = build_seal(&long, &pki.signer).unwrap();
    assert_eq!(
        verify_seal(&der, &pki.ca_der, None, NOW).failed(),
        ["company_certificate"]
    );

    // createDate before the maker certificate's notBefore (2024-01-01).
    let mut old = spec(&pki.company_der);
    old.create_date = datetime!(2023-06-01 00:00:00 UTC);
    let der = build_seal(&old, &pki.signer).unwrap();
    assert_eq!(
        verify_seal(&der, &pki.ca_der, None, NOW).failed(),
        ["maker_validity"]
    );
}

#[test]
fn a_revoked_company_certificate_makes_the_seal_invalid() {
    let pki = new_pki();
    let der = build_seal(&spec(&pki.company_der), &pki.signer).unwrap();
    let mut report = verify_seal(&der, &pki.ca_der, Some(&pki.company_der), NOW);
    assert_eq!(report.company_certificates(), [pki.company_der.as_slice()]);
    report.record_revocations(&[]);
    assert!(report.is_valid(), "{report:#?}");
    assert!(report.check("company_revocation").unwrap().ok);
    report.record_revocations(&["certList[0] revoked: keyCompromise".to_owned()]);
    assert!(!report.is_valid());
    assert_eq!(report.failed(), ["company_revocation"]);
    let detail = &report.check("company_revocation").unwrap().detail;
    assert!(detail.contains("keyCompromise"), "{detail}");

    // Nothing to say about a seal that does not parse.
    let mut garbage = verify_seal(b"junk", &pki.ca_der, None, NOW);
    garbage.record_revocations(&["x".to_owned()]);
    assert!(garbage.check("company_revocation").is_none());
    assert!(garbage.company_certificates().is_empty());
}

#[test]
fn build_rejects_invalid_specs_and_mismatched_keys() {
    let pki = new_pki();
    let good = spec(&pki.company_der);
    type Mutation = fn(&mut SealSpec);
    let cases: Vec<(&str, Mutation)> = vec![
        ("es_id", |s| s.es_id.clear()),
        ("es_id", |s| s.es_id = "章001".to_owned()),
        ("vid", |s| s.vid = "供应商".to_owned()),
        ("name", |s| s.name = "  ".to_owned()),
        ("picture_png", |s| s.picture_png.clear()),
        ("picture_png", |s| s.picture_png = vec![0xff, 0xd8, 0xff]),
        ("width_mm", |s| s.width_mm = 0),
        ("height_mm", |s| s.height_mm = 0),
        ("valid_start", |s| {
            s.valid_start = SEAL_END + time::Duration::SECOND;
        }),
        ("create_date", |s| {
            s.create_date = datetime!(1969-12-31 23:59:59 UTC);
        }),
    ];
    for (field, mutate) in cases {
        let mut s = good.clone();
        mutate(&mut s);
        match build_seal(&s, &pki.signer) {
            Err(SealError::InvalidField { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidField, got {other:?}"),
        }
    }
    let mut s = good.clone();
    s.company_cert_der = vec![0x30, 0x00];
    assert!(matches!(
        build_seal(&s, &pki.signer),
        Err(SealError::InvalidCertificate {
            which: "company_cert_der",
            ..
        })
    ));

    // A key that does not belong to the maker certificate: the self-check catches it.
    let wrong_key = SoftSigner {
        key: KeyPair::generate().unwrap(),
        cert: pki.signer.cert.clone(),
        oid: OID_ECDSA_WITH_SHA256,
    };
    assert!(matches!(
        build_seal(&good, &wrong_key),
        Err(SealError::SignatureSelfCheck(_))
    ));
    // An ECDSA key announced as RSA.
    let wrong_alg = SoftSigner {
        key: KeyPair::generate().unwrap(),
        cert: pki.signer.cert.clone(),
        oid: OID_SHA256_WITH_RSA,
    };
    assert!(matches!(
        build_seal(&good, &wrong_alg),
        Err(SealError::SignatureSelfCheck(_))
    ));
    // An ECDSA P-256 key announced as SM2: SM2 seals are made, this one fails its self-check.
    let sm2 = SoftSigner {
        key: KeyPair::generate().unwrap(),
        cert: pki.signer.cert.clone(),
        oid: ObjectIdentifier::new_unwrap("1.2.156.10197.1.501"),
    };
    assert!(matches!(
        build_seal(&good, &sm2),
        Err(SealError::SignatureSelfCheck(_))
    ));
    let sha384 = SoftSigner {
        key: KeyPair::generate().unwrap(),
        cert: pki.signer.cert.clone(),
        oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
    };
    assert!(matches!(
        build_seal(&good, &sha384),
        Err(SealError::UnsupportedAlgorithm { .. })
    ));
}

/// `(depth, type)` rows of `openssl asn1parse -inform DER -i`.
fn asn1parse_rows(der: &[u8]) -> Vec<(u32, String)> {
    let mut child = Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl binary is required for this test");
    child.stdin.take().unwrap().write_all(der).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl asn1parse failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let depth_at = line.find("d=").unwrap() + 2;
            let depth: u32 = line[depth_at..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let kind_at = line.find("prim:").or_else(|| line.find("cons:")).unwrap() + 5;
            let kind = line[kind_at..]
                .split(':')
                .next()
                .unwrap()
                .replace("[HEX DUMP]", "")
                .trim()
                .to_owned();
            (depth, kind)
        })
        .collect()
}

#[test]
fn openssl_sees_the_documented_field_order() {
    let pki = new_pki();
    let der = build_seal(&spec(&pki.company_der), &pki.signer).unwrap();
    let expected: Vec<(u32, &str)> = vec![
        (0, "SEQUENCE"),        // SESeal
        (1, "SEQUENCE"),        // eSealInfo
        (2, "SEQUENCE"),        // header
        (3, "IA5STRING"),       // id
        (3, "INTEGER"),         // version
        (3, "IA5STRING"),       // vid
        (2, "IA5STRING"),       // esID
        (2, "SEQUENCE"),        // property
        (3, "INTEGER"),         // type
        (3, "UTF8STRING"),      // name
        (3, "INTEGER"),         // certListType
        (3, "SEQUENCE"),        // certs
        (4, "OCTET STRING"),    // company certificate
        (3, "GENERALIZEDTIME"), // createDate
        (3, "GENERALIZEDTIME"), // validStart
        (3, "GENERALIZEDTIME"), // validEnd
        (2, "SEQUENCE"),        // picture
        (3, "IA5STRING"),       // type
        (3, "OCTET STRING"),    // data
        (3, "INTEGER"),         // width
        (3, "INTEGER"),         // height
        (1, "OCTET STRING"),    // cert
        (1, "OBJECT"),          // signAlgID
        (1, "BIT STRING"),      // signedValue
    ];
    let rows = asn1parse_rows(&der);
    let rows: Vec<(u32, &str)> = rows.iter().map(|(d, k)| (*d, k.as_str())).collect();
    assert_eq!(rows, expected);
}
