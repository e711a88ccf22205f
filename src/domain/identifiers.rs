//! The station's own identifiers as types: an order number, a token serial, a certificate serial
//! and a token binding id. Each is parsed once where it enters (the application, the command
//! line, a stored row) and is then known to be well formed; `--json` and serde see the plain
//! string, so formats do not change, and deserialising one parses it like [`OrderNo::parse`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// An identifier that does not have its type's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {rule}")]
pub struct InvalidIdentifier {
    /// Which identifier (`order number`, `token serial`, ...).
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

macro_rules! identifier {
    ($(#[$m:meta])* $name:ident, $what:literal, $rule:literal, $valid:expr) => {
        identifier!($(#[$m])* $name, $what, $rule, $valid, str::to_string);
    };
    ($(#[$m:meta])* $name:ident, $what:literal, $rule:literal, $valid:expr, $canonical:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses `s`, refusing a value without the identifier's form.
            pub fn parse(s: &str) -> Result<Self, InvalidIdentifier> {
                let valid: fn(&str) -> bool = $valid;
                let canonical: fn(&str) -> String = $canonical;
                if valid(s) {
                    Ok($name(canonical(s)))
                } else {
                    Err(InvalidIdentifier { what: $what, value: s.to_string(), rule: $rule })
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Read as text where text is wanted (`Option<TokenSerial>::as_deref`, `str` methods);
        // the other way, text becomes an identifier only through `parse`.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidIdentifier;
            fn from_str(s: &str) -> Result<Self, InvalidIdentifier> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidIdentifier;
            fn try_from(s: String) -> Result<Self, InvalidIdentifier> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// Longest order number: PKCS#11 token labels are 32 bytes and the order number is the label.
pub const MAX_ORDER_NO_LEN: usize = 32;

/// Whether `s` has an order number's form: it becomes the USB key's label.
pub fn is_order_no(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ORDER_NO_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_printable_label(s: &str) -> bool {
    // CK_TOKEN_INFO.serialNumber is 16 bytes of printable ASCII, blank-padded (trimmed here).
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_binding_id(s: &str) -> bool {
    // Only the form the station writes (`Uuid::new_v4().to_string()`): binding ids are compared
    // as text in the database, so `{...}`, `urn:uuid:`, upper-case or unhyphenated spellings of
    // the same UUID, which `Uuid::parse_str` also takes, would name no binding.
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

identifier!(
    /// An order number: 1-32 characters of A-Z, a-z, 0-9, `-` and `_`.
    OrderNo, "order number", "1-32 characters of A-Z, 0-9, '-' and '_'", is_order_no
);
identifier!(
    /// A PKCS#11 token's serial number (CK_TOKEN_INFO.serialNumber, trimmed).
    TokenSerial, "token serial", "1-16 printable ASCII characters", is_printable_label
);
identifier!(
    /// A certificate serial number in hex, held in lower case as the station writes serials
    /// (`4A0B` parses as `4a0b`). An operator's copy (colons, blanks) goes through
    /// [`super::normalize::cert_serial`] first.
    CertSerial, "certificate serial", "1-64 hex digits", is_hex, str::to_ascii_lowercase
);
identifier!(
    /// A token binding's id: a UUID, hyphenated and in lower case as the station writes it.
    BindingId, "binding id", "a lower-case hyphenated UUID", is_binding_id
);

impl BindingId {
    /// The id of a new binding: `id` in the station's spelling (the caller draws the UUID, so
    /// that this module stays free of randomness).
    pub fn from_uuid(id: uuid::Uuid) -> BindingId {
        BindingId(id.hyphenated().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_identifiers_parse_and_serialise_as_their_text() {
        let no = OrderNo::parse("BJ20261124-0001").ok();
        assert_eq!(no.as_ref().map(OrderNo::as_str), Some("BJ20261124-0001"));
        assert_eq!(
            no.and_then(|n| serde_json::to_string(&n).ok()).as_deref(),
            Some("\"BJ20261124-0001\"")
        );
        assert!(TokenSerial::parse("0a1b2c3d4e5f6071").is_ok());
        assert_eq!(
            CertSerial::parse("4A0B")
                .ok()
                .as_ref()
                .map(CertSerial::as_str),
            Some("4a0b")
        );
        assert!(BindingId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
    }

    #[test]
    fn serials_are_taken_as_openssl_or_pkcs11_tool_print_them() {
        let serial = |raw: &str| CertSerial::parse(&crate::domain::normalize::cert_serial(raw));
        assert_eq!(
            serial(" 0A:1b:FF ").ok().as_ref().map(CertSerial::as_str),
            Some("0a1bff")
        );
        assert_eq!(
            serial("663392F9").ok().as_ref().map(CertSerial::as_str),
            Some("663392f9")
        );
        for bad in ["", ":", "0x12", "12 34", "xyz"] {
            assert_eq!(
                serial(bad).err().map(|e| e.what),
                Some("certificate serial"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_identifiers_are_refused_by_name() {
        for bad in ["", "BJ 0001", "BJ/0001", &"A".repeat(33), "订单1"] {
            let err = OrderNo::parse(bad).err();
            assert_eq!(
                err.as_ref().map(|e| e.what),
                Some("order number"),
                "{bad:?}"
            );
        }
        assert!(TokenSerial::parse("").is_err());
        assert!(TokenSerial::parse("seventeen-chars-x").is_err());
        assert!(CertSerial::parse("4g").is_err());
        assert!(BindingId::parse("b-1").is_err());
        // The station's own spelling only: the database compares binding ids as text.
        for other in [
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e5504410b1426f9247bb680e5fe0c8",
        ] {
            assert!(BindingId::parse(other).is_err(), "{other}");
        }
        let made = uuid::Uuid::new_v4();
        let id = BindingId::from_uuid(made);
        assert_eq!(BindingId::parse(&made.to_string()).ok(), Some(id));
        // Token serials as SoftHSM and kstoken make them (16 hex digits), and a vendor's.
        assert!(TokenSerial::parse("9f3c2a1b0d4e5f60").is_ok());
        assert!(TokenSerial::parse("SN-2026/0042").is_ok());
        assert!(TokenSerial::parse("12 34").is_err());
        // Deserialising parses too: a malformed value never becomes an identifier.
        assert!(serde_json::from_str::<OrderNo>("\"BJ 0001\"").is_err());
        assert_eq!(
            serde_json::from_str::<OrderNo>("\"BJ-0001\"").ok(),
            OrderNo::parse("BJ-0001").ok()
        );
        let msg = OrderNo::parse("a b").err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("order number \"a b\" is not valid: 1-32 characters of A-Z, 0-9, '-' and '_'")
        );
    }
}
