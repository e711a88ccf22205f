//! Certificate signing requests: the PKCS#10 structure, the keys the CA accepts, and the
//! request's self-signature (proof of possession).
//!
//! Invariants:
//! - Accepted keys (CSR, seal maker, CA): ECDSA P-256 (signatures ecdsa-with-SHA256), SM2 on
//!   sm2p256v1 (SM2-with-SM3, default distinguishing ID) and RSA of at least 2048 bits with an
//!   odd public exponent >= 3 (sha256WithRSAEncryption). Anything else is refused by name.
//! - A CSR contributes its public key and nothing else: its subject and requested extensions
//!   are ignored; the unit certificate's subject comes from the order
//!   ([`super::profile::unit_cert_params`]).

use super::CaError;
use super::sm2_stamp::{StandIn, assemble, restamp_request, sign_with};
use crate::domain::KeyAlgorithm;
use crate::x509::{minimal_unsigned, signature_algorithm, verify_with_key};
use rcgen::SigningKey;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What a verified CSR contributes to issuance: its public key, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// The DER SubjectPublicKeyInfo, exactly as in the CSR.
    pub spki_der: Vec<u8>,
    /// Its algorithm (for audit events and display). Every accepted RSA key is
    /// [`KeyAlgorithm::Rsa2048`], the station's RSA scheme (PKCS#1 v1.5 with SHA-256), whatever
    /// its length; the length is [`CsrInfo::key_bits`].
    pub key: KeyAlgorithm,
    /// Size of the key: 256 for P-256 and SM2, the modulus length for RSA.
    pub key_bits: usize,
}

/// Parses a PKCS#10 CSR, checks its key and signature algorithm against the accepted set and
/// verifies its self-signature (proof of possession). Returns the SubjectPublicKeyInfo.
///
/// The CSR's subject and requested extensions are deliberately ignored: see
/// [`super::profile::unit_cert_params`].
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
    let (key, key_bits) = accepted_key("CSR", spki)?;
    let sig_alg = &csr.signature_algorithm.algorithm;
    let (expected, expected_name) = signature_algorithm(key);
    if sig_alg.as_bytes() != expected.as_bytes() {
        return Err(CaError::UnsupportedKey {
            what: "CSR",
            reason: format!("signature algorithm {sig_alg} (only {expected_name} for this key)"),
        });
    }
    let signed = csr.certification_request_info.raw;
    verify_with_key(spki, &expected, signed, &csr.signature_value.data)
        .map_err(CaError::CsrSignature)?;
    Ok(CsrInfo {
        spki_der: spki.raw.to_vec(),
        key,
        key_bits,
    })
}

/// A PKCS#10 request with subject `CN=<common_name>` for the key `key` (whose
/// SubjectPublicKeyInfo is `spki_der`), signed by it: on its token, in the station. The CA
/// takes nothing from a request but its key ([`verify_csr`]); the name only helps a reader.
pub fn signed_request(
    common_name: &str,
    key: &impl SigningKey,
    spki_der: &[u8],
) -> Result<Vec<u8>, CaError> {
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| CaError::UnsupportedKey {
            what: "request key",
            reason: format!("its public key does not parse: {e}"),
        })?;
    let (algorithm, _) = accepted_key("request key", &spki)?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let operation = "sign the request";
    if algorithm == KeyAlgorithm::Sm2 {
        let draft = params
            .serialize_request(&StandIn(key.der_bytes()))
            .map_err(|source| CaError::Rcgen { operation, source })?;
        let info = restamp_request(draft.der(), spki_der)?;
        let signature = sign_with(key, &info, operation)?;
        assemble(&info, algorithm, &signature, "request")
    } else {
        let csr = params
            .serialize_request(key)
            .map_err(|source| CaError::Rcgen { operation, source })?;
        Ok(csr.der().to_vec())
    }
}

/// Accepts ECDSA P-256, SM2 and RSA >= 2048 SubjectPublicKeyInfos, refuses the rest by name.
/// Returns the algorithm and the key's size in bits.
pub(crate) fn accepted_key(
    what: &'static str,
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<(KeyAlgorithm, usize), CaError> {
    let refuse = |reason: String| Err(CaError::UnsupportedKey { what, reason });
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let algorithm = match &curve {
            Some(c) if *c == OID_EC_P256 => KeyAlgorithm::EcdsaP256,
            Some(c) if c.to_id_string() == crate::sm2::OID_SM2_CURVE.to_string() => {
                KeyAlgorithm::Sm2
            }
            Some(c) => {
                return refuse(format!(
                    "EC curve {c} (only P-256, 1.2.840.10045.3.1.7, and sm2p256v1, 1.2.156.10197.1.301)"
                ));
            }
            None => return refuse("EC key without a named curve (only P-256 and SM2)".into()),
        };
        // Uncompressed point: 0x04 || X || Y, 32 bytes each.
        let point = spki.subject_public_key.data.as_ref();
        if point.len() != 65 || point.first() != Some(&0x04) {
            return refuse(format!(
                "{} public key is not an uncompressed 65-byte point",
                algorithm.as_str()
            ));
        }
        Ok((algorithm, 256))
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
        Ok((KeyAlgorithm::Rsa2048, bits))
    } else {
        refuse(format!(
            "key algorithm {alg} (only ECDSA P-256, SM2 and RSA >= 2048)"
        ))
    }
}

#[cfg(test)]
mod tests;
