//! OCSP (RFC 6960) in the RFC 5019 profile: reading a request, deciding which of its
//! certificates this CA answers for, and encoding the signed answer. Pure: no IO, no clock, no
//! store; the certificates' status, the time and the signature are parameters, so the station's
//! responder (`station::ocsp`) and the tests drive the same code.
//!
//! Invariants:
//! - every byte string a client sends is decoded as strict DER; anything else (garbage, a
//!   truncated request, trailing bytes, an empty request list, more than [`MAX_REQUESTS`]
//!   entries, a nonce longer than [`MAX_NONCE_LEN`]) is `malformedRequest`, never a panic;
//! - a CertID names this CA only when both its issuer hashes are the CA's under an algorithm the
//!   responder computes (SHA-1, SHA-256); a request naming no certificate of this CA is
//!   `unauthorized` (RFC 5019 §2.2.3), a foreign entry beside one of ours is answered `unknown`;
//! - each SingleResponse carries the request's CertID byte for byte; the nonce extension, when
//!   asked for, is echoed as it came;
//! - the responder is named by key (SHA-1 of its subjectPublicKey, RFC 6960 §4.2.1), and its
//!   certificate travels in the response so that relying parties can check the delegation.

pub mod asn1;

use crate::domain::{CertSerial, KeyAlgorithm};
use asn1::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, ResponderId, ResponseBytes,
    ResponseData, ResponseStatus, RevokedInfo, SingleResponse, Version,
};
use der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Tagged};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// `id-pkix-ocsp-basic`.
pub const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-pkix-ocsp-nonce`.
pub const OID_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// `id-pkix-ocsp-nocheck`: the delegated signer's own certificate is not checked by OCSP.
pub const OID_OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
/// `id-ad-ocsp`, the access method of an AIA entry naming the responder.
pub const OID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Most certificates one request may ask about (RFC 5019 clients ask about one).
pub const MAX_REQUESTS: usize = 20;
/// Longest nonce accepted (RFC 8954 §2.1: 1 to 32 octets).
pub const MAX_NONCE_LEN: usize = 32;

/// Why a request cannot be answered with statuses; each maps to an OCSP error status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspError {
    /// Not an OCSPRequest this responder reads (`malformedRequest`).
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    /// The request names no certificate of this CA (`unauthorized`).
    #[error("the OCSP request names no certificate of this CA")]
    Unauthorized,
    /// The responder's own material cannot be used (signer certificate, algorithm); an
    /// operator's error, answered `internalError`.
    #[error("OCSP responder: {0}")]
    Responder(String),
}

impl OcspError {
    /// The OCSP response status a client gets for this error.
    pub fn status(&self) -> ResponseStatus {
        match self {
            OcspError::Malformed(_) => ResponseStatus::MalformedRequest,
            OcspError::Unauthorized => ResponseStatus::Unauthorized,
            OcspError::Responder(_) => ResponseStatus::InternalError,
        }
    }
}

/// A request, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The certificates asked about, in the request's order.
    pub cert_ids: Vec<CertId>,
    /// The nonce extension, as it came (echoed in the answer).
    pub nonce: Option<Extension>,
}

impl ParsedRequest {
    /// What identifies the answer to this request among cached ones: the DER of its CertIDs.
    /// `None` when the request has a nonce (its answer is signed for it alone).
    pub fn cache_key(&self) -> Option<Vec<u8>> {
        if self.nonce.is_some() {
            return None;
        }
        let mut key = Vec::new();
        for id in &self.cert_ids {
            id.encode_to_vec(&mut key).ok()?;
        }
        Some(key)
    }
}

/// Reads a DER OCSPRequest. See the module invariants for what is refused.
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    let request =
        OcspRequest::from_der(der).map_err(|e| OcspError::Malformed(format!("not DER: {e}")))?;
    let tbs = request.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(OcspError::Malformed("empty requestList".into()));
    }
    if tbs.request_list.len() > MAX_REQUESTS {
        return Err(OcspError::Malformed(format!(
            "{} certificates asked about, at most {MAX_REQUESTS} are answered",
            tbs.request_list.len()
        )));
    }
    let nonce = tbs
        .request_extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == OID_OCSP_NONCE);
    if let Some(ext) = &nonce {
        let value = ext.extn_value.as_bytes();
        // RFC 8954: the value is an OCTET STRING of 1..32 octets; older clients put the raw
        // bytes. Either way its length is bounded.
        let len = OctetString::from_der(value).map_or(value.len(), |o| o.as_bytes().len());
        if len == 0 || len > MAX_NONCE_LEN {
            return Err(OcspError::Malformed(format!(
                "nonce of {len} octets (1 to {MAX_NONCE_LEN} accepted)"
            )));
        }
    }
    Ok(ParsedRequest {
        cert_ids: tbs.request_list.into_iter().map(|r| r.req_cert).collect(),
        nonce,
    })
}

/// The serial a CertID asks about, as the store keeps serials (lower-case hex of the minimal
/// unsigned big-endian bytes); `None` for zero, a negative INTEGER or one longer than a
/// [`CertSerial`] (32 bytes), which no certificate of this CA has.
pub fn serial_hex(id: &CertId) -> Option<CertSerial> {
    let bytes = id.serial_number.as_bytes();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let minimal = crate::x509::minimal_unsigned(bytes);
    (!minimal.is_empty() && minimal.iter().any(|b| *b != 0))
        .then(|| CertSerial::parse(&hex::encode(minimal)).ok())
        .flatten()
}

/// The issuing CA as CertIDs name it: the hashes of its subject and of its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
}

impl IssuerHashes {
    /// The hashes of the CA certificate `ca_cert_der`.
    pub fn of_ca(ca_cert_der: &[u8]) -> Result<IssuerHashes, OcspError> {
        let ca = crate::x509::parse_certificate(ca_cert_der)
            .map_err(|e| OcspError::Responder(format!("CA certificate: {e}")))?;
        let name = ca.subject().as_raw();
        let key = ca.public_key().subject_public_key.data.as_ref();
        Ok(IssuerHashes {
            sha1: (Sha1::digest(name).to_vec(), Sha1::digest(key).to_vec()),
            sha256: (Sha256::digest(name).to_vec(), Sha256::digest(key).to_vec()),
        })
    }

    /// Whether `id` names this CA as issuer.
    pub fn names(&self, id: &CertId) -> bool {
        let (name, key) = if id.hash_algorithm.oid == OID_SHA1 {
            &self.sha1
        } else if id.hash_algorithm.oid == OID_SHA256 {
            &self.sha256
        } else {
            return false;
        };
        // Parameters are absent or NULL for both hashes (RFC 5754 §2); anything else is not
        // a hash algorithm this responder knows.
        let params_ok = id
            .hash_algorithm
            .parameters
            .as_ref()
            .is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty());
        params_ok
            && id.issuer_name_hash.as_bytes() == name.as_slice()
            && id.issuer_key_hash.as_bytes() == key.as_slice()
    }
}

/// Which certificates of `request` this CA answers for: an error when none (`unauthorized`).
pub fn check_issuer(request: &ParsedRequest, issuer: &IssuerHashes) -> Result<(), OcspError> {
    if request.cert_ids.iter().any(|id| issuer.names(id)) {
        Ok(())
    } else {
        Err(OcspError::Unauthorized)
    }
}

/// A certificate's status as the CA knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at `at` for `reason` (an RFC 5280 reason; `Unspecified` is not written).
    Revoked {
        /// When the CA recorded the revocation.
        at: OffsetDateTime,
        /// Why.
        reason: CrlReason,
    },
    /// Never issued by this CA (or not a CertID of this CA).
    Unknown,
}

/// The CRLReason of an RFC 5280 reason name as the store keeps it (`keyCompromise`, ...);
/// `Unspecified` for a name it does not know.
pub fn crl_reason(name: &str) -> CrlReason {
    match name {
        "keyCompromise" => CrlReason::KeyCompromise,
        "cACompromise" | "caCompromise" => CrlReason::CaCompromise,
        "affiliationChanged" => CrlReason::AffiliationChanged,
        "superseded" => CrlReason::Superseded,
        "cessationOfOperation" => CrlReason::CessationOfOperation,
        "certificateHold" => CrlReason::CertificateHold,
        "privilegeWithdrawn" => CrlReason::PrivilegeWithdrawn,
        "aACompromise" | "aaCompromise" => CrlReason::AaCompromise,
        _ => CrlReason::Unspecified,
    }
}

/// The delegated responder, as its answers name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderKey {
    key_hash: Vec<u8>,
    cert_der: Vec<u8>,
    signature_algorithm: AlgorithmIdentifierOwned,
}

impl ResponderKey {
    /// The responder whose certificate is `signer_cert_der`, signing with a key of `algorithm`.
    pub fn new(signer_cert_der: &[u8], algorithm: KeyAlgorithm) -> Result<ResponderKey, OcspError> {
        let cert = crate::x509::parse_certificate(signer_cert_der)
            .map_err(|e| OcspError::Responder(format!("OCSP signer certificate: {e}")))?;
        let key_hash = Sha1::digest(cert.public_key().subject_public_key.data.as_ref()).to_vec();
        // No parameters for ECDSA (RFC 5758) and SM2-with-SM3 (GM/T 0015), NULL for RSA.
        let parameters = match algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Sm2 => None,
            KeyAlgorithm::Rsa2048 => Some(Any::from(Null)),
        };
        let (oid, _) = crate::x509::signature_algorithm(algorithm);
        Ok(ResponderKey {
            key_hash,
            cert_der: signer_cert_der.to_vec(),
            signature_algorithm: AlgorithmIdentifierOwned { oid, parameters },
        })
    }
}

fn generalized(field: &str, t: OffsetDateTime) -> Result<GeneralizedTime, OcspError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| OcspError::Responder(format!("{field} before 1970")))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|e| OcspError::Responder(format!("{field}: {e}")))
}

fn encoding(e: der::Error) -> OcspError {
    OcspError::Responder(format!("encoding the response: {e}"))
}

/// The validity of an answer: signed at `produced_at`, status known at `this_update`, fresher
/// status by `next_update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// producedAt.
    pub produced_at: OffsetDateTime,
    /// thisUpdate of every SingleResponse.
    pub this_update: OffsetDateTime,
    /// nextUpdate of every SingleResponse.
    pub next_update: OffsetDateTime,
}

