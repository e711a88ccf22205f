//! `delivery::bank`: delivering a token's user PIN in the memo of a 0.01 CNY credit transfer.
//!
//! For orders whose PIN authentication method is "corporate account" (企业对公账户打款), the station
//! sends 0.01 CNY to the company's corporate account and puts the PIN in the transfer memo
//! (`RmtInf/Ustrd`); the company's finance staff read it on their statement. This module speaks
//! the ISO 20022 messages of that exchange:
//!
//! - [`pain001`]: writes the `pain.001.001.10` customer credit transfer initiation;
//! - [`pain002`]: reads the bank's `pain.002.001.11` payment status report;
//! - [`camt054`]: reads the bank's `camt.054.001.08` debit/credit notification;
//! - `xml_reader`: the hardened XML reader under both readers (limits, no DTD, no entities);
//! - [`simulated_bank`]: the bank's side, for the demo and tests: writes `pain.002`;
//! - [`memo`]: the memo template (`{pin}`, `{order_ref}`), its size and character checks, and the
//!   deterministic `EndToEndId` derived from a delivery id.
//!
//! Invariants:
//! - every `pain.001`/`pain.002` this module writes is valid against the official XSD for every
//!   input it accepts: inputs are checked against the schema facets first, and errors name the
//!   offending field (tests run `xmllint --schema` on the output);
//! - the readers never process a DTD (a `DOCTYPE` is refused, so no entity can be expanded), bound
//!   the input size ([`MAX_INPUT_BYTES`]) and element nesting ([`MAX_DEPTH`]), require UTF-8 and
//!   the expected root namespace, and return an error instead of panicking on any input.
//!
//! # Security notes
//! - The memo contains the PIN. The memo, the rendered `pain.001` document and every buffer the
//!   writer grows while producing it are zeroized on drop ([`zeroize::Zeroizing`]).
//! - No error of this module carries a field's value, only its name and the violated rule, so a
//!   PIN (or a personal name) can never leak through an error message or a log line.
//! - The memo is visible to everyone who reads the company's statements: the default template
//!   tells the holder to change the PIN at first use.

pub mod camt054;
pub mod memo;
pub mod pain001;
pub mod pain002;
pub mod simulated_bank;
mod xml_reader;
mod xml_writer;

pub use camt054::{BookedTx, Camt054Report, CreditDebit, EntryStatus, parse_camt054};
pub use memo::{
    DEFAULT_MAX_MEMO_BYTES, DEFAULT_MAX_MEMO_CJK_CHARS, DEFAULT_MEMO_TEMPLATE, MemoError,
    check_memo_template, end_to_end_id, memo_gbk_bytes, order_reference, render_memo,
};
pub use pain001::{Agent, CreditTransfer, PaymentBatch, write_pain001};
pub use pain002::{Pain002Report, PaymentInfoStatus, TxStatus, TxStatusCode, parse_pain002};
pub use simulated_bank::write_pain002;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// Largest document the readers accept; real status reports for a station are a few KiB.
pub const MAX_INPUT_BYTES: usize = 10 * 1024 * 1024;

/// Deepest element nesting the readers accept (the deepest path the schemas need is ~15).
pub const MAX_DEPTH: usize = 64;

/// Namespace of the customer credit transfer initiation this module writes.
pub const PAIN001_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.10";
/// Namespace of the payment status report this module reads and writes.
pub const PAIN002_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.11";
/// Namespace of the debit/credit notification this module reads.
pub const CAMT054_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08";

