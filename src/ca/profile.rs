//! Certificate profiles of the issuing CA: its self-signed certificate, the station's seal-maker
//! certificate, and the unit certificate (单位证书) of domain doc §3; CSR checking; display helpers.
//!
//! Invariants:
//! - A unit certificate's subject is built from the validated [`Order`], never from the CSR: the
//!   CSR only proves that the requester holds the private key (its self-signature is verified by
//!   [`verify_csr`]); who the key belongs to is what the back office reviewed, i.e. the order.
//! - Accepted keys (CSR, seal maker, CA): ECDSA P-256 (signatures ecdsa-with-SHA256) and RSA of
//!   at least 2048 bits (sha256WithRSAEncryption). Anything else is refused by name.
//! - Validity ends at 23:59:59 Beijing time (UTC+8) on the Beijing calendar day of issuance, N
//!   years later; February 29 becomes February 28 in a non-leap target year ([`validity_end`]).
//! - Key identifiers (SKI, and therefore the AKI of what the CA issues) are RFC 7093 §2 method 1:
//!   the leftmost 160 bits of SHA-256 over the subjectPublicKey BIT STRING value. They are computed
//!   here, not by rcgen, because rcgen only derives them with its `crypto` feature, which the
//!   station does not enable (the keys live in PKCS#11 tokens, not in rcgen).
//! - Every signed certificate is parsed back and checked (signature under the CA certificate's
//!   key, issuer DN, public key, serial, AKI) before it is returned.

use super::CaError;
use crate::domain::Order;
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose,
    SerialNumber, SigningKey,
};
use sha2::{Digest, Sha256};
use time::macros::{offset, time};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Beijing time, the reference for "the same calendar day" and the 23:59:59 end of validity.
pub const BEIJING: UtcOffset = offset!(+8);

/// The extension carrying the USCC: GM/T 0015's identity-identifier arc, used by Chinese CAs for
/// the organisation code and now the unified social credit code (domain doc §3).
pub const OID_USCC_EXTENSION: &[u64] = &[1, 2, 156, 10260, 4, 1, 4];

/// `id-at-serialNumber` (X.520), the subject attribute that repeats the USCC.
const OID_AT_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];

/// `id-ce-subjectKeyIdentifier`.
const OID_CE_SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];

/// Fewest bytes a caller-provided certificate serial may have: 64 bits of randomness (domain §3).
pub const MIN_SERIAL_BYTES: usize = 8;

/// RFC 5280 §4.1.2.2: a serial's DER INTEGER content is at most 20 octets.
const MAX_SERIAL_OCTETS: usize = 20;

/// X.520 upper bounds (RFC 5280 appendix A), in characters.
const UB_NAME: usize = 64; // ub-common-name, ub-organization-name, ub-organizational-unit-name
const UB_PLACE: usize = 128; // ub-state-name, ub-locality-name
const UB_SERIAL_NUMBER: usize = 64;

/// What the station's issuing CA calls itself; configuration, not a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProfile {
    /// CN of the CA certificate.
    pub common_name: String,
    /// O of the CA certificate.
    pub organization: String,
    /// Lifetime of a self-signed CA certificate, in years (>= 1).
    pub validity_years: u8,
    /// CRL distribution point written into every certificate the CA issues. Not written into the
    /// self-signed CA certificate itself: a trust anchor is not checked against a CRL.
    pub crl_url: String,
}

/// The key algorithms this CA accepts, as found in a SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256 (prime256v1).
    EcdsaP256,
    /// RSA with a modulus of `bits` bits (>= 2048).
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
}

/// What a verified CSR contributes to issuance: its public key, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// The DER SubjectPublicKeyInfo, exactly as in the CSR.
    pub spki_der: Vec<u8>,
    /// Its algorithm (for audit events and display).
    pub key: KeyAlgorithm,
}

/// A certificate read back for display (`keystation order show`) and records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Serial number, lower-case hex of the integer's minimal big-endian bytes.
    pub serial_hex: String,
    /// Subject DN, e.g. `C=CN, ST=广东省, L=深圳市, O=..., CN=..., serialNumber=...`.
    pub subject: String,
    /// Issuer DN, same format.
    pub issuer: String,
    /// Start of validity (UTC).
    pub not_before: OffsetDateTime,
    /// End of validity (UTC).
    pub not_after: OffsetDateTime,
    /// SHA-256 over the DER certificate, lower-case hex without separators.
    pub sha256_fingerprint: String,
}

