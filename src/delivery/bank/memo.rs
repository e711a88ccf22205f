//! The transfer memo (附言) that carries the PIN, and the `EndToEndId` of a delivery.
//!
//! A memo template is text with the placeholders `{pin}` (exactly once) and `{order_ref}` (at
//! most once). Templates are checked when configured ([`check_memo_template`]) so that a bad
//! template is refused at start-up, not when a PIN is already waiting to be delivered.
//!
//! The order reference ([`order_reference`]) is the last digits of the order number, digits
//! only: a reference cut out of letters and digits (`KS-DEMO-0002` gave `O0002`) puts a letter
//! O next to zeros, or an I next to ones, on a bank statement read by eye. The PIN next to it is
//! drawn from an alphabet without 0/O and 1/l/I, so the memo as a whole reads one way only.
//!
//! Invariants:
//! - a rendered memo is at most `max_bytes` bytes of UTF-8 whenever [`check_memo_template`]
//!   accepts the template for the PIN and order-reference lengths used;
//! - a rendered memo only contains characters of the memo-safe set (see [`is_memo_safe_char`]), so
//!   it needs no XML escaping and survives bank systems unchanged;
//! - the rendered memo is a [`Zeroizing`] string built in a buffer allocated once with its final
//!   size (never regrown, so no stray copy of the PIN is left in freed memory);
//! - no [`MemoError`] carries the PIN, the order reference or the rendered memo.
//!
//! # Size of a memo
//! Chinese banks limit the memo to about 40 bytes of GBK, i.e. 40 ASCII characters or 20 CJK
//! characters ([`DEFAULT_MAX_MEMO_BYTES`], [`DEFAULT_MAX_MEMO_CJK_CHARS`]). The station bounds the
//! UTF-8 length, which is never smaller than the GBK length for memo-safe characters (ASCII: 1 = 1
//! byte, CJK: 3 bytes in UTF-8 against 2 in GBK), so a memo within `max_bytes` of UTF-8 also fits a
//! bank counting GBK bytes. [`memo_gbk_bytes`] gives the GBK size when an operator wants to know
//! how much room a Chinese template leaves under a GBK-counting bank.
//!
//! # Security notes
//! The memo is readable by everyone who sees the company's statements: the default template asks
//! the holder to change the PIN at first use.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Default memo template: 35 bytes plus the order reference with an 8-character PIN, so the
/// order reference may have up to 5 characters within [`DEFAULT_MAX_MEMO_BYTES`].
pub const DEFAULT_MEMO_TEMPLATE: &str = "PIN {pin} REF {order_ref} CHANGE AT 1ST USE";

/// Default memo bound in bytes (40 ASCII characters).
pub const DEFAULT_MAX_MEMO_BYTES: usize = 40;

/// The equivalent bound for banks counting GBK bytes: 20 CJK characters (documentation value;
/// the station enforces a byte bound, see the module documentation).
pub const DEFAULT_MAX_MEMO_CJK_CHARS: usize = 20;

const PIN_PLACEHOLDER: &str = "{pin}";
const ORDER_REF_PLACEHOLDER: &str = "{order_ref}";

/// Longest order reference accepted (it has to fit in a memo next to the PIN).
const MAX_ORDER_REF_LEN: usize = 16;

