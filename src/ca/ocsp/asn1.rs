//! The ASN.1 structures of RFC 6960 (OCSP) the responder reads and writes, as `der` derives.
//!
//! Fields the responder never looks at (a request's requestorName and signature) are kept as
//! `Any`, so that any well-formed value is accepted and none is interpreted. A CertID keeps its
//! serial as a raw INTEGER (`Int`), not as x509-cert's `SerialNumber`: a relying party may ask
//! about any integer, and the CertID of the answer must be the request's, byte for byte.

use der::asn1::{BitString, GeneralizedTime, Int, Null, ObjectIdentifier, OctetString};
use der::{Any, Choice, Enumerated, Sequence};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// `Version ::= INTEGER { v1(0) }`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, Enumerated)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub enum Version {
    /// v1, the only version.
    #[default]
    V1 = 0,
}

/// `OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspRequest {
    /// What is asked.
    pub tbs_request: TbsRequest,
    /// A signed request's signature (not checked: RFC 5019 requests are unsigned).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<Any>,
}

/// `TBSRequest` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TbsRequest {
    /// v1.
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub version: Version,
    /// The requestor's name (ignored).
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<Any>,
    /// One entry per certificate asked about.
    pub request_list: Vec<Request>,
    /// The nonce, among others.
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Extensions>,
}

/// `Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Request {
    /// The certificate asked about.
    pub req_cert: CertId,
    /// Ignored.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<Extensions>,
}

/// `CertID` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertId {
    /// The hash of the two issuer hashes (SHA-1 or SHA-256 here).
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the issuer's DER-encoded Name.
    pub issuer_name_hash: OctetString,
    /// Hash of the issuer's subjectPublicKey BIT STRING value.
    pub issuer_key_hash: OctetString,
    /// The certificate's serial.
    pub serial_number: Int,
}

/// `OCSPResponseStatus` (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Enumerated)]
#[repr(u32)]
pub enum ResponseStatus {
    /// Response has valid confirmations.
    Successful = 0,
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized.
    Unauthorized = 6,
}

/// `OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspResponse {
    /// The status.
    pub response_status: ResponseStatus,
    /// Present when successful.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytes>,
}

/// `ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseBytes {
    /// `id-pkix-ocsp-basic`.
    pub response_type: ObjectIdentifier,
    /// The DER BasicOCSPResponse.
    pub response: OctetString,
}

/// `BasicOCSPResponse` (RFC 6960 §4.2.1). The signed part is kept as its DER (`Any`), exactly
/// the bytes that were signed.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct BasicOcspResponse {
    /// The DER ResponseData.
    pub tbs_response_data: Any,
    /// The signature algorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature over `tbs_response_data`.
    pub signature: BitString,
    /// The responder's certificate (DER Certificates).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Any>>,
}

/// `ResponseData` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseData {
    /// v1 (DEFAULT, so never encoded).
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub version: Version,
    /// Who signed.
    pub responder_id: ResponderId,
    /// When this answer was signed.
    pub produced_at: GeneralizedTime,
    /// One per request.
    pub responses: Vec<SingleResponse>,
    /// The nonce echoed.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Extensions>,
}

/// `ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }` (EXPLICIT tags).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum ResponderId {
    /// The responder's subject (read only, never written).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Any),
    /// SHA-1 of the responder's subjectPublicKey.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `SingleResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleResponse {
    /// The request's CertID, as asked.
    pub cert_id: CertId,
    /// good / revoked / unknown.
    pub cert_status: CertStatus,
    /// The status is known correct at this time.
    pub this_update: GeneralizedTime,
    /// Newer information will be available by then.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
    /// None written.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub single_extensions: Option<Extensions>,
}

/// `CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT UnknownInfo }`.
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum CertStatus {
    /// Not revoked.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    /// Revoked, when and why.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    /// Not a certificate of this CA.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevokedInfo {
    /// When.
    pub revocation_time: GeneralizedTime,
    /// Why.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub revocation_reason: Option<CrlReason>,
}