/// End of validity for something issued at `now` for `years` years: 23:59:59 Beijing time on
/// the Beijing calendar day of `now`, `years` years later, returned in UTC.
///
/// "The same calendar day" is taken in Beijing, whatever offset `now` carries: an issuance at
/// 2027-01-01 00:30 +08:00 (still 2026-12-31 in UTC) is a January 1st issuance. A February 29
/// issuance ends on February 28 when the target year is not a leap year (the last day that
/// exists in that February, so the certificate never lives longer than the years paid for).
pub fn validity_end(now: OffsetDateTime, years: u8) -> Result<OffsetDateTime, CaError> {
    if years == 0 {
        return Err(CaError::InvalidInput {
            field: "validity years",
            reason: "must be at least 1".into(),
        });
    }
    let day = now.to_offset(BEIJING).date();
    let out_of_range = || CaError::InvalidInput {
        field: "validity",
        reason: format!("{years} years after {day} is outside the calendar range"),
    };
    let year = day
        .year()
        .checked_add(i32::from(years))
        .ok_or_else(out_of_range)?;
    let dom =
        if day.month() == Month::February && day.day() == 29 && !time::util::is_leap_year(year) {
            28
        } else {
            day.day()
        };
    let end_day = Date::from_calendar_date(year, day.month(), dom).map_err(|_| out_of_range())?;
    Ok(PrimitiveDateTime::new(end_day, time!(23:59:59))
        .assume_offset(BEIJING)
        .to_offset(UtcOffset::UTC))
}

/// Turns 16 bytes from the OS CSPRNG into a conforming serial: the top bit cleared (so the DER
/// INTEGER is positive without a padding byte) and the next bit set (so the first byte is never
/// zero and the serial keeps exactly 16 bytes). 126 random bits remain; uniqueness is the
/// store's to enforce.
pub fn serial_from_random(random: [u8; 16]) -> [u8; 16] {
    let mut serial = random;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// Parameters of the self-signed issuing CA certificate: `C=CN, O=<organization>,
/// CN=<common_name>`, basicConstraints CA:TRUE pathlen 0 (critical), keyUsage keyCertSign +
/// cRLSign (critical), validity from `now` to [`validity_end`]. The SKI is set by
/// [`self_signed_ca`] from the key.
///
/// Returns a `Result` (not bare params as first sketched) because an empty name, zero years or a
/// date outside the X.509 range must be refused, not encoded or panicked on.
pub fn self_signed_ca_params(
    profile: &CaProfile,
    now: OffsetDateTime,
    serial: [u8; 16],
) -> Result<CertificateParams, CaError> {
    if serial.iter().all(|b| *b == 0) {
        return Err(CaError::InvalidInput {
            field: "CA serial",
            reason: "must not be zero".into(),
        });
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("C", "CN", 2)?);
    dn.push(
        DnType::OrganizationName,
        utf8("CA organization", &profile.organization, UB_NAME)?,
    );
    dn.push(
        DnType::CommonName,
        utf8("CA common name", &profile.common_name, UB_NAME)?,
    );

    let mut params = CertificateParams::default();
    params.not_before = x509_instant("notBefore", now)?;
    params.not_after = x509_instant("notAfter", validity_end(now, profile.validity_years)?)?;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// Self-signs `params` with the CA key and returns the DER certificate.
///
/// The SKI is derived from `key` (RFC 7093 method 1), overriding whatever `params` says, so that
/// the AKI of everything this CA issues matches it. The result's signature is verified under its
/// own public key: a token whose public-key object does not match its private key is caught here.
pub fn self_signed_ca(
    params: &CertificateParams,
    key: &impl SigningKey,
) -> Result<Vec<u8>, CaError> {
    let key_spki = key.subject_public_key_info();
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(&key_spki).map_err(|e| CaError::UnsupportedKey {
            what: "CA key",
            reason: format!("its public key does not parse: {e}"),
        })?;
    accepted_key("CA key", &spki)?;

    let mut params = params.clone();
    params.not_before = x509_instant("notBefore", params.not_before)?;
    params.not_after = x509_instant("notAfter", params.not_after)?;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.der_bytes()));
    let cert = params.self_signed(key).map_err(|source| CaError::Rcgen {
        operation: "self-sign CA certificate",
        source,
    })?;
    let der = cert.der().to_vec();
    let parsed = parse_cert(&der).map_err(|reason| CaError::SelfCheck {
        artefact: "certificate",
        reason,
    })?;
    parsed
        .verify_signature(None)
        .map_err(|_| CaError::CaKeyMismatch {
            what: "the CA key's self-signature does not verify under its own public key",
        })?;
    Ok(der)
}

/// Parameters of the station's seal-maker certificate (the `cert` of every GB/T 38540 seal it
/// makes): `C=CN, O=<organization>, CN=<station> Seal Maker`, keyUsage digitalSignature +
/// nonRepudiation (critical), AKI/SKI, CRL DP, validity as for unit certificates.
///
/// No extendedKeyUsage: we know of no standard purpose OID for seal making, an invented private
/// OID would mean nothing to verifiers, and an EKU restricts rather than documents. The key usage
/// already limits the key to signatures.
pub fn maker_cert_params(
    station: &str,
    organization: &str,
    now: OffsetDateTime,
    validity_years: u8,
    serial: &[u8],
    crl_url: &str,
) -> Result<CertificateParams, CaError> {
    let station = station.trim();
    if station.is_empty() {
        return Err(CaError::InvalidInput {
            field: "station name",
            reason: "must not be empty".into(),
        });
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("C", "CN", 2)?);
    dn.push(
        DnType::OrganizationName,
        utf8("seal maker organization", organization, UB_NAME)?,
    );
    dn.push(
        DnType::CommonName,
        utf8("station name", &format!("{station} Seal Maker"), UB_NAME)?,
    );
    end_entity_params(dn, now, validity_years, serial, crl_url, Vec::new())
}

