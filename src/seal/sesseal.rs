//! GB/T 38540-2020 `SESeal` (version 4): typed structure, strict DER parser, encoder and builder.
//!
//! The ASN.1 module implemented here (field order is the wire order):
//!
//! ```text
//! SESeal ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING,
//!                       signAlgID OBJECT IDENTIFIER, signedValue BIT STRING }
//! SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
//!                             picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
//! SES_Header ::= SEQUENCE { id IA5String ("ES"), version INTEGER (4), vid IA5String }
//! SES_ESPropertyInfo ::= SEQUENCE { type INTEGER, name UTF8String, certListType INTEGER,
//!                                   certList SES_CertList, createDate GeneralizedTime,
//!                                   validStart GeneralizedTime, validEnd GeneralizedTime }
//! SES_CertList ::= CHOICE { certs SEQUENCE OF OCTET STRING,
//!                           certDigestList SEQUENCE OF CertDigestObj }
//! CertDigestObj ::= SEQUENCE { type PrintableString, value OCTET STRING }
//! SES_ESPictrueInfo ::= SEQUENCE { type IA5String, data OCTET STRING,
//!                                  width INTEGER, height INTEGER }   -- millimetres
//! ExtensionDatas ::= SEQUENCE OF ExtData
//! ExtData ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE,
//!                        extnValue OCTET STRING }
//! ```
//!
//! Invariants and decisions:
//! - **`SES_CertList` is decided by `certListType`.** Both CHOICE alternatives are untagged
//!   `SEQUENCE OF`, so the tag cannot tell them apart (and an empty list would be ambiguous).
//!   The parser reads `certListType` first: 1 means `certs`, 2 means `certDigestList`, any other
//!   value is rejected, and contents of the other alternative fail as a wrong tag. In Rust the
//!   type is not stored separately: [`SesCertList::cert_list_type`] derives it from the variant,
//!   so a mismatch cannot be built, only met on the wire.
//! - **Strict DER.** Parsing uses `der`'s DER reader: wrong tags, non-minimal lengths and
//!   integers, non-canonical booleans, constructed strings and trailing bytes (inside any
//!   structure or after the outer `SESeal`) are errors. `critical FALSE` written explicitly is
//!   rejected too, because DER omits a value equal to its DEFAULT.
//! - Parsing is syntactic (plus the `certListType` rule); profile rules (`"ES"`, version 4,
//!   non-empty `certs`) are [`SesSeal::check_profile`], run by `verify_seal`'s `structure` check
//!   so that a report can still show what a non-conforming seal contains.
//! - GeneralizedTime values are whole seconds in UTC (`YYYYMMDDHHMMSSZ`), as DER requires;
//!   sub-second parts of input times are truncated.

use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, PrintableString};
use der::{
    Decode, DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag,
    Writer,
};
use time::OffsetDateTime;

use super::SealError;
use super::picture::PNG_SIGNATURE;
use crate::x509::{
    OID_ECDSA_WITH_SHA256, OID_SHA256_WITH_RSA, generalized_time, parse_certificate,
    verify_with_certificate,
};

/// Value of `SES_Header.id`.
pub const SEAL_HEADER_ID: &str = "ES";
/// Value of `SES_Header.version` for GB/T 38540-2020.
pub const SEAL_VERSION: i64 = 4;
/// Value of `SES_ESPictrueInfo.type` for the pictures this station makes.
pub const PICTURE_TYPE_PNG: &str = "PNG";

/// `SESeal`: the seal information, the maker's certificate, and the maker's signature over both.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesSeal {
    /// `eSealInfo`.
    pub e_seal_info: SesSealInfo,
    /// `cert`: DER of the seal maker's X.509 certificate.
    pub cert: OctetString,
    /// `signAlgID`.
    pub sign_alg_id: ObjectIdentifier,
    /// `signedValue`: the maker's signature (X.509 signature encoding for `signAlgID`).
    pub signed_value: BitString,
}

