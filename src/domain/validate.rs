//! Order intake validation: one pass over an application that reports EVERY violation at once.
//!
//! The application arrives as JSON. Instead of deserialising into strict types (which stops at the
//! first problem), [`validate_order`] walks the JSON value, normalises each field
//! ([`super::normalize`]), checks it, and records a [`Violation`] with a JSON-path-like field
//! name, a stable machine code and a human message for everything wrong. Only an application with
//! no error-severity violation becomes an [`Order`].
//!
//! Files (documents, seal pictures) are probed through a callback so this module stays pure: the
//! caller reads the bytes (bounded) and reports [`FileFacts`]; this module decides what is
//! acceptable. Which characters a text field may hold is [`super::text`]'s rule; anything of the
//! input quoted back in a message (a key, a value, a path) is escaped for display there.

use super::ids::{self, ResidentIdError, TaxpayerIdError, UsccError};
use super::normalize;
use super::order::*;
use super::text::{self, TextKind, escape_for_display};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use time::Date;

/// Largest accepted document or seal picture: 1.5 MiB (the application form's limit).
pub const MAX_DOCUMENT_BYTES: u64 = 1_572_864;
/// Longest order number: PKCS#11 token labels are 32 bytes and the order number is the label.
pub const MAX_ORDER_NO_LEN: usize = 32;
/// X.509 upper bound for O, OU and CN (RFC 5280 ub-organization-name etc.), in characters.
pub const MAX_DN_NAME: usize = 64;
/// X.509 upper bound for ST and L.
const MAX_DN_PLACE: usize = 128;
const MAX_TEXT: usize = 256;
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
    fn error(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
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
pub fn validate_order(
    value: &Value,
    ctx: &ValidationContext,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> Result<Validated, Vec<Violation>> {
    let mut out = Vec::new();
    let Some(root) = value.as_object() else {
        return Err(vec![Violation::error(
            "",
            "wrong_type",
            "an order must be a JSON object",
        )]);
    };
    let mut r = Reader::new(root, String::new(), &mut out);

    let order_no = r.string("order_no", Norm::OrderNo);
    if let Some(no) = &order_no {
        if no.len() > MAX_ORDER_NO_LEN
            || !no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            r.violation(
                "order_no",
                "order_no_invalid",
                format!(
                    "order number must be 1-{MAX_ORDER_NO_LEN} characters of A-Z, 0-9, '-' and '_' \
                     (it becomes the USB key's label)"
                ),
            );
        }
    }
    let auth_method: Option<AuthMethod> = r.enumeration(
        "auth_method",
        &[
            "legal_rep_phone",
            "legal_rep_bank_card",
            "corporate_transfer",
        ],
    );

    let company = r.object("company", |c| {
        let name = c.name("name", MAX_DN_NAME);
        let uscc = c.string("uscc", Norm::Code);
        let department = c.opt_name("department", MAX_DN_NAME);
        let phone = c.opt_string("phone", Norm::Phone);
        c.finish(&["name", "uscc", "department", "phone"]);
        Some((name?, uscc?, department, phone))
    });

    let legal_rep = r.object("legal_rep", |p| {
        let name = p.name("name", MAX_DN_NAME);
        let mobile = p.mobile("mobile");
        let id_type = p.enumeration::<IdType>("id_type", &["resident_id"]);
        let id_number = p.resident_id("id_number", ctx.today);
        p.finish(&["name", "mobile", "id_type", "id_number"]);
        Some(LegalRep {
            name: name?,
            mobile: mobile?,
            id_type: id_type?,
            id_number: id_number?,
        })
    });

    let product = r.object("product", |p| {
        let key_role = p.enumeration::<KeyRole>("key_role", &["main", "secondary"]);
        let years = p.integer("years").and_then(|y| {
            match u8::try_from(y).ok().filter(|y| OFFERED_YEARS.contains(y)) {
                Some(y) => Some(y),
                None => {
                    p.violation(
                        "years",
                        "years_unsupported",
                        format!(
                            "the CA issues unit certificates for {} to {} years, not {y}",
                            OFFERED_YEARS.start(),
                            OFFERED_YEARS.end()
                        ),
                    );
                    None
                }
            }
        });
        let seal_service = p.enumeration::<SealService>(
            "seal_service",
            &["company_and_legal_rep", "company", "none"],
        );
        if key_role == Some(KeyRole::Secondary)
            && seal_service.is_some_and(|s| s != SealService::None)
        {
            p.violation(
                "seal_service",
                "seal_service_secondary",
                "a secondary key carries no seals: seal_service must be \"none\"",
            );
        }
        p.finish(&["key_role", "years", "seal_service"]);
        Some(Product {
            key_role: key_role?,
            years: years?,
            seal_service: seal_service?,
        })
    });

    let invoice = r.object("invoice", |i| {
        let title = i.name("title", MAX_TEXT);
        let taxpayer_id =
            i.string("taxpayer_id", Norm::Code)
                .and_then(|t| match ids::check_taxpayer_id(&t) {
                    Ok(()) => Some(t),
                    Err(TaxpayerIdError::Length(n)) => {
                        i.violation(
                            "taxpayer_id",
                            "taxpayer_id_length",
                            format!("a taxpayer id has 15, 18 or 20 characters, not {n}"),
                        );
                        None
                    }
                    Err(TaxpayerIdError::Charset(pos)) => {
                        i.violation(
                            "taxpayer_id",
                            "taxpayer_id_charset",
                            format!("character {pos} is not a digit or upper-case letter"),
                        );
                        None
                    }
                });
        let address_phone = i.opt_text("address_phone", MAX_TEXT);
        let bank_account = i.opt_text("bank_account", MAX_TEXT);
        i.finish(&["title", "taxpayer_id", "address_phone", "bank_account"]);
        Some(Invoice {
            title: title?,
            taxpayer_id: taxpayer_id?,
            address_phone,
            bank_account,
        })
    });

    let handler = r.object("handler", |h| {
        let name = h.name("name", MAX_DN_NAME);
        let mobile = h.mobile("mobile");
        let id_type = h.enumeration::<IdType>("id_type", &["resident_id"]);
        let id_number = h.resident_id("id_number", ctx.today);
        let email = h.string("email", Norm::Email).and_then(|e| {
            if ids::is_plausible_email(&e) {
                Some(e)
            } else {
                h.violation(
                    "email",
                    "email_invalid",
                    "not a deliverable e-mail address (it receives the e-invoice and unlock codes)",
                );
                None
            }
        });
        h.finish(&["name", "mobile", "id_type", "id_number", "email"]);
        Some(Handler {
            name: name?,
            mobile: mobile?,
            id_type: id_type?,
            id_number: id_number?,
            email: email?,
        })
    });

    let shipping = r.object("shipping", |s| {
        let province = s.name("province", MAX_DN_PLACE);
        let city = s.name("city", MAX_DN_PLACE);
        let address = s.text("address", MAX_TEXT);
        s.finish(&["province", "city", "address"]);
        Some(Shipping {
            province: province?,
            city: city?,
            address: address?,
        })
    });

    let corporate_account = match (auth_method, r.map.get("corporate_account")) {
        (Some(AuthMethod::CorporateTransfer), None | Some(Value::Null)) => {
            r.violation(
                "corporate_account",
                "required",
                "required when auth_method is corporate_transfer: the PIN travels in the memo of a \
                 transfer to this account",
            );
            None
        }
        (Some(AuthMethod::CorporateTransfer), Some(_)) => r
            .object("corporate_account", |a| {
                let account_name = a.name("account_name", MAX_TEXT);
                let account_number = a.string("account_number", Norm::Digits).and_then(|n| {
                    if ids::is_valid_account_number(&n) {
                        Some(n)
                    } else {
                        a.violation(
                            "account_number",
                            "account_number_invalid",
                            "an account number has 8 to 32 digits",
                        );
                        None
                    }
                });
                let bank_name = a.name("bank_name", MAX_TEXT);
                let branch = a.opt_name("branch", MAX_TEXT);
                a.finish(&["account_name", "account_number", "bank_name", "branch"]);
                Some(CorporateAccount {
                    account_name: account_name?,
                    account_number: account_number?,
                    bank_name: bank_name?,
                    branch,
                })
            })
            .flatten(),
        (_, None | Some(Value::Null)) => None,
        (_, Some(_)) => {
            r.violation(
                "corporate_account",
                "not_allowed",
                "only orders with auth_method corporate_transfer give a corporate account",
            );
            None
        }
    };

    // Which documents and seals are required depends on the product; when the product itself is
    // broken we still check what was given, just not completeness.
    let documents = r.documents(product.as_ref(), probe);
    let seals = r.seals(product.as_ref(), probe);

    r.finish(&[
        "order_no",
        "auth_method",
        "company",
        "legal_rep",
        "product",
        "invoice",
        "handler",
        "shipping",
        "corporate_account",
        "documents",
        "seals",
    ]);

    // USCC: checked after parsing so an override can turn only a checksum failure into a warning.
    let mut uscc_override_reason = None;
    if let Some(Some((_, uscc, _, _))) = &company {
        match ids::check_uscc(uscc) {
            Ok(()) => {}
            Err(UsccError::Checksum { expected }) => match &ctx.uscc_checksum_override {
                Some(reason) if !reason.trim().is_empty() => {
                    out.push(Violation::warning(
                        "company.uscc",
                        "uscc_checksum_overridden",
                        format!(
                            "check character should be '{expected}'; accepted by operator override: {}",
                            reason.trim()
                        ),
                    ));
                    uscc_override_reason = Some(reason.trim().to_string());
                }
                _ => out.push(Violation::error(
                    "company.uscc",
                    "uscc_checksum",
                    format!(
                        "check character should be '{expected}' (GB 32100); an operator may accept \
                         a legal early code only with a recorded reason"
                    ),
                )),
            },
            Err(UsccError::Length(n)) => out.push(Violation::error(
                "company.uscc",
                "uscc_length",
                format!("a unified social credit code has 18 characters, not {n}"),
            )),
            Err(UsccError::Charset(pos)) => out.push(Violation::error(
                "company.uscc",
                "uscc_charset",
                format!("character {pos} is not allowed (0-9 and A-Y without I, O, S, V, Z)"),
            )),
            Err(UsccError::Region(pos)) => out.push(Violation::error(
                "company.uscc",
                "uscc_region",
                format!("character {pos} must be a digit (positions 3-8 are the region code)"),
            )),
        }
    }
    if let (Some(Some((_, uscc, _, _))), Some(Some(inv))) = (&company, &invoice) {
        if inv.taxpayer_id.len() == 18 && &inv.taxpayer_id != uscc {
            out.push(Violation::warning(
                "invoice.taxpayer_id",
                "taxpayer_id_mismatch",
                "an 18-character taxpayer id of a company normally equals its USCC",
            ));
        }
    }

    if out.iter().any(|v| v.severity == Severity::Error) {
        return Err(out);
    }
    let order = (|| {
        let (name, uscc, department, phone) = company??;
        Some(Order {
            order_no: order_no?,
            auth_method: auth_method?,
            company: Company {
                name,
                uscc,
                department,
                phone,
            },
            legal_rep: legal_rep??,
            product: product??,
            invoice: invoice??,
            handler: handler??,
            shipping: shipping??,
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

/// How a string field is normalised before it is checked.
#[derive(Clone, Copy)]
enum Norm {
    /// A name ([`TextKind::Name`]): text normalisation, then the name rules.
    Name,
    Text,
    Code,
    OrderNo,
    Digits,
    Email,
    Phone,
}

impl Norm {
    fn apply(self, s: &str) -> String {
        match self {
            Norm::Name | Norm::Text => normalize::text(s),
            Norm::Code => normalize::code(s),
            Norm::OrderNo => normalize::order_no(s),
            Norm::Digits => normalize::digits(s),
            Norm::Email => normalize::email(s),
            Norm::Phone => normalize::phone(s),
        }
    }
}

/// Walks one JSON object, recording violations under `path`.
struct Reader<'a, 'v> {
    map: &'v Map<String, Value>,
    path: String,
    out: &'a mut Vec<Violation>,
}

impl<'a, 'v> Reader<'a, 'v> {
    fn new(map: &'v Map<String, Value>, path: String, out: &'a mut Vec<Violation>) -> Self {
        Reader { map, path, out }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn violation(&mut self, key: &str, code: &'static str, message: impl Into<String>) {
        let field = self.field(key);
        self.out.push(Violation::error(field, code, message));
    }

    /// Reports keys the schema does not know: a typo must not silently drop data.
    fn finish(&mut self, allowed: &[&str]) {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            let k = escape_for_display(&k).into_owned();
            self.violation(&k, "unknown_field", "not a field of an order application");
        }
    }

    fn raw_string(&mut self, key: &str, required: bool) -> Option<&'v str> {
        match self.map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.violation(key, "required", "required");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.violation(key, "wrong_type", "must be a string");
                None
            }
        }
    }

    fn checked(&mut self, key: &str, value: String, norm: Norm, required: bool) -> Option<String> {
        if value.is_empty() {
            if required {
                self.violation(key, "required", "required (empty after trimming)");
            }
            return None;
        }
        let kind = match norm {
            Norm::Name => TextKind::Name,
            _ => TextKind::Free,
        };
        if let Err(p) = text::check(&value, kind) {
            self.violation(key, p.code, p.message);
            return None;
        }
        Some(value)
    }

    fn string(&mut self, key: &str, norm: Norm) -> Option<String> {
        let raw = self.raw_string(key, true)?;
        self.checked(key, norm.apply(raw), norm, true)
    }

    fn opt_string(&mut self, key: &str, norm: Norm) -> Option<String> {
        let raw = self.raw_string(key, false)?;
        self.checked(key, norm.apply(raw), norm, false)
    }

    fn bounded(&mut self, key: &str, value: Option<String>, max: usize) -> Option<String> {
        let value = value?;
        let n = value.chars().count();
        if n > max {
            self.violation(
                key,
                "too_long",
                format!("at most {max} characters, got {n}"),
            );
            return None;
        }
        Some(value)
    }

    /// A name that goes into a certificate, a seal or a message ([`TextKind::Name`]).
    fn name(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.string(key, Norm::Name);
        self.bounded(key, v, max)
    }

    fn opt_name(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.opt_string(key, Norm::Name);
        self.bounded(key, v, max)
    }

    /// Free text such as an address ([`TextKind::Free`]).
    fn text(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.string(key, Norm::Text);
        self.bounded(key, v, max)
    }

    fn opt_text(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.opt_string(key, Norm::Text);
        self.bounded(key, v, max)
    }

    fn integer(&mut self, key: &str) -> Option<i64> {
        match self.map.get(key) {
            None | Some(Value::Null) => {
                self.violation(key, "required", "required");
                None
            }
            Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
            Some(_) => {
                self.violation(key, "wrong_type", "must be an integer");
                None
            }
        }
    }

    fn enumeration<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        allowed: &[&str],
    ) -> Option<T> {
        let raw = self.raw_string(key, true)?;
        let v = normalize::fold_width(raw).trim().to_lowercase();
        match serde_json::from_value(Value::String(v.clone())) {
            Ok(t) => Some(t),
            Err(_) => {
                self.violation(
                    key,
                    "enum_invalid",
                    format!(
                        "\"{}\" is not one of: {}",
                        escape_for_display(&v),
                        allowed.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn mobile(&mut self, key: &str) -> Option<String> {
        let raw = self.raw_string(key, true)?;
        match ids::normalize_mobile(raw) {
            Some(m) => Some(m),
            None => {
                self.violation(
                    key,
                    "mobile_invalid",
                    "not a mainland mobile number (11 digits starting 13-19, optionally +86)",
                );
                None
            }
        }
    }

    fn resident_id(&mut self, key: &str, today: Date) -> Option<String> {
        let id = self.string(key, Norm::Code)?;
        let (code, message) = match ids::check_resident_id(&id, today) {
            Ok(()) => return Some(id),
            Err(ResidentIdError::Legacy15) => (
                "id_legacy_15",
                "15-digit first-generation ID numbers are no longer accepted; give the 18-character number".to_string(),
            ),
            Err(ResidentIdError::Length(n)) => (
                "id_length",
                format!("a resident ID number has 18 characters, not {n}"),
            ),
            Err(ResidentIdError::Charset(pos)) => (
                "id_charset",
                format!("character {pos} must be a digit (the 18th may be X)"),
            ),
            Err(ResidentIdError::Checksum { expected }) => (
                "id_checksum",
                format!("check character should be '{expected}' (GB 11643)"),
            ),
            Err(ResidentIdError::DateInvalid) => (
                "id_date_invalid",
                "characters 7-14 are not a real birth date".to_string(),
            ),
            Err(ResidentIdError::DateFuture) => (
                "id_date_future",
                "the birth date is in the future".to_string(),
            ),
            Err(ResidentIdError::DateTooOld) => (
                "id_date_before_1900",
                "the birth year is before 1900".to_string(),
            ),
        };
        self.violation(key, code, message);
        None
    }

    /// Reads a nested object with `f`; `Some(None)` means present but invalid.
    fn object<T>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut Reader<'_, 'v>) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.map.get(key) {
            None | Some(Value::Null) => {
                self.violation(key, "required", "required");
                None
            }
            Some(Value::Object(m)) => {
                let path = self.field(key);
                let mut child = Reader::new(m, path, self.out);
                Some(f(&mut child))
            }
            Some(_) => {
                self.violation(key, "wrong_type", "must be an object");
                None
            }
        }
    }

    fn array(&mut self, key: &str) -> Option<&'v Vec<Value>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Some(empty_array()),
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                self.violation(key, "wrong_type", "must be an array");
                None
            }
        }
    }

    /// Checks one referenced file: a clean path, present, readable, an accepted image type, not
    /// too large, and a seal picture that normalises.
    fn file(
        &mut self,
        field: &str,
        path: &str,
        use_: FileUse,
        probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
    ) -> bool {
        if let Err(p) = text::check(path, TextKind::Free) {
            self.violation(field, p.code, p.message);
            return false;
        }
        let accepted: &[ImageType] = match use_ {
            FileUse::Document => &[ImageType::Gif, ImageType::Jpeg, ImageType::Png],
            FileUse::SealPicture => &[ImageType::Jpeg, ImageType::Png],
        };
        let (code, message) = match probe(path, use_) {
            FileFacts::Found { size, image } => match image {
                _ if size > MAX_DOCUMENT_BYTES => (
                    "file_too_large",
                    format!(
                        "{path}: {size} bytes, the limit is 1.5 MiB ({MAX_DOCUMENT_BYTES} bytes)"
                    ),
                ),
                Some(t) if accepted.contains(&t) => return true,
                Some(t) => (
                    "file_type",
                    format!("{path}: a {} picture is not accepted here", t.media_type()),
                ),
                None => (
                    "file_type",
                    format!(
                        "{path}: not a {} image (checked by content, not by name)",
                        accepted
                            .iter()
                            .map(|t| t.media_type())
                            .collect::<Vec<_>>()
                            .join("/")
                    ),
                ),
            },
            FileFacts::TooLarge => (
                "file_too_large",
                format!("{path}: larger than 1.5 MiB ({MAX_DOCUMENT_BYTES} bytes)"),
            ),
            FileFacts::Missing => ("file_missing", format!("{path}: no such file")),
            FileFacts::PathRejected(why) => ("file_path", format!("{path}: {why}")),
            FileFacts::Unreadable => (
                "file_unreadable",
                format!("{path}: cannot be read (not a regular file, or no permission)"),
            ),
            FileFacts::BadPicture(PictureProblem::TooLarge {
                width,
                height,
                max_side,
            }) => (
                "picture_too_large",
                format!("{path}: {width}x{height} px, the limit is {max_side} px per side"),
            ),
            FileFacts::BadPicture(PictureProblem::Empty) => (
                "picture_empty",
                format!(
                    "{path}: no red seal impression remains once the background is removed \
                     (a blank, all-white or transparent picture)"
                ),
            ),
            FileFacts::BadPicture(PictureProblem::Unreadable(why)) => (
                "picture_unreadable",
                format!("{path}: does not decode as a picture: {why}"),
            ),
        };
        self.violation(field, code, message);
        false
    }

    fn documents(
        &mut self,
        product: Option<&Option<Product>>,
        probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
    ) -> Option<Vec<DocumentRef>> {
        let items = self.array("documents")?;
        let mut docs = Vec::new();
        let mut ok = true;
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("documents[{i}]");
            let parsed = self.object_item(&key, item, |d| {
                let kind = d.enumeration::<DocumentKind>(
                    "kind",
                    &DocumentKind::ALL.map(DocumentKind::as_str),
                );
                let file = d
                    .raw_string("file", true)
                    .map(str::trim)
                    .map(str::to_string);
                d.finish(&["kind", "file"]);
                Some((kind?, file?))
            });
            let Some((kind, file)) = parsed else {
                ok = false;
                continue;
            };
            if !seen.insert(kind) {
                self.violation(
                    &format!("{key}.kind"),
                    "document_duplicate",
                    format!("{} is given twice", kind.as_str()),
                );
                ok = false;
            }
            let field = format!("{key}.file");
            if !self.file(&field, &file, FileUse::Document, probe) {
                ok = false;
            }
            docs.push(DocumentRef { kind, file });
        }
        if let Some(Some(product)) = product {
            let needs_form =
                product.key_role == KeyRole::Main && product.seal_service != SealService::None;
            for kind in DocumentKind::ALL {
                if kind == DocumentKind::SealCollectionForm && !needs_form {
                    continue;
                }
                if !seen.contains(&kind) {
                    self.violation(
                        "documents",
                        "document_missing",
                        format!("the {} document is required", kind.as_str()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(docs)
    }

    fn seals(
        &mut self,
        product: Option<&Option<Product>>,
        probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
    ) -> Option<Vec<SealPictureRef>> {
        let items = self.array("seals")?;
        let mut seals = Vec::new();
        let mut ok = true;
        let mut seen = BTreeSet::new();
        let required: Option<&[SealKind]> = match product {
            Some(Some(p)) => Some(match p.key_role {
                KeyRole::Secondary => &[],
                KeyRole::Main => p.seal_service.seals(),
            }),
            _ => None,
        };
        for (i, item) in items.iter().enumerate() {
            let key = format!("seals[{i}]");
            let parsed = self.object_item(&key, item, |s| {
                let kind = s.enumeration::<SealKind>("kind", &["company", "legal_rep"]);
                let picture = s
                    .raw_string("picture", true)
                    .map(str::trim)
                    .map(str::to_string);
                s.finish(&["kind", "picture"]);
                Some((kind?, picture?))
            });
            let Some((kind, picture)) = parsed else {
                ok = false;
                continue;
            };
            if !seen.insert(kind) {
                self.violation(
                    &format!("{key}.kind"),
                    "seal_duplicate",
                    format!("the {} seal is given twice", kind.as_str()),
                );
                ok = false;
            }
            if let Some(required) = required {
                if !required.contains(&kind) {
                    self.violation(
                        &format!("{key}.kind"),
                        "seal_unexpected",
                        format!(
                            "the ordered seal service does not include a {} seal",
                            kind.as_str()
                        ),
                    );
                    ok = false;
                }
            }
            let field = format!("{key}.picture");
            if !self.file(&field, &picture, FileUse::SealPicture, probe) {
                ok = false;
            }
            seals.push(SealPictureRef { kind, picture });
        }
        if let Some(required) = required {
            for kind in required {
                if !seen.contains(kind) {
                    self.violation(
                        "seals",
                        "seal_missing",
                        format!(
                            "a {} seal picture is required by the seal service",
                            kind.as_str()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(seals)
    }

    fn object_item<T>(
        &mut self,
        key: &str,
        item: &'v Value,
        f: impl FnOnce(&mut Reader<'_, 'v>) -> Option<T>,
    ) -> Option<T> {
        match item {
            Value::Object(m) => {
                let path = self.field(key);
                let mut child = Reader::new(m, path, self.out);
                f(&mut child)
            }
            _ => {
                self.violation(key, "wrong_type", "must be an object");
                None
            }
        }
    }
}

fn empty_array() -> &'static Vec<Value> {
    static EMPTY: Vec<Value> = Vec::new();
    &EMPTY
}

#[cfg(test)]
mod tests;