/// Issues the seal-maker certificate for `maker_spki_der` (the station's seal-making key on its
/// token), signed by the CA.
pub fn issue_seal_maker_cert(
    params: &CertificateParams,
    maker_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
) -> Result<Vec<u8>, CaError> {
    sign_by_ca(
        params.clone(),
        "seal maker public key",
        maker_spki_der,
        ca_cert_der,
        ca_key,
    )
}

/// Parses a PKCS#10 CSR, checks its key and signature algorithm against the accepted set and
/// verifies its self-signature (proof of possession). Returns the SubjectPublicKeyInfo.
///
/// The CSR's subject and requested extensions are deliberately ignored: see [`unit_cert_params`].
pub fn verify_csr(csr_der: &[u8]) -> Result<CsrInfo, CaError> {
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|e| CaError::CsrMalformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CaError::CsrMalformed(format!(
            "{} trailing bytes after the request",
            rest.len()
        )));
    }
    let spki = &csr.certification_request_info.subject_pki;
    let key = accepted_key("CSR", spki)?;
    let sig_alg = &csr.signature_algorithm.algorithm;
    let expected = match key {
        KeyAlgorithm::EcdsaP256 => (&OID_SIG_ECDSA_WITH_SHA256, "ecdsa-with-SHA256"),
        KeyAlgorithm::Rsa { .. } => (&OID_PKCS1_SHA256WITHRSA, "sha256WithRSAEncryption"),
    };
    if sig_alg != expected.0 {
        return Err(CaError::UnsupportedKey {
            what: "CSR",
            reason: format!(
                "signature algorithm {sig_alg} (only {} for this key)",
                expected.1
            ),
        });
    }
    csr.verify_signature()
        .map_err(|e| CaError::CsrSignature(e.to_string()))?;
    Ok(CsrInfo {
        spki_der: spki.raw.to_vec(),
        key,
    })
}

/// Parameters of a unit certificate for `order` (domain doc §3), before the public key is known.
///
/// Subject: `C=CN, ST=<shipping.province>, L=<shipping.city>, O=<company.name>,
/// OU=<company.department, if any>, CN=<company.name>, serialNumber=<USCC>`; C and serialNumber
/// are PrintableString, the rest UTF8String (RFC 5280 §4.1.2.6; Chinese needs UTF-8).
///
/// The subject comes from the order and never from the CSR: the CSR's self-signature only proves
/// that whoever sent it holds the private key; the name bound to that key must be the one the
/// back office reviewed (business licence, documents), or a CSR could claim any company's name.
///
/// Extensions: keyUsage digitalSignature + nonRepudiation (critical); extendedKeyUsage
/// clientAuth + emailProtection; AKI (from the CA certificate's SKI) and SKI are added when
/// signing; CRL distribution point `crl_url`; `1.2.156.10260.4.1.4` non-critical, whose extnValue
/// is the DER **PrintableString** of the USCC. PrintableString because the GM/T 0015 identity
/// identifiers under this arc (organisation code, registration and taxation numbers) are
/// string-valued, PrintableString in the text we know of (to be confirmed against the standard);
/// the USCC alphabet (digits and upper-case Latin letters) fits it; and it is the type of the
/// serialNumber attribute, so tools that dump the extension show the bare code after 2 bytes.
pub fn unit_cert_params(
    order: &Order,
    serial: &[u8],
    now: OffsetDateTime,
    crl_url: &str,
) -> Result<CertificateParams, CaError> {
    let company = &order.company;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("C", "CN", 2)?);
    dn.push(
        DnType::StateOrProvinceName,
        utf8("shipping.province", &order.shipping.province, UB_PLACE)?,
    );
    dn.push(
        DnType::LocalityName,
        utf8("shipping.city", &order.shipping.city, UB_PLACE)?,
    );
    dn.push(
        DnType::OrganizationName,
        utf8("company.name", &company.name, UB_NAME)?,
    );
    // A blank department is no department: the OU is optional, an empty one is invalid.
    if let Some(department) = company
        .department
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        dn.push(
            DnType::OrganizationalUnitName,
            utf8("company.department", department, UB_NAME)?,
        );
    }
    dn.push(
        DnType::CommonName,
        utf8("company.name", &company.name, UB_NAME)?,
    );
    dn.push(
        DnType::CustomDnType(OID_AT_SERIAL_NUMBER.to_vec()),
        printable("company.uscc", &company.uscc, UB_SERIAL_NUMBER)?,
    );

    // DER PrintableString: tag 0x13, short-form length (the USCC passed the 64-char bound above).
    let mut uscc_value = vec![0x13, uscc_len_octet(&company.uscc)?];
    uscc_value.extend_from_slice(company.uscc.as_bytes());
    let uscc_ext = CustomExtension::from_oid_content(OID_USCC_EXTENSION, uscc_value);

    let mut params = end_entity_params(
        dn,
        now,
        order.product.years,
        serial,
        crl_url,
        vec![uscc_ext],
    )?;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::EmailProtection,
    ];
    Ok(params)
}

