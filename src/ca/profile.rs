//! Certificate profiles of the issuing CA: what its self-signed certificate, the station's
//! seal-maker certificate and the unit certificate (单位证书) of domain doc §3 contain — subject,
//! extensions, validity — as rcgen parameters, before anything is signed ([`super::issuance`]
//! signs them).
//!
//! Invariants:
//! - A unit certificate's subject is built from the validated [`Order`], never from the CSR: the
//!   CSR only proves that the requester holds the private key ([`super::csr`]); who the key
//!   belongs to is what the back office reviewed, i.e. the order.
//! - Validity ends at 23:59:59 Beijing time (UTC+8) on the Beijing calendar day of issuance, N
//!   years later; February 29 becomes February 28 in a non-leap target year ([`validity_end`]).
//! - Every name value is checked against its X.520 bound and string type, every instant against
//!   the X.509 range, the serial against RFC 5280, before rcgen sees them (it asserts on bad input).

use super::CaError;
use crate::domain::Order;
use crate::x509::{
    UB_NAME, UB_PLACE, UB_SERIAL_NUMBER, checked_serial, printable_name, utf8_name, x509_instant,
};
use der::Encode;
use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SerialNumber,
};
use time::macros::{offset, time};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};

/// Beijing time, the reference for "the same calendar day" and the 23:59:59 end of validity.
pub const BEIJING: UtcOffset = offset!(+8);

/// The extension carrying the USCC: GM/T 0015's identity-identifier arc, used by Chinese CAs for
/// the organisation code and now the unified social credit code (domain doc §3).
pub const OID_USCC_EXTENSION: &[u64] = &[1, 2, 156, 10260, 4, 1, 4];

/// `id-at-serialNumber` (X.520), the subject attribute that repeats the USCC.
const OID_AT_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];

/// `id-pe-authorityInfoAccess` (RFC 5280 §4.2.2.1).
const OID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// Where relying parties learn whether a unit certificate is revoked: the CRL distribution
/// point and the OCSP responder (Authority Information Access), both from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusUrls<'a> {
    /// CRL distribution point (`ca.crl_url`).
    pub crl: &'a str,
    /// OCSP responder (`ocsp.url`).
    pub ocsp: &'a str,
}

/// Fewest bytes a caller-provided certificate serial may have: 64 bits of randomness (domain §3).
pub const MIN_SERIAL_BYTES: usize = 8;

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

/// Parameters of the self-signed issuing CA certificate: `C=CN, O=<organization>,
/// CN=<common_name>`, basicConstraints CA:TRUE pathlen 0 (critical), keyUsage keyCertSign +
/// cRLSign (critical), validity from `now` to [`validity_end`]. The SKI is set by
/// [`super::issuance::self_signed_ca`] from the key.
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
    let dn = chinese_org_name(
        ("CA organization", &profile.organization),
        ("CA common name", &profile.common_name),
    )?;

    let mut params = CertificateParams::default();
    params.not_before = x509_instant("notBefore", now)?;
    params.not_after = x509_instant("notAfter", validity_end(now, profile.validity_years)?)?;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
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
    let dn = chinese_org_name(
        ("seal maker organization", organization),
        ("station name", &format!("{station} Seal Maker")),
    )?;
    end_entity_params(dn, now, validity_years, serial, crl_url, Vec::new())
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
/// signing; CRL distribution point `urls.crl`; Authority Information Access with the OCSP
/// responder `urls.ocsp`; `1.2.156.10260.4.1.4` non-critical, whose extnValue
/// is the DER **PrintableString** of the USCC. PrintableString because the GM/T 0015 identity
/// identifiers under this arc (organisation code, registration and taxation numbers) are
/// string-valued, PrintableString in the text we know of (to be confirmed against the standard);
/// the USCC alphabet (digits and upper-case Latin letters) fits it; and it is the type of the
/// serialNumber attribute, so tools that dump the extension show the bare code after 2 bytes.
pub fn unit_cert_params(
    order: &Order,
    serial: &[u8],
    now: OffsetDateTime,
    urls: StatusUrls<'_>,
) -> Result<CertificateParams, CaError> {
    let company = &order.company;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable_name("C", "CN", 2)?);
    dn.push(
        DnType::StateOrProvinceName,
        utf8_name("shipping.province", &order.shipping.province, UB_PLACE)?,
    );
    dn.push(
        DnType::LocalityName,
        utf8_name("shipping.city", &order.shipping.city, UB_PLACE)?,
    );
    dn.push(
        DnType::OrganizationName,
        utf8_name("company.name", &company.name, UB_NAME)?,
    );
    // A blank department is no department: the OU is optional, an empty one is invalid.
    if let Some(department) = company
        .department
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        dn.push(
            DnType::OrganizationalUnitName,
            utf8_name("company.department", department, UB_NAME)?,
        );
    }
    dn.push(
        DnType::CommonName,
        utf8_name("company.name", &company.name, UB_NAME)?,
    );
    dn.push(
        DnType::CustomDnType(OID_AT_SERIAL_NUMBER.to_vec()),
        printable_name("company.uscc", &company.uscc, UB_SERIAL_NUMBER)?,
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
        urls.crl,
        vec![uscc_ext, ocsp_access(urls.ocsp)?],
    )?;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::EmailProtection,
    ];
    Ok(params)
}