/// `SES_SealInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesSealInfo {
    /// `header`.
    pub header: SesHeader,
    /// `esID`: the seal's identifier, unique within the maker.
    pub es_id: Ia5String,
    /// `property`.
    pub property: SesEsPropertyInfo,
    /// `picture`.
    pub picture: SesEsPictureInfo,
    /// `extDatas` (OPTIONAL).
    #[asn1(optional = "true")]
    pub ext_datas: Option<Vec<ExtData>>,
}

/// `SES_Header`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesHeader {
    /// `id`, `"ES"` in a conforming seal.
    pub id: Ia5String,
    /// `version`, 4 in a conforming seal.
    pub version: i64,
    /// `vid`: the seal-making vendor's identifier.
    pub vid: Ia5String,
}

/// `SES_ESPropertyInfo`. Encoded by hand because `certList` is decided by `certListType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SesEsPropertyInfo {
    /// `type`: 1 = organisation seal, 2 = personal seal (see [`SealType`]).
    pub seal_type: i64,
    /// `name`: the seal's name (e.g. the company name).
    pub name: String,
    /// `certListType` + `certList`.
    pub cert_list: SesCertList,
    /// `createDate`.
    pub create_date: GeneralizedTime,
    /// `validStart`.
    pub valid_start: GeneralizedTime,
    /// `validEnd`.
    pub valid_end: GeneralizedTime,
}

/// `SES_CertList`: the certificates (or their digests) of the signers allowed to use the seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SesCertList {
    /// `certs` (`certListType` 1): DER certificates.
    Certs(Vec<OctetString>),
    /// `certDigestList` (`certListType` 2).
    CertDigestList(Vec<CertDigestObj>),
}

impl SesCertList {
    /// The `certListType` value that goes with this alternative.
    pub fn cert_list_type(&self) -> i64 {
        match self {
            SesCertList::Certs(_) => 1,
            SesCertList::CertDigestList(_) => 2,
        }
    }
}

/// `CertDigestObj`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertDigestObj {
    /// `type`: the digest algorithm's name.
    pub digest_type: PrintableString,
    /// `value`: the certificate's digest.
    pub value: OctetString,
}

/// `SES_ESPictrueInfo` (the standard's spelling of "Picture").
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SesEsPictureInfo {
    /// `type`: the picture format, `"PNG"` for this station.
    pub picture_type: Ia5String,
    /// `data`: the picture file.
    pub data: OctetString,
    /// `width` in millimetres.
    pub width: i64,
    /// `height` in millimetres.
    pub height: i64,
}

/// `ExtData`. Encoded by hand so that `critical` FALSE is omitted (DER DEFAULT rule) and an
/// explicitly encoded FALSE is rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtData {
    /// `extnID`.
    pub extn_id: ObjectIdentifier,
    /// `critical` (DEFAULT FALSE).
    pub critical: bool,
    /// `extnValue`.
    pub extn_value: OctetString,
}

impl EncodeValue for SesEsPropertyInfo {
    fn value_len(&self) -> der::Result<Length> {
        let list_len = match &self.cert_list {
            SesCertList::Certs(certs) => certs.encoded_len()?,
            SesCertList::CertDigestList(digests) => digests.encoded_len()?,
        };
        self.seal_type.encoded_len()?
            + self.name.encoded_len()?
            + self.cert_list.cert_list_type().encoded_len()?
            + list_len
            + self.create_date.encoded_len()?
            + self.valid_start.encoded_len()?
            + self.valid_end.encoded_len()?
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.seal_type.encode(writer)?;
        self.name.encode(writer)?;
        self.cert_list.cert_list_type().encode(writer)?;
        match &self.cert_list {
            SesCertList::Certs(certs) => certs.encode(writer)?,
            SesCertList::CertDigestList(digests) => digests.encode(writer)?,
        }
        self.create_date.encode(writer)?;
        self.valid_start.encode(writer)?;
        self.valid_end.encode(writer)
    }
}

