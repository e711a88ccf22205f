//! The seed corpora and fixtures of the fuzz targets under `tests/fuzz`, made from the same
//! builders the station uses, and a check that the committed ones still mean what the targets
//! assume.
//!
//! Regenerate everything (rewrites `tests/fuzz/seeds/` and `tests/fuzz/fixtures/`; the keys are
//! fresh, so the DER files change):
//!
//! ```text
//! cargo test --test it -- --ignored fuzz_seeds::regenerate
//! ```

use crate::station::order_json;
use der::asn1::OctetString;
use keystation::seal::{
    CertDigestObj, ExtData, OID_ECDSA_WITH_SHA256, SealError, SealSigner, SealSpec, SealType,
    SesCertList, build_seal, parse_seal, verify_seal,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SigningKey,
};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::macros::datetime;

/// The time the `seal_parse` target verifies at (keep equal to `NOW` there).
const FUZZ_NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A software seal-maker key standing in for the HSM key.
struct SoftSigner {
    key: KeyPair,
    cert: Vec<u8>,
}

impl SealSigner for SoftSigner {
    fn maker_cert_der(&self) -> &[u8] {
        &self.cert
    }
    fn algorithm_oid(&self) -> der::oid::ObjectIdentifier {
        OID_ECDSA_WITH_SHA256
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.key
            .sign(data)
            .map_err(|e| SealError::Signer(e.to_string()))
    }
}

fn params(cn: &str, from: OffsetDateTime, to: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = from;
    p.not_after = to;
    p
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        if (x + y) % 3 == 0 {
            image::Rgba([200, 20, 20, 255])
        } else {
            image::Rgba([255, 255, 255, 255])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, _| {
        if x % 2 == 0 {
            image::Rgb([210, 10, 10])
        } else {
            image::Rgb([250, 250, 250])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// DER of the CA and company certificates, and named seed seals.
struct SealMaterial {
    ca_der: Vec<u8>,
    company_der: Vec<u8>,
    seals: Vec<(&'static str, Vec<u8>)>,
}

/// CA, company certificate and two seals: a valid one as the station makes it, and one with a
/// digest `certList` and extension data (re-encoded, so its signature no longer verifies) to
/// reach the parser's other branches.
fn seal_material() -> SealMaterial {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = params(
        "Fuzz Seal CA",
        datetime!(2020-01-01 00:00:00 UTC),
        datetime!(2035-01-01 00:00:00 UTC),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
    let issuer = Issuer::new(ca, ca_key);

    let maker_key = KeyPair::generate().unwrap();
    let maker = params(
        "Fuzz Seal Maker",
        datetime!(2024-01-01 00:00:00 UTC),
        datetime!(2030-01-01 00:00:00 UTC),
    )
    .signed_by(&maker_key, &issuer)
    .unwrap();
    let company = params(
        "北京示例科技有限公司",
        datetime!(2024-06-01 00:00:00 UTC),
        datetime!(2026-06-01 15:59:59 UTC),
    )
    .signed_by(&KeyPair::generate().unwrap(), &issuer)
    .unwrap();
    let company_der = company.der().to_vec();

    let signer = SoftSigner {
        key: maker_key,
        cert: maker.der().to_vec(),
    };
    let spec = SealSpec {
        seal_type: SealType::Organisation,
        es_id: "11010800000012025".to_owned(),
        vid: "KEYSTATION".to_owned(),
        name: "北京示例科技有限公司".to_owned(),
        company_cert_der: company_der.clone(),
        create_date: datetime!(2024-12-20 08:00:00 UTC),
        valid_start: datetime!(2025-01-01 00:00:00 UTC),
        valid_end: datetime!(2025-12-31 15:59:59 UTC),
        picture_png: png(4, 4),
        width_mm: 40,
        height_mm: 40,
    };
    let valid = build_seal(&spec, &signer).unwrap();

    let mut variant = parse_seal(&valid).unwrap();
    variant.e_seal_info.property.cert_list = SesCertList::CertDigestList(vec![CertDigestObj {
        digest_type: der::asn1::PrintableString::new("SHA256").unwrap(),
        value: OctetString::new(vec![0x5a; 32]).unwrap(),
    }]);
    variant.e_seal_info.ext_datas = Some(vec![ExtData {
        extn_id: der::oid::ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.1"),
        critical: true,
        extn_value: OctetString::new(vec![0x01, 0x02]).unwrap(),
    }]);
    let variant = variant.to_der().unwrap();

    SealMaterial {
        ca_der,
        company_der,
        seals: vec![("valid-ecdsa.der", valid), ("digest-list-ext.der", variant)],
    }
}

#[test]
#[ignore = "rewrites the committed seeds; run explicitly"]
fn regenerate() {
    let dir = fuzz_dir();

    let material = seal_material();
    write(&dir.join("fixtures/seal-ca.der"), &material.ca_der);
    write(
        &dir.join("fixtures/seal-company.der"),
        &material.company_der,
    );
    for (name, der) in &material.seals {
        write(&dir.join("seeds/seal_parse").join(name), der);
    }

    let orders = [
        (
            "one-order.json",
            order_json("FZ-1", "legal_rep_phone", "company_and_legal_rep", "main"),
        ),
        (
            "corporate-transfer.json",
            order_json("FZ-2", "corporate_transfer", "company", "main"),
        ),
        (
            "array-secondary.json",
            serde_json::Value::Array(vec![
                {
                    let mut o = order_json("FZ-3", "legal_rep_bank_card", "none", "secondary");
                    o["product"]["main_order_no"] = serde_json::json!("FZ-4");
                    o
                },
                order_json("FZ-4", "legal_rep_phone", "none", "main"),
            ]),
        ),
    ];
    for (name, order) in &orders {
        write(
            &dir.join("seeds/order_json").join(name),
            &serde_json::to_vec_pretty(order).unwrap(),
        );
    }

    let bank = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bank");
    for entry in std::fs::read_dir(&bank).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        write(
            &dir.join("seeds/bank_status")
                .join(path.file_name().unwrap()),
            &bytes,
        );
    }

    write(&dir.join("seeds/seal_picture/ink-16x16.png"), &png(16, 16));
    write(&dir.join("seeds/seal_picture/ink-16x8.jpg"), &jpeg(16, 8));
}

/// The committed seal seed verifies against the committed CA at the target's time, so the fuzzer
/// starts from a seal that reaches every verification check; the variant parses.
#[test]
fn committed_seal_seeds_verify() {
    let dir = fuzz_dir();
    let ca = std::fs::read(dir.join("fixtures/seal-ca.der")).unwrap();
    let company = std::fs::read(dir.join("fixtures/seal-company.der")).unwrap();
    let valid = std::fs::read(dir.join("seeds/seal_parse/valid-ecdsa.der")).unwrap();
    let report = verify_seal(&valid, &ca, Some(&company), FUZZ_NOW);
    assert!(report.is_valid(), "{:?}", report.checks);
    let variant = std::fs::read(dir.join("seeds/seal_parse/digest-list-ext.der")).unwrap();
    assert_eq!(parse_seal(&variant).unwrap().to_der().unwrap(), variant);
}
