//! Test fixtures shared by the `ca` tests: software keys standing in for token keys, a sample
//! order with Chinese names, and a runner for the real `openssl` CLI (the independent checker).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::ca::issuance::{issue_unit_certificate, self_signed_ca};
use crate::ca::profile::{CaProfile, self_signed_ca_params};
use crate::domain::{
    AuthMethod, Company, Handler, IdType, Invoice, KeyRole, LegalRep, Order, Product, SealService,
    Shipping,
};
use crate::x509::parse_certificate;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
    PublicKeyData, SignatureAlgorithm, SigningKey,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use x509_parser::certificate::X509Certificate;

pub(crate) const CRL_URL: &str = "http://crl.example-ca.cn/unit.crl";
pub(crate) const OCSP_URL: &str = "http://ocsp.example-ca.cn/ocsp";
/// The status URLs every test unit certificate carries.
pub(crate) const URLS: crate::ca::profile::StatusUrls<'static> = crate::ca::profile::StatusUrls {
    crl: CRL_URL,
    ocsp: OCSP_URL,
};

/// 16 serial bytes with the top bit set, so DER must add a 0x00 to keep it positive.
pub(crate) const HIGH_BIT_SERIAL: [u8; 16] = [
    0x9a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f,
];

/// The sample order's unit certificate for the public key `spki`, serial [`HIGH_BIT_SERIAL`],
/// with the test [`URLS`], issued at `now` by the CA certificate `ca_der` and its key.
pub(crate) fn issue_sample(
    spki: &[u8],
    ca_der: &[u8],
    ca_key: &impl SigningKey,
    now: OffsetDateTime,
) -> Vec<u8> {
    let order = sample_order();
    issue_unit_certificate(&order, spki, ca_der, ca_key, &HIGH_BIT_SERIAL, now, URLS).unwrap()
}

/// A software ECDSA P-256 key (what a token's default key looks like to rcgen).
pub(crate) fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// A software RSA key of `bits` bits. ring cannot generate RSA keys, so openssl does.
pub(crate) fn rsa(bits: u32) -> KeyPair {
    let out = openssl_ok(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        &format!("rsa_keygen_bits:{bits}"),
    ]);
    KeyPair::from_pkcs8_pem_and_sign_algo(&out, &PKCS_RSA_SHA256).unwrap()
}

/// `YYYY-MM-DD hh:mm:ss` in Beijing time.
pub(crate) fn beijing(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> OffsetDateTime {
    PrimitiveDateTime::new(
        Date::from_calendar_date(y, Month::try_from(mo).unwrap(), d).unwrap(),
        Time::from_hms(h, mi, s).unwrap(),
    )
    .assume_offset(UtcOffset::from_hms(8, 0, 0).unwrap())
}

/// An approved order of a Shenzhen company with a department (OU).
pub(crate) fn sample_order() -> Order {
    Order {
        order_no: crate::domain::OrderNo::parse("BJCA20201126001").unwrap(),
        auth_method: AuthMethod::LegalRepPhone,
        company: Company {
            name: "深圳市示例科技有限公司".into(),
            uscc: "9144030071526726XG".into(),
            department: Some("投标部".into()),
            phone: None,
        },
        legal_rep: LegalRep {
            name: "张三".into(),
            mobile: "13800138000".into(),
            id_type: IdType::ResidentId,
            id_number: "440305198512310026".into(),
        },
        product: Product {
            key_role: KeyRole::Main,
            years: 1,
            seal_service: SealService::CompanyAndLegalRep,
            main_order_no: None,
        },
        invoice: Invoice {
            title: "深圳市示例科技有限公司".into(),
            taxpayer_id: "9144030071526726XG".into(),
            address_phone: None,
            bank_account: None,
        },
        handler: Handler {
            name: "李四".into(),
            mobile: "13900139000".into(),
            id_type: IdType::ResidentId,
            id_number: "110108200001011237".into(),
            email: "lisi@example.cn".into(),
        },
        shipping: Shipping {
            province: "广东省".into(),
            city: "深圳市".into(),
            address: "南山区科技园1号".into(),
        },
        corporate_account: None,
        documents: Vec::new(),
        seals: Vec::new(),
    }
}

/// Runs `openssl` with `args`; panics (fails the test) if openssl cannot be run at all.
pub(crate) fn openssl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is required by these tests and could not be run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `openssl` and returns stdout, failing the test on a non-zero exit.
pub(crate) fn openssl_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Writes a DER certificate (`x509`) or CRL (`crl`) as PEM, converted by openssl itself.
pub(crate) fn write_pem(dir: &Path, name: &str, kind: &str, der: &[u8]) -> PathBuf {
    let der_path = dir.join(format!("{name}.der"));
    let pem_path = dir.join(format!("{name}.pem"));
    std::fs::write(&der_path, der).unwrap();
    openssl_ok(&[
        kind,
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        pem_path.to_str().unwrap(),
    ]);
    pem_path
}

/// `openssl verify -x509_strict` of the PEM certificate `cert_pem` against the PEM CA
/// `ca_pem` at the instant `at`, with `extra` options (e.g. `-purpose sslclient`).
pub(crate) fn openssl_verify(
    ca_pem: &Path,
    cert_pem: &Path,
    at: OffsetDateTime,
    extra: &[&str],
) -> (bool, String, String) {
    let at = epoch(at);
    let mut args = vec![
        "verify",
        "-x509_strict",
        "-attime",
        &at,
        "-CAfile",
        ca_pem.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(cert_pem.to_str().unwrap());
    openssl(&args)
}

/// A token whose public-key object belongs to the CA certificate but whose private key (the one
/// the configured label points to) does not: the misconfiguration only a signature check after
/// signing can see. With `public == private` it is an honest token (the control case).
pub(crate) struct MislabelledToken<'a> {
    pub(crate) public: &'a KeyPair,
    pub(crate) private: &'a KeyPair,
}

impl PublicKeyData for MislabelledToken<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.public.der_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.public.algorithm()
    }
}

impl SigningKey for MislabelledToken<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.private.sign(msg)
    }
}

/// The test CA's profile: Chinese O and CN, ten years.
pub(crate) fn ca_profile() -> CaProfile {
    CaProfile {
        common_name: "示例单位证书 CA".into(),
        organization: "北京示例数字认证有限公司".into(),
        validity_years: 10,
        crl_url: CRL_URL.into(),
    }
}

/// A self-signed CA certificate for `key`, valid from one day before `issuance`, for ten years.
pub(crate) fn make_ca(key: &KeyPair, issuance: OffsetDateTime) -> Vec<u8> {
    let params = self_signed_ca_params(
        &ca_profile(),
        issuance - time::Duration::days(1),
        [0x42; 16],
    )
    .unwrap();
    self_signed_ca(&params, key, &key.subject_public_key_info()).unwrap()
}

/// A CSR whose own subject claims to be someone else entirely.
pub(crate) fn csr_of(key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Mallory Holdings");
    params.serialize_request(key).unwrap().der().to_vec()
}

/// An instant as `openssl -attime` takes it.
fn epoch(t: OffsetDateTime) -> String {
    t.unix_timestamp().to_string()
}

/// Parses a DER certificate the test expects to be well-formed.
pub(crate) fn parse(der: &[u8]) -> X509Certificate<'_> {
    parse_certificate(der).unwrap()
}