/// Issues the unit certificate of `order` for the public key of a verified CSR
/// (`csr_spki_der` from [`verify_csr`]), signed by the CA key, and returns it in DER.
///
/// `serial`: at least [`MIN_SERIAL_BYTES`] bytes from a CSPRNG (see [`serial_from_random`]),
/// first byte non-zero, at most 20 octets once DER-encoded; the certificate's serial is exactly
/// this integer. The issued certificate is checked after signing: its signature verifies under
/// the CA certificate's public key (a wrong HSM key label fails here), its issuer DN is the CA
/// certificate's subject byte for byte, its public key is `csr_spki_der` byte for byte.
pub fn issue_unit_certificate(
    order: &Order,
    csr_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
    serial: &[u8],
    now: OffsetDateTime,
    crl_url: &str,
) -> Result<Vec<u8>, CaError> {
    let params = unit_cert_params(order, serial, now, crl_url)?;
    sign_by_ca(params, "CSR", csr_spki_der, ca_cert_der, ca_key)
}

/// SHA-256 fingerprint of a DER certificate, lower-case hex without separators.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Reads back serial, subject, issuer, validity and fingerprint of a DER certificate.
pub fn cert_summary(der: &[u8]) -> Result<CertSummary, CaError> {
    let cert = parse_cert(der).map_err(CaError::CertificateMalformed)?;
    Ok(CertSummary {
        serial_hex: hex::encode(minimal_unsigned(cert.raw_serial())),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        sha256_fingerprint: sha256_fingerprint(der),
    })
}

// ---------------------------------------------------------------------------------------------
// Shared with `crl`.

/// RFC 7093 §2 method 1 key identifier over the subjectPublicKey BIT STRING value.
pub(crate) fn key_identifier(subject_public_key: &[u8]) -> Vec<u8> {
    Sha256::digest(subject_public_key)[..20].to_vec()
}

/// An instant as X.509 will carry it: UTC, whole seconds, inside the range rcgen can encode
/// (UTCTime 1950-2049, GeneralizedTime up to 9999). rcgen asserts on anything else, so this is
/// the guard that keeps out-of-range input from panicking the station.
pub(crate) fn x509_instant(
    field: &'static str,
    t: OffsetDateTime,
) -> Result<OffsetDateTime, CaError> {
    let utc = t.to_offset(UtcOffset::UTC);
    if !(1950..=9999).contains(&utc.year()) {
        return Err(CaError::InvalidInput {
            field,
            reason: format!(
                "{} is outside the X.509 time range (years 1950-9999)",
                rfc3339(utc)
            ),
        });
    }
    utc.replace_nanosecond(0)
        .map_err(|e| CaError::InvalidInput {
            field,
            reason: e.to_string(),
        })
}

/// Parses the CA certificate and checks it can issue: a CA (basicConstraints cA TRUE), with an
/// SKI (the AKI of what it signs), and a keyUsage, when present, that allows `needed`.
pub(crate) fn parse_issuing_ca<'a>(
    ca_cert_der: &'a [u8],
    needed: KeyUsagePurpose,
) -> Result<(X509Certificate<'a>, Vec<u8>), CaError> {
    let ca = parse_cert(ca_cert_der).map_err(CaError::CaCertificate)?;
    // rcgen re-encodes the issuer DN from this subject: it refuses multi-valued RDNs, panics on
    // an empty one and keeps only the last of repeated attribute types. Refuse those here, so
    // the issuer DN can be (and, checked after signing, is) the subject byte for byte.
    let mut seen = Vec::new();
    for rdn in ca.subject().iter() {
        let mut atvs = rdn.iter();
        let (Some(atv), None) = (atvs.next(), atvs.next()) else {
            return Err(CaError::CaCertificate(
                "subject has an empty or multi-valued RDN, which cannot be reproduced as issuer"
                    .into(),
            ));
        };
        if seen.contains(atv.attr_type()) {
            return Err(CaError::CaCertificate(format!(
                "subject repeats attribute {}, which cannot be reproduced as issuer",
                atv.attr_type()
            )));
        }
        seen.push(atv.attr_type().clone());
    }
    let is_ca = ca
        .basic_constraints()
        .map_err(|e| CaError::CaCertificate(format!("basicConstraints: {e}")))?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(CaError::CaCertificate(
            "not a CA certificate (basicConstraints cA is not TRUE)".into(),
        ));
    }
    if let Some(ku) = ca
        .key_usage()
        .map_err(|e| CaError::CaCertificate(format!("keyUsage: {e}")))?
    {
        let allowed = match needed {
            KeyUsagePurpose::CrlSign => ku.value.crl_sign(),
            _ => ku.value.key_cert_sign(),
        };
        if !allowed {
            return Err(CaError::CaCertificate(format!(
                "its keyUsage does not allow {needed:?}"
            )));
        }
    }
    let ski = ca
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .ok_or_else(|| {
            CaError::CaCertificate(
                "no subjectKeyIdentifier: the authorityKeyIdentifier of issued objects needs it"
                    .into(),
            )
        })?;
    Ok((ca, ski))
}

