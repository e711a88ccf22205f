//! The SMS text that carries a PIN: template checking, rendering and segment counting.
//!
//! Responsibility: turn a station-configured template (sign name + body with `{order_no}`, `{pin}`,
//! `{company}` placeholders) into the exact text a handset will show, and refuse, at configuration
//! time, any template that could ever render into more segments than allowed.
//!
//! Invariants:
//! - Length is counted the way Chinese carriers bill it (domain doc §6): UTF-16 code units of
//!   `【sign】` + body; one segment up to 70 units, otherwise 67 units per segment. A character outside
//!   the Basic Multilingual Plane counts 2.
//! - Substitution is single pass: a value that itself looks like `{pin}` is copied literally, so an
//!   order number or a company name can never pull the PIN into another position.
//! - The rendered text contains the PIN, so it only exists as [`SmsText`] (zeroized on drop, redacted
//!   `Debug`, no `Display`, no `Serialize`); reading it is the explicit [`SmsText::expose_secret`].
//!
//! Security notes: rendering sizes the output buffer exactly before writing, so no reallocation
//! leaves an unzeroized copy of the PIN on the heap.

use std::fmt;

use zeroize::Zeroizing;

use super::SmsError;

/// The body template used when the station configuration does not name one.
pub const DEFAULT_BODY_TEMPLATE: &str =
    "贵单位数字证书(订单{order_no})密码:{pin}，请首次使用时修改。";

/// UTF-16 units that fit in a single-segment SMS.
const SINGLE_SEGMENT_UNITS: usize = 70;
/// UTF-16 units per segment once a message is split (the rest carries the concatenation header).
const MULTI_SEGMENT_UNITS: usize = 67;

/// A rendered SMS text, including the `【sign】` prefix. It contains the PIN.
pub struct SmsText(Zeroizing<String>);

impl SmsText {
    /// The plain text. Exposing it is deliberate: only a channel writing the message to its
    /// provider (spool file, webhook body) may call this, and it must not log the result.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in UTF-16 code units, the unit carriers bill by.
    pub fn utf16_len(&self) -> usize {
        self.0.encode_utf16().count()
    }

    /// Number of billed segments, see [`segments`].
    pub fn segments(&self) -> usize {
        segments(&self.0)
    }
}

impl fmt::Debug for SmsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The length is not secret (it is fixed by the template) and helps diagnose segment issues.
        write!(f, "SmsText(<redacted>, {} units)", self.utf16_len())
    }
}

/// Number of SMS segments a text is billed as: up to 70 UTF-16 units is one segment, longer texts
/// are split into segments of 67 units.
pub fn segments(text: &str) -> usize {
    let units = text.encode_utf16().count();
    if units <= SINGLE_SEGMENT_UNITS {
        1
    } else {
        units.div_ceil(MULTI_SEGMENT_UNITS)
    }
}

/// The placeholders a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    OrderNo,
    Pin,
    Company,
}

/// A piece of a parsed template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    Value(Placeholder),
}

/// Splits a template into literals and placeholders, refusing unknown names and stray braces
/// (a stray brace is almost always a typo such as `{pin` and would otherwise reach the customer).
fn parse_template(template: &str) -> Result<Vec<Piece<'_>>, SmsError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Literal(rest));
                break;
            }
            Some(pos) => {
                if pos > 0 {
                    pieces.push(Piece::Literal(&rest[..pos]));
                }
                if rest[pos..].starts_with('}') {
                    return Err(SmsError::TemplateStrayBrace {
                        offset: offset + pos,
                    });
                }
                let after_open = &rest[pos + 1..];
                let close = after_open
                    .find(['{', '}'])
                    .filter(|&c| after_open[c..].starts_with('}'))
                    .ok_or(SmsError::TemplateStrayBrace {
                        offset: offset + pos,
                    })?;
                let name = &after_open[..close];
                let placeholder = match name {
                    "order_no" => Placeholder::OrderNo,
                    "pin" => Placeholder::Pin,
                    "company" => Placeholder::Company,
                    other => {
                        return Err(SmsError::TemplateUnknownPlaceholder {
                            name: other.to_owned(),
                        });
                    }
                };
                pieces.push(Piece::Value(placeholder));
                let consumed = pos + 1 + close + 1;
                rest = &rest[consumed..];
                offset += consumed;
            }
        }
    }
    if !pieces.contains(&Piece::Value(Placeholder::Pin)) {
        return Err(SmsError::TemplateMissingPin);
    }
    Ok(pieces)
}

/// The sign name becomes `【sign】`; brackets inside it would produce a second, forged signature.
fn check_sign_name(sign_name: &str) -> Result<(), SmsError> {
    if sign_name.trim().is_empty() {
        return Err(SmsError::InvalidSignName { reason: "is empty" });
    }
    if sign_name.contains(['【', '】']) {
        return Err(SmsError::InvalidSignName {
            reason: "contains 【 or 】",
        });
    }
    if sign_name.chars().any(char::is_control) {
        return Err(SmsError::InvalidSignName {
            reason: "contains a control character",
        });
    }
    Ok(())
}

