//! The JSON walker under every section validator: it reads one object of the application,
//! normalises and checks each field it is asked for, and records a [`Violation`] — located by a
//! JSON-path-like field name — for anything wrong, instead of stopping at the first problem.

use super::Violation;
use crate::domain::ids::{self, ResidentIdError};
use crate::domain::normalize;
use crate::domain::text::{self, TextKind, escape_for_display};
use serde_json::{Map, Value};
use time::Date;

/// What one section validator gives back: its value (`None` inside when the section is
/// missing or invalid) and every violation found in it.
pub(super) struct Checked<T> {
    pub(super) value: T,
    pub(super) violations: Vec<Violation>,
}

impl<T> Checked<T> {
    /// Moves the violations into `all`, in order, and returns the value.
    pub(super) fn into_value(self, all: &mut Vec<Violation>) -> T {
        all.extend(self.violations);
        self.value
    }
}

/// Runs `f` over the application's top-level object and returns what it found.
pub(super) fn section<'v, T>(
    root: &'v Map<String, Value>,
    f: impl FnOnce(&mut Reader<'_, 'v>) -> T,
) -> Checked<T> {
    let mut violations = Vec::new();
    let value = f(&mut Reader::new(root, String::new(), &mut violations));
    Checked { value, violations }
}

/// How a string field is normalised before it is checked.
#[derive(Clone, Copy)]
pub(super) enum Norm {
    /// A name ([`TextKind::Name`]): text normalisation, then the name rules.
    Name,
    /// Free text ([`TextKind::Free`]): text normalisation.
    Text,
    /// An identifier (USCC, ID number, taxpayer id): widths folded, separators dropped.
    Code,
    /// An order number (it becomes a token label).
    OrderNo,
    /// Digits only (an account number), separators dropped.
    Digits,
    /// An e-mail address.
    Email,
    /// A landline or mobile number.
    Phone,
}

impl Norm {
    pub(super) fn apply(self, s: &str) -> String {
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
pub(super) struct Reader<'a, 'v> {
    pub(super) map: &'v Map<String, Value>,
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

    pub(super) fn violation(&mut self, key: &str, code: &'static str, message: impl Into<String>) {
        let field = self.field(key);
        self.out.push(Violation::error(field, code, message));
    }

    /// Reports keys the schema does not know: a typo must not silently drop data.
    pub(super) fn finish(&mut self, allowed: &[&str]) {
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

    pub(super) fn raw_string(&mut self, key: &str, required: bool) -> Option<&'v str> {
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

    pub(super) fn string(&mut self, key: &str, norm: Norm) -> Option<String> {
        let raw = self.raw_string(key, true)?;
        self.checked(key, norm.apply(raw), norm, true)
    }

    pub(super) fn opt_string(&mut self, key: &str, norm: Norm) -> Option<String> {
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
    pub(super) fn name(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.string(key, Norm::Name);
        self.bounded(key, v, max)
    }

    pub(super) fn opt_name(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.opt_string(key, Norm::Name);
        self.bounded(key, v, max)
    }

    /// Free text such as an address ([`TextKind::Free`]).
    pub(super) fn text(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.string(key, Norm::Text);
        self.bounded(key, v, max)
    }

    pub(super) fn opt_text(&mut self, key: &str, max: usize) -> Option<String> {
        let v = self.opt_string(key, Norm::Text);
        self.bounded(key, v, max)
    }

    pub(super) fn integer(&mut self, key: &str) -> Option<i64> {
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

    pub(super) fn enumeration<T: serde::de::DeserializeOwned>(
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

    pub(super) fn mobile(&mut self, key: &str) -> Option<String> {
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

    pub(super) fn resident_id(&mut self, key: &str, today: Date) -> Option<String> {
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
    pub(super) fn object<T>(
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

    pub(super) fn array(&mut self, key: &str) -> Option<&'v Vec<Value>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Some(empty_array()),
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                self.violation(key, "wrong_type", "must be an array");
                None
            }
        }
    }

    /// Reads the object `item` of an array, located at `key` (e.g. `documents[2]`).
    pub(super) fn object_item<T>(
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
