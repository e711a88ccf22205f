//! Keys that left service, and reissue (补办): what became of an order's key, whether a
//! replacement may be made for it, and the number the replacement order gets.
//!
//! A reissue is a new order under the original's identity (company, form, documents), linked to
//! it (`reissue_of`), reviewed anew and provisioned onto a new key. It is made only for an order
//! whose key is gone — reported lost or broken, or returned and retired — and numbered
//! `ORIGINAL-B<n>` (`ORD-1` → `ORD-1-B1`, a second one `ORD-1-B2`).

use super::identifiers::{InvalidIdentifier, OrderNo};
use std::fmt;

/// Most reissues one order can number (`-B1` .. `-B99`).
pub const MAX_REISSUES: u32 = 99;

/// What became of an order's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDisposition {
    /// Reported lost (revoked keyCompromise).
    Lost,
    /// Reported broken (revoked cessationOfOperation).
    Broken,
    /// Returned and wiped at the desk (退锁).
    Retired,
}

impl KeyDisposition {
    /// Every disposition.
    pub const ALL: [KeyDisposition; 3] = [
        KeyDisposition::Lost,
        KeyDisposition::Broken,
        KeyDisposition::Retired,
    ];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyDisposition::Lost => "lost",
            KeyDisposition::Broken => "broken",
            KeyDisposition::Retired => "retired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<KeyDisposition> {
        KeyDisposition::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for KeyDisposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no reissue of an order may be made; `None` when one may. `disposition` is what became of
/// its key (if anything), `open_reissue` a reissue of it still under way.
pub fn reissue_refusal(
    disposition: Option<KeyDisposition>,
    open_reissue: Option<&OrderNo>,
) -> Option<String> {
    if let Some(open) = open_reissue {
        return Some(format!(
            "its reissue {open} is under way: review, provision or reject that one"
        ));
    }
    match disposition {
        Some(_) => None,
        None => Some(
            "its key is not reported lost or broken, nor retired: report it (`order lost \
             ORDER [--broken]`) or retire it (`retire request ORDER`) first"
                .into(),
        ),
    }
}

/// The `n`-th reissue number of `original`: `ORIGINAL-B<n>`. Refused when it would not be an
/// order number (too long for a token label).
pub fn reissue_order_no(original: &OrderNo, n: u32) -> Result<OrderNo, InvalidIdentifier> {
    OrderNo::parse(&format!("{original}-B{n}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in KeyDisposition::ALL {
            assert_eq!(KeyDisposition::parse(d.as_str()), Some(d));
        }
        assert_eq!(KeyDisposition::parse("stolen"), None);
    }

    #[test]
    fn a_reissue_needs_a_key_gone_and_none_under_way() {
        assert!(reissue_refusal(None, None).unwrap().contains("order lost"));
        for d in KeyDisposition::ALL {
            assert_eq!(reissue_refusal(Some(d), None), None);
        }
        let open = OrderNo::parse("ORD-1-B1").unwrap();
        let why = reissue_refusal(Some(KeyDisposition::Lost), Some(&open)).unwrap();
        assert!(why.contains("ORD-1-B1"), "{why}");
    }

    #[test]
    fn reissues_are_numbered_after_the_original() {
        let o = OrderNo::parse("ORD-1").unwrap();
        assert_eq!(reissue_order_no(&o, 1).unwrap().as_str(), "ORD-1-B1");
        assert_eq!(reissue_order_no(&o, 12).unwrap().as_str(), "ORD-1-B12");
        let long = OrderNo::parse(&"A".repeat(30)).unwrap();
        assert!(reissue_order_no(&long, 1).is_err());
    }
}
