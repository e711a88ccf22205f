//! Issuance: signing certificates with the CA key (through [`SigningKey`], so a token key signs),
//! certificate serials, the checks of the CA certificate before signing and of every certificate
//! after, and certificates read back for records.
//!
//! Invariants:
//! - the issuer DN of what is signed is byte-for-byte the CA certificate's subject, and the CA
//!   certificate can issue (a CA, with an SKI, keyUsage allowing it, valid over the whole
//!   validity of what it signs);
//! - the signing key's public key is the CA certificate's before the token signs; after signing,
//!   the certificate's signature, issuer DN, public key, serial and AKI are read back and checked
//!   before it is returned;
//! - key identifiers (SKI, and so the AKI of what the CA issues) are RFC 7093 §2 method 1
//!   ([`crate::x509`] computes them; rcgen would only with its `crypto` feature).

use super::CaError;
use super::csr::accepted_key;
use super::profile::{StatusUrls, unit_cert_params};
use super::sm2_stamp::{StandIn, assemble, restamp_certificate, sign_with};
use crate::domain::{KeyAlgorithm, Order};
use crate::x509::{
    key_identifier, minimal_unsigned, parse_certificate, rfc3339, sha256_fingerprint,
    verify_signed_by, x509_instant,
};
use rcgen::{
    CertificateParams, CustomExtension, Issuer, KeyIdMethod, KeyUsagePurpose, SerialNumber,
    SigningKey,
};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// `id-ce-subjectKeyIdentifier`.
const OID_CE_SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];

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

/// Turns 16 bytes from the OS CSPRNG into a conforming serial: the top bit cleared (so the DER
/// INTEGER is positive without a padding byte) and the next bit set (so the first byte is never
/// zero and the serial keeps exactly 16 bytes). 126 random bits remain; uniqueness is the
/// store's to enforce.
pub fn serial_from_random(random: [u8; 16]) -> [u8; 16] {
    let mut serial = random;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// Self-signs `params` with the CA key, whose SubjectPublicKeyInfo is `key_spki_der`, and
/// returns the DER certificate. An SM2 key goes through `ca::sm2_stamp`.
///
/// The SKI is derived from `key` (RFC 7093 method 1), overriding whatever `params` says, so that
/// the AKI of everything this CA issues matches it. The result's signature is verified under its
/// own public key: a token whose public-key object does not match its private key is caught here.
pub fn self_signed_ca(
    params: &CertificateParams,
    key: &impl SigningKey,
    key_spki_der: &[u8],
) -> Result<Vec<u8>, CaError> {
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(key_spki_der).map_err(|e| CaError::UnsupportedKey {
            what: "CA key",
            reason: format!("its public key does not parse: {e}"),
        })?;
    let (algorithm, _) = accepted_key("CA key", &spki)?;
    if spki.subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(CaError::CaKeyMismatch {
            what: "the signing key's public key differs from the SubjectPublicKeyInfo given",
        });
    }

    let mut params = params.clone();
    params.not_before = x509_instant("notBefore", params.not_before)?;
    params.not_after = x509_instant("notAfter", params.not_after)?;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.der_bytes()));
    let operation = "self-sign CA certificate";
    let der = if algorithm == KeyAlgorithm::Sm2 {
        let draft = params
            .self_signed(&StandIn(key.der_bytes()))
            .map_err(|source| CaError::Rcgen { operation, source })?;
        let tbs = restamp_certificate(draft.der(), key_spki_der, algorithm)?;
        let signature = sign_with(key, &tbs, operation)?;
        assemble(&tbs, algorithm, &signature, "certificate")?
    } else {
        let cert = params
            .self_signed(key)
            .map_err(|source| CaError::Rcgen { operation, source })?;
        cert.der().to_vec()
    };
    let parsed = parse_certificate(&der).map_err(|reason| CaError::SelfCheck {
        artefact: "certificate",
        reason,
    })?;
    verify_signed_by(&parsed, parsed.public_key()).map_err(|_| CaError::CaKeyMismatch {
        what: "the CA key's self-signature does not verify under its own public key",
    })?;
    Ok(der)
}

/// Issues the seal-maker certificate for `maker_spki_der` (the station's seal-making key on its
/// token), signed by the CA. `params` come from [`super::profile::maker_cert_params`].
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

/// Issues the certificate of the CA's delegated OCSP signer for `signer_spki_der` (its key on
/// the CA token), signed by the CA. `params` come from [`super::profile::ocsp_signer_params`].
pub fn issue_ocsp_signer_cert(
    params: &CertificateParams,
    signer_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
) -> Result<Vec<u8>, CaError> {
    sign_by_ca(
        params.clone(),
        "OCSP signer public key",
        signer_spki_der,
        ca_cert_der,
        ca_key,
    )
}