/// Parameters of the CA's delegated OCSP signer (RFC 6960 §4.2.2.2): `C=CN, O=<organization>,
/// CN=<CA common name> OCSP Responder`, keyUsage digitalSignature (critical), extendedKeyUsage
/// id-kp-OCSPSigning, id-pkix-ocsp-nocheck (relying parties do not ask OCSP about the
/// responder itself, RFC 6960 §4.2.2.2.1), AKI and SKI (added when signing), valid from `now`
/// to `not_after`. No CRL distribution point or AIA: with nocheck, nobody looks.
pub fn ocsp_signer_params(
    ca_common_name: &str,
    organization: &str,
    now: OffsetDateTime,
    not_after: OffsetDateTime,
    serial: &[u8],
) -> Result<CertificateParams, CaError> {
    let dn = chinese_org_name(
        ("CA organization", organization),
        (
            "CA common name",
            &format!("{} OCSP Responder", ca_common_name.trim()),
        ),
    )?;
    if not_after <= now {
        return Err(CaError::InvalidInput {
            field: "OCSP signer validity",
            reason: "ends before it starts".into(),
        });
    }
    let mut params = CertificateParams::default();
    params.not_before = x509_instant("notBefore", now)?;
    params.not_after = x509_instant("notAfter", not_after)?;
    params.serial_number = Some(checked_serial("serial", serial, MIN_SERIAL_BYTES)?);
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        crate::ca::ocsp::OID_OCSP_NOCHECK,
        vec![0x05, 0x00],
    )];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The Authority Information Access extension naming the OCSP responder at `url`.
fn ocsp_access(url: &str) -> Result<CustomExtension, CaError> {
    let url = checked_url("OCSP URL", url)?;
    let fail = |e: der::Error| CaError::InvalidInput {
        field: "OCSP URL",
        reason: e.to_string(),
    };
    let location = der::asn1::Ia5String::new(&url).map_err(fail)?;
    let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: crate::ca::ocsp::OID_AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(location),
    }]);
    Ok(CustomExtension::from_oid_content(
        OID_PE_AUTHORITY_INFO_ACCESS,
        aia.to_der().map_err(fail)?,
    ))
}

/// `C=CN, O=<organization>, CN=<common name>`, the name of the CA and of the seal maker; each
/// value given with the field an error names.
fn chinese_org_name(
    (organization_field, organization): (&'static str, &str),
    (common_name_field, common_name): (&'static str, &str),
) -> Result<DistinguishedName, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable_name("C", "CN", 2)?);
    dn.push(
        DnType::OrganizationName,
        utf8_name(organization_field, organization, UB_NAME)?,
    );
    dn.push(
        DnType::CommonName,
        utf8_name(common_name_field, common_name, UB_NAME)?,
    );
    Ok(dn)
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
    // SKI only for CA/ExplicitNoCa, so issuance adds it as an extension of its own.
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

/// Checks a URL that goes into an IA5String (CRL distribution point, AIA).
fn checked_url(field: &'static str, url: &str) -> Result<String, CaError> {
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

fn uscc_len_octet(uscc: &str) -> Result<u8, CaError> {
    // Already bounded to 64 PrintableString characters by `printable_name`; this keeps the
    // short-form DER length honest even if that bound ever changes.
    u8::try_from(uscc.len())
        .ok()
        .filter(|n| *n < 0x80)
        .ok_or_else(|| CaError::InvalidInput {
            field: "company.uscc",
            reason: "too long for the USCC extension".into(),
        })
}

#[cfg(test)]
mod tests;
