//! Electronic seals: the GB/T 38540-2020 `SESeal` (version 4) written onto a company's USB key.
//!
//! Responsibility, split by step of the pipeline:
//! - [`picture`]: turn an operator-supplied scan/photo of a seal impression into the seal picture
//!   (PNG, transparent background, red ink only, cropped, bounded size);
//! - [`sesseal`]: the typed `SESeal` structure, its strict DER parser and its encoder, and
//!   [`build_seal`], which has the seal-maker key (an HSM key behind [`SealSigner`]) sign it;
//! - [`verify`]: an independent, check-by-check verification of a seal against the CA certificate,
//!   used before a seal is written to a token and when auditing a token afterwards.
//!
//! Invariants:
//! - every `SESeal` this module emits parses back with [`parse_seal`] into an equal value, and its
//!   signature verifies with the maker certificate it embeds (checked right after signing);
//! - the parser accepts DER only: wrong tags, non-minimal encodings, trailing bytes, an explicitly
//!   encoded `critical FALSE`, and a `certList` that disagrees with `certListType` are all errors;
//! - nothing here panics on input bytes: seals and pictures come from outside the station.

/// `CKA_APPLICATION` of seal data objects on a token.
pub const SEAL_APPLICATION: &str = "GB/T 38540 SESeal";

/// Largest seal file `keystation seal verify` reads. A station seal is a few KiB (a picture of
/// at most 600x600 px plus two certificates) and a USB key holds a few hundred KiB in all, so
/// 4 MiB leaves room for other makers' seals while a hostile file is refused unread.
pub const MAX_SEAL_FILE_BYTES: u64 = 4 * 1024 * 1024;

pub mod picture;
pub mod sesseal;
pub mod verify;

pub use crate::x509::{OID_ECDSA_WITH_SHA256, OID_SHA256_WITH_RSA, generalized_time_to_offset};
pub use picture::{NORMALIZATION_VERSION, NormalizedPicture, normalize_seal_picture};
pub use sesseal::{
    CertDigestObj, ExtData, SealSigner, SealSpec, SealType, SesCertList, SesEsPictureInfo,
    SesEsPropertyInfo, SesHeader, SesSeal, SesSealInfo, build_seal, parse_seal,
};
pub use verify::{SealCheck, SealReport, verify_seal};

impl From<crate::x509::InvalidValue> for SealError {
    fn from(e: crate::x509::InvalidValue) -> Self {
        SealError::InvalidField {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// Errors of the seal module. Each message names the offending field or input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A field of a [`SealSpec`] (or of a hand-built structure) breaks the `SESeal` profile.
    #[error("seal field `{field}` is invalid: {reason}")]
    InvalidField {
        /// Name of the field, as in [`SealSpec`] or the ASN.1 module.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// DER encoding or strict DER decoding failed.
    #[error("DER error in {what}: {source}")]
    Der {
        /// The structure being encoded or decoded (e.g. `SESeal`).
        what: &'static str,
        /// The underlying `der` error (carries the byte position on decode).
        #[source]
        source: der::Error,
    },
    /// The signature algorithm is not one the station supports.
    #[error("unsupported seal signature algorithm {oid}")]
    UnsupportedAlgorithm {
        /// The algorithm OID as given by the signer or found in the seal.
        oid: String,
    },
    /// A certificate handed to the builder does not parse as X.509 DER.
    #[error("certificate `{which}` is not a valid X.509 DER certificate: {reason}")]
    InvalidCertificate {
        /// Which certificate (`maker_cert_der`, `company_cert_der`).
        which: &'static str,
        /// Parser message.
        reason: String,
    },
    /// The signer (in keystation an HSM key) failed to sign.
    #[error("seal signer failed: {0}")]
    Signer(String),
    /// The freshly made signature does not verify with the maker certificate: the signer's key and
    /// its certificate do not match, or the algorithm is wrong for the key.
    #[error("seal signature does not verify with the maker certificate: {0}")]
    SignatureSelfCheck(String),
    /// The picture bytes are neither PNG nor JPEG that can be decoded (corrupt or not an image).
    #[error("seal picture is unreadable: {0}")]
    UnreadablePicture(String),
    /// The picture is a recognised image format other than PNG or JPEG.
    #[error("seal picture format {format} is not supported (use PNG or JPEG)")]
    UnsupportedPictureFormat {
        /// The detected format name (e.g. `GIF`).
        format: &'static str,
    },
    /// No seal-ink pixels remain once the background is removed.
    #[error("seal picture contains no red seal impression after background removal")]
    EmptyPicture,
    /// The picture's dimensions exceed the accepted bound, or decoding it would need too much memory.
    #[error(
        "seal picture is too large: {width}x{height} px (max {max_side} px per side, bounded memory)"
    )]
    PictureTooLarge {
        /// Declared width in pixels.
        width: u32,
        /// Declared height in pixels.
        height: u32,
        /// Accepted maximum per side.
        max_side: u32,
    },
    /// Encoding the normalised picture as PNG failed.
    #[error("cannot encode the normalised seal picture as PNG: {0}")]
    PictureEncode(String),
}

impl crate::error_code::Coded for SealError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            SealError::InvalidField { .. }
            | SealError::Der { .. }
            | SealError::UnsupportedAlgorithm { .. }
            | SealError::InvalidCertificate { .. } => ec::SEAL_DATA,
            SealError::Signer(_) | SealError::SignatureSelfCheck(_) => ec::SEAL_SIGNING,
            SealError::UnreadablePicture(_)
            | SealError::UnsupportedPictureFormat { .. }
            | SealError::EmptyPicture
            | SealError::PictureTooLarge { .. }
            | SealError::PictureEncode(_) => ec::SEAL_PICTURE,
        }
    }
}
