//! Certificate revocation lists of the issuing CA (RFC 5280 §5), signed through the CA's
//! [`SigningKey`].
//!
//! Invariants: the CRL's issuer is byte-for-byte the CA certificate's subject, its AKI is the CA
//! certificate's SKI, its signature verifies under the CA certificate's public key (checked after
//! signing), `nextUpdate` is after `thisUpdate`. Entries revoked for an unspecified reason carry no
//! reasonCode extension, as RFC 5280 §5.3.1 asks. Which serials are revoked, and the monotonic
//! CRL number, are the store's (the revocations table); this module only encodes and signs.

use super::CaError;
use super::csr::accepted_key;
use super::issuance::{check_key_matches_ca, parse_issuing_ca};
use super::sm2_stamp::{StandIn, assemble, restamp_crl, sign_with};
use crate::domain::KeyAlgorithm;
use crate::x509::{checked_serial, minimal_unsigned, rfc3339, verify_with_key, x509_instant};
use const_oid::ObjectIdentifier;
pub use rcgen::RevocationReason;
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyUsagePurpose, RevokedCertParams,
    SerialNumber, SigningKey,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// One revoked certificate as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The certificate's serial, as given at issuance (minimal big-endian bytes).
    pub serial: Vec<u8>,
    /// When the CA processed the revocation.
    pub revoked_at: OffsetDateTime,
    /// Why. `Unspecified` is encoded by omitting the reasonCode extension (RFC 5280 §5.3.1).
    pub reason: RevocationReason,
}

/// The RFC 5280 CRLReason of a reason as the station records it: its ASN.1 name
/// (`keyCompromise`, ...). `removeFromCRL` is none (it only exists in delta CRLs).
pub fn reason_from_name(name: &str) -> Option<RevocationReason> {
    use RevocationReason as R;
    Some(match name {
        "unspecified" => R::Unspecified,
        "keyCompromise" => R::KeyCompromise,
        "cACompromise" => R::CaCompromise,
        "affiliationChanged" => R::AffiliationChanged,
        "superseded" => R::Superseded,
        "cessationOfOperation" => R::CessationOfOperation,
        "certificateHold" => R::CertificateHold,
        "privilegeWithdrawn" => R::PrivilegeWithdrawn,
        "aACompromise" => R::AaCompromise,
        _ => return None,
    })
}