/// Refuses a signing key whose public key is not the CA certificate's, before the token signs.
pub(crate) fn check_key_matches_ca(
    ca: &X509Certificate<'_>,
    ca_key: &impl SigningKey,
) -> Result<(), CaError> {
    if ca_key.der_bytes() != ca.public_key().subject_public_key.data.as_ref() {
        return Err(CaError::CaKeyMismatch {
            what: "the signing key's public key differs from the CA certificate's",
        });
    }
    Ok(())
}

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

/// Checks a caller-provided serial (certificate or CRL entry) and wraps it for rcgen.
///
/// The first byte must be non-zero so the certificate's serial is exactly the given bytes (DER
/// drops leading zero octets; the caller records these bytes as "the serial").
pub(crate) fn checked_serial(
    field: &'static str,
    serial: &[u8],
    min_len: usize,
) -> Result<SerialNumber, CaError> {
    let bad = |reason: String| Err(CaError::InvalidInput { field, reason });
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

/// Checks a URL that goes into an IA5String (CRL distribution point).
pub(crate) fn checked_url(field: &'static str, url: &str) -> Result<String, CaError> {
    let bad = |reason: &str| {
        Err(CaError::InvalidInput {
            field,
            reason: format!("{url:?}: {reason}"),
        })
    };
    // rcgen asserts ASCII when writing an IA5String: refuse here instead of panicking there.
    if url.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("must be non-empty printable ASCII without spaces (IA5String)");
    }
    let lower = url.to_ascii_lowercase();
    if !["http://", "https://", "ldap://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
    {
        return bad("must be an http://, https:// or ldap:// URL");
    }
    Ok(url.to_owned())
}

// ---------------------------------------------------------------------------------------------

/// An instant for messages: RFC 3339 (`2021-11-26T15:59:59Z`).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        ));
    }
    Ok(cert)
}

/// Common part of the end-entity profiles (unit certificate, seal maker).
fn end_entity_params(
    dn: DistinguishedName,
    now: OffsetDateTime,
    years: u8,
    serial: &[u8],
    crl_url: &str,
    custom_extensions: Vec<CustomExtension>,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.not_before = x509_instant("notBefore", now)?;
    params.not_after = x509_instant("notAfter", validity_end(now, years)?)?;
    params.serial_number = Some(checked_serial("serial", serial, MIN_SERIAL_BYTES)?);
    params.distinguished_name = dn;
    // NoCa: no basicConstraints extension, which the §3 profile does not list. rcgen writes the
    // SKI only for CA/ExplicitNoCa, so `sign_by_ca` adds it as an extension of its own.
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![checked_url("CRL URL", crl_url)?],
    }];
    params.custom_extensions = custom_extensions;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Signs end-entity `params` for `subject_spki_der` with the CA, then checks the result.
fn sign_by_ca(
    mut params: CertificateParams,
    what: &'static str,
    subject_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
) -> Result<Vec<u8>, CaError> {
    let (rest, spki) =
        SubjectPublicKeyInfo::from_der(subject_spki_der).map_err(|e| CaError::UnsupportedKey {
            what,
            reason: format!("SubjectPublicKeyInfo does not parse: {e}"),
        })?;
    if !rest.is_empty() {
        return Err(CaError::UnsupportedKey {
            what,
            reason: "trailing bytes after the SubjectPublicKeyInfo".into(),
        });
    }
    accepted_key(what, &spki)?;
    let subject_key = rcgen::SubjectPublicKeyInfo::from_der(subject_spki_der).map_err(|e| {
        CaError::UnsupportedKey {
            what,
            reason: e.to_string(),
        }
    })?;

    // Params may come from the caller (seal maker): re-check what rcgen would panic on or
    // silently replace (without a serial, rcgen's crypto build hashes one up).
    params.not_before = x509_instant("notBefore", params.not_before)?;
    params.not_after = x509_instant("notAfter", params.not_after)?;
    if params.serial_number.is_none() {
        return Err(CaError::InvalidInput {
            field: "serial",
            reason: "missing".into(),
        });
    }

    let (ca, ca_ski) = parse_issuing_ca(ca_cert_der, KeyUsagePurpose::KeyCertSign)?;
    let ca_validity = ca.validity();
    let (ca_from, ca_to) = (
        ca_validity.not_before.to_datetime(),
        ca_validity.not_after.to_datetime(),
    );
    if params.not_before < ca_from || params.not_before > ca_to {
        return Err(CaError::CaCertificate(format!(
            "not valid at issuance time {} (valid {} to {})",
            rfc3339(params.not_before),
            rfc3339(ca_from),
            rfc3339(ca_to)
        )));
    }
    if params.not_after > ca_to {
        return Err(CaError::CaCertificate(format!(
            "expires {}, before the certificate would ({}); renew the CA first",
            rfc3339(ca_to),
            rfc3339(params.not_after)
        )));
    }
    check_key_matches_ca(&ca, ca_key)?;

    let mut ski = vec![0x04, 20];
    ski.extend_from_slice(&key_identifier(&spki.subject_public_key.data));
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_CE_SUBJECT_KEY_IDENTIFIER,
            ski,
        ));

    let issuer =
        Issuer::from_ca_cert_der(&ca_cert_der.into(), ca_key).map_err(|source| CaError::Rcgen {
            operation: "read CA certificate as issuer",
            source,
        })?;
    let cert = params
        .signed_by(&subject_key, &issuer)
        .map_err(|source| CaError::Rcgen {
            operation: "sign certificate",
            source,
        })?;
    let der = cert.der().to_vec();
    check_issued(&der, &ca, &ca_ski, subject_spki_der, &params)?;
    Ok(der)
}