/// Errors of the ISO 20022 writers and readers. No variant carries the value of a field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// An input of a writer violates a schema facet or a business rule.
    #[error("field `{field}`: {reason}")]
    InvalidField {
        /// Path of the field in the writer's input, e.g. `transfers[2].creditor_name`.
        field: String,
        /// The rule that was violated (never the value).
        reason: String,
    },
    /// The document is larger than [`MAX_INPUT_BYTES`].
    #[error("document is {size} bytes, larger than the {limit} bytes accepted")]
    InputTooLarge {
        /// Size of the rejected input in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The document is not valid UTF-8.
    #[error("document is not valid UTF-8 (first invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The XML declaration names an encoding other than UTF-8 or a version other than 1.0.
    #[error("unsupported XML declaration: {reason}")]
    UnsupportedDeclaration {
        /// What is unsupported.
        reason: &'static str,
    },
    /// The document contains a character that XML 1.0 forbids (e.g. a C0 control character).
    #[error("character not allowed in XML at byte offset {offset}")]
    ForbiddenCharacter {
        /// Byte offset of the character (or of the reference producing it).
        offset: usize,
    },
    /// The document has a `DOCTYPE`: DTDs are refused, so no entity can ever be expanded.
    #[error(
        "document type declaration (DOCTYPE) refused at byte offset {offset}: DTDs and entity definitions are not accepted"
    )]
    DtdRefused {
        /// Byte offset after the declaration.
        offset: u64,
    },
    /// The document references an entity other than the five predefined ones.
    #[error(
        "undefined entity reference at byte offset {offset} (only &lt; &gt; &amp; &apos; &quot; and character references are accepted)"
    )]
    UndefinedEntity {
        /// Byte offset after the reference.
        offset: u64,
    },
    /// Elements are nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {limit} levels at byte offset {offset}")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// Byte offset where the limit was exceeded.
        offset: u64,
    },
    /// The root element is not `Document` in the expected namespace.
    #[error("root element is not `Document` in namespace {expected}: found {found}")]
    WrongDocument {
        /// The namespace expected for this reader.
        expected: &'static str,
        /// What was found (a namespace or a local name, shortened).
        found: String,
    },
    /// The document ended before its root element was closed, or has no root element.
    #[error("document is truncated: {open} element(s) still open at the end")]
    Truncated {
        /// Number of elements still open (0 when no root element was seen).
        open: usize,
    },
    /// Content after the root element, or non-whitespace text outside it.
    #[error("unexpected content outside the root element at byte offset {offset}")]
    ContentOutsideRoot {
        /// Byte offset after the offending content.
        offset: u64,
    },
    /// The XML is not well-formed (reported by the XML parser).
    #[error("malformed XML at byte offset {offset}: {message}")]
    Malformed {
        /// Byte offset where parsing stopped.
        offset: u64,
        /// The parser's description (names tags, never element text).
        message: String,
    },
    /// A required element is missing.
    #[error("required element `{path}` is missing")]
    MissingElement {
        /// Schema path of the element.
        path: String,
    },
    /// An element that the schema allows once appears several times.
    #[error("element `{path}` appears more than once")]
    DuplicateElement {
        /// Schema path of the element.
        path: String,
    },
    /// An element or attribute has a value this module cannot accept.
    #[error("element `{path}`: {reason}")]
    InvalidValue {
        /// Schema path of the element (or `element/@attribute`).
        path: String,
        /// The rule that was violated (never the value).
        reason: String,
    },
    /// Writing to the in-memory buffer failed (only on allocation-level failures).
    #[error("could not write the XML document: {0}")]
    Write(#[from] std::io::Error),
}

impl crate::error_code::Coded for BankError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            BankError::InputTooLarge { .. }
            | BankError::InvalidUtf8 { .. }
            | BankError::UnsupportedDeclaration { .. }
            | BankError::ForbiddenCharacter { .. }
            | BankError::DtdRefused { .. }
            | BankError::UndefinedEntity { .. }
            | BankError::TooDeep { .. }
            | BankError::WrongDocument { .. }
            | BankError::Truncated { .. }
            | BankError::ContentOutsideRoot { .. }
            | BankError::Malformed { .. } => ec::BANK_XML,
            BankError::InvalidField { .. }
            | BankError::MissingElement { .. }
            | BankError::DuplicateElement { .. }
            | BankError::InvalidValue { .. } => ec::BANK_CONTENT,
            BankError::Write(_) => ec::IO,
        }
    }
}

/// Largest number of characters the readers accept in any element they extract (the schemas'
/// longest extracted field is 140): bounds what a hostile document can make the caller store.
pub const MAX_EXTRACTED_CHARS: usize = 1024;

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> BankError {
    BankError::InvalidField {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Checks an ISO 20022 `MaxNText` value (`xs:string`, length 1..=N in characters) and that it
/// can be written as XML 1.0 text that a bank will not silently alter: no control characters (a
/// bank strips or rejects them), no non-characters, no leading or trailing whitespace.
pub(crate) fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), BankError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty or blank"));
    }
    if value.trim() != value {
        return Err(invalid(field, "must not start or end with whitespace"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(invalid(
            field,
            format!("is {chars} characters long, the schema allows at most {max_chars}"),
        ));
    }
    if let Some(pos) = value
        .chars()
        .position(|c| c.is_control() || is_noncharacter(c))
    {
        return Err(invalid(
            field,
            format!("contains a control or non-character at character position {pos}"),
        ));
    }
    Ok(())
}

/// Unicode non-characters (U+FDD0..U+FDEF and U+xFFFE/U+xFFFF): XML 1.0 forbids U+FFFE/U+FFFF
/// and discourages the rest; no bank accepts them.
fn is_noncharacter(c: char) -> bool {
    let v = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&v) || (v & 0xFFFE) == 0xFFFE
}

