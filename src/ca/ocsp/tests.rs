#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::asn1::{OcspRequest, Request, TbsRequest};
use super::*;
use crate::ca::issuance::{issue_ocsp_signer_cert, issue_unit_certificate};
use crate::ca::profile::ocsp_signer_params;
use crate::ca::testkit::{URLS, make_ca, openssl, openssl_ok, p256, sample_order, write_pem};
use crate::clock::{Clock, SystemClock};
use der::asn1::Int;
use rcgen::{KeyPair, PublicKeyData, SigningKey};
use x509_cert::ext::Extension;

const SHA1_ALG: &[u8] = &[
    0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
];

/// A CA, its delegated signer and one unit certificate, all made at the wall clock's now
/// (openssl checks an answer's thisUpdate against its own clock).
struct Fixture {
    ca_key: KeyPair,
    ca_der: Vec<u8>,
    signer_key: KeyPair,
    signer_der: Vec<u8>,
    now: OffsetDateTime,
}

fn fixture() -> Fixture {
    let now = SystemClock.now().replace_nanosecond(0).unwrap();
    let ca_key = p256();
    let ca_der = make_ca(&ca_key, now);
    let signer_key = p256();
    let params = ocsp_signer_params(
        "示例单位证书 CA",
        "北京示例数字认证有限公司",
        now - time::Duration::minutes(5),
        now + time::Duration::days(365),
        &[0x31; 16],
    )
    .unwrap();
    let signer_der = issue_ocsp_signer_cert(
        &params,
        &signer_key.subject_public_key_info(),
        &ca_der,
        &ca_key,
    )
    .unwrap();
    Fixture {
        ca_key,
        ca_der,
        signer_key,
        signer_der,
        now,
    }
}

fn cert_id(issuer: &IssuerHashes, serial: &[u8]) -> CertId {
    CertId {
        hash_algorithm: AlgorithmIdentifierOwned::from_der(SHA1_ALG).unwrap(),
        issuer_name_hash: OctetString::new(issuer.sha1.0.clone()).unwrap(),
        issuer_key_hash: OctetString::new(issuer.sha1.1.clone()).unwrap(),
        serial_number: Int::new(serial).unwrap(),
    }
}

fn request_der(ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    let request_extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: OID_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap()).unwrap(),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

fn sign(fx: &Fixture, request: &ParsedRequest, statuses: &[Status]) -> Vec<u8> {
    let responder = ResponderKey::new(&fx.signer_der, KeyAlgorithm::EcdsaP256).unwrap();
    let validity = Validity {
        produced_at: fx.now,
        this_update: fx.now,
        next_update: fx.now + time::Duration::hours(4),
    };
    let tbs = response_data(&responder, request, statuses, validity).unwrap();
    let signature = fx.signer_key.sign(&tbs).unwrap();
    signed_response(&responder, &tbs, &signature).unwrap()
}

fn decode(response: &[u8]) -> (ResponseStatus, Option<ResponseData>) {
    let r = OcspResponse::from_der(response).unwrap();
    let data = r.response_bytes.map(|b| {
        assert_eq!(b.response_type, OID_OCSP_BASIC);
        let basic = BasicOcspResponse::from_der(b.response.as_bytes()).unwrap();
        ResponseData::from_der(&basic.tbs_response_data.to_der().unwrap()).unwrap()
    });
    (r.response_status, data)
}

