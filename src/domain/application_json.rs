//! The bytes of an order application file as JSON, strictly: what `serde_json::from_slice`
//! leaves open is decided here.
//!
//! - A leading UTF-8 byte order mark (EF BB BF, what some Windows editors write) is skipped: the
//!   file is valid JSON once it is removed, and refusing it helps nobody.
//! - A key given twice in one object, at any depth, is refused: serde_json keeps the last one,
//!   so `{"name": "A", "name": "B"}` would silently become B while a reviewer reading the file may
//!   see A. Every duplicate is reported, located like a [`Violation`] of the validator
//!   (`company.name`, `[1].seals[0].kind`), with the stable code `duplicate_key`.
//!
//! Everything else is serde_json's: syntax, UTF-8, and its nesting limit of 128 levels, which
//! holds here too (the depth is counted by the deserializer, whatever builds the values), so
//! 100,000 nested brackets are refused, not a stack overflow.

use super::text::escape_for_display;
use super::validate::{Severity, Violation};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt::{self, Write as _};

/// Why the bytes are not an acceptable JSON document.
#[derive(Debug)]
pub enum ApplicationJsonError {
    /// Not JSON (syntax, encoding, nesting too deep); serde_json's message has line and column.
    Syntax(serde_json::Error),
    /// Valid JSON, but with keys given twice: one violation per duplicate.
    DuplicateKeys(Vec<Violation>),
}

/// Parses an application file's bytes; see the module docs.
pub fn parse_application(bytes: &[u8]) -> Result<Value, ApplicationJsonError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut path = String::new();
    let mut duplicates = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed {
        path: &mut path,
        duplicates: &mut duplicates,
    }
    .deserialize(&mut de)
    .map_err(ApplicationJsonError::Syntax)?;
    de.end().map_err(ApplicationJsonError::Syntax)?;
    if duplicates.is_empty() {
        Ok(value)
    } else {
        Err(ApplicationJsonError::DuplicateKeys(duplicates))
    }
}

/// Builds a [`Value`] like serde_json's own visitor, keeping the location of the value being
/// built in `path` (one buffer, pushed and truncated) and recording duplicate keys.
struct ValueSeed<'a> {
    path: &'a mut String,
    duplicates: &'a mut Vec<Violation>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        let base = self.path.len();
        loop {
            let _ = write!(self.path, "[{}]", items.len());
            let item = seq.next_element_seed(ValueSeed {
                path: &mut *self.path,
                duplicates: &mut *self.duplicates,
            })?;
            self.path.truncate(base);
            match item {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let base = self.path.len();
        while let Some(key) = access.next_key::<String>()? {
            if base > 0 {
                self.path.push('.');
            }
            self.path.push_str(&escape_for_display(&key));
            let value = access.next_value_seed(ValueSeed {
                path: &mut *self.path,
                duplicates: &mut *self.duplicates,
            })?;
            if map.contains_key(&key) {
                self.duplicates.push(Violation {
                    field: self.path.clone(),
                    code: "duplicate_key",
                    message: format!(
                        "\"{}\" is given twice in one object: JSON keys must be unique, or which \
                         value was meant cannot be known",
                        escape_for_display(&key)
                    ),
                    severity: Severity::Error,
                });
            } else {
                map.insert(key, value);
            }
            self.path.truncate(base);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn duplicates(text: &str) -> Vec<(String, &'static str)> {
        match parse_application(text.as_bytes()) {
            Err(ApplicationJsonError::DuplicateKeys(vs)) => {
                vs.into_iter().map(|v| (v.field, v.code)).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_with_their_location() {
        assert_eq!(
            duplicates(r#"{"order_no": "A", "order_no": "B"}"#),
            [("order_no".into(), "duplicate_key")]
        );
        assert_eq!(
            duplicates(r#"{"company": {"name": "甲", "uscc": "1", "name": "乙"}}"#),
            [("company.name".into(), "duplicate_key")]
        );
        assert_eq!(
            duplicates(
                r#"[{"a": 1}, {"seals": [{"kind": "company"}, {"kind": "x", "kind": "y", "kind": "z"}]}]"#
            ),
            [
                ("[1].seals[1].kind".into(), "duplicate_key"),
                ("[1].seals[1].kind".into(), "duplicate_key")
            ]
        );
        // The same key in two different objects is no duplicate.
        assert!(parse_application(br#"[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]"#).is_ok());
    }

    #[test]
    fn a_key_with_control_characters_is_located_escaped() {
        let text = "{\"x\u{202E}\": 1, \"x\u{202E}\": 2}";
        let dup = duplicates(text);
        assert_eq!(dup, [("x\\u{202E}".into(), "duplicate_key")]);
    }

    #[test]
    fn a_leading_bom_is_skipped_anywhere_else_it_is_an_error() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(br#"{"a": [1, 2.5, null, true, "x"]}"#);
        assert_eq!(
            parse_application(&bytes).unwrap(),
            json!({"a": [1, 2.5, null, true, "x"]})
        );
        let twice = [b"\xEF\xBB\xBF".as_slice(), &bytes].concat();
        assert!(matches!(
            parse_application(&twice),
            Err(ApplicationJsonError::Syntax(_))
        ));
    }

    #[test]
    fn syntax_depth_and_trailing_garbage_are_serde_json_errors() {
        for text in ["{", "{} x", "[1,]", "\"\\ud800\""] {
            assert!(
                matches!(
                    parse_application(text.as_bytes()),
                    Err(ApplicationJsonError::Syntax(_))
                ),
                "{text}"
            );
        }
        let deep = "[".repeat(100_000);
        match parse_application(deep.as_bytes()) {
            Err(ApplicationJsonError::Syntax(e)) => {
                assert!(e.to_string().contains("recursion limit"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1e15f64..1e15).prop_map(|f| json!(f)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without duplicates (serde_json never writes any) the result is serde_json's, with or
        /// without a BOM.
        #[test]
        fn same_value_as_serde_json(v in json_value(), bom in any::<bool>()) {
            let text = serde_json::to_vec_pretty(&v).unwrap();
            let mut bytes = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            bytes.extend(&text);
            let parsed = parse_application(&bytes).unwrap();
            let theirs: Value = serde_json::from_slice(&text).unwrap();
            prop_assert_eq!(&parsed, &theirs);
        }
    }
}