impl<'a> DecodeValue<'a> for SesEsPropertyInfo {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
        let seal_type = i64::decode(reader)?;
        let name = String::decode(reader)?;
        let cert_list_type = i64::decode(reader)?;
        // The CHOICE alternatives share the SEQUENCE tag: certListType decides (module docs).
        let cert_list = match cert_list_type {
            1 => SesCertList::Certs(Vec::<OctetString>::decode(reader)?),
            2 => SesCertList::CertDigestList(Vec::<CertDigestObj>::decode(reader)?),
            _ => return Err(reader.error(Tag::Integer.value_error())),
        };
        Ok(Self {
            seal_type,
            name,
            cert_list,
            create_date: GeneralizedTime::decode(reader)?,
            valid_start: GeneralizedTime::decode(reader)?,
            valid_end: GeneralizedTime::decode(reader)?,
        })
    }
}

impl Sequence<'_> for SesEsPropertyInfo {}

impl EncodeValue for ExtData {
    fn value_len(&self) -> der::Result<Length> {
        let critical_len = if self.critical {
            true.encoded_len()?
        } else {
            Length::ZERO
        };
        self.extn_id.encoded_len()? + critical_len + self.extn_value.encoded_len()?
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.extn_id.encode(writer)?;
        if self.critical {
            true.encode(writer)?;
        }
        self.extn_value.encode(writer)
    }
}

impl<'a> DecodeValue<'a> for ExtData {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
        let extn_id = ObjectIdentifier::decode(reader)?;
        let critical = match Option::<bool>::decode(reader)? {
            None => false,
            Some(true) => true,
            // DER (X.690 11.5): a value equal to the DEFAULT must not be encoded.
            Some(false) => return Err(reader.error(Tag::Boolean.non_canonical_error())),
        };
        let extn_value = OctetString::decode(reader)?;
        Ok(Self {
            extn_id,
            critical,
            extn_value,
        })
    }
}

impl Sequence<'_> for ExtData {}

/// The to-be-signed part of a seal: `SEQUENCE { eSealInfo, cert, signAlgID }`, borrowed.
struct TbsSeal<'s> {
    info: &'s SesSealInfo,
    cert: &'s OctetString,
    alg: &'s ObjectIdentifier,
}

impl EncodeValue for TbsSeal<'_> {
    fn value_len(&self) -> der::Result<Length> {
        self.info.encoded_len()? + self.cert.encoded_len()? + self.alg.encoded_len()?
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.info.encode(writer)?;
        self.cert.encode(writer)?;
        self.alg.encode(writer)
    }
}

impl FixedTag for TbsSeal<'_> {
    const TAG: Tag = Tag::Sequence;
}

/// GM/T 0031 / GB/T 38540 signing rule: the maker signs the DER encoding of
/// `SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING, signAlgID OBJECT IDENTIFIER }`,
/// i.e. the `SESeal` without its `signedValue`, re-wrapped as one SEQUENCE. Binding `cert` and
/// `signAlgID` stops a signature from being re-attributed to another maker or algorithm.
fn tbs_der(
    info: &SesSealInfo,
    cert: &OctetString,
    alg: &ObjectIdentifier,
) -> Result<Vec<u8>, SealError> {
    TbsSeal { info, cert, alg }
        .to_der()
        .map_err(|source| SealError::Der {
            what: "SESeal to-be-signed data",
            source,
        })
}

impl SesSeal {
    /// DER encoding of the seal.
    pub fn to_der(&self) -> Result<Vec<u8>, SealError> {
        Encode::to_der(self).map_err(|source| SealError::Der {
            what: "SESeal",
            source,
        })
    }

    /// The signature input recomputed from the parsed parts (see the GM/T 0031 rule on
    /// `tbs_der`). Because parsing is strict DER, this equals the bytes the maker signed.
    pub fn signed_data_der(&self) -> Result<Vec<u8>, SealError> {
        tbs_der(&self.e_seal_info, &self.cert, &self.sign_alg_id)
    }

