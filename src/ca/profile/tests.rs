#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ca::csr::verify_csr;
use crate::ca::issuance::{
    issue_seal_maker_cert, issue_unit_certificate, parse_issuing_ca, self_signed_ca,
};
use crate::ca::testkit::{
    CRL_URL, HIGH_BIT_SERIAL, URLS, beijing, ca_profile as profile, csr_of, make_ca, openssl_ok,
    openssl_verify, p256, parse, rsa, sample_order, write_pem,
};
use crate::x509::{key_identifier, x509_instant};
use proptest::prelude::*;
use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384, PublicKeyData};
use sha2::{Digest, Sha256};
use time::macros::datetime;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::x509::X509Version;

/// Every field of the §3 profile, read back with x509-parser.
fn assert_unit_profile(
    cert_der: &[u8],
    ca_der: &[u8],
    order: &Order,
    spki_der: &[u8],
    serial: &[u8],
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) {
    let cert = parse(cert_der);
    let ca = parse(ca_der);
    assert_eq!(cert.version(), X509Version::V3);

    // Subject: order of attributes, attribute types, string types, values.
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        assert_eq!(rdn.iter().count(), 1, "multi-valued RDN");
        let atv = rdn.iter().next().unwrap();
        rdns.push((
            atv.attr_type().to_id_string(),
            atv.attr_value().tag(),
            atv.as_str().unwrap().to_owned(),
        ));
    }
    let c = &order.company;
    let want: Vec<(String, Tag, String)> = vec![
        ("2.5.4.6".into(), Tag::PrintableString, "CN".into()),
        (
            "2.5.4.8".into(),
            Tag::Utf8String,
            order.shipping.province.clone(),
        ),
        (
            "2.5.4.7".into(),
            Tag::Utf8String,
            order.shipping.city.clone(),
        ),
        ("2.5.4.10".into(), Tag::Utf8String, c.name.clone()),
        (
            "2.5.4.11".into(),
            Tag::Utf8String,
            c.department.clone().unwrap(),
        ),
        ("2.5.4.3".into(), Tag::Utf8String, c.name.clone()),
        ("2.5.4.5".into(), Tag::PrintableString, c.uscc.clone()),
    ];
    assert_eq!(rdns, want);
    assert!(!cert.subject().to_string().contains("Mallory"));

    // Issuer, public key, serial.
    assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
    assert_eq!(cert.public_key().raw, spki_der);
    let mut positive = vec![];
    if serial[0] >= 0x80 {
        positive.push(0);
    }
    positive.extend_from_slice(serial);
    assert_eq!(
        cert.raw_serial(),
        positive.as_slice(),
        "DER INTEGER content"
    );
    assert_eq!(cert.serial.to_bytes_be(), serial);

    // Validity.
    assert_eq!(cert.validity().not_before.to_datetime(), now);
    assert_eq!(cert.validity().not_after.to_datetime(), not_after);

    // Extensions: exactly the profile's, each with its criticality and value.
    let mut oids: Vec<String> = cert
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    oids.sort();
    assert_eq!(
        oids,
        [
            "1.2.156.10260.4.1.4",
            "1.3.6.1.5.5.7.1.1",
            "2.5.29.14",
            "2.5.29.15",
            "2.5.29.31",
            "2.5.29.35",
            "2.5.29.37"
        ]
    );
    let ext = |oid: &str| {
        cert.extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == oid)
            .unwrap()
    };

    let ku = ext("2.5.29.15");
    assert!(ku.critical, "keyUsage must be critical");
    // BIT STRING, 6 unused bits, 1100_0000: digitalSignature and nonRepudiation only.
    assert_eq!(ku.value, [0x03, 0x02, 0x06, 0xc0]);
    let ParsedExtension::KeyUsage(ku) = ku.parsed_extension() else {
        panic!("keyUsage does not parse")
    };
    assert!(ku.digital_signature() && ku.non_repudiation());
    assert_eq!(ku.flags, 0b11);

    let eku = ext("2.5.29.37");
    assert!(!eku.critical);
    let ParsedExtension::ExtendedKeyUsage(eku) = eku.parsed_extension() else {
        panic!("EKU does not parse")
    };
    assert!(eku.client_auth && eku.email_protection);
    assert!(!eku.any && !eku.server_auth && !eku.code_signing && !eku.time_stamping);
    assert!(!eku.ocsp_signing && eku.other.is_empty());

    let (_, ca_ski) = parse_issuing_ca(ca_der, KeyUsagePurpose::KeyCertSign).unwrap();
    let aki = ext("2.5.29.35");
    assert!(!aki.critical);
    let ParsedExtension::AuthorityKeyIdentifier(aki) = aki.parsed_extension() else {
        panic!("AKI does not parse")
    };
    assert_eq!(aki.key_identifier.as_ref().unwrap().0, ca_ski.as_slice());
    assert!(aki.authority_cert_issuer.is_none() && aki.authority_cert_serial.is_none());

    let ski = ext("2.5.29.14");
    assert!(!ski.critical);
    let ParsedExtension::SubjectKeyIdentifier(ski) = ski.parsed_extension() else {
        panic!("SKI does not parse")
    };
    let bits = &cert.public_key().subject_public_key.data;
    assert_eq!(ski.0, &Sha256::digest(bits)[..20]);

    let dp = ext("2.5.29.31");
    assert!(!dp.critical);
    let ParsedExtension::CRLDistributionPoints(dp) = dp.parsed_extension() else {
        panic!("CRL DP does not parse")
    };
    assert_eq!(dp.points.len(), 1);
    assert_eq!(
        dp.points[0].distribution_point,
        Some(DistributionPointName::FullName(vec![GeneralName::URI(
            CRL_URL
        )]))
    );

    let aia = ext("1.3.6.1.5.5.7.1.1");
    assert!(!aia.critical);
    let ParsedExtension::AuthorityInfoAccess(aia) = aia.parsed_extension() else {
        panic!("AIA does not parse")
    };
    assert_eq!(aia.accessdescs.len(), 1);
    assert_eq!(
        aia.accessdescs[0].access_method.to_id_string(),
        "1.3.6.1.5.5.7.48.1",
        "id-ad-ocsp"
    );
    assert_eq!(
        aia.accessdescs[0].access_location,
        GeneralName::URI(crate::ca::testkit::OCSP_URL)
    );

    let uscc = ext("1.2.156.10260.4.1.4");
    assert!(!uscc.critical, "USCC extension must be non-critical");
    let mut want = vec![0x13, 18];
    want.extend_from_slice(c.uscc.as_bytes());
    assert_eq!(
        uscc.value,
        want.as_slice(),
        "DER PrintableString of the USCC"
    );

    cert.verify_signature(Some(ca.public_key())).unwrap();
}