/// Builds and signs a full CRL listing `revoked`, returned in DER.
///
/// `crl_number` must grow with every CRL the CA publishes (RFC 5280 §5.2.3); the caller keeps
/// it. `removeFromCRL` is refused: it only has a meaning in delta CRLs, which this CA does not
/// issue.
///
/// An SM2 CA's CRL goes through `super::sm2_stamp`, as its certificates do: rcgen encodes the
/// CRL around a stand-in key, the TBSCertList is re-stamped with SM2-with-SM3 and signed by the
/// CA key on its token.
pub fn build_crl(
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
    revoked: &[RevokedEntry],
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let this_update = x509_instant("CRL thisUpdate", this_update)?;
    let next_update = x509_instant("CRL nextUpdate", next_update)?;
    if next_update <= this_update {
        return Err(CaError::InvalidInput {
            field: "CRL nextUpdate",
            reason: format!(
                "{} is not after thisUpdate {}",
                rfc3339(next_update),
                rfc3339(this_update)
            ),
        });
    }
    let revoked_certs = revoked
        .iter()
        .map(|entry| {
            if entry.reason == RevocationReason::RemoveFromCrl {
                return Err(CaError::InvalidInput {
                    field: "revocation reason",
                    reason: "removeFromCRL only exists in delta CRLs".into(),
                });
            }
            Ok(RevokedCertParams {
                // Serials of any length are listed (e.g. from an older CA), but still canonical
                // and within RFC 5280's 20 octets, so the entry matches the certificate.
                serial_number: checked_serial("revoked serial", &entry.serial, 1)?,
                revocation_time: x509_instant("revocation time", entry.revoked_at)?,
                reason_code: (entry.reason != RevocationReason::Unspecified)
                    .then_some(entry.reason),
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (ca, ca_ski) = parse_issuing_ca(ca_cert_der, KeyUsagePurpose::CrlSign)?;
    check_key_matches_ca(&ca, ca_key)?;
    let (ca_algorithm, _) = accepted_key("CA certificate", ca.public_key())?;
    let read_issuer = |source| CaError::Rcgen {
        operation: "read CA certificate as CRL issuer",
        source,
    };
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&crl_number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        // The CRL's AKI must be the CA certificate's SKI, whatever rcgen would derive.
        key_identifier_method: KeyIdMethod::PreSpecified(ca_ski.clone()),
    };
    let operation = "sign CRL";
    let der = if ca_algorithm == KeyAlgorithm::Sm2 {
        let stand_in = StandIn(ca_key.der_bytes());
        let issuer =
            Issuer::from_ca_cert_der(&ca_cert_der.into(), &stand_in).map_err(read_issuer)?;
        let draft = params
            .signed_by(&issuer)
            .map_err(|source| CaError::Rcgen { operation, source })?;
        let tbs = restamp_crl(draft.der(), ca_algorithm)?;
        let signature = sign_with(ca_key, &tbs, operation)?;
        assemble(&tbs, ca_algorithm, &signature, "CRL")?
    } else {
        let issuer = Issuer::from_ca_cert_der(&ca_cert_der.into(), ca_key).map_err(read_issuer)?;
        let crl = params
            .signed_by(&issuer)
            .map_err(|source| CaError::Rcgen { operation, source })?;
        crl.der().to_vec()
    };

    let fail = |reason: String| CaError::SelfCheck {
        artefact: "CRL",
        reason,
    };
    let (rest, parsed) = CertificateRevocationList::from_der(&der)
        .map_err(|e| fail(format!("does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes".into()));
    }
    let algorithm = ObjectIdentifier::from_bytes(parsed.signature_algorithm.algorithm.as_bytes())
        .map_err(|e| fail(format!("signature algorithm: {e}")))?;
    verify_with_key(
        ca.public_key(),
        &algorithm,
        parsed.tbs_cert_list.as_ref(),
        &parsed.signature_value.data,
    )
    .map_err(|_| CaError::CaKeyMismatch {
        what: "the CRL's signature does not verify under the CA certificate's public key",
    })?;
    if parsed.issuer().as_raw() != ca.subject().as_raw() {
        return Err(fail(
            "issuer DN is not byte-for-byte the CA certificate's subject".into(),
        ));
    }
    let listed: Vec<&[u8]> = parsed
        .iter_revoked_certificates()
        .map(|r| minimal_unsigned(r.raw_serial()))
        .collect();
    let wanted: Vec<&[u8]> = revoked.iter().map(|r| r.serial.as_slice()).collect();
    if listed != wanted {
        return Err(fail("revoked serials differ from those given".into()));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ca::issuance::issue_unit_certificate;
    use crate::ca::testkit::{
        MislabelledToken, URLS, beijing, make_ca, openssl, openssl_ok, p256, rsa, sample_order,
        write_pem,
    };
    use rcgen::{KeyPair, PublicKeyData};
    use time::macros::datetime;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::x509::X509Version;

    const REVOKED_HIGH_BIT: [u8; 16] = [
        0x9a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0x0f,
    ];

    fn entries() -> Vec<RevokedEntry> {
        vec![
            RevokedEntry {
                serial: REVOKED_HIGH_BIT.to_vec(),
                revoked_at: datetime!(2025-06-01 08:00 UTC),
                reason: RevocationReason::KeyCompromise,
            },
            RevokedEntry {
                serial: vec![0x11; 16],
                revoked_at: datetime!(2025-06-02 08:00 UTC),
                reason: RevocationReason::Unspecified,
            },
            RevokedEntry {
                serial: vec![0x22; 8],
                revoked_at: datetime!(2025-06-03 08:00 UTC),
                reason: RevocationReason::Superseded,
            },
        ]
    }

    fn check_crl(ca_key: &KeyPair) {
        let now = beijing(2025, 6, 1, 10, 0, 0);
        let ca_der = make_ca(ca_key, now);
        let this_update = datetime!(2025-06-04 00:00 UTC);
        let next_update = datetime!(2025-06-11 00:00 UTC);
        let der = build_crl(&ca_der, ca_key, &entries(), 7, this_update, next_update).unwrap();

        // x509-parser: structure, issuer, times, number, AKI, entries, reasons, signature.
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (rest, crl) = CertificateRevocationList::from_der(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(crl.version(), Some(X509Version::V2));
        assert_eq!(crl.issuer().as_raw(), ca.subject().as_raw());
        assert_eq!(crl.last_update().to_datetime(), this_update);
        assert_eq!(crl.next_update().unwrap().to_datetime(), next_update);
        assert_eq!(crl.crl_number().unwrap().to_bytes_be(), [7]);
        let ca_ski = ca
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        let aki = crl
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ca_ski);
        let listed: Vec<(Vec<u8>, Option<u8>)> = crl
            .iter_revoked_certificates()
            .map(|r| {
                (
                    r.serial().to_bytes_be(),
                    r.reason_code().map(|(_, code)| code.0),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                (REVOKED_HIGH_BIT.to_vec(), Some(1)),
                (vec![0x11; 16], None), // unspecified: no reasonCode extension
                (vec![0x22; 8], Some(4)),
            ]
        );
        crl.verify_signature(ca.public_key()).unwrap();

        // openssl: text listing, signature check against the CA.
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
        let crl_pem = write_pem(dir.path(), "crl", "crl", &der);
        let (ca_pem, crl_pem) = (ca_pem.to_str().unwrap(), crl_pem.to_str().unwrap());
        let text = openssl_ok(&["crl", "-text", "-noout", "-in", crl_pem]);
        for needle in [
            "Serial Number: 9A112233445566778899AABBCCDDEE0F",
            "Serial Number: 11111111111111111111111111111111",
            "Serial Number: 2222222222222222",
            "Key Compromise",
            "Superseded",
            "X509v3 CRL Number: \n                7\n",
            "Next Update: Jun 11 00:00:00 2025 GMT",
        ] {
            assert!(
                text.contains(needle),
                "openssl crl text lacks {needle:?}:\n{text}"
            );
        }
        let (ok, out, err) = openssl(&["crl", "-noout", "-in", crl_pem, "-CAfile", ca_pem]);
        assert!(ok && (out + &err).contains("verify OK"), "CRL signature");

        // End to end: a unit certificate whose serial is listed is refused as revoked; one whose
        // serial is not listed passes the same CRL check.
        let spki = p256().subject_public_key_info();
        let at = (this_update + time::Duration::hours(1))
            .unix_timestamp()
            .to_string();
        for (serial, revoked) in [(&REVOKED_HIGH_BIT[..], true), (&[0x33; 16][..], false)] {
            let cert =
                issue_unit_certificate(&sample_order(), &spki, &ca_der, ca_key, serial, now, URLS)
                    .unwrap();
            let cert_pem = write_pem(dir.path(), "cert", "x509", &cert);
            let (ok, out, err) = openssl(&[
                "verify",
                "-crl_check",
                "-attime",
                &at,
                "-CAfile",
                ca_pem,
                "-CRLfile",
                crl_pem,
                cert_pem.to_str().unwrap(),
            ]);
            if revoked {
                assert!(
                    !ok && (out + &err).contains("certificate revoked"),
                    "serial {serial:02x?}"
                );
            } else {
                assert!(ok, "{out}{err}");
            }
        }
    }

    #[test]
    fn reason_names_are_rfc_5280_asn1_names() {
        use RevocationReason as R;
        for (name, reason, code) in [
            ("unspecified", R::Unspecified, 0),
            ("keyCompromise", R::KeyCompromise, 1),
            ("cACompromise", R::CaCompromise, 2),
            ("affiliationChanged", R::AffiliationChanged, 3),
            ("superseded", R::Superseded, 4),
            ("cessationOfOperation", R::CessationOfOperation, 5),
            ("certificateHold", R::CertificateHold, 6),
            ("privilegeWithdrawn", R::PrivilegeWithdrawn, 9),
            ("aACompromise", R::AaCompromise, 10),
        ] {
            assert_eq!(reason_from_name(name), Some(reason), "{name}");
            assert_eq!(reason as u8, code, "{name}");
        }
        for bad in ["removeFromCRL", "KeyCompromise", "key_compromise", ""] {
            assert_eq!(reason_from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn crl_with_p256_ca() {
        check_crl(&p256());
    }

    #[test]
    fn crl_with_rsa2048_ca() {
        check_crl(&rsa(2048));
    }

    #[test]
    fn empty_crl_is_valid() {
        let key = p256();
        let ca_der = make_ca(&key, beijing(2025, 6, 1, 10, 0, 0));
        let der = build_crl(
            &ca_der,
            &key,
            &[],
            1,
            datetime!(2025-06-04 00:00 UTC),
            datetime!(2025-06-05 00:00 UTC),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = write_pem(dir.path(), "ca", "x509", &ca_der);
        let crl_pem = write_pem(dir.path(), "crl", "crl", &der);
        let text = openssl_ok(&["crl", "-text", "-noout", "-in", crl_pem.to_str().unwrap()]);
        assert!(text.contains("No Revoked Certificates"), "{text}");
        let (ok, out, err) = openssl(&[
            "crl",
            "-noout",
            "-in",
            crl_pem.to_str().unwrap(),
            "-CAfile",
            ca_pem.to_str().unwrap(),
        ]);
        assert!(ok && (out + &err).contains("verify OK"));
    }

    #[test]
    fn crl_refusals() {
        let key = p256();
        let ca_der = make_ca(&key, beijing(2025, 6, 1, 10, 0, 0));
        let t = datetime!(2025-06-04 00:00 UTC);
        let week = t + time::Duration::days(7);

        assert!(matches!(
            build_crl(&ca_der, &key, &[], 2, t, t),
            Err(CaError::InvalidInput {
                field: "CRL nextUpdate",
                ..
            })
        ));
        let mut bad = entries();
        bad[1].reason = RevocationReason::RemoveFromCrl;
        assert!(matches!(
            build_crl(&ca_der, &key, &bad, 2, t, week),
            Err(CaError::InvalidInput {
                field: "revocation reason",
                ..
            })
        ));
        let mut bad = entries();
        bad[0].serial = vec![0x00, 0x01];
        assert!(matches!(
            build_crl(&ca_der, &key, &bad, 2, t, week),
            Err(CaError::InvalidInput {
                field: "revoked serial",
                ..
            })
        ));
        assert!(matches!(
            build_crl(b"junk", &key, &[], 2, t, week),
            Err(CaError::CaCertificate(_))
        ));

        // Wrong key: refused up front; mislabelled token: caught by the signature check.
        let other = p256();
        assert!(matches!(
            build_crl(&ca_der, &other, &entries(), 2, t, week),
            Err(CaError::CaKeyMismatch { .. })
        ));
        let token = MislabelledToken {
            public: &key,
            private: &other,
        };
        let err = build_crl(&ca_der, &token, &entries(), 2, t, week).unwrap_err();
        assert!(
            matches!(&err, CaError::CaKeyMismatch { what } if what.contains("CRL")),
            "{err}"
        );
    }
}