    /// Profile rules beyond syntax: header `"ES"` version 4, and a `certList` that is either a
    /// non-empty `certs` list (type 1) or a digest list (type 2).
    pub fn check_profile(&self) -> Result<(), SealError> {
        let header = &self.e_seal_info.header;
        if header.id.as_str() != SEAL_HEADER_ID {
            return Err(invalid(
                "header.id",
                format!("is {:?}, expected {SEAL_HEADER_ID:?}", header.id.as_str()),
            ));
        }
        if header.version != SEAL_VERSION {
            return Err(invalid(
                "header.version",
                format!("is {}, expected {SEAL_VERSION}", header.version),
            ));
        }
        if let SesCertList::Certs(certs) = &self.e_seal_info.property.cert_list
            && certs.is_empty()
        {
            return Err(invalid(
                "property.certList",
                "certListType 1 with no certificate".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Parses a DER `SESeal` strictly (see the module docs for what is rejected).
pub fn parse_seal(der: &[u8]) -> Result<SesSeal, SealError> {
    SesSeal::from_der(der).map_err(|source| SealError::Der {
        what: "SESeal",
        source,
    })
}

/// `SES_ESPropertyInfo.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealType {
    /// Organisation (company) seal, 公章.
    Organisation = 1,
    /// Personal seal, here the legal representative's seal, 法人章.
    Personal = 2,
}

impl SealType {
    /// The INTEGER written in the seal.
    pub fn code(self) -> i64 {
        self as i64
    }
}

impl TryFrom<i64> for SealType {
    type Error = SealError;

    fn try_from(value: i64) -> Result<Self, SealError> {
        match value {
            1 => Ok(SealType::Organisation),
            2 => Ok(SealType::Personal),
            other => Err(invalid(
                "property.type",
                format!("{other} is neither 1 (organisation) nor 2 (personal)"),
            )),
        }
    }
}

/// What the station knows about a seal to make; [`build_seal`] turns it into a signed `SESeal`.
#[derive(Clone, Debug, PartialEq)]
pub struct SealSpec {
    /// Organisation or personal seal.
    pub seal_type: SealType,
    /// `esID`, non-empty IA5 (ASCII).
    pub es_id: String,
    /// `vid`, the vendor id, IA5 (ASCII).
    pub vid: String,
    /// `name`, non-empty.
    pub name: String,
    /// DER of the company certificate that may use the seal (goes into `certList`, type 1).
    pub company_cert_der: Vec<u8>,
    /// `createDate`.
    pub create_date: OffsetDateTime,
    /// `validStart`, not after `valid_end`.
    pub valid_start: OffsetDateTime,
    /// `validEnd`.
    pub valid_end: OffsetDateTime,
    /// The PNG picture, normally from `normalize_seal_picture`.
    pub picture_png: Vec<u8>,
    /// Printed width in millimetres, > 0.
    pub width_mm: u32,
    /// Printed height in millimetres, > 0.
    pub height_mm: u32,
}

/// The seal-making key. In keystation it is an HSM key that never leaves the token; tests use
/// software keys.
pub trait SealSigner {
    /// DER of the seal maker's certificate, issued by the CA for this key.
    fn maker_cert_der(&self) -> &[u8];
    /// The signature algorithm: [`OID_ECDSA_WITH_SHA256`], [`OID_SHA256_WITH_RSA`] or
    /// SM2-with-SM3 ([`crate::sm2::OID_SM2_WITH_SM3`], GB/T 38540's algorithm for SM2 seals).
    fn algorithm_oid(&self) -> ObjectIdentifier;
    /// Signs `data` and returns the X.509-style signature bytes: a DER `ECDSA-Sig-Value` for
    /// ECDSA, the PKCS#1 v1.5 signature for RSA, DER `SEQUENCE { r, s }` for SM2 (GB/T 35276).
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SealError>;
}

/// Builds, signs and DER-encodes a seal. The signature is verified with the maker certificate
/// before the seal is returned, so a key/certificate mismatch in the HSM never produces a seal.
pub fn build_seal(spec: &SealSpec, signer: &dyn SealSigner) -> Result<Vec<u8>, SealError> {
    let sign_alg_id = signer.algorithm_oid();
    if ![
        OID_ECDSA_WITH_SHA256,
        OID_SHA256_WITH_RSA,
        crate::sm2::OID_SM2_WITH_SM3,
    ]
    .contains(&sign_alg_id)
    {
        return Err(SealError::UnsupportedAlgorithm {
            oid: sign_alg_id.to_string(),
        });
    }
    let maker_cert_der = signer.maker_cert_der();
    parse_certificate(maker_cert_der).map_err(|reason| SealError::InvalidCertificate {
        which: "maker_cert_der",
        reason,
    })?;
    let e_seal_info = seal_info_from_spec(spec)?;
    let cert = octets("maker_cert_der", maker_cert_der)?;

    let tbs = tbs_der(&e_seal_info, &cert, &sign_alg_id)?;
    let signature = signer.sign(&tbs)?;
    verify_with_certificate(maker_cert_der, &sign_alg_id, &tbs, &signature)
        .map_err(SealError::SignatureSelfCheck)?;

    let seal = SesSeal {
        e_seal_info,
        cert,
        sign_alg_id,
        signed_value: BitString::from_bytes(&signature).map_err(|source| SealError::Der {
            what: "SESeal.signedValue",
            source,
        })?,
    };
    seal.to_der()
}

/// Validates a spec and maps it onto `SES_SealInfo` (no extension data).
fn seal_info_from_spec(spec: &SealSpec) -> Result<SesSealInfo, SealError> {
    if spec.es_id.is_empty() {
        return Err(invalid("es_id", "is empty".to_owned()));
    }
    let es_id = ia5("es_id", &spec.es_id)?;
    let vid = ia5("vid", &spec.vid)?;
    if spec.name.trim().is_empty() {
        return Err(invalid("name", "is empty".to_owned()));
    }
    if spec.picture_png.is_empty() {
        return Err(invalid("picture_png", "is empty".to_owned()));
    }
    // The picture type is written as "PNG", so the bytes must be a PNG file.
    if !spec.picture_png.starts_with(&PNG_SIGNATURE) {
        return Err(invalid(
            "picture_png",
            "does not start with the PNG signature".to_owned(),
        ));
    }
    if spec.width_mm == 0 {
        return Err(invalid("width_mm", "must be > 0".to_owned()));
    }
    if spec.height_mm == 0 {
        return Err(invalid("height_mm", "must be > 0".to_owned()));
    }
    if spec.valid_start > spec.valid_end {
        return Err(invalid(
            "valid_start",
            format!("{} is after valid_end {}", spec.valid_start, spec.valid_end),
        ));
    }
    parse_certificate(&spec.company_cert_der).map_err(|reason| SealError::InvalidCertificate {
        which: "company_cert_der",
        reason,
    })?;

    Ok(SesSealInfo {
        header: SesHeader {
            id: ia5("header.id", SEAL_HEADER_ID)?,
            version: SEAL_VERSION,
            vid,
        },
        es_id,
        property: SesEsPropertyInfo {
            seal_type: spec.seal_type.code(),
            name: spec.name.clone(),
            cert_list: SesCertList::Certs(vec![octets(
                "company_cert_der",
                &spec.company_cert_der,
            )?]),
            create_date: generalized_time("create_date", spec.create_date)?,
            valid_start: generalized_time("valid_start", spec.valid_start)?,
            valid_end: generalized_time("valid_end", spec.valid_end)?,
        },
        picture: SesEsPictureInfo {
            picture_type: ia5("picture.type", PICTURE_TYPE_PNG)?,
            data: octets("picture_png", &spec.picture_png)?,
            width: i64::from(spec.width_mm),
            height: i64::from(spec.height_mm),
        },
        ext_datas: None,
    })
}

fn ia5(field: &'static str, s: &str) -> Result<Ia5String, SealError> {
    Ia5String::new(s).map_err(|_| invalid(field, format!("{s:?} is not an IA5 (ASCII) string")))
}

fn octets(field: &'static str, bytes: &[u8]) -> Result<OctetString, SealError> {
    OctetString::new(bytes).map_err(|e| invalid(field, format!("cannot be an OCTET STRING: {e}")))
}

fn invalid(field: &'static str, reason: String) -> SealError {
    SealError::InvalidField { field, reason }
}

#[cfg(test)]
mod tests;