/// Issues a unit certificate with `ca_key` for a CSR from `subject_key` at the seed's instant
/// and checks it with x509-parser and with openssl.
fn issue_and_check(ca_key: &KeyPair, subject_key: &KeyPair) {
    let now = beijing(2020, 11, 26, 13, 55, 21);
    let ca_der = make_ca(ca_key, now);
    let order = sample_order();
    let csr = verify_csr(&csr_of(subject_key)).unwrap();
    assert_eq!(csr.spki_der, subject_key.subject_public_key_info());
    let cert = issue_unit_certificate(
        &order,
        &csr.spki_der,
        &ca_der,
        ca_key,
        &HIGH_BIT_SERIAL,
        now,
        URLS,
    )
    .unwrap();
    let not_after = datetime!(2021-11-26 15:59:59 UTC);
    assert_unit_profile(
        &cert,
        &ca_der,
        &order,
        &csr.spki_der,
        &HIGH_BIT_SERIAL,
        now,
        not_after,
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
    let cert_pem = write_pem(dir.path(), "cert", "x509", &cert);
    let verify = |at: OffsetDateTime, purpose: Option<&str>| match purpose {
        Some(p) => openssl_verify(&ca_pem, &cert_pem, at, &["-purpose", p]),
        None => openssl_verify(&ca_pem, &cert_pem, at, &[]),
    };
    // Valid from issuance through the last second of the Beijing day, for both purposes.
    for purpose in [None, Some("sslclient"), Some("smimesign")] {
        let (ok, out, err) = verify(now + time::Duration::hours(1), purpose);
        assert!(ok && out.contains(": OK"), "{purpose:?}: {out}{err}");
    }
    // OpenSSL counts notAfter itself as expired (RFC 5280 says inclusive), so the exact
    // second is pinned by x509-parser above and bracketed here: 23:59:58 valid, 00:00 not.
    let (ok, out, err) = verify(not_after - time::Duration::seconds(1), None);
    assert!(ok, "valid at 23:59:58 +08:00: {out}{err}");
    let (ok, out, err) = verify(not_after + time::Duration::seconds(1), None);
    assert!(
        !ok && (out + &err).contains("expired"),
        "must expire at 00:00 +08:00"
    );
    // A server certificate it is not (EKU has no serverAuth).
    let (ok, _, _) = verify(now + time::Duration::hours(1), Some("sslserver"));
    assert!(!ok, "serverAuth purpose must be refused");

    let text = openssl_ok(&[
        "x509",
        "-text",
        "-noout",
        "-nameopt",
        "utf8",
        "-in",
        cert_pem.to_str().unwrap(),
    ]);
    for needle in [
        "O=深圳市示例科技有限公司",
        "CN=深圳市示例科技有限公司",
        "OU=投标部",
        "ST=广东省",
        "L=深圳市",
        "serialNumber=9144030071526726XG",
        "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation\n",
        "X509v3 Extended Key Usage: \n                TLS Web Client Authentication, E-mail Protection\n",
        "URI:http://crl.example-ca.cn/unit.crl",
        "1.2.156.10260.4.1.4: \n",
        "Not After : Nov 26 15:59:59 2021 GMT",
    ] {
        assert!(
            text.contains(needle),
            "openssl text lacks {needle:?}:\n{text}"
        );
    }
    assert!(!text.contains("1.2.156.10260.4.1.4: critical"));
}

#[test]
fn unit_certificate_profile_with_p256_ca_and_p256_csr() {
    issue_and_check(&p256(), &p256());
}

#[test]
fn unit_certificate_profile_with_rsa2048_ca_and_rsa2048_csr() {
    issue_and_check(&rsa(2048), &rsa(2048));
}

#[test]
fn unit_certificate_mixed_algorithms() {
    issue_and_check(&rsa(2048), &p256());
    issue_and_check(&p256(), &rsa(2048));
}

/// notAfter as written in issued certificates, for the instants of the brief.
#[test]
fn not_after_in_issued_certificates() {
    let ca_key = p256();
    let subject = p256();
    let spki = subject.subject_public_key_info();
    let cases = [
        // The seed's example.
        (
            beijing(2020, 11, 26, 13, 55, 21),
            1,
            datetime!(2021-11-26 15:59:59 UTC),
        ),
        // February 29 into a non-leap year: February 28.
        (
            beijing(2024, 2, 29, 10, 0, 0),
            1,
            datetime!(2025-02-28 15:59:59 UTC),
        ),
        // Three years on, still not a leap year.
        (
            beijing(2024, 2, 29, 10, 0, 0),
            3,
            datetime!(2027-02-28 15:59:59 UTC),
        ),
        // Late evening in Beijing on Dec 31 (15:30Z, still Dec 31 everywhere that matters).
        (
            beijing(2026, 12, 31, 23, 30, 0),
            1,
            datetime!(2027-12-31 15:59:59 UTC),
        ),
        // Just after midnight in Beijing: Jan 1 there, still Dec 31 in UTC.
        (
            beijing(2027, 1, 1, 0, 30, 0),
            1,
            datetime!(2028-01-01 15:59:59 UTC),
        ),
        (
            beijing(2026, 3, 15, 9, 0, 0),
            2,
            datetime!(2028-03-15 15:59:59 UTC),
        ),
    ];
    for (now, years, want) in cases {
        let ca_der = make_ca(&ca_key, now);
        let mut order = sample_order();
        order.product.years = years;
        let der = issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[0x5a; 16], now, URLS)
            .unwrap();
        let cert = parse(&der);
        assert_eq!(
            cert.validity().not_after.to_datetime(),
            want,
            "{now} + {years}y"
        );
        assert_eq!(cert.validity().not_before.to_datetime(), now);
    }
}

