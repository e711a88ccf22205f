//! Order intake validation: one pass over an application that reports EVERY violation at once.
//!
//! The application arrives as JSON. Instead of deserialising into strict types (which stops at the
//! first problem), [`validate_order`] walks the JSON value, normalises each field
//! ([`super::normalize`]), checks it, and records a [`Violation`] with a JSON-path-like field
//! name, a stable machine code and a human message for everything wrong. Only an application with
//! no error-severity violation becomes an [`Order`].
//!
//! [`validate_order`] composes section validators, one small function per part of the form, each
//! returning the part and its violations: `sections` (order number, authentication method,
//! company, legal representative, product, invoice, handler, mailing address, bank account, and
//! the USCC and taxpayer-id checks across parts) and `attachments` (documents, seal pictures),
//! all reading the JSON through one walker, `reader`. Violations are reported in form order.
//!
//! Files (documents, seal pictures) are probed through a callback so this module stays pure: the
//! caller reads the bytes (bounded) and reports [`FileFacts`]; this module decides what is
//! acceptable. Which characters a text field may hold is [`super::text`]'s rule; anything of the
//! input quoted back in a message (a key, a value, a path) is escaped for display there.

use super::order::*;
use serde::Serialize;
use serde_json::Value;
use time::Date;

mod attachments;
mod reader;
mod sections;

pub use sections::SECTIONS;

/// Largest accepted document or seal picture: 1.5 MiB (the application form's limit).
pub const MAX_DOCUMENT_BYTES: u64 = 1_572_864;
pub use super::identifiers::MAX_ORDER_NO_LEN;
/// X.509 upper bound for O, OU and CN (RFC 5280 ub-organization-name etc.), in characters.
pub const MAX_DN_NAME: usize = 64;
/// Certificate terms the CA sells, in years.
pub const OFFERED_YEARS: std::ops::RangeInclusive<u8> = 1..=3;

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The order cannot be taken in.
    Error,
    /// Taken in, but an operator should look (shown at import and review).
    Warning,
}

/// One thing wrong with an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON-path-like location, e.g. `company.uscc` or `documents[2].file`.
    pub field: String,
    /// Stable machine-readable code, e.g. `uscc_checksum`.
    pub code: &'static str,
    /// Human message (English; names the rule).
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Violation {
    /// An error about `field`.
    pub fn error(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            code,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    fn warning(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            code,
            message: message.into(),
            severity: Severity::Warning,
        }
    }

    /// The same violation located under `prefix` (e.g. `[3]` for the 4th order of an array).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// What the caller found at a document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFacts {
    /// Read completely: size and recognised image type (by magic bytes).
    Found {
        /// Size in bytes.
        size: u64,
        /// Image type, if the magic bytes are a known image.
        image: Option<ImageType>,
    },
    /// Larger than [`MAX_DOCUMENT_BYTES`]; reading stopped at the limit.
    TooLarge,
    /// No such file.
    Missing,
    /// The path is absolute, climbs out of the order's directory, or is otherwise unsafe.
    PathRejected(&'static str),
    /// Exists but could not be read (permissions, not a regular file...).
    Unreadable,
    /// A seal picture of an accepted type that provisioning could not use.
    BadPicture(PictureProblem),
}

/// What a referenced file is for: a seal picture is decoded and normalised at intake, a
/// document only checked by type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileUse {
    /// A document scan (`documents[i].file`).
    Document,
    /// A seal impression (`seals[i].picture`).
    SealPicture,
}

/// Why a seal picture cannot become a seal (what `seal::normalize_seal_picture` refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PictureProblem {
    /// The declared dimensions exceed the bound, or decoding would need too much memory.
    TooLarge {
        /// Declared width, px.
        width: u32,
        /// Declared height, px.
        height: u32,
        /// Largest accepted side, px.
        max_side: u32,
    },
    /// No seal ink remains once the background is removed (blank, all white, transparent).
    Empty,
    /// The bytes do not decode (corrupt, truncated); the decoder's reason.
    Unreadable(String),
}

/// Context of one validation: today's date (for birth dates) and operator overrides.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    /// Today in Beijing time; birth dates after it are rejected.
    pub today: Date,
    /// When set, a USCC checksum failure (only that rule) is accepted, with this reason recorded.
    pub uscc_checksum_override: Option<String>,
}

/// A valid order plus the warnings an operator should see.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The normalised order.
    pub order: Order,
    /// Warnings (severity warning only).
    pub warnings: Vec<Violation>,
    /// The override reason, when a USCC checksum failure was accepted.
    pub uscc_override_reason: Option<String>,
}

/// Validates one order application. `probe` is called once per referenced file path (as written
/// in the JSON) and reports what is there, for that use.
///
/// Every section validator runs, whatever the others found, so that all violations are
/// reported at once, in form order; the order is built only when none is an error.
pub fn validate_order(
    value: &Value,
    ctx: &ValidationContext,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> Result<Validated, Vec<Violation>> {
    let Some(root) = value.as_object() else {
        return Err(vec![Violation::error(
            "",
            "wrong_type",
            "an order must be a JSON object",
        )]);
    };
    let mut out = Vec::new();
    let order_no = sections::order_no(root).into_value(&mut out);
    let auth_method = sections::auth_method(root).into_value(&mut out);
    let company = sections::company(root).into_value(&mut out);
    let legal_rep = sections::legal_rep(root, ctx).into_value(&mut out);
    let product = sections::product(root).into_value(&mut out);
    let invoice = sections::invoice(root).into_value(&mut out);
    let handler = sections::handler(root, ctx).into_value(&mut out);
    let shipping = sections::mailing(root).into_value(&mut out);
    let corporate_account = sections::bank_account(root, auth_method).into_value(&mut out);
    let documents = attachments::documents(root, product.as_ref(), probe).into_value(&mut out);
    let seals = attachments::seals(root, product.as_ref(), probe).into_value(&mut out);
    out.extend(sections::known_sections(root));
    out.extend(sections::main_order_is_another(
        order_no.as_ref(),
        product.as_ref(),
    ));
    let uscc_override_reason = sections::uscc(company.as_ref(), ctx).into_value(&mut out);
    out.extend(sections::taxpayer_id_matches_uscc(
        company.as_ref(),
        invoice.as_ref(),
    ));

    if out.iter().any(|v| v.severity == Severity::Error) {
        return Err(out);
    }
    let order = (|| {
        Some(Order {
            order_no: order_no?,
            auth_method: auth_method?,
            company: company?,
            legal_rep: legal_rep?,
            product: product?,
            invoice: invoice?,
            handler: handler?,
            shipping: shipping?,
            corporate_account,
            documents: documents?,
            seals: seals?,
        })
    })();
    match order {
        Some(order) => Ok(Validated {
            order,
            warnings: out,
            uscc_override_reason,
        }),
        // Unreachable in practice: every `None` above was recorded as an error. Kept as an error,
        // not a panic, so a future rule that forgets to record one fails loudly but safely.
        None => Err(vec![Violation::error(
            "",
            "incomplete",
            "the order is incomplete",
        )]),
    }
}

#[cfg(test)]
mod tests;