/// Checks a reference the station generates (`MsgId`, `PmtInfId`, `InstrId`, `EndToEndId`):
/// `Max35Text`, restricted further to the SWIFT "x" character set without space and without a
/// leading/trailing `/` or a `//`, because banks echo these references through systems that only
/// carry that set, and the station matches status reports on them byte for byte.
pub(crate) fn check_reference(field: &str, value: &str) -> Result<(), BankError> {
    check_text(field, value, 35)?;
    if !value.chars().all(is_reference_char) {
        return Err(invalid(
            field,
            "may only contain A-Z a-z 0-9 and / - ? : ( ) . , ' +",
        ));
    }
    if value.starts_with('/') || value.ends_with('/') || value.contains("//") {
        return Err(invalid(
            field,
            "must not start or end with `/` nor contain `//`",
        ));
    }
    Ok(())
}

pub(crate) fn is_reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-?:().,'+".contains(c)
}

/// Checks a Chinese account number for `Othr/Id` (`Max34Text`): account numbers are digits,
/// sometimes with letters or hyphens; spaces must be removed by the caller (a bank does not
/// match an account number written with spaces).
pub(crate) fn check_account(field: &str, value: &str) -> Result<(), BankError> {
    check_text(field, value, 34)?;
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(invalid(
            field,
            "may only contain ASCII letters, digits and `-` (remove spaces)",
        ));
    }
    Ok(())
}

/// Checks a `BICFIDec2014Identifier`: `[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?`.
pub(crate) fn check_bic(field: &str, value: &str) -> Result<(), BankError> {
    let b = value.as_bytes();
    let upper_alnum = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let ok = (b.len() == 8 || b.len() == 11)
        && b[..4].iter().all(upper_alnum)
        && b[4..6].iter().all(u8::is_ascii_uppercase)
        && b[6..].iter().all(upper_alnum);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "is not a BIC (4 letters/digits, 2-letter country, 2 letters/digits, optional 3-character branch, upper case)",
        ))
    }
}

/// Checks an external status or reason code (`External*Code`: 1..=4 characters); real codes are
/// upper-case letters and digits, and anything else would not be understood by a bank.
pub(crate) fn check_code(field: &str, value: &str) -> Result<(), BankError> {
    if value.is_empty()
        || value.len() > 4
        || !value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(invalid(
            field,
            "must be 1 to 4 upper-case letters or digits (an ISO 20022 external code)",
        ));
    }
    Ok(())
}

const ISO_DATE_TIME: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);
const ISO_DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// Formats an `ISODateTime` (`xs:dateTime`) to whole seconds, keeping the caller's UTC offset
/// (the station runs on Beijing time, and the bank's operators read the file).
pub(crate) fn format_date_time(field: &str, at: time::OffsetDateTime) -> Result<String, BankError> {
    if !(1..=9999).contains(&at.year()) {
        return Err(invalid(field, "year must be between 1 and 9999"));
    }
    if at.offset().seconds_past_minute() != 0 {
        return Err(invalid(field, "UTC offset must be whole minutes"));
    }
    at.format(ISO_DATE_TIME)
        .map_err(|e| invalid(field, format!("cannot be formatted: {e}")))
}