#[test]
fn validity_end_rules() {
    let seed = beijing(2020, 11, 26, 13, 55, 21);
    assert_eq!(
        validity_end(seed, 1).unwrap(),
        datetime!(2021-11-26 15:59:59 UTC)
    );
    assert_eq!(
        validity_end(seed, 1).unwrap().to_offset(BEIJING),
        datetime!(2021-11-26 23:59:59 +8)
    );
    // The offset `now` carries does not matter, only the instant.
    assert_eq!(
        validity_end(seed.to_offset(UtcOffset::UTC), 1).unwrap(),
        validity_end(seed, 1).unwrap()
    );
    // Leap days.
    let leap = beijing(2024, 2, 29, 8, 0, 0);
    assert_eq!(
        validity_end(leap, 1).unwrap(),
        datetime!(2025-02-28 15:59:59 UTC)
    );
    assert_eq!(
        validity_end(leap, 4).unwrap(),
        datetime!(2028-02-29 15:59:59 UTC)
    );
    // 2024-02-29 07:00 +08 is 2024-02-28 23:00Z: a Feb 29 issuance in Beijing.
    let early = beijing(2024, 2, 29, 7, 0, 0);
    assert_eq!(early.to_offset(UtcOffset::UTC).day(), 28);
    assert_eq!(
        validity_end(early, 4).unwrap(),
        datetime!(2028-02-29 15:59:59 UTC)
    );
    // Beijing calendar day, not UTC's.
    let new_year = datetime!(2026-12-31 16:30 UTC);
    assert_eq!(
        validity_end(new_year, 1).unwrap(),
        datetime!(2028-01-01 15:59:59 UTC)
    );
    let late = datetime!(2026-12-31 15:30 UTC);
    assert_eq!(
        validity_end(late, 1).unwrap(),
        datetime!(2027-12-31 15:59:59 UTC)
    );
    // Refusals.
    assert!(matches!(
        validity_end(seed, 0),
        Err(CaError::InvalidInput {
            field: "validity years",
            ..
        })
    ));
    assert!(validity_end(datetime!(9999-06-01 0:00 UTC), 1).is_err());
}