fn utf16_units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Checks a template at configuration time.
///
/// Refuses a template without `{pin}`, with an unknown placeholder or a stray brace, and one whose
/// worst-case rendering (`【sign_name】` + body with a `pin_len`-character PIN, an order number of
/// `max_order_no_len` and a company name of `max_company_len` UTF-16 units) exceeds `max_segments`.
/// PIN characters are ASCII (domain doc §5), so `pin_len` characters are `pin_len` units.
pub fn check_template(
    sign_name: &str,
    template: &str,
    pin_len: usize,
    max_order_no_len: usize,
    max_company_len: usize,
    max_segments: usize,
) -> Result<(), SmsError> {
    check_sign_name(sign_name)?;
    let pieces = parse_template(template)?;
    // 【 and 】 are one unit each.
    let mut units = 2 + utf16_units(sign_name);
    for piece in &pieces {
        units += match piece {
            Piece::Literal(s) => utf16_units(s),
            Piece::Value(Placeholder::Pin) => pin_len,
            Piece::Value(Placeholder::OrderNo) => max_order_no_len,
            Piece::Value(Placeholder::Company) => max_company_len,
        };
    }
    let worst = if units <= SINGLE_SEGMENT_UNITS {
        1
    } else {
        units.div_ceil(MULTI_SEGMENT_UNITS)
    };
    if worst > max_segments {
        return Err(SmsError::TemplateTooLong {
            units,
            segments: worst,
            max_segments,
        });
    }
    Ok(())
}

/// `【sign_name】` + `body`, for a notice to the applicant (no PIN in it; the type is the PIN
/// message's so that every channel takes it unchanged).
pub fn notice_text(sign_name: &str, body: &str) -> Result<SmsText, SmsError> {
    check_sign_name(sign_name)?;
    Ok(SmsText(Zeroizing::new(format!("【{sign_name}】{body}"))))
}