/// The post-signing self-check of an end-entity certificate.
fn check_issued(
    der: &[u8],
    ca: &X509Certificate<'_>,
    ca_ski: &[u8],
    subject_spki_der: &[u8],
    params: &CertificateParams,
) -> Result<(), CaError> {
    let fail = |reason: String| CaError::SelfCheck {
        artefact: "certificate",
        reason,
    };
    let issued = parse_cert(der).map_err(fail)?;
    issued
        .verify_signature(Some(ca.public_key()))
        .map_err(|_| CaError::CaKeyMismatch {
            what: "the issued certificate's signature does not verify under the CA certificate's public key",
        })?;
    if issued.issuer().as_raw() != ca.subject().as_raw() {
        return Err(fail(
            "issuer DN is not byte-for-byte the CA certificate's subject".into(),
        ));
    }
    if issued.public_key().raw != subject_spki_der {
        return Err(fail(
            "public key is not byte-for-byte the requested SubjectPublicKeyInfo".into(),
        ));
    }
    let expected_serial = params
        .serial_number
        .as_ref()
        .map(SerialNumber::to_bytes)
        .unwrap_or_default();
    if minimal_unsigned(issued.raw_serial()) != expected_serial.as_slice() {
        return Err(fail("serial differs from the one given".into()));
    }
    let aki = issued
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        });
    if aki.as_deref() != Some(ca_ski) {
        return Err(fail(
            "authorityKeyIdentifier is not the CA certificate's SKI".into(),
        ));
    }
    Ok(())
}

/// Accepts ECDSA P-256 and RSA >= 2048 SubjectPublicKeyInfos, refuses the rest by name.
fn accepted_key(
    what: &'static str,
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<KeyAlgorithm, CaError> {
    let refuse = |reason: String| Err(CaError::UnsupportedKey { what, reason });
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        if curve.as_ref() != Some(&OID_EC_P256) {
            return refuse(match curve {
                Some(c) => format!("EC curve {c} (only P-256, 1.2.840.10045.3.1.7)"),
                None => "EC key without a named curve (only P-256)".into(),
            });
        }
        // Uncompressed point: 0x04 || X || Y, 32 bytes each.
        let point = spki.subject_public_key.data.as_ref();
        if point.len() != 65 || point.first() != Some(&0x04) {
            return refuse("P-256 public key is not an uncompressed 65-byte point".into());
        }
        Ok(KeyAlgorithm::EcdsaP256)
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        // RFC 3279: the parameters MUST be NULL; rcgen re-encodes them so, and the issued
        // certificate must carry the requested SPKI unchanged.
        let null_params = spki
            .algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| p.tag() == x509_parser::der_parser::asn1_rs::Tag::Null);
        if !null_params {
            return refuse("rsaEncryption parameters are not NULL".into());
        }
        let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
            return refuse("RSA public key does not parse".into());
        };
        let modulus = minimal_unsigned(rsa.modulus);
        let bits = match modulus.first() {
            Some(first) if *first != 0 => modulus.len() * 8 - first.leading_zeros() as usize,
            _ => 0,
        };
        if bits < 2048 {
            return refuse(format!("RSA key of {bits} bits (at least 2048)"));
        }
        match rsa.try_exponent() {
            Ok(e) if e >= 3 && e % 2 == 1 => {}
            _ => return refuse("RSA public exponent is not an odd number >= 3".into()),
        }
        Ok(KeyAlgorithm::Rsa { bits })
    } else {
        refuse(format!(
            "key algorithm {alg} (only ECDSA P-256 and RSA >= 2048)"
        ))
    }
}

fn utf8(field: &'static str, value: &str, max_chars: usize) -> Result<DnValue, CaError> {
    check_text(field, value, max_chars)?;
    Ok(DnValue::Utf8String(value.to_owned()))
}

fn printable(field: &'static str, value: &str, max_chars: usize) -> Result<DnValue, CaError> {
    check_text(field, value, max_chars)?;
    let s = PrintableString::try_from(value).map_err(|_| CaError::InvalidInput {
        field,
        reason: format!("{value:?} has characters outside PrintableString"),
    })?;
    Ok(DnValue::PrintableString(s))
}