/// Memo template and rendering errors. None carries the PIN, the order reference or the memo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoError {
    /// The template has no `{pin}` placeholder.
    #[error("memo template has no {{pin}} placeholder")]
    MissingPin,
    /// A placeholder appears more than once.
    #[error("memo template uses the placeholder {placeholder} more than once")]
    RepeatedPlaceholder {
        /// The repeated placeholder.
        placeholder: &'static str,
    },
    /// A `{` or `}` that is not part of `{pin}` or `{order_ref}`.
    #[error(
        "memo template has a `{{` or `}}` at character {position} that is not part of {{pin}} or {{order_ref}}"
    )]
    UnknownPlaceholder {
        /// Character index in the template.
        position: usize,
    },
    /// A template character outside the memo-safe set.
    #[error(
        "memo template character U+{code:04X} at character {position} is not safe for bank memos (allowed: A-Z a-z 0-9 space - . , : / ( ) + ? and CJK ideographs/punctuation)"
    )]
    UnsafeCharacter {
        /// Character index in the template.
        position: usize,
        /// The character's code point (template text is configuration, not a secret).
        code: u32,
    },
    /// The template starts or ends with a space (banks trim memos).
    #[error("memo template must not start or end with a space")]
    SurroundingSpace,
    /// The rendered memo would exceed the bound.
    #[error("memo would be {rendered_bytes} bytes, more than the {max_bytes} bytes allowed")]
    TooLong {
        /// Size of the rendered memo in UTF-8 bytes.
        rendered_bytes: usize,
        /// The bound.
        max_bytes: usize,
    },
    /// The PIN is empty or has characters other than ASCII letters and digits.
    #[error("PIN must be non-empty ASCII letters and digits")]
    InvalidPin,
    /// The order reference is invalid for a memo.
    #[error(
        "order reference must be 1 to {MAX_ORDER_REF_LEN} digits when the template uses {{order_ref}}"
    )]
    InvalidOrderRef,
    /// The order number has no digit to show as `{order_ref}`.
    #[error(
        "the order number has no digit to show as {{order_ref}}: use a memo template without {{order_ref}}"
    )]
    NoOrderDigits,
}

impl crate::error_code::Coded for MemoError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            MemoError::MissingPin
            | MemoError::RepeatedPlaceholder { .. }
            | MemoError::UnknownPlaceholder { .. }
            | MemoError::UnsafeCharacter { .. }
            | MemoError::SurroundingSpace
            | MemoError::TooLong { .. }
            | MemoError::InvalidPin
            | MemoError::InvalidOrderRef
            | MemoError::NoOrderDigits => ec::BANK_MEMO,
        }
    }
}

/// The `{order_ref}` of `order_no`: its last `len` digits (all of them when it has fewer; see the
/// module documentation for why digits only). An order number without a digit has none.
pub fn order_reference(order_no: &str, len: usize) -> Result<String, MemoError> {
    let digits: Vec<char> = order_no.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(MemoError::NoOrderDigits);
    }
    Ok(digits[digits.len().saturating_sub(len)..].iter().collect())
}

/// Whether `c` may appear in a bank memo: ASCII letters, digits, space and `- . , : / ( ) + ?`
/// (the SWIFT character set minus `'`, which some banks strip), CJK unified ideographs of GBK
/// (U+4E00..U+9FA5) and the common full-width punctuation `、。！（），：；？`. XML-special
/// characters (`& < > "`) are excluded, so a memo never needs escaping.
pub fn is_memo_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || " -.,:/()+?".contains(c)
        || ('\u{4E00}'..='\u{9FA5}').contains(&c)
        || "、。！（），：；？".contains(c)
}

/// Size of `text` in GBK bytes, the unit in which Chinese banks usually bound memos: 1 per
/// ASCII character, 2 per memo-safe CJK character, and 4 (the GB 18030 maximum) for anything
/// else, so the result never underestimates.
pub fn memo_gbk_bytes(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            c if c.is_ascii() => 1,
            c if is_memo_safe_char(c) => 2,
            _ => 4,
        })
        .sum()
}

/// The parsed shape of a template: its literal bytes and which placeholders it uses.
struct TemplateShape {
    literal_bytes: usize,
    has_order_ref: bool,
}

fn parse_template(template: &str) -> Result<TemplateShape, MemoError> {
    if template.starts_with(' ') || template.ends_with(' ') {
        return Err(MemoError::SurroundingSpace);
    }
    let mut pins = 0usize;
    let mut order_refs = 0usize;
    let mut literal_bytes = 0usize;
    let mut rest = template;
    let mut position = 0usize; // character index of `rest` in `template`
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            if rest.starts_with(PIN_PLACEHOLDER) {
                pins += 1;
                rest = &rest[PIN_PLACEHOLDER.len()..];
                position += PIN_PLACEHOLDER.len();
                continue;
            }
            if rest.starts_with(ORDER_REF_PLACEHOLDER) {
                order_refs += 1;
                rest = &rest[ORDER_REF_PLACEHOLDER.len()..];
                position += ORDER_REF_PLACEHOLDER.len();
                continue;
            }
            return Err(MemoError::UnknownPlaceholder { position });
        }
        if c == '}' {
            return Err(MemoError::UnknownPlaceholder { position });
        }
        if !is_memo_safe_char(c) {
            return Err(MemoError::UnsafeCharacter {
                position,
                code: u32::from(c),
            });
        }
        literal_bytes += c.len_utf8();
        rest = &rest[c.len_utf8()..];
        position += 1;
    }
    match (pins, order_refs) {
        (0, _) => Err(MemoError::MissingPin),
        (2.., _) => Err(MemoError::RepeatedPlaceholder {
            placeholder: PIN_PLACEHOLDER,
        }),
        (_, 2..) => Err(MemoError::RepeatedPlaceholder {
            placeholder: ORDER_REF_PLACEHOLDER,
        }),
        _ => Ok(TemplateShape {
            literal_bytes,
            has_order_ref: order_refs == 1,
        }),
    }
}