/// The DER ResponseData answering `request` with one status per CertID (`statuses`, in the
/// request's order), to be signed by the responder's key.
pub fn response_data(
    responder: &ResponderKey,
    request: &ParsedRequest,
    statuses: &[Status],
    validity: Validity,
) -> Result<Vec<u8>, OcspError> {
    if statuses.len() != request.cert_ids.len() {
        return Err(OcspError::Responder(format!(
            "{} statuses for {} certificates",
            statuses.len(),
            request.cert_ids.len()
        )));
    }
    let this_update = generalized("thisUpdate", validity.this_update)?;
    let next_update = generalized("nextUpdate", validity.next_update)?;
    let responses = request
        .cert_ids
        .iter()
        .zip(statuses)
        .map(|(id, status)| {
            let cert_status = match *status {
                Status::Good => CertStatus::Good(Null),
                Status::Unknown => CertStatus::Unknown(Null),
                Status::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                    revocation_time: generalized("revocationTime", at)?,
                    revocation_reason: (reason != CrlReason::Unspecified).then_some(reason),
                }),
            };
            Ok(SingleResponse {
                cert_id: id.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, OcspError>>()?;
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(
            OctetString::new(responder.key_hash.clone()).map_err(encoding)?,
        ),
        produced_at: generalized("producedAt", validity.produced_at)?,
        responses,
        response_extensions: request.nonce.clone().map(|n| vec![n]),
    };
    data.to_der().map_err(encoding)
}

/// The successful OCSPResponse: `tbs` (from [`response_data`]) with the responder's
/// `signature` over it (in the X.509 form: DER ECDSA-Sig-Value, or PKCS#1 v1.5) and the
/// responder's certificate.
pub fn signed_response(
    responder: &ResponderKey,
    tbs: &[u8],
    signature: &[u8],
) -> Result<Vec<u8>, OcspError> {
    let basic = BasicOcspResponse {
        tbs_response_data: Any::from_der(tbs).map_err(encoding)?,
        signature_algorithm: responder.signature_algorithm.clone(),
        signature: BitString::from_bytes(signature).map_err(encoding)?,
        certs: Some(vec![Any::from_der(&responder.cert_der).map_err(encoding)?]),
    };
    OcspResponse {
        response_status: ResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: OID_OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(encoding)?).map_err(encoding)?,
        }),
    }
    .to_der()
    .map_err(encoding)
}

/// The unsigned OCSPResponse of an error status (RFC 6960 §4.2.1: no responseBytes).
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: five bytes, nothing to fail.
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

#[cfg(test)]
mod tests;