#[test]
fn self_signed_ca_profile() {
    for key in [p256(), rsa(2048)] {
        let now = beijing(2025, 1, 2, 9, 0, 0);
        let params = self_signed_ca_params(&profile(), now, [0x8e; 16]).unwrap();
        let der = self_signed_ca(&params, &key, &key.subject_public_key_info()).unwrap();
        let ca = parse(&der);
        assert_eq!(ca.subject().as_raw(), ca.issuer().as_raw());
        let subject: Vec<(String, Tag)> = ca
            .subject()
            .iter_attributes()
            .map(|a| (a.attr_type().to_id_string(), a.attr_value().tag()))
            .collect();
        assert_eq!(
            subject,
            [
                ("2.5.4.6".to_string(), Tag::PrintableString),
                ("2.5.4.10".to_string(), Tag::Utf8String),
                ("2.5.4.3".to_string(), Tag::Utf8String),
            ]
        );
        let bc = ca.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = ca.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
        assert_eq!(ku.value.flags, 0b110_0000);
        let (_, ski) = parse_issuing_ca(&der, KeyUsagePurpose::KeyCertSign).unwrap();
        assert_eq!(ski, key_identifier(key.der_bytes()));
        assert_eq!(
            ca.validity().not_after.to_datetime(),
            datetime!(2035-01-02 15:59:59 UTC)
        );
        ca.verify_signature(None).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let pem = write_pem(dir.path(), "ca", "x509", &der);
        let (ok, out, err) = openssl_verify(&pem, &pem, now + time::Duration::hours(1), &[]);
        assert!(ok, "{out}{err}");
        let pem = pem.to_str().unwrap();
        let text = openssl_ok(&["x509", "-text", "-noout", "-nameopt", "utf8", "-in", pem]);
        for needle in [
            "CA:TRUE, pathlen:0",
            "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign\n",
            "CN=示例单位证书 CA",
            "X509v3 Subject Key Identifier",
        ] {
            assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
        }
    }
    let mut bad = profile();
    bad.validity_years = 0;
    assert!(self_signed_ca_params(&bad, datetime!(2025-01-01 0:00 UTC), [1; 16]).is_err());
    bad = profile();
    bad.common_name = " ".into();
    assert!(matches!(
        self_signed_ca_params(&bad, datetime!(2025-01-01 0:00 UTC), [1; 16]),
        Err(CaError::InvalidInput {
            field: "CA common name",
            ..
        })
    ));
    assert!(self_signed_ca_params(&profile(), datetime!(2025-01-01 0:00 UTC), [0; 16]).is_err());
    // A CA key the station does not accept.
    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let params =
        self_signed_ca_params(&profile(), datetime!(2025-01-01 0:00 UTC), [1; 16]).unwrap();
    assert!(matches!(
        self_signed_ca(&params, &p384, &p384.subject_public_key_info()),
        Err(CaError::UnsupportedKey { what: "CA key", .. })
    ));
}

#[test]
fn seal_maker_certificate() {
    let now = beijing(2025, 6, 1, 10, 0, 0);
    let ca_key = p256();
    let ca_der = make_ca(&ca_key, now);
    let maker = p256();
    let params = maker_cert_params(
        "Station-BJ-01",
        "北京示例数字认证有限公司",
        now,
        3,
        &[0x21; 16],
        CRL_URL,
    )
    .unwrap();
    let der =
        issue_seal_maker_cert(&params, &maker.subject_public_key_info(), &ca_der, &ca_key).unwrap();
    let cert = parse(&der);
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Station-BJ-01 Seal Maker"
    );
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(ku.value.flags, 0b11);
    assert!(
        cert.extended_key_usage().unwrap().is_none(),
        "no EKU by design"
    );
    assert!(cert.basic_constraints().unwrap().is_none());
    assert_eq!(cert.public_key().raw, maker.subject_public_key_info());
    assert_eq!(
        cert.validity().not_after.to_datetime(),
        datetime!(2028-06-01 15:59:59 UTC)
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
    let pem = write_pem(dir.path(), "maker", "x509", &der);
    let (ok, out, err) = openssl_verify(&ca_pem, &pem, now + time::Duration::hours(1), &[]);
    assert!(ok, "{out}{err}");
    assert!(maker_cert_params("  ", "O", now, 1, &[1; 8], CRL_URL).is_err());
}

