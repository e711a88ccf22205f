//! The issuing CA: certificate profiles (self-signed CA, seal maker, unit certificate), CSR
//! checks, issuance and CRLs.
//!
//! Rooms, in the order of an issuance:
//! - [`csr`]: the PKCS#10 request, the keys the CA accepts, proof of possession;
//! - [`profile`]: what each certificate contains (subject, extensions, validity), as parameters;
//! - [`issuance`]: signing with the CA key, serials, the checks before and after signing, and
//!   certificates read back for records;
//! - [`crl`]: revocation lists signed by the same key;
//! - [`ocsp`]: OCSP requests read and responses encoded for the CA's delegated signer;
//! - [`sm2_envelope`]: the encryption key pair of an SM2 dual certificate, made by the station
//!   and sent to its token as an `SM2EnvelopedKey`;
//! - `sm2_stamp`: SM2 certificates and requests on the same builder (rcgen has no SM2: it
//!   encodes around a stand-in key, the algorithm identifiers are re-stamped, the token signs).
//!
//! The X.509 rules they share with the seals (certificate parsing, serials, key identifiers, name
//! values, instants) are in [`crate::x509`].
//!
//! The CA's private key never leaves its PKCS#11 token: every function here signs through an
//! [`rcgen::SigningKey`], so the same code runs with a token-backed signer in the station and
//! rcgen's software `KeyPair` in tests. Nothing here does IO or reads the clock: time, serial
//! numbers and the CA material are parameters.
//!
//! Invariants upheld by every issuing function:
//! - the issuer DN of what is signed is byte-for-byte the CA certificate's subject;
//! - after signing, the signature is verified against the CA certificate's public key, so a
//!   token key that is not the CA certificate's key (a wrong HSM key label) is an error, never a
//!   certificate or CRL that relying parties would reject later;
//! - serials are positive DER INTEGERs of at most 20 octets (RFC 5280 §4.1.2.2);
//! - validity instants are whole seconds in UTC inside the X.509 time range, so rcgen's encoder
//!   (which asserts on out-of-range dates) is never fed a value it would panic on.

pub mod crl;
pub mod csr;
pub mod issuance;
pub mod ocsp;
pub mod profile;
pub mod sm2_envelope;
mod sm2_stamp;

/// Everything that can go wrong while building, signing or reading CA artefacts.
///
/// Messages name the offending field or input; none contains key material or a PIN (the CA
/// module never sees a PIN).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// An order, profile or configuration value cannot go into a certificate or CRL as it is.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field, e.g. `company.name` or `serial`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The certificate signing request is not a well-formed PKCS#10 structure.
    #[error("certificate signing request: cannot parse: {0}")]
    CsrMalformed(String),
    /// The CSR's self-signature does not verify: the requester did not prove possession of the key.
    #[error(
        "certificate signing request: self-signature does not verify (no proof of possession): {0}"
    )]
    CsrSignature(String),
    /// A key or signature algorithm outside what the station accepts (ECDSA P-256 with SHA-256,
    /// RSA >= 2048 bits with SHA-256).
    #[error("{what}: unsupported key or algorithm: {reason}")]
    UnsupportedKey {
        /// Whose key: `CSR`, `seal maker public key`, ...
        what: &'static str,
        /// What exactly is not accepted.
        reason: String,
    },
    /// The CA certificate cannot serve as the issuer (unparseable, not a CA, no SKI, expired...).
    #[error("CA certificate: {0}")]
    CaCertificate(String),
    /// rcgen refused to encode or the signing key failed to sign (e.g. a PKCS#11 error).
    #[error("{operation}: {source}")]
    Rcgen {
        /// What was being produced, e.g. `sign unit certificate`.
        operation: &'static str,
        /// rcgen's error (a token signer reports its failures through it).
        #[source]
        source: rcgen::Error,
    },
    /// The signing key is not the CA certificate's key: either its public key differs from the
    /// certificate's, or a signature it produced does not verify under the certificate's key.
    #[error(
        "the CA signing key does not match the CA certificate ({what}); check the CA token and key label"
    )]
    CaKeyMismatch {
        /// What detected it, e.g. `signature of the issued certificate does not verify`.
        what: &'static str,
    },
    /// A freshly signed certificate or CRL is not what was asked for (issuer DN, public key,
    /// serial); nothing produced in that state may be used.
    #[error("self-check of the issued {artefact} failed: {reason}")]
    SelfCheck {
        /// `certificate` or `CRL`.
        artefact: &'static str,
        /// Which property differs.
        reason: String,
    },
    /// A certificate given for display or inspection cannot be parsed.
    #[error("certificate: cannot parse: {0}")]
    CertificateMalformed(String),
}

impl From<crate::x509::InvalidValue> for CaError {
    fn from(e: crate::x509::InvalidValue) -> Self {
        CaError::InvalidInput {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl crate::error_code::Coded for CaError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            CaError::InvalidInput { .. } => ec::CA_INPUT,
            CaError::CsrMalformed(_) | CaError::CsrSignature(_) => ec::CSR_INVALID,
            CaError::UnsupportedKey { .. } => ec::UNSUPPORTED_KEY,
            CaError::CaCertificate(_) => ec::CA_CERTIFICATE,
            CaError::Rcgen { .. } => ec::CA_SIGNING,
            CaError::CaKeyMismatch { .. } => ec::CA_KEY_MISMATCH,
            CaError::SelfCheck { .. } => ec::CA_SELF_CHECK,
            CaError::CertificateMalformed(_) => ec::CERTIFICATE_MALFORMED,
        }
    }
}

#[cfg(test)]
pub(crate) mod testkit;