fn check_text(field: &'static str, value: &str, max_chars: usize) -> Result<(), CaError> {
    let bad = |reason: String| Err(CaError::InvalidInput { field, reason });
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

fn uscc_len_octet(uscc: &str) -> Result<u8, CaError> {
    // Already bounded to 64 PrintableString characters by `printable`; this keeps the short-form
    // DER length honest even if that bound ever changes.
    u8::try_from(uscc.len())
        .ok()
        .filter(|n| *n < 0x80)
        .ok_or_else(|| CaError::InvalidInput {
            field: "company.uscc",
            reason: "too long for the USCC extension".into(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ca::testkit::{
        CRL_URL, MislabelledToken, beijing, ca_profile as profile, make_ca, openssl, openssl_ok,
        p256, rsa, sample_order, write_pem,
    };
    use proptest::prelude::*;
    use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384, PublicKeyData};
    use time::macros::datetime;
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::extensions::{DistributionPointName, GeneralName};
    use x509_parser::x509::X509Version;

    /// 16 serial bytes with the top bit set, so DER must add a 0x00 to keep it positive.
    const HIGH_BIT_SERIAL: [u8; 16] = [
        0x9a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0x0f,
    ];

    /// A CSR whose own subject claims to be someone else entirely.
    fn csr_of(key: &KeyPair) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Mallory Holdings");
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn epoch(t: OffsetDateTime) -> String {
        t.unix_timestamp().to_string()
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        parse_cert(der).unwrap()
    }

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
            CRL_URL,
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
        let (ca_pem, cert_pem) = (ca_pem.to_str().unwrap(), cert_pem.to_str().unwrap());
        let verify = |at: OffsetDateTime, purpose: Option<&str>| {
            let at = epoch(at);
            let mut args = vec!["verify", "-x509_strict", "-attime", &at, "-CAfile", ca_pem];
            if let Some(p) = purpose {
                args.extend(["-purpose", p]);
            }
            args.push(cert_pem);
            openssl(&args)
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
            "x509", "-text", "-noout", "-nameopt", "utf8", "-in", cert_pem,
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
            let der =
                issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[0x5a; 16], now, CRL_URL)
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
    fn serials_are_positive_minimal_and_bounded() {
        let ok = |s: &[u8]| checked_serial("serial", s, MIN_SERIAL_BYTES);
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
        let der = issue_unit_certificate(
            &sample_order(),
            &spki,
            &ca_der,
            &ca_key,
            &serial,
            now,
            CRL_URL,
        )
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
            CRL_URL,
        )
        .unwrap_err();
        assert!(err.to_string().contains("serial"), "{err}");
    }

    #[test]
    fn csr_is_verified_and_only_its_key_is_used() {
        let p = p256();
        let info = verify_csr(&csr_of(&p)).unwrap();
        assert_eq!(info.key, KeyAlgorithm::EcdsaP256);
        assert_eq!(info.spki_der, p.subject_public_key_info());
        let r = rsa(2048);
        let info = verify_csr(&csr_of(&r)).unwrap();
        assert_eq!(info.key, KeyAlgorithm::Rsa { bits: 2048 });
        assert_eq!(info.spki_der, r.subject_public_key_info());
    }

    #[test]
    fn csr_with_broken_signature_is_refused() {
        let csr = csr_of(&p256());
        // Change one letter of the CSR's subject: still well-formed, the signature no longer fits.
        let at = csr.windows(7).position(|w| w == b"Mallory").unwrap();
        let mut tampered = csr.clone();
        tampered[at] = b'W';
        assert!(matches!(
            verify_csr(&tampered),
            Err(CaError::CsrSignature(_))
        ));
        // Same with an RSA CSR.
        let csr = csr_of(&rsa(2048));
        let at = csr.windows(7).position(|w| w == b"Mallory").unwrap();
        let mut tampered = csr.clone();
        tampered[at] = b'W';
        assert!(matches!(
            verify_csr(&tampered),
            Err(CaError::CsrSignature(_))
        ));
        // And the untampered ones pass, so the refusals above are the signature's.
        assert!(verify_csr(&csr).is_ok());
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
        let err = issue_unit_certificate(&order, &spki, &ca_der, &other, &serial, now, CRL_URL)
            .unwrap_err();
        assert!(matches!(err, CaError::CaKeyMismatch { .. }), "{err}");

        // Right public key, wrong private key: caught by verifying the signature afterwards.
        let token = MislabelledToken {
            public: &ca_key,
            private: &other,
        };
        let err = issue_unit_certificate(&order, &spki, &ca_der, &token, &serial, now, CRL_URL)
            .unwrap_err();
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
            self_signed_ca(&ca_params, &token),
            Err(CaError::CaKeyMismatch { .. })
        ));
        // Control: the honest token issues.
        let honest = MislabelledToken {
            public: &ca_key,
            private: &ca_key,
        };
        assert!(
            issue_unit_certificate(&order, &spki, &ca_der, &honest, &serial, now, CRL_URL).is_ok()
        );
    }

    #[test]
    fn self_signed_ca_profile() {
        for key in [p256(), rsa(2048)] {
            let now = beijing(2025, 1, 2, 9, 0, 0);
            let params = self_signed_ca_params(&profile(), now, [0x8e; 16]).unwrap();
            let der = self_signed_ca(&params, &key).unwrap();
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
            let pem = pem.to_str().unwrap();
            let at = epoch(now + time::Duration::hours(1));
            let (ok, out, err) = openssl(&[
                "verify",
                "-x509_strict",
                "-attime",
                &at,
                "-CAfile",
                pem,
                pem,
            ]);
            assert!(ok, "{out}{err}");
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
        assert!(
            self_signed_ca_params(&profile(), datetime!(2025-01-01 0:00 UTC), [0; 16]).is_err()
        );
        // A CA key the station does not accept.
        let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let params =
            self_signed_ca_params(&profile(), datetime!(2025-01-01 0:00 UTC), [1; 16]).unwrap();
        assert!(matches!(
            self_signed_ca(&params, &p384),
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
            issue_seal_maker_cert(&params, &maker.subject_public_key_info(), &ca_der, &ca_key)
                .unwrap();
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
        let at = epoch(now + time::Duration::hours(1));
        let (ok, out, err) = openssl(&[
            "verify",
            "-x509_strict",
            "-attime",
            &at,
            "-CAfile",
            ca_pem.to_str().unwrap(),
            pem.to_str().unwrap(),
        ]);
        assert!(ok, "{out}{err}");
        assert!(maker_cert_params("  ", "O", now, 1, &[1; 8], CRL_URL).is_err());
    }

    #[test]
    fn subject_comes_from_the_order_and_is_validated() {
        let now = beijing(2025, 5, 20, 12, 0, 0);
        let ca_key = p256();
        let ca_der = make_ca(&ca_key, now);
        let spki = p256().subject_public_key_info();
        let issue = |order: &Order, url: &str| {
            issue_unit_certificate(order, &spki, &ca_der, &ca_key, &[0x11; 16], now, url)
        };

        // No department (or a blank one): no OU at all.
        for department in [None, Some("  ".to_string())] {
            let mut order = sample_order();
            order.company.department = department;
            let der = issue(&order, CRL_URL).unwrap();
            let cert = parse(&der);
            assert!(cert.subject().iter_organizational_unit().next().is_none());
            assert_eq!(cert.subject().iter_attributes().count(), 6);
        }

        let refused = |order: Order, field: &str| {
            let err = issue(&order, CRL_URL).unwrap_err();
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
            assert!(
                matches!(
                    issue(&sample_order(), url),
                    Err(CaError::InvalidInput {
                        field: "CRL URL",
                        ..
                    })
                ),
                "{url:?}"
            );
        }
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
        let ca_der = self_signed_ca(&params, &ca_key).unwrap();
        let mut order = sample_order();
        order.product.years = 3;
        let now = created + time::Duration::days(30);
        let err = issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[3; 16], now, CRL_URL)
            .unwrap_err();
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
            let err =
                issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[3; 16], at, CRL_URL)
                    .unwrap_err();
            assert!(
                matches!(&err, CaError::CaCertificate(m) if m.contains("not valid")),
                "{err}"
            );
        }
        // An end-entity certificate is not a CA.
        let ee =
            issue_unit_certificate(&order, &spki, &ca_der, &ca_key, &[3; 16], created, CRL_URL)
                .unwrap();
        let err = issue_unit_certificate(&order, &spki, &ee, &ca_key, &[4; 16], created, CRL_URL)
            .unwrap_err();
        assert!(
            matches!(&err, CaError::CaCertificate(m) if m.contains("not a CA")),
            "{err}"
        );
        assert!(matches!(
            issue_unit_certificate(&order, &spki, b"junk", &ca_key, &[4; 16], now, CRL_URL),
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
        let der = issue_unit_certificate(
            &sample_order(),
            &spki,
            &ca_der,
            &key,
            &[0x44; 16],
            now,
            CRL_URL,
        )
        .unwrap();
        assert_eq!(
            parse(&der).issuer().as_raw(),
            parse(&ca_der).subject().as_raw()
        );
        let ca_pem = write_pem(dir.path(), "ext-ca", "x509", &ca_der);
        let pem = write_pem(dir.path(), "ext-cert", "x509", &der);
        let at = epoch(now + time::Duration::minutes(1));
        let (ok, out, err) = openssl(&[
            "verify",
            "-x509_strict",
            "-attime",
            &at,
            "-CAfile",
            ca_pem.to_str().unwrap(),
            pem.to_str().unwrap(),
        ]);
        assert!(ok, "{out}{err}");

        let (key, ca_der) = make("two-ou", "/C=CN/O=Org/OU=A/OU=B/CN=Two OU CA");
        let err = issue_unit_certificate(
            &sample_order(),
            &spki,
            &ca_der,
            &key,
            &[0x44; 16],
            now,
            CRL_URL,
        )
        .unwrap_err();
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
        let der = issue_unit_certificate(
            &sample_order(),
            &spki,
            &ca_der,
            &ca_key,
            &HIGH_BIT_SERIAL,
            now,
            CRL_URL,
        )
        .unwrap();
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
}