/// Formats an `ISODate` (`xs:date`).
pub(crate) fn format_date(field: &str, date: time::Date) -> Result<String, BankError> {
    if !(1..=9999).contains(&date.year()) {
        return Err(invalid(field, "year must be between 1 and 9999"));
    }
    date.format(ISO_DATE)
        .map_err(|e| invalid(field, format!("cannot be formatted: {e}")))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs the real schema validator (`xmllint`) on produced documents.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    /// Directory of the official schemas: `KEYSTATION_ISO20022_DIR`, else the copy vendored in
    /// `fixtures/iso20022/` (unchanged from the ISO 20022 message catalogue).
    pub fn schema_dir() -> PathBuf {
        std::env::var_os("KEYSTATION_ISO20022_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/iso20022"))
    }

    /// Validates `xml` against `schema_file` (e.g. `pain.001.001.10.xsd`) with xmllint.
    /// Returns xmllint's stderr on failure; panics (fails the test) if xmllint cannot run.
    pub fn xmllint(xml: &[u8], schema_file: &str) -> Result<(), String> {
        let schema = schema_dir().join(schema_file);
        assert!(schema.is_file(), "schema {} not found", schema.display());
        let mut child = Command::new("xmllint")
            .arg("--noout")
            .arg("--nonet")
            .arg("--schema")
            .arg(&schema)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xmllint must be installed to run these tests (package libxml2-utils)");
        child.stdin.take().unwrap().write_all(xml).unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Schema file of the payment status report.
    pub const PAIN002: &str = "pain.002.001.11.xsd";
    /// Schema file of the debit/credit notification.
    pub const CAMT054: &str = "camt.054.001.08.xsd";

    /// The error of a call that must fail.
    pub fn err_of<T: std::fmt::Debug>(r: Result<T, super::BankError>) -> super::BankError {
        r.unwrap_err()
    }

    /// A `pain.002` document (message `M1`) whose report holds `body` after its group header.
    pub fn pain002_doc(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{}\"><CstmrPmtStsRpt>\
             <GrpHdr><MsgId>M1</MsgId><CreDtTm>2024-03-05T10:00:00+08:00</CreDtTm></GrpHdr>{body}\
             </CstmrPmtStsRpt></Document>",
            super::PAIN002_NAMESPACE
        )
    }

    /// An `OrgnlGrpInfAndSts` block naming message `O1`.
    pub const ORIGINAL_GROUP: &str = "<OrgnlGrpInfAndSts><OrgnlMsgId>O1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.10</OrgnlMsgNmId></OrgnlGrpInfAndSts>";

    /// Reads a fixture under `fixtures/bank/`.
    pub fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/bank")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` on each value and compares the verdict with the expected one.
    #[track_caller]
    fn verdicts(check: impl Fn(&str) -> Result<(), BankError>, cases: &[(&str, bool)]) {
        for (value, valid) in cases {
            assert_eq!(check(value).is_ok(), *valid, "{value:?}");
        }
    }

    #[test]
    fn text_facets() {
        verdicts(
            |v| check_text("f", v, 10),
            &[
                ("北京某某科技有限公司", true),
                ("北京某某科技有限公司!", false),
                ("", false),
                ("   ", false),
                (" a", false),
                ("a\u{1}b", false),
                ("a\nb", false),
                ("a\u{FFFE}", false),
            ],
        );
        let err = check_text("transfers[3].creditor_name", "secret-value-too-long", 5)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("transfers[3].creditor_name"), "{err}");
        assert!(!err.contains("secret-value"), "{err}");
    }

    #[test]
    fn reference_and_bic_facets() {
        let (a35, a36, ones35) = ("A".repeat(35), "A".repeat(36), "1".repeat(35));
        verdicts(
            |v| check_reference("id", v),
            &[
                ("KS-20240101-0001", true),
                (&a35, true),
                (&a36, false),
                ("A B", false),
                ("/AB", false),
                ("A//B", false),
                ("订单1", false),
            ],
        );
        verdicts(
            |v| check_bic("bic", v),
            &[
                ("ICBKCNBJ", true),
                ("ICBKCNBJBJM", true),
                ("icbkcnbj", false),
                ("ICBK1NBJ", false),
                ("ICBKCNBJB", false),
            ],
        );
        verdicts(
            |v| check_account("acct", v),
            &[
                ("0200001009012345678", true),
                ("0200 0010", false),
                (&ones35, false),
            ],
        );
        verdicts(
            |v| check_code("c", v),
            &[("AC04", true), ("AC045", false), ("ac04", false)],
        );
    }

    #[test]
    fn dates_are_iso() {
        let at = time::macros::datetime!(2024-03-05 09:07:01.5 +08:00);
        assert_eq!(
            format_date_time("t", at).ok().as_deref(),
            Some("2024-03-05T09:07:01+08:00")
        );
        let d = time::macros::date!(2024 - 03 - 06);
        assert_eq!(format_date("d", d).ok().as_deref(), Some("2024-03-06"));
        let odd = time::macros::datetime!(2024-03-05 09:07:01 +08:00:30);
        assert!(format_date_time("t", odd).is_err());
    }
}