/// Issues the unit certificate of `order` for the public key of a verified CSR
/// (`csr_spki_der` from [`super::csr::verify_csr`]), signed by the CA key, and returns it in DER.
///
/// `serial`: at least [`super::profile::MIN_SERIAL_BYTES`] bytes from a CSPRNG (see
/// [`serial_from_random`]), first byte non-zero, at most 20 octets once DER-encoded; the
/// certificate's serial is exactly this integer. The issued certificate is checked after
/// signing: its signature verifies under the CA certificate's public key (a wrong HSM key label
/// fails here), its issuer DN is the CA certificate's subject byte for byte, its public key is
/// `csr_spki_der` byte for byte.
pub fn issue_unit_certificate(
    order: &Order,
    csr_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
    serial: &[u8],
    now: OffsetDateTime,
    urls: StatusUrls<'_>,
) -> Result<Vec<u8>, CaError> {
    let params = unit_cert_params(order, serial, now, urls)?;
    sign_by_ca(params, "CSR", csr_spki_der, ca_cert_der, ca_key)
}

/// Issues the ENCRYPTION certificate of an SM2 dual certificate (双证书) for the encryption
/// public key `encryption_spki_der`, made by the station's key management (there is no CSR: the
/// private key was never where it could sign one before it reached the token). The profile is
/// the unit certificate's (same subject, validity, CRL and OCSP locations, USCC extension) with
/// keyUsage keyEncipherment + dataEncipherment instead of digitalSignature + nonRepudiation, and
/// no extendedKeyUsage. Checked after signing as [`issue_unit_certificate`] is.
pub fn issue_encryption_certificate(
    order: &Order,
    encryption_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &impl SigningKey,
    serial: &[u8],
    now: OffsetDateTime,
    urls: StatusUrls<'_>,
) -> Result<Vec<u8>, CaError> {
    let mut params = unit_cert_params(order, serial, now, urls)?;
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DataEncipherment,
    ];
    params.extended_key_usages = Vec::new();
    sign_by_ca(
        params,
        "encryption public key",
        encryption_spki_der,
        ca_cert_der,
        ca_key,
    )
}

/// Reads back serial, subject, issuer, validity and fingerprint of a DER certificate.
pub fn cert_summary(der: &[u8]) -> Result<CertSummary, CaError> {
    let cert = parse_certificate(der).map_err(CaError::CertificateMalformed)?;
    Ok(CertSummary {
        serial_hex: hex::encode(minimal_unsigned(cert.raw_serial())),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        sha256_fingerprint: sha256_fingerprint(der),
    })
}

/// Parses the CA certificate and checks it can issue: a CA (basicConstraints cA TRUE), with an
/// SKI (the AKI of what it signs), and a keyUsage, when present, that allows `needed`. Shared
/// with the CRL, which the same certificate signs.
pub(crate) fn parse_issuing_ca<'a>(
    ca_cert_der: &'a [u8],
    needed: KeyUsagePurpose,
) -> Result<(X509Certificate<'a>, Vec<u8>), CaError> {
    let ca = parse_certificate(ca_cert_der).map_err(CaError::CaCertificate)?;
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
    let (subject_algorithm, _) = accepted_key(what, &spki)?;

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
    let (ca_algorithm, _) = accepted_key("CA certificate", ca.public_key())?;

    let mut ski = vec![0x04, 20];
    ski.extend_from_slice(&key_identifier(&spki.subject_public_key.data));
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_CE_SUBJECT_KEY_IDENTIFIER,
            ski,
        ));

    let read_issuer = |source| CaError::Rcgen {
        operation: "read CA certificate as issuer",
        source,
    };
    let operation = "sign certificate";
    let der = if ca_algorithm == KeyAlgorithm::Sm2 || subject_algorithm == KeyAlgorithm::Sm2 {
        // rcgen can name neither key: it encodes the profile around stand-ins, the CA key signs
        // the re-stamped structure.
        let stand_in = StandIn(ca_key.der_bytes());
        let issuer =
            Issuer::from_ca_cert_der(&ca_cert_der.into(), &stand_in).map_err(read_issuer)?;
        let draft = params
            .signed_by(&StandIn(&spki.subject_public_key.data), &issuer)
            .map_err(|source| CaError::Rcgen { operation, source })?;
        let tbs = restamp_certificate(draft.der(), subject_spki_der, ca_algorithm)?;
        let signature = sign_with(ca_key, &tbs, operation)?;
        assemble(&tbs, ca_algorithm, &signature, "certificate")?
    } else {
        let subject_key = rcgen::SubjectPublicKeyInfo::from_der(subject_spki_der).map_err(|e| {
            CaError::UnsupportedKey {
                what,
                reason: e.to_string(),
            }
        })?;
        let issuer = Issuer::from_ca_cert_der(&ca_cert_der.into(), ca_key).map_err(read_issuer)?;
        let cert = params
            .signed_by(&subject_key, &issuer)
            .map_err(|source| CaError::Rcgen { operation, source })?;
        cert.der().to_vec()
    };
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
    let issued = parse_certificate(der).map_err(fail)?;
    verify_signed_by(&issued, ca.public_key()).map_err(|_| CaError::CaKeyMismatch {
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

#[cfg(test)]
mod tests;
