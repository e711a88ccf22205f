//! X.509 and DER building blocks shared by the CA ([`crate::ca`]: certificates, CSRs, CRLs) and
//! the electronic seals ([`crate::seal`]): certificate parsing, signature algorithms and
//! verification, serials and other DER integers, key identifiers and fingerprints, name values,
//! and the encoding of instants.
//!
//! Nothing here knows a profile or a policy (which keys the CA accepts, what a unit certificate
//! holds): those stay with their module. What is here is the one copy of each rule of the
//! standards both need, so that a certificate the CA writes and a certificate a seal embeds are
//! read, and their instants encoded, the same way.
//!
//! Invariants:
//! - a certificate parses only as exactly one DER certificate (no trailing bytes);
//! - instants that go into a certificate or CRL are UTC, whole seconds, and inside the range the
//!   encoders accept (rcgen asserts on anything else, so these checks keep input from panicking
//!   the station); GeneralizedTime values of seals are whole seconds from 1970 on;
//! - a serial is a positive, minimal DER INTEGER of at most 20 octets (RFC 5280 §4.1.2.2);
//! - name values are non-empty, trimmed, control-free and within their X.520 upper bound.

use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::asn1::GeneralizedTime;
use rcgen::string::PrintableString;
use rcgen::{DnValue, SerialNumber};
use ring::signature::{self, VerificationAlgorithm};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::domain::KeyAlgorithm;

/// A value that cannot go into an X.509 or DER structure as it is. The CA reports it as
/// `CaError::InvalidInput`, the seal module as `SealError::InvalidField`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidValue {
    /// The offending field, e.g. `serial` or `valid_start`.
    pub field: &'static str,
    /// Why it was refused.
    pub reason: String,
}

fn invalid(field: &'static str, reason: String) -> InvalidValue {
    InvalidValue { field, reason }
}

// ---------------------------------------------------------------------------------------------
// Algorithms and signatures.

/// `ecdsa-with-SHA256` (RFC 5758): the signature is a DER `ECDSA-Sig-Value`.
pub const OID_ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `sha256WithRSAEncryption` (RFC 4055): the signature is PKCS#1 v1.5.
pub const OID_SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_CURVE_P256: &str = "1.2.840.10045.3.1.7";
const OID_CURVE_P384: &str = "1.3.132.0.34";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The signature algorithm a key of `key` signs with in this station, and its name for
/// messages: ecdsa-with-SHA256 for P-256, sha256WithRSAEncryption for RSA.
pub fn signature_algorithm(key: KeyAlgorithm) -> (ObjectIdentifier, &'static str) {
    match key {
        KeyAlgorithm::EcdsaP256 => (OID_ECDSA_WITH_SHA256, "ecdsa-with-SHA256"),
        KeyAlgorithm::Rsa2048 => (OID_SHA256_WITH_RSA, "sha256WithRSAEncryption"),
        KeyAlgorithm::Sm2 => (crate::sm2::OID_SM2_WITH_SM3, "SM2-with-SM3"),
    }
}

/// Verifies the signature of the certificate `cert` with the issuer's key `issuer`, under the
/// algorithm the certificate names. x509-parser's own `verify_signature` does not know
/// SM2-with-SM3: every check of a signature by the CA goes through here instead.
pub(crate) fn verify_signed_by(
    cert: &X509Certificate<'_>,
    issuer: &SubjectPublicKeyInfo<'_>,
) -> Result<(), String> {
    let alg = ObjectIdentifier::from_bytes(cert.signature_algorithm.algorithm.as_bytes())
        .map_err(|e| format!("signature algorithm: {e}"))?;
    let signature = &cert.signature_value.data;
    verify_with_key(issuer, &alg, cert.tbs_certificate.as_ref(), signature)
}

/// Parses one DER X.509 certificate and rejects bytes after it.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Verifies `signature` over `data` with the key of the DER certificate `cert_der`, under the
/// signature algorithm `alg`.
pub(crate) fn verify_with_certificate(
    cert_der: &[u8],
    alg: &ObjectIdentifier,
    data: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let cert = parse_certificate(cert_der)?;
    verify_with_key(cert.public_key(), alg, data, signature)
}