/// Renders `【sign_name】` + `template` with the placeholders replaced by the given values.
pub fn render(
    sign_name: &str,
    template: &str,
    order_no: &str,
    company: &str,
    pin: &str,
) -> Result<SmsText, SmsError> {
    check_sign_name(sign_name)?;
    if pin.is_empty() {
        return Err(SmsError::EmptyPin);
    }
    let pieces = parse_template(template)?;
    let value = |p: Placeholder| match p {
        Placeholder::OrderNo => order_no,
        Placeholder::Pin => pin,
        Placeholder::Company => company,
    };
    let piece_len = |piece: &Piece<'_>| match piece {
        Piece::Literal(s) => s.len(),
        Piece::Value(p) => value(*p).len(),
    };
    let capacity = '【'.len_utf8()
        + sign_name.len()
        + '】'.len_utf8()
        + pieces.iter().map(piece_len).sum::<usize>();
    // Exact capacity: pushing never reallocates, so no stray copy of the PIN is left behind.
    let mut text = Zeroizing::new(String::with_capacity(capacity));
    text.push('【');
    text.push_str(sign_name);
    text.push('】');
    for piece in &pieces {
        match piece {
            Piece::Literal(s) => text.push_str(s),
            Piece::Value(p) => text.push_str(value(*p)),
        }
    }
    Ok(SmsText(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DOC_EXAMPLE: &str = "【北京CA】贵单位证书密码为Ab3k9Qz7，请妥善保管，勿泄露。";

    #[test]
    fn domain_doc_example_is_33_units_one_segment() {
        assert_eq!(utf16_units(DOC_EXAMPLE), 33);
        assert_eq!(segments(DOC_EXAMPLE), 1);
    }

    #[test]
    fn render_reproduces_domain_doc_example() {
        let text = render(
            "北京CA",
            "贵单位证书密码为{pin}，请妥善保管，勿泄露。",
            "ORD-1",
            "某公司",
            "Ab3k9Qz7",
        )
        .unwrap();
        assert_eq!(text.expose_secret(), DOC_EXAMPLE);
        assert_eq!(text.utf16_len(), 33);
        assert_eq!(text.segments(), 1);
    }

    #[test]
    fn segment_boundaries() {
        let ascii = |n: usize| "a".repeat(n);
        assert_eq!(segments(&ascii(70)), 1);
        assert_eq!(segments(&ascii(71)), 2);
        assert_eq!(segments(&ascii(134)), 2);
        assert_eq!(segments(&ascii(135)), 3);
        // CJK characters are one unit each.
        assert_eq!(segments(&"密".repeat(70)), 1);
        assert_eq!(segments(&"密".repeat(71)), 2);
    }

    #[test]
    fn astral_plane_characters_count_two_units() {
        // U+20000 (CJK Extension B) is outside the BMP: one char, two UTF-16 units.
        let astral = '\u{20000}';
        assert_eq!(utf16_units(&astral.to_string()), 2);
        let seventy = format!("{}{}", "a".repeat(68), astral);
        assert_eq!(seventy.chars().count(), 69);
        assert_eq!(segments(&seventy), 1);
        let seventy_one = format!("{}{}", "a".repeat(69), astral);
        assert_eq!(segments(&seventy_one), 2);
        let u134 = format!("{}{}", "a".repeat(132), astral);
        assert_eq!(segments(&u134), 2);
        let u135 = format!("{}{}", "a".repeat(133), astral);
        assert_eq!(segments(&u135), 3);
    }

    #[test]
    fn render_default_template() {
        let text = render(
            "北京CA",
            DEFAULT_BODY_TEMPLATE,
            "20201126135521",
            "某公司",
            "Ab3k9Qz7",
        )
        .unwrap();
        assert_eq!(
            text.expose_secret(),
            "【北京CA】贵单位数字证书(订单20201126135521)密码:Ab3k9Qz7，请首次使用时修改。"
        );
    }

    #[test]
    fn render_is_single_pass() {
        let text = render(
            "CA",
            "{order_no}/{company}/{pin}",
            "{pin}",
            "{company}",
            "P1n",
        )
        .unwrap();
        assert_eq!(text.expose_secret(), "【CA】{pin}/{company}/P1n");
    }

    #[test]
    fn render_refuses_empty_pin() {
        assert!(matches!(
            render("CA", DEFAULT_BODY_TEMPLATE, "1", "c", ""),
            Err(SmsError::EmptyPin)
        ));
    }

    #[test]
    fn template_without_pin_is_refused() {
        let err = check_template("CA", "订单{order_no}已发货", 8, 20, 20, 1).unwrap_err();
        assert!(matches!(err, SmsError::TemplateMissingPin));
        assert!(matches!(
            render("CA", "no pin here", "1", "c", "x"),
            Err(SmsError::TemplateMissingPin)
        ));
    }

    #[test]
    fn unknown_placeholder_is_refused_and_named() {
        let err = check_template("CA", "{pin} {name}", 8, 20, 20, 1).unwrap_err();
        match &err {
            SmsError::TemplateUnknownPlaceholder { name } => assert_eq!(name, "name"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("{name}"));
        // `{sign}` is not a body placeholder: the sign is configured separately.
        assert!(check_template("CA", "{sign}{pin}", 8, 20, 20, 1).is_err());
    }

    #[test]
    fn stray_braces_are_refused() {
        for t in ["{pin", "pin}", "{pin}}", "{{pin}", "{pin}{", "}{pin}"] {
            assert!(
                matches!(
                    check_template("CA", t, 8, 20, 20, 1),
                    Err(SmsError::TemplateStrayBrace { .. })
                ),
                "{t}"
            );
        }
    }

    #[test]
    fn sign_name_is_checked() {
        assert!(check_template("", DEFAULT_BODY_TEMPLATE, 8, 20, 0, 1).is_err());
        assert!(check_template("北京】CA", DEFAULT_BODY_TEMPLATE, 8, 20, 0, 1).is_err());
        assert!(render("【x", DEFAULT_BODY_TEMPLATE, "1", "c", "p").is_err());
    }

    #[test]
    fn check_template_uses_worst_case_lengths() {
        // 【CA】 = 4 units, body literal "x" + {pin}: 4 + 1 + pin.
        assert!(check_template("CA", "x{pin}", 65, 0, 0, 1).is_ok()); // 70 units
        assert!(check_template("CA", "x{pin}", 66, 0, 0, 1).is_err()); // 71 units
        assert!(check_template("CA", "x{pin}", 66, 0, 0, 2).is_ok());
        // Placeholders that occur count each time they occur.
        assert!(check_template("CA", "{company}{company}{pin}", 8, 0, 29, 1).is_ok()); // 70
        assert!(check_template("CA", "{company}{company}{pin}", 8, 0, 30, 1).is_err()); // 72
        // 135 units need 3 segments.
        let err = check_template("CA", "x{order_no}{pin}", 8, 122, 0, 2).unwrap_err();
        match err {
            SmsError::TemplateTooLong {
                units,
                segments,
                max_segments,
            } => assert_eq!((units, segments, max_segments), (135, 3, 2)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(check_template("CA", "x{order_no}{pin}", 8, 121, 0, 2).is_ok()); // 134
    }

    #[test]
    fn default_template_fits_one_segment_for_realistic_fields() {
        // 北京CA sign, 16-character PIN (policy maximum), 20-character order number.
        check_template("北京CA", DEFAULT_BODY_TEMPLATE, 16, 20, 0, 1).unwrap();
    }

    #[test]
    fn debug_is_redacted() {
        let text = render("CA", "{pin}", "1", "c", "Ab3k9Qz7").unwrap();
        let dbg = format!("{text:?}");
        assert!(!dbg.contains("Ab3k9Qz7"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}