#[test]
fn subject_comes_from_the_order_and_is_validated() {
    let now = beijing(2025, 5, 20, 12, 0, 0);
    let ca_key = p256();
    let ca_der = make_ca(&ca_key, now);
    let spki = p256().subject_public_key_info();
    let issue = |order: &Order, url: StatusUrls<'_>| {
        issue_unit_certificate(order, &spki, &ca_der, &ca_key, &[0x11; 16], now, url)
    };

    // No department (or a blank one): no OU at all.
    for department in [None, Some("  ".to_string())] {
        let mut order = sample_order();
        order.company.department = department;
        let der = issue(&order, URLS).unwrap();
        let cert = parse(&der);
        assert!(cert.subject().iter_organizational_unit().next().is_none());
        assert_eq!(cert.subject().iter_attributes().count(), 6);
    }

    let refused = |order: Order, field: &str| {
        let err = issue(&order, URLS).unwrap_err();
        assert!(
            matches!(&err, CaError::InvalidInput { field: f, .. } if *f == field),
            "{field}: {err}"
        );
    };
    let mut o = sample_order();
    o.company.name = "示例\n公司".into();
    refused(o, "company.name");
    let mut o = sample_order();
    o.company.name = "长".repeat(65);
    refused(o, "company.name");
    let mut o = sample_order();
    o.company.uscc = "91440300715267２6XG".into(); // a full-width digit slipped through
    refused(o, "company.uscc");
    let mut o = sample_order();
    o.shipping.city = String::new();
    refused(o, "shipping.city");
    let mut o = sample_order();
    o.product.years = 0;
    refused(o, "validity years");

    // URLs that rcgen would panic on (non-ASCII IA5String) are refused, not encoded.
    for url in [
        "http://crl.示例.cn/a.crl",
        "",
        "ftp://x/y.crl",
        "http://a b/c",
    ] {
        let crl = StatusUrls { crl: url, ..URLS };
        assert!(
            matches!(
                issue(&sample_order(), crl),
                Err(CaError::InvalidInput {
                    field: "CRL URL",
                    ..
                })
            ),
            "{url:?}"
        );
        let ocsp = StatusUrls { ocsp: url, ..URLS };
        assert!(
            matches!(
                issue(&sample_order(), ocsp),
                Err(CaError::InvalidInput {
                    field: "OCSP URL",
                    ..
                })
            ),
            "{url:?}"
        );
    }
}

proptest! {
    /// Whatever the instant and the product's years, validity ends at 23:59:59 Beijing time
    /// on the Beijing day of issuance, `years` later (Feb 29 -> Feb 28), after it began.
    #[test]
    fn validity_always_ends_at_beijing_midnight(
        secs in datetime!(1950-01-01 0:00 UTC).unix_timestamp()
            ..datetime!(2090-01-01 0:00 UTC).unix_timestamp(),
        nanos in 0u32..1_000_000_000,
        offset_minutes in -720i32..=840,
        years in 1u8..=3,
    ) {
        let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        let now = (OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::nanoseconds(i64::from(nanos)))
        .to_offset(offset);
        let end = validity_end(now, years).unwrap();
        prop_assert!(end > now);
        prop_assert_eq!(end.offset(), UtcOffset::UTC);
        prop_assert_eq!((end.hour(), end.minute(), end.second(), end.nanosecond()), (15, 59, 59, 0));
        let (start_bj, end_bj) = (now.to_offset(BEIJING), end.to_offset(BEIJING));
        prop_assert_eq!(end_bj.time(), time!(23:59:59));
        prop_assert_eq!(end_bj.year(), start_bj.year() + i32::from(years));
        prop_assert_eq!(end_bj.month(), start_bj.month());
        let leap_day_shift = start_bj.month() == Month::February
            && start_bj.day() == 29
            && !time::util::is_leap_year(end_bj.year());
        prop_assert_eq!(end_bj.day(), if leap_day_shift { 28 } else { start_bj.day() });
        // What goes into a certificate: the same end, and a start not after `now`.
        prop_assert_eq!(x509_instant("notAfter", end).unwrap(), end);
        prop_assert!(x509_instant("notBefore", now).unwrap() <= now);
    }
}