/// Verifies `signature` over `data` with the public key `spki` under the signature algorithm
/// `alg`: ecdsa-with-SHA256 on P-256 or P-384, sha256WithRSAEncryption, or SM2-with-SM3 (DER
/// signature, default distinguishing ID) on sm2p256v1. The key's algorithm must be the one `alg`
/// names.
pub(crate) fn verify_with_key(
    spki: &SubjectPublicKeyInfo<'_>,
    alg: &ObjectIdentifier,
    data: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key_alg = spki.algorithm.algorithm.to_id_string();
    let curve = || {
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|oid| oid.to_id_string())
    };
    if *alg == crate::sm2::OID_SM2_WITH_SM3 {
        if key_alg != OID_EC_PUBLIC_KEY || curve() != Some(crate::sm2::OID_SM2_CURVE.to_string()) {
            return Err(format!(
                "signAlgID is SM2-with-SM3 but the key is {key_alg} on {:?}",
                curve()
            ));
        }
        return crate::sm2::verify(&spki.subject_public_key.data, data, signature)
            .map_err(|e| e.to_string());
    }
    let verifier: &dyn VerificationAlgorithm = if *alg == OID_ECDSA_WITH_SHA256 {
        if key_alg != OID_EC_PUBLIC_KEY {
            return Err(format!(
                "signAlgID is ecdsa-with-SHA256 but the key is {key_alg}"
            ));
        }
        match curve().as_deref() {
            Some(OID_CURVE_P256) => &signature::ECDSA_P256_SHA256_ASN1,
            Some(OID_CURVE_P384) => &signature::ECDSA_P384_SHA256_ASN1,
            other => return Err(format!("unsupported EC curve {other:?}")),
        }
    } else if *alg == OID_SHA256_WITH_RSA {
        if key_alg != OID_RSA_ENCRYPTION {
            return Err(format!(
                "signAlgID is sha256WithRSAEncryption but the key is {key_alg}"
            ));
        }
        &signature::RSA_PKCS1_2048_8192_SHA256
    } else {
        return Err(format!("unsupported signAlgID {alg}"));
    };
    signature::UnparsedPublicKey::new(verifier, &spki.subject_public_key.data)
        .verify(data, signature)
        .map_err(|_| "signature does not verify".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Integers, identifiers, fingerprints.

/// RFC 5280 §4.1.2.2: a serial's DER INTEGER content is at most 20 octets.
const MAX_SERIAL_OCTETS: usize = 20;

/// The big-endian bytes of a non-negative DER INTEGER without its leading zero octets.
pub(crate) fn minimal_unsigned(raw: &[u8]) -> &[u8] {
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    if first == raw.len() {
        // Zero: keep one octet so that hex shows "00".
        &raw[raw.len().saturating_sub(1)..]
    } else {
        &raw[first..]
    }
}

/// Checks a caller-provided serial (certificate or CRL entry) of at least `min_len` bytes and
/// wraps it for rcgen.
///
/// The first byte must be non-zero so the certificate's serial is exactly the given bytes (DER
/// drops leading zero octets; the caller records these bytes as "the serial").
pub(crate) fn checked_serial(
    field: &'static str,
    serial: &[u8],
    min_len: usize,
) -> Result<SerialNumber, InvalidValue> {
    let bad = |reason: String| Err(invalid(field, reason));
    if serial.len() < min_len {
        return bad(format!(
            "{} bytes, at least {min_len} (64 random bits) required",
            serial.len()
        ));
    }
    match serial.first() {
        None | Some(0) => {
            return bad("the first byte must be non-zero (minimal, canonical integer)".into());
        }
        Some(first) => {
            // DER prepends 0x00 when the top bit is set, to keep the INTEGER positive.
            let octets = serial.len() + usize::from(*first >= 0x80);
            if octets > MAX_SERIAL_OCTETS {
                return bad(format!(
                    "encodes to {octets} octets, RFC 5280 allows at most {MAX_SERIAL_OCTETS}"
                ));
            }
        }
    }
    Ok(SerialNumber::from_slice(serial))
}

/// RFC 7093 §2 method 1 key identifier: the leftmost 160 bits of SHA-256 over the
/// subjectPublicKey BIT STRING value.
///
/// Computed here, not by rcgen, because rcgen only derives key identifiers with its `crypto`
/// feature, which the station does not enable (its keys live in PKCS#11 tokens, not in rcgen).
pub(crate) fn key_identifier(subject_public_key: &[u8]) -> Vec<u8> {
    Sha256::digest(subject_public_key)[..20].to_vec()
}

/// SHA-256 fingerprint of a DER certificate, lower-case hex without separators.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

// ---------------------------------------------------------------------------------------------
// Names.

/// X.520 upper bound (RFC 5280 appendix A) of ub-common-name, ub-organization-name and
/// ub-organizational-unit-name, in characters.
pub(crate) const UB_NAME: usize = 64;
/// X.520 upper bound of ub-state-name and ub-locality-name, in characters.
pub(crate) const UB_PLACE: usize = 128;
/// X.520 upper bound of ub-serial-number, in characters.
pub(crate) const UB_SERIAL_NUMBER: usize = 64;

/// A name attribute value as UTF8String (RFC 5280 §4.1.2.6: what Chinese names need).
pub(crate) fn utf8_name(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<DnValue, InvalidValue> {
    check_name_text(field, value, max_chars)?;
    Ok(DnValue::Utf8String(value.to_owned()))
}

/// A name attribute value as PrintableString (country codes, serial numbers).
pub(crate) fn printable_name(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<DnValue, InvalidValue> {
    check_name_text(field, value, max_chars)?;
    let s = PrintableString::try_from(value).map_err(|_| {
        invalid(
            field,
            format!("{value:?} has characters outside PrintableString"),
        )
    })?;
    Ok(DnValue::PrintableString(s))
}

fn check_name_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), InvalidValue> {
    let bad = |reason: String| Err(invalid(field, reason));
    if value.trim().is_empty() {
        return bad("must not be empty".into());
    }
    if value.trim() != value {
        return bad(format!(
            "{value:?} has leading or trailing whitespace (not normalised)"
        ));
    }
    if value.chars().any(char::is_control) {
        return bad(format!("{value:?} contains a control character"));
    }
    let n = value.chars().count();
    if n > max_chars {
        return bad(format!("{n} characters, X.520 allows at most {max_chars}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Instants.

/// An instant as X.509 will carry it: UTC, whole seconds, inside the range rcgen can encode
/// (UTCTime 1950-2049, GeneralizedTime up to 9999). rcgen asserts on anything else, so this is
/// the guard that keeps out-of-range input from panicking the station.
pub(crate) fn x509_instant(
    field: &'static str,
    t: OffsetDateTime,
) -> Result<OffsetDateTime, InvalidValue> {
    let utc = t.to_offset(UtcOffset::UTC);
    if !(1950..=9999).contains(&utc.year()) {
        return Err(invalid(
            field,
            format!(
                "{} is outside the X.509 time range (years 1950-9999)",
                rfc3339(utc)
            ),
        ));
    }
    utc.replace_nanosecond(0)
        .map_err(|e| invalid(field, e.to_string()))
}

/// An instant for messages: RFC 3339 (`2021-11-26T15:59:59Z`).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// An instant as a DER GeneralizedTime: whole seconds in UTC (`YYYYMMDDHHMMSSZ`), sub-second
/// parts truncated. Instants before 1970 are refused (the encoder counts from the Unix epoch).
pub(crate) fn generalized_time(
    field: &'static str,
    t: OffsetDateTime,
) -> Result<GeneralizedTime, InvalidValue> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| invalid(field, format!("{t} is before 1970-01-01")))?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| invalid(field, format!("{t} is not a GeneralizedTime: {e}")))
}

/// Converts a parsed GeneralizedTime to an `OffsetDateTime` (UTC).
pub fn generalized_time_to_offset(t: &GeneralizedTime) -> Result<OffsetDateTime, InvalidValue> {
    i64::try_from(t.to_unix_duration().as_secs())
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .ok_or_else(|| invalid("GeneralizedTime", "out of range".to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use time::macros::datetime;

    #[test]
    fn minimal_unsigned_drops_leading_zeros_but_keeps_zero() {
        assert_eq!(minimal_unsigned(&[0, 0, 0x80, 1]), [0x80, 1]);
        assert_eq!(minimal_unsigned(&[0x7f]), [0x7f]);
        assert_eq!(minimal_unsigned(&[0, 0]), [0]);
        assert_eq!(minimal_unsigned(&[]), [] as [u8; 0]);
    }

    #[test]
    fn certificates_parse_alone_or_not_at_all() {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::default()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        assert!(parse_certificate(&der).is_ok());
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(
            parse_certificate(&trailing).unwrap_err(),
            "1 trailing bytes after the certificate"
        );
        assert!(parse_certificate(b"junk").is_err());
    }

    #[test]
    fn instants_are_utc_whole_seconds_in_range() {
        let t = datetime!(2025-06-01 08:00:00.75 +8);
        assert_eq!(
            x509_instant("t", t).unwrap(),
            datetime!(2025-06-01 00:00:00 UTC)
        );
        let err = x509_instant("notBefore", datetime!(1900-01-01 0:00 UTC)).unwrap_err();
        assert_eq!(err.field, "notBefore");
        assert!(err.reason.contains("1950-9999"), "{err}");

        let g = generalized_time("g", t).unwrap();
        assert_eq!(
            generalized_time_to_offset(&g).unwrap(),
            datetime!(2025-06-01 00:00:00 UTC)
        );
        assert!(generalized_time("valid_start", datetime!(1969-12-31 23:59:59 UTC)).is_err());
    }

    #[test]
    fn name_values_are_bounded_and_clean() {
        assert!(utf8_name("O", "示例", UB_NAME).is_ok());
        for bad in ["", " ", " a", "a\n", &"长".repeat(65)] {
            assert_eq!(utf8_name("O", bad, UB_NAME).unwrap_err().field, "O");
        }
        assert!(printable_name("C", "CN", 2).is_ok());
        assert!(printable_name("serialNumber", "９1", UB_SERIAL_NUMBER).is_err());
    }

    #[test]
    fn signature_algorithms_follow_the_key() {
        assert_eq!(
            signature_algorithm(KeyAlgorithm::EcdsaP256).0,
            OID_ECDSA_WITH_SHA256
        );
        assert_eq!(
            signature_algorithm(KeyAlgorithm::Rsa2048).0,
            OID_SHA256_WITH_RSA
        );
    }
}
