//! SM2 certificates and requests on the station's one builder: rcgen encodes the to-be-signed
//! structure from the same profile parameters as for P-256 and RSA ([`super::profile`]), with a
//! stand-in key, since its algorithm set is closed and has no SM2; this module then re-stamps
//! what rcgen cannot write — the subject's SubjectPublicKeyInfo (id-ecPublicKey on sm2p256v1)
//! and the signature AlgorithmIdentifier (SM2-with-SM3, 1.2.156.10197.1.501) — has the real key
//! sign the re-stamped bytes on its token, and assembles the result, checked by x509-cert's
//! RFC 5280 parser.
//!
//! Invariants:
//! - the stand-in's signature never leaves this module: every byte the token signs is the final
//!   to-be-signed structure, and the assembled object carries the same AlgorithmIdentifier inside
//!   and outside it;
//! - only the two re-stamped fields differ from rcgen's encoding; every extension, name, serial
//!   and validity is rcgen's, byte for byte.

use super::CaError;
use crate::domain::KeyAlgorithm;
use der::asn1::BitString;
use der::{Any, Decode, Encode};
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};

/// The DER AlgorithmIdentifier of the signatures made with a key of `algorithm`: no parameters
/// for ECDSA (RFC 5758) and SM2-with-SM3, NULL for RSA (RFC 4055).
pub(crate) fn signature_algorithm_der(algorithm: KeyAlgorithm) -> &'static [u8] {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ],
        KeyAlgorithm::Rsa2048 => &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ],
        KeyAlgorithm::Sm2 => &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75,
        ],
    }
}

/// What rcgen is given in place of a key it cannot name: the real public key bytes (so key
/// identifiers are the real key's) under P-256's algorithm, and a signature of no value.
#[derive(Debug)]
pub(crate) struct StandIn<'a>(pub(crate) &'a [u8]);

impl PublicKeyData for StandIn<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for StandIn<'_> {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // Discarded by `restamp`: the real key signs the re-stamped structure.
        Ok(vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
    }
}

fn der_error(what: &'static str) -> impl Fn(der::Error) -> CaError {
    move |e| CaError::SelfCheck {
        artefact: what,
        reason: format!("re-stamping: {e}"),
    }
}

/// The elements of the first SEQUENCE inside the signed object `draft_der` (a certificate's
/// TBSCertificate, a request's CertificationRequestInfo).
fn signed_part(draft_der: &[u8], what: &'static str) -> Result<Vec<Any>, CaError> {
    let outer = Vec::<Any>::from_der(draft_der).map_err(der_error(what))?;
    let first = outer.first().ok_or_else(|| CaError::SelfCheck {
        artefact: what,
        reason: "empty structure".into(),
    })?;
    Vec::<Any>::from_der(&first.to_der().map_err(der_error(what))?).map_err(der_error(what))
}

fn replace(
    fields: &mut [Any],
    index: usize,
    der: &[u8],
    what: &'static str,
) -> Result<(), CaError> {
    let slot = fields.get_mut(index).ok_or_else(|| CaError::SelfCheck {
        artefact: what,
        reason: format!("no field {index} to re-stamp"),
    })?;
    *slot = Any::from_der(der).map_err(der_error(what))?;
    Ok(())
}

/// The TBSCertificate of rcgen's `draft_der` with `spki_der` as subjectPublicKeyInfo and the
/// signature AlgorithmIdentifier of `algorithm`; DER, ready for the real key to sign.
pub(crate) fn restamp_certificate(
    draft_der: &[u8],
    spki_der: &[u8],
    algorithm: KeyAlgorithm,
) -> Result<Vec<u8>, CaError> {
    let mut tbs = signed_part(draft_der, "certificate")?;
    // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject,
    // subjectPublicKeyInfo, [3] extensions (rcgen always writes v3).
    replace(
        &mut tbs,
        2,
        signature_algorithm_der(algorithm),
        "certificate",
    )?;
    replace(&mut tbs, 6, spki_der, "certificate")?;
    tbs.to_der().map_err(der_error("certificate"))
}

/// The TBSCertList of rcgen's `draft_der` (a CRL) with the signature AlgorithmIdentifier of
/// `algorithm`.
pub(crate) fn restamp_crl(draft_der: &[u8], algorithm: KeyAlgorithm) -> Result<Vec<u8>, CaError> {
    let mut tbs = signed_part(draft_der, "CRL")?;
    // TBSCertList: version (v2, always written by rcgen), signature, issuer, thisUpdate, ...
    replace(&mut tbs, 1, signature_algorithm_der(algorithm), "CRL")?;
    tbs.to_der().map_err(der_error("CRL"))
}

/// The CertificationRequestInfo of rcgen's `draft_der` with `spki_der` as its public key.
pub(crate) fn restamp_request(draft_der: &[u8], spki_der: &[u8]) -> Result<Vec<u8>, CaError> {
    let mut info = signed_part(draft_der, "request")?;
    // CertificationRequestInfo: version, subject, subjectPKInfo, [0] attributes.
    replace(&mut info, 2, spki_der, "request")?;
    info.to_der().map_err(der_error("request"))
}

/// `SEQUENCE { signed, AlgorithmIdentifier, BIT STRING signature }`: a certificate, CRL or request
/// from its signed part and the signature of a key of `algorithm` over it.
pub(crate) fn assemble(
    signed_der: &[u8],
    algorithm: KeyAlgorithm,
    signature: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, CaError> {
    let parts = vec![
        Any::from_der(signed_der).map_err(der_error(what))?,
        Any::from_der(signature_algorithm_der(algorithm)).map_err(der_error(what))?,
        Any::encode_from(&BitString::from_bytes(signature).map_err(der_error(what))?)
            .map_err(der_error(what))?,
    ];
    let der = parts.to_der().map_err(der_error(what))?;
    if what == "certificate" {
        x509_cert::Certificate::from_der(&der).map_err(|e| CaError::SelfCheck {
            artefact: what,
            reason: format!("not an RFC 5280 certificate: {e}"),
        })?;
    } else if what == "CRL" {
        x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der)
            .map_err(|e| CaError::SelfCheck {
                artefact: what,
                reason: format!("not an RFC 5280 CRL: {e}"),
            })?;
    } else {
        x509_cert::request::CertReq::from_der(&der).map_err(|e| CaError::SelfCheck {
            artefact: what,
            reason: format!("not a PKCS#10 request: {e}"),
        })?;
    }
    Ok(der)
}

/// Signs `tbs` with `key`, rcgen's error named for `operation`.
pub(crate) fn sign_with(
    key: &impl SigningKey,
    tbs: &[u8],
    operation: &'static str,
) -> Result<Vec<u8>, CaError> {
    key.sign(tbs)
        .map_err(|source| CaError::Rcgen { operation, source })
}

#[cfg(test)]
mod tests;