/// Checks that `template` is usable: it contains `{pin}` exactly once and `{order_ref}` at most
/// once, only memo-safe characters otherwise, no leading/trailing space, and renders within
/// `max_bytes` UTF-8 bytes for a PIN of `pin_len` and an order reference of `order_ref_len`
/// ASCII characters (pass the longest the PIN policy and order numbering can produce).
pub fn check_memo_template(
    template: &str,
    pin_len: usize,
    order_ref_len: usize,
    max_bytes: usize,
) -> Result<(), MemoError> {
    rendered_len(
        &parse_template(template)?,
        pin_len,
        order_ref_len,
        max_bytes,
    )
    .map(|_| ())
}

fn rendered_len(
    shape: &TemplateShape,
    pin_len: usize,
    order_ref_len: usize,
    max_bytes: usize,
) -> Result<usize, MemoError> {
    let order_ref_len = if shape.has_order_ref {
        order_ref_len
    } else {
        0
    };
    let rendered_bytes = shape
        .literal_bytes
        .saturating_add(pin_len)
        .saturating_add(order_ref_len);
    if rendered_bytes > max_bytes {
        return Err(MemoError::TooLong {
            rendered_bytes,
            max_bytes,
        });
    }
    Ok(rendered_bytes)
}

/// Renders the memo for one delivery. The PIN must be ASCII letters/digits (the station's PIN
/// alphabets are); the order reference digits, as [`order_reference`] makes it (ignored when the
/// template does not use it). Fails, without revealing either value, when the result would not
/// fit.
pub fn render_memo(
    template: &str,
    pin: &str,
    order_ref: &str,
    max_bytes: usize,
) -> Result<Zeroizing<String>, MemoError> {
    let shape = parse_template(template)?;
    if pin.is_empty() || !pin.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(MemoError::InvalidPin);
    }
    if shape.has_order_ref
        && (order_ref.is_empty()
            || order_ref.len() > MAX_ORDER_REF_LEN
            || !order_ref.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(MemoError::InvalidOrderRef);
    }
    let len = rendered_len(&shape, pin.len(), order_ref.len(), max_bytes)?;
    // Allocated once with the exact final size: pushing never reallocates, so the PIN is only
    // ever in this buffer, which is zeroized on drop.
    let mut memo = Zeroizing::new(String::with_capacity(len));
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(PIN_PLACEHOLDER) {
            memo.push_str(pin);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(ORDER_REF_PLACEHOLDER) {
            memo.push_str(order_ref);
            rest = after;
        } else if let Some(c) = rest.chars().next() {
            memo.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(memo)
}

/// The `EndToEndId` of the transfer for a delivery, deterministic so that a retried batch carries
/// the same reference (banks that detect duplicates reject the second transfer, and status
/// reports map back to the delivery).
///
/// A delivery id of 1..=33 characters from `[A-Za-z0-9-]` is kept readable as `KS` + id; any other
/// id becomes `KH` + the first 128 bits of its SHA-256 in upper-case hex (34 characters). The two
/// prefixes differ, so two different delivery ids never share an `EndToEndId` except by a SHA-256
/// collision. The result is at most 35 characters of the reference character set.
pub fn end_to_end_id(delivery_id: &str) -> String {
    let readable = (1..=33).contains(&delivery_id.len())
        && delivery_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if readable {
        return format!("KS{delivery_id}");
    }
    let digest = Sha256::digest(delivery_id.as_bytes());
    let mut id = String::with_capacity(34);
    id.push_str("KH");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02X}"));
    }
    id
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_template_fits_40_bytes_with_8_char_pin() {
        check_memo_template(DEFAULT_MEMO_TEMPLATE, 8, 5, DEFAULT_MAX_MEMO_BYTES).unwrap();
        let memo = render_memo(DEFAULT_MEMO_TEMPLATE, "Ab3k9Qz7", "40001", 40).unwrap();
        assert_eq!(memo.as_str(), "PIN Ab3k9Qz7 REF 40001 CHANGE AT 1ST USE");
        assert!(memo.len() <= 40);
        // One more character of order reference does not fit.
        assert_eq!(
            check_memo_template(DEFAULT_MEMO_TEMPLATE, 8, 6, 40),
            Err(MemoError::TooLong {
                rendered_bytes: 41,
                max_bytes: 40
            })
        );
    }

    #[test]
    fn too_long_template_refused() {
        let t = "YOUR CERTIFICATE PIN IS {pin} PLEASE CHANGE IT AT FIRST USE";
        assert!(matches!(
            check_memo_template(t, 8, 0, 40),
            Err(MemoError::TooLong { .. })
        ));
        let err = render_memo(t, "Ab3k9Qz7", "", 40).unwrap_err();
        assert!(!err.to_string().contains("Ab3k9Qz7"));
    }

    #[test]
    fn template_without_pin_refused() {
        assert_eq!(
            check_memo_template("REF {order_ref} CALL US", 8, 5, 40),
            Err(MemoError::MissingPin)
        );
        assert_eq!(
            check_memo_template("PIN {pin} {pin}", 8, 5, 40),
            Err(MemoError::RepeatedPlaceholder {
                placeholder: "{pin}"
            })
        );
        assert_eq!(
            check_memo_template("PIN {pin} {ref}", 8, 5, 40),
            Err(MemoError::UnknownPlaceholder { position: 10 })
        );
        assert_eq!(
            check_memo_template("PIN {pin}}", 8, 5, 40),
            Err(MemoError::UnknownPlaceholder { position: 9 })
        );
    }

    #[test]
    fn unsafe_characters_refused() {
        for t in [
            "PIN {pin} & more",
            "PIN <{pin}>",
            "PIN {pin}\nX",
            "PIN: {pin}'",
            "PIN {pin} é",
        ] {
            assert!(
                matches!(
                    check_memo_template(t, 8, 0, 40),
                    Err(MemoError::UnsafeCharacter { .. })
                ),
                "{t:?}"
            );
        }
        assert_eq!(
            check_memo_template(" PIN {pin}", 8, 0, 40),
            Err(MemoError::SurroundingSpace)
        );
    }

    #[test]
    fn chinese_template_counts_utf8_bytes() {
        let t = "证书密码{pin}首次使用请修改";
        // 11 ideographs * 3 bytes + 8: too long for 40 bytes of UTF-8...
        check_memo_template(t, 8, 0, 41).unwrap();
        assert!(check_memo_template(t, 8, 0, 40).is_err());
        let memo = render_memo(t, "Ab3k9Qz7", "", 41).unwrap();
        assert_eq!(memo.as_str(), "证书密码Ab3k9Qz7首次使用请修改");
        // ...although a bank counting GBK bytes would take it (11 * 2 + 8).
        assert_eq!(memo_gbk_bytes(&memo), 30);
        assert_eq!(memo_gbk_bytes(&"中".repeat(20)), DEFAULT_MAX_MEMO_BYTES);
        assert_eq!(memo_gbk_bytes("é"), 4);
    }

    #[test]
    fn pin_and_order_ref_are_checked_and_never_echoed() {
        let err = render_memo(DEFAULT_MEMO_TEMPLATE, "Ab3k 9Qz", "A1", 40).unwrap_err();
        assert_eq!(err, MemoError::InvalidPin);
        assert!(!err.to_string().contains("Ab3k"));
        assert_eq!(
            render_memo(DEFAULT_MEMO_TEMPLATE, "Ab3k9Qz7", "", 40).unwrap_err(),
            MemoError::InvalidOrderRef
        );
        assert_eq!(
            render_memo(DEFAULT_MEMO_TEMPLATE, "Ab3k9Qz7", "A&1", 40).unwrap_err(),
            MemoError::InvalidOrderRef
        );
        // Letters are refused: an O next to zeros reads two ways on a statement.
        assert_eq!(
            render_memo(DEFAULT_MEMO_TEMPLATE, "Ab3k9Qz7", "O0002", 40).unwrap_err(),
            MemoError::InvalidOrderRef
        );
        // The order reference is ignored when the template does not use it.
        assert_eq!(
            render_memo("PIN {pin}", "Ab3k9Qz7", "", 40)
                .unwrap()
                .as_str(),
            "PIN Ab3k9Qz7"
        );
    }

    #[test]
    fn order_references_are_the_last_digits() {
        // The demo's numbering: the reference used to be "O0002" (a letter O, then zeros).
        assert_eq!(order_reference("KS-DEMO-0002", 5).unwrap(), "0002");
        assert_eq!(order_reference("BJ20261124-0001", 5).unwrap(), "40001");
        assert_eq!(order_reference("SH20261124-0002", 3).unwrap(), "002");
        assert_eq!(order_reference("A-1", 5).unwrap(), "1");
        assert_eq!(
            order_reference("KS-DEMO-IOU", 5),
            Err(MemoError::NoOrderDigits)
        );
        assert_eq!(order_reference("", 5), Err(MemoError::NoOrderDigits));
        let memo = render_memo(
            DEFAULT_MEMO_TEMPLATE,
            "Ab3k9Qz7",
            &order_reference("KS-DEMO-0002", 5).unwrap(),
            40,
        )
        .unwrap();
        assert_eq!(memo.as_str(), "PIN Ab3k9Qz7 REF 0002 CHANGE AT 1ST USE");
    }

    #[test]
    fn end_to_end_ids() {
        assert_eq!(end_to_end_id("D-000123"), "KSD-000123");
        assert_eq!(end_to_end_id("D-000123"), end_to_end_id("D-000123"));
        let uuid = "0b7c6f2e-6d1a-4c4e-9f0a-2f5b8c1d3e4f";
        let h = end_to_end_id(uuid);
        assert_eq!(h.len(), 34);
        assert!(h.starts_with("KH"));
        assert_eq!(h, end_to_end_id(uuid));
        assert_ne!(h, end_to_end_id("0b7c6f2e-6d1a-4c4e-9f0a-2f5b8c1d3e40"));
        for id in [
            "",
            "订单 1",
            &"x".repeat(100),
            "a/b",
            &"A".repeat(33),
            &"A".repeat(34),
        ] {
            let e = end_to_end_id(id);
            assert!(
                super::super::check_reference("end_to_end_id", &e).is_ok(),
                "{id:?} -> {e:?}"
            );
        }
    }

    fn template_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[A-Za-z0-9 .,:/()+?-]{1,6}",
            2 => "[证书密码请修改使用]{1,3}",
            1 => Just("{pin}".to_owned()),
            1 => Just("{order_ref}".to_owned()),
        ];
        prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn rendered_memo_never_exceeds_max_bytes(
            template in template_strategy(),
            pin in "[A-Za-z0-9]{1,16}",
            order_ref in "[0-9]{1,16}",
            max_bytes in 0usize..80,
        ) {
            let checked = check_memo_template(&template, pin.len(), order_ref.len(), max_bytes);
            let rendered = render_memo(&template, &pin, &order_ref, max_bytes);
            prop_assert_eq!(checked.is_ok(), rendered.is_ok());
            if let Ok(memo) = rendered {
                prop_assert!(memo.len() <= max_bytes);
                prop_assert!(memo.contains(pin.as_str()));
                prop_assert!(memo.chars().all(is_memo_safe_char));
            }
        }

        /// A reference is digits only, at most `len` of them, and the order number's digits end
        /// with it: it can be read one way and found in the order number.
        #[test]
        fn order_references_are_unambiguous_suffixes(
            order_no in "[A-Z0-9_-]{1,40}",
            len in 1usize..=16,
        ) {
            let digits: String = order_no.chars().filter(char::is_ascii_digit).collect();
            match order_reference(&order_no, len) {
                Ok(r) => {
                    prop_assert!(!r.is_empty() && r.len() <= len);
                    prop_assert!(r.bytes().all(|b| b.is_ascii_digit()));
                    prop_assert!(digits.ends_with(&r));
                    prop_assert_eq!(r.len(), digits.len().min(len));
                }
                Err(e) => {
                    prop_assert_eq!(e, MemoError::NoOrderDigits);
                    prop_assert!(digits.is_empty());
                }
            }
        }
    }
}