#[test]
fn openssl_reads_good_revoked_and_unknown_from_the_delegated_signer() {
    let fx = fixture();
    let unit = issue_unit_certificate(
        &sample_order(),
        &p256().subject_public_key_info(),
        &fx.ca_der,
        &fx.ca_key,
        &[0x5a; 16],
        fx.now,
        URLS,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &fx.ca_der);
    let unit_pem = write_pem(dir.path(), "unit", "x509", &unit);
    let req_path = dir.path().join("req.der");
    let (ca, unit_p, req) = (
        ca_pem.to_str().unwrap(),
        unit_pem.to_str().unwrap(),
        req_path.to_str().unwrap(),
    );
    // openssl writes the request (with its nonce) for the unit certificate and two serials.
    let asked = [
        "-issuer",
        ca,
        "-cert",
        unit_p,
        "-serial",
        "0x7b7b7b7b7b7b7b7b7b",
        "-serial",
        "0x0102030405060708",
    ];
    openssl_ok(&[&["ocsp"][..], &asked, &["-reqout", req]].concat());
    let parsed = parse_request(&std::fs::read(&req_path).unwrap()).unwrap();
    assert_eq!(parsed.cert_ids.len(), 3);
    assert!(
        parsed.nonce.is_some(),
        "openssl asks for a nonce by default"
    );
    assert_eq!(parsed.cache_key(), None);
    let issuer = IssuerHashes::of_ca(&fx.ca_der).unwrap();
    assert!(parsed.cert_ids.iter().all(|id| issuer.names(id)));
    assert_eq!(serial_hex(&parsed.cert_ids[0]).unwrap(), "5a".repeat(16));
    assert_eq!(serial_hex(&parsed.cert_ids[2]).unwrap(), "0102030405060708");

    let revoked_at = fx.now - time::Duration::minutes(1);
    let statuses = [
        Status::Good,
        Status::Revoked {
            at: revoked_at,
            reason: crl_reason("keyCompromise"),
        },
        Status::Unknown,
    ];
    let resp = sign(&fx, &parsed, &statuses);
    let resp_path = dir.path().join("resp.der");
    std::fs::write(&resp_path, &resp).unwrap();
    let resp_p = resp_path.to_str().unwrap();
    let out = openssl_ok(
        &[
            &["ocsp", "-respin", resp_p, "-no_nonce", "-CAfile", ca][..],
            &asked,
        ]
        .concat(),
    );
    assert!(out.contains(&format!("{unit_p}: good")), "{out}");
    assert!(out.contains("0x7b7b7b7b7b7b7b7b7b: revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(out.contains("0x0102030405060708: unknown"), "{out}");

    // The verdict on the signature, the delegation and the nonce comes from openssl alone.
    let verify = ["ocsp", "-respin", resp_p, "-reqin", req, "-CAfile", ca];
    let (ok, stdout, stderr) = openssl(&verify);
    assert!(
        ok && stderr.contains("Response verify OK"),
        "{stdout}{stderr}"
    );

    // A response signed by a key that is not the signer certificate's is refused by openssl.
    let responder = ResponderKey::new(&fx.signer_der, KeyAlgorithm::EcdsaP256).unwrap();
    let validity = Validity {
        produced_at: fx.now,
        this_update: fx.now,
        next_update: fx.now + time::Duration::hours(4),
    };
    let tbs = response_data(&responder, &parsed, &statuses, validity).unwrap();
    let forged = signed_response(&responder, &tbs, &p256().sign(&tbs).unwrap()).unwrap();
    std::fs::write(&resp_path, &forged).unwrap();
    let (_, stdout, stderr) = openssl(&verify);
    assert!(!stderr.contains("Response verify OK"), "{stdout}{stderr}");
}

#[test]
fn the_answer_echoes_cert_ids_and_nonce_and_names_the_responder_by_key() {
    let fx = fixture();
    let issuer = IssuerHashes::of_ca(&fx.ca_der).unwrap();
    let ids = vec![
        cert_id(&issuer, &[0x00, 0x9a, 0x01]),
        cert_id(&issuer, &[0x11; 8]),
    ];
    let parsed = parse_request(&request_der(ids.clone(), Some(&[7; 16]))).unwrap();
    assert_eq!(serial_hex(&ids[0]).unwrap(), "9a01");
    let resp = sign(&fx, &parsed, &[Status::Good, Status::Unknown]);
    let (status, data) = decode(&resp);
    assert_eq!(status, ResponseStatus::Successful);
    let data = data.unwrap();
    assert_eq!(
        data.responses
            .iter()
            .map(|r| r.cert_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(data.responses[0].cert_status, CertStatus::Good(Null));
    assert_eq!(data.responses[1].cert_status, CertStatus::Unknown(Null));
    assert_eq!(
        data.response_extensions.unwrap(),
        vec![parsed.nonce.clone().unwrap()]
    );
    let key_hash = Sha1::digest(fx.signer_key.der_bytes()).to_vec();
    assert_eq!(
        data.responder_id,
        ResponderId::ByKey(OctetString::new(key_hash).unwrap())
    );
    // Unspecified is not written (as in CRLs, RFC 5280 §5.3.1).
    let resp = sign(
        &fx,
        &parsed,
        &[
            Status::Revoked {
                at: fx.now,
                reason: crl_reason("unspecified"),
            },
            Status::Revoked {
                at: fx.now,
                reason: crl_reason("superseded"),
            },
        ],
    );
    let data = decode(&resp).1.unwrap();
    let reasons: Vec<_> = data
        .responses
        .iter()
        .map(|r| match &r.cert_status {
            CertStatus::Revoked(info) => info.revocation_reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons, [None, Some(CrlReason::Superseded)]);
}

#[test]
fn bad_requests_are_malformed_and_never_panic() {
    let fx = fixture();
    let issuer = IssuerHashes::of_ca(&fx.ca_der).unwrap();
    let good = request_der(vec![cert_id(&issuer, &[0x42; 16])], None);
    assert!(parse_request(&good).is_ok());
    let malformed = |bytes: &[u8], what: &str| {
        let err = parse_request(bytes).unwrap_err();
        assert!(matches!(err, OcspError::Malformed(_)), "{what}: {err:?}");
        assert_eq!(err.status(), ResponseStatus::MalformedRequest);
    };
    malformed(b"", "empty");
    malformed(b"GET / HTTP/1.1\r\n\r\n", "garbage");
    for cut in 1..good.len() {
        malformed(&good[..cut], "truncated");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    malformed(&trailing, "trailing byte");
    malformed(&request_der(Vec::new(), None), "no request");
    malformed(
        &request_der(vec![cert_id(&issuer, &[1; 8]); MAX_REQUESTS + 1], None),
        "too many",
    );
    malformed(
        &request_der(
            vec![cert_id(&issuer, &[1; 8])],
            Some(&[1; MAX_NONCE_LEN + 1]),
        ),
        "long nonce",
    );
    assert!(
        parse_request(&request_der(
            vec![cert_id(&issuer, &[1; 8])],
            Some(&[1; MAX_NONCE_LEN])
        ))
        .is_ok()
    );
    // Every single-byte corruption of a good request is decoded or refused, never a panic.
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            let _ = parse_request(&bad);
        }
    }
}

#[test]
fn only_this_cas_cert_ids_are_answered() {
    let fx = fixture();
    let ours = IssuerHashes::of_ca(&fx.ca_der).unwrap();
    let theirs = IssuerHashes::of_ca(&make_ca(&p256(), fx.now)).unwrap();
    let foreign = parse_request(&request_der(vec![cert_id(&theirs, &[9; 8])], None)).unwrap();
    assert_eq!(check_issuer(&foreign, &ours), Err(OcspError::Unauthorized));
    assert_eq!(
        OcspError::Unauthorized.status(),
        ResponseStatus::Unauthorized
    );
    let mixed = parse_request(&request_der(
        vec![cert_id(&theirs, &[9; 8]), cert_id(&ours, &[9; 8])],
        None,
    ))
    .unwrap();
    assert_eq!(check_issuer(&mixed, &ours), Ok(()));
    assert!(!ours.names(&mixed.cert_ids[0]) && ours.names(&mixed.cert_ids[1]));

    // SHA-256 CertIDs name the CA too; another hash algorithm does not.
    let mut sha256 = cert_id(&ours, &[9; 8]);
    sha256.hash_algorithm.oid = OID_SHA256;
    sha256.issuer_name_hash = OctetString::new(ours.sha256.0.clone()).unwrap();
    sha256.issuer_key_hash = OctetString::new(ours.sha256.1.clone()).unwrap();
    assert!(ours.names(&sha256));
    let mut other = sha256.clone();
    other.hash_algorithm.oid = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
    assert!(!ours.names(&other));
    // The key hash alone does not do: the name hash must match too.
    let mut half = cert_id(&ours, &[9; 8]);
    half.issuer_name_hash = OctetString::new(vec![0x5a; 20]).unwrap();
    assert!(!ours.names(&half));
}

#[test]
fn serials_and_cache_keys() {
    let fx = fixture();
    let issuer = IssuerHashes::of_ca(&fx.ca_der).unwrap();
    assert_eq!(serial_hex(&cert_id(&issuer, &[0x80, 1])), None, "negative");
    assert_eq!(serial_hex(&cert_id(&issuer, &[0])), None, "zero");
    assert_eq!(serial_hex(&cert_id(&issuer, &[0x7f])).unwrap(), "7f");
    // Longer than any serial the CA writes (a CertSerial holds at most 32 bytes).
    assert_eq!(serial_hex(&cert_id(&issuer, &[0x7f; 33])), None, "too long");
    assert_eq!(
        serial_hex(&cert_id(&issuer, &[0x7f; 32])).unwrap(),
        "7f".repeat(32)
    );
    let a = parse_request(&request_der(vec![cert_id(&issuer, &[5; 8])], None)).unwrap();
    let b = parse_request(&request_der(vec![cert_id(&issuer, &[5; 8])], None)).unwrap();
    let c = parse_request(&request_der(vec![cert_id(&issuer, &[6; 8])], None)).unwrap();
    assert!(a.cache_key().is_some());
    assert_eq!(a.cache_key(), b.cache_key());
    assert_ne!(a.cache_key(), c.cache_key());
}

#[test]
fn error_responses_carry_only_their_status() {
    for status in [
        ResponseStatus::MalformedRequest,
        ResponseStatus::InternalError,
        ResponseStatus::TryLater,
        ResponseStatus::Unauthorized,
    ] {
        assert_eq!(decode(&error_response(status)), (status, None));
    }
}

#[test]
fn the_signer_certificate_is_a_delegated_ocsp_signer() {
    let fx = fixture();
    let cert = crate::x509::parse_certificate(&fx.signer_der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.ocsp_signing && !eku.value.any);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && !ku.value.key_cert_sign());
    assert!(
        cert.iter_extensions()
            .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5" && e.value == [0x05, 0x00])
    );
    assert!(cert.basic_constraints().unwrap().is_none());
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &fx.ca_der);
    let pem = write_pem(dir.path(), "signer", "x509", &fx.signer_der);
    let out = openssl_ok(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "ocsphelper",
        "-CAfile",
        ca_pem.to_str().unwrap(),
        pem.to_str().unwrap(),
    ]);
    assert!(out.contains("OK"), "{out}");
}

/// The signatureAlgorithm an answer names is its signer's: SM2-with-SM3 without parameters
/// (GM/T 0015), ecdsa-with-SHA256 without, sha256WithRSAEncryption with NULL; byte for byte the
/// AlgorithmIdentifier certificates of the same key carry. (An SM2 answer signed on a token and
/// checked by OpenSSL and gmssl: `tests/it/sm2.rs`.)
#[test]
fn an_answer_names_its_signers_algorithm() {
    let fx = fixture();
    let request = parse_request(&request_der(
        vec![cert_id(&IssuerHashes::of_ca(&fx.ca_der).unwrap(), &[0x42])],
        None,
    ))
    .unwrap();
    for algorithm in [
        KeyAlgorithm::Sm2,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Rsa2048,
    ] {
        let responder = ResponderKey::new(&fx.signer_der, algorithm).unwrap();
        let validity = Validity {
            produced_at: fx.now,
            this_update: fx.now,
            next_update: fx.now + time::Duration::hours(1),
        };
        let tbs = response_data(&responder, &request, &[Status::Good], validity).unwrap();
        let der = signed_response(&responder, &tbs, &[0x30, 0x00]).unwrap();
        let response = OcspResponse::from_der(&der).unwrap();
        let basic =
            BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes())
                .unwrap();
        assert_eq!(
            basic.signature_algorithm.to_der().unwrap(),
            crate::ca::sm2_stamp::signature_algorithm_der(algorithm),
            "{algorithm:?}"
        );
    }
}
