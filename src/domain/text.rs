//! Text rules: which characters the free-text fields of an order may hold, and how stored text is
//! shown to a person without letting it steer the terminal.
//!
//! Every text field is NFC-normalised first ([`super::normalize::text`]); the rules below are
//! checked on that normal form.
//!
//! **Every field** ([`TextKind::Free`]) refuses code points that are invisible or meaningless in a
//! name or an address, each with its own stable code:
//! - `invalid_characters`: controls (Cc), e.g. U+0007 BEL, U+001B ESC;
//! - `invisible_character`: format characters (Cf) — bidirectional controls (U+061C, U+200E,
//!   U+200F, U+202A-U+202E, U+2066-U+2069), zero-width characters (U+200B-U+200D, U+2060,
//!   U+FEFF), tag characters (U+E0001, U+E0020-U+E007F), the soft hyphen... — and the other
//!   Default_Ignorable code points, which are letters or marks by category but draw nothing:
//!   variation selectors (U+180B-U+180D, U+180F, U+FE00-U+FE0F, U+E0100-U+E01EF), the combining
//!   grapheme joiner U+034F, the Khmer inherent vowels U+17B4-U+17B5 and the Hangul fillers
//!   U+115F, U+1160, U+3164, U+FFA0 (a name of fillers would otherwise "have a letter");
//! - `private_use_character`: private use (Co), whose glyph depends on the reader's fonts;
//! - `unassigned_character`: unassigned code points and noncharacters (Cn) — a future Unicode
//!   version, or none, decides what they are.
//!
//! **Names** ([`TextKind::Name`]: the company name, department, province and city — they go into
//! the certificate's subject and the seals — the legal representative's and handler's names, the
//! invoice title, the bank account's name, bank and branch — they go into bank messages and SMS)
//! must also contain at least one letter (`name_no_letter`), and hold only (`name_character`):
//! - letters (L*), and combining marks (Mn, Mc) that follow a letter or another mark;
//! - decimal digits (Nd, e.g. `3M中国有限公司`) and letter numbers (Nl, e.g. `〇` in `二〇二一`);
//! - the space (runs of white space are collapsed to one U+0020 before this check);
//! - the punctuation of real Chinese company and personal names, in both widths, because legal
//!   names keep the width they were registered with (full-width brackets for branches):
//!   `(` `)` `（` `）` (branch and former-name brackets), `·` U+00B7 (the middle dot of
//!   transliterated and minority names on resident ID cards, e.g. `阿沛·阿旺晋美`), `-` `－`
//!   (hyphen), `.` `．` (`Co., Ltd.`), `&` `＆`, `,` `，` `、` (lists of names), `'` `’`
//!   (apostrophe, `O'Brien`).
//!
//! Everything else — symbols and emoji (So, Sk, Sm, Sc), other punctuation, enclosing marks,
//! other numbers (`①`, `²`) — is refused in a name. Look-alike middle dots (U+2022, U+30FB,
//! U+FF65) are refused rather than silently replaced: the message names the code point.

use std::borrow::Cow;
use std::fmt::Write as _;
use unicode_properties::{GeneralCategory as Gc, UnicodeGeneralCategory};

/// What a text field is used for, which decides the rules it must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Free text (an address, the invoice's address and bank lines, a phone, an e-mail, a code,
    /// a file name): only the refused code points of the module docs.
    Free,
    /// A name shown in a certificate, a seal or a message: also a letter, and no symbols.
    Name,
}

/// One text rule broken: a stable code and a message naming the offending code point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextProblem {
    /// Stable machine code (see the module docs).
    pub code: &'static str,
    /// Human message, e.g. `U+202E (a bidirectional control) is not allowed`.
    pub message: String,
}

/// Punctuation allowed in a name, besides the space; see the module docs for why each.
pub const NAME_PUNCTUATION: &[char] = &[
    '(', ')', '（', '）', '·', '-', '－', '.', '．', '&', '＆', ',', '，', '、', '\'', '’',
];

/// Checks `s` (already normalised) against the rules of `kind`.
pub fn check(s: &str, kind: TextKind) -> Result<(), TextProblem> {
    if let Some((c, class)) = s.chars().find_map(|c| refused(c).map(|class| (c, class))) {
        return Err(TextProblem {
            code: class.code(),
            message: format!(
                "{} ({}) is not allowed{}",
                code_point(c),
                class.describe(c),
                more(s, c, |c| refused(c).is_some())
            ),
        });
    }
    if kind == TextKind::Free {
        return Ok(());
    }
    let mut after_letter = false;
    let mut has_letter = false;
    for c in s.chars() {
        let gc = c.general_category();
        let ok = match gc {
            Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter => {
                has_letter = true;
                true
            }
            Gc::NonspacingMark | Gc::SpacingMark => after_letter,
            Gc::DecimalNumber | Gc::LetterNumber => true,
            _ => c == ' ' || NAME_PUNCTUATION.contains(&c),
        };
        if !ok {
            return Err(TextProblem {
                code: "name_character",
                message: format!(
                    "{} ({}) is not allowed in a name: letters, digits, spaces and {} only",
                    code_point(c),
                    describe_name_refusal(gc),
                    NAME_PUNCTUATION.iter().collect::<String>()
                ),
            });
        }
        after_letter = matches!(
            gc,
            Gc::UppercaseLetter
                | Gc::LowercaseLetter
                | Gc::TitlecaseLetter
                | Gc::ModifierLetter
                | Gc::OtherLetter
                | Gc::NonspacingMark
                | Gc::SpacingMark
        );
    }
    if !has_letter {
        return Err(TextProblem {
            code: "name_no_letter",
            message: "a name needs at least one letter".into(),
        });
    }
    Ok(())
}

/// `U+202E`: how messages name a code point.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `s` made safe to print on a terminal line: every code point refused by [`check`] for free
/// text, and the line and paragraph separators, as `\u{XXXX}`; a backslash as `\\` so the
/// escapes cannot be forged. Everything else unchanged (borrowed when nothing needs escaping).
///
/// Used for whatever a person reads that came from outside: names of stored orders (which may
/// predate these rules), JSON keys and values quoted in violation messages.
pub fn escape_for_display(s: &str) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || refused(c).is_some() || matches!(c, '\u{2028}' | '\u{2029}');
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs(c) {
            let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Why a code point is refused in every field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Control,
    Invisible,
    PrivateUse,
    Unassigned,
}

impl Refused {
    fn code(self) -> &'static str {
        match self {
            Refused::Control => "invalid_characters",
            Refused::Invisible => "invisible_character",
            Refused::PrivateUse => "private_use_character",
            Refused::Unassigned => "unassigned_character",
        }
    }

    fn describe(self, c: char) -> &'static str {
        match self {
            Refused::Control => "a control character",
            Refused::PrivateUse => "a private-use character",
            Refused::Unassigned => "an unassigned code point",
            Refused::Invisible => match u32::from(c) {
                0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 => {
                    "a bidirectional control"
                }
                0x200B..=0x200D | 0x2060 | 0xFEFF => "a zero-width character",
                0xE0000..=0xE007F => "a tag character",
                0x180B..=0x180D | 0x180F | 0xFE00..=0xFE0F | 0xE0100..=0xE01EF => {
                    "a variation selector"
                }
                0x115F | 0x1160 | 0x3164 | 0xFFA0 => "an invisible filler",
                _ => "an invisible format character",
            },
        }
    }
}

/// The class of a code point no field may hold, if it is one.
fn refused(c: char) -> Option<Refused> {
    match c.general_category() {
        Gc::Control => Some(Refused::Control),
        Gc::Format => Some(Refused::Invisible),
        Gc::PrivateUse => Some(Refused::PrivateUse),
        Gc::Unassigned | Gc::Surrogate => Some(Refused::Unassigned),
        _ if is_invisible_non_format(c) => Some(Refused::Invisible),
        _ => None,
    }
}

/// Default_Ignorable_Code_Point (DerivedCoreProperties.txt) members that are assigned and not
/// Cf: they draw nothing, yet are letters or marks by category.
fn is_invisible_non_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x034F
            | 0x115F
            | 0x1160
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180D
            | 0x180F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFFA0
            | 0xE0100..=0xE01EF
    )
}

fn describe_name_refusal(gc: Gc) -> &'static str {
    match gc {
        Gc::OtherSymbol | Gc::ModifierSymbol => "a symbol or emoji",
        Gc::MathSymbol => "a mathematical symbol",
        Gc::CurrencySymbol => "a currency symbol",
        Gc::NonspacingMark | Gc::SpacingMark => "a combining mark without a letter before it",
        Gc::EnclosingMark => "an enclosing mark",
        Gc::OtherNumber => "a number that is not a digit",
        Gc::SpaceSeparator | Gc::LineSeparator | Gc::ParagraphSeparator => "a separator",
        _ => "punctuation names do not use",
    }
}

/// `" (nor are the 2 other ...)"` when other code points of `s` than `first` match `bad`.
fn more(s: &str, first: char, bad: impl Fn(char) -> bool) -> String {
    let mut seen_first = false;
    let n = s
        .chars()
        .filter(|&c| {
            if c == first && !seen_first {
                seen_first = true;
                return false;
            }
            bad(c)
        })
        .count();
    match n {
        0 => String::new(),
        1 => " (nor is the 1 other such code point in the value)".into(),
        n => format!(" (nor are the {n} other such code points in the value)"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str, kind: TextKind) -> Option<&'static str> {
        check(s, kind).err().map(|p| p.code)
    }

    #[test]
    fn real_names_pass() {
        for name in [
            "北京星河数智科技有限公司",
            "北京星河数智科技有限公司（海淀分公司）",
            "北京星河数智科技有限公司(海淀分公司)",
            "阿沛·阿旺晋美",
            "3M中国有限公司",
            "二〇二一创新科技有限公司",
            "Procter & Gamble (Guangzhou) Ltd.",
            "Co., Ltd.",
            "O'Brien",
            "O’Brien",
            "Jean-Pierre",
            "张三、李四",
            "José Müller",
            "Nguyễn Văn A",
            "株式会社テスト",
            "삼성전자",
            "ＡＢＣ科技（北京）有限公司",
        ] {
            assert_eq!(check(name, TextKind::Name), Ok(()), "{name}");
        }
    }

    #[test]
    fn bidi_zero_width_tag_and_private_use_are_refused_everywhere() {
        for (s, expected, cp) in [
            ("北京\u{202E}公司", "invisible_character", "U+202E"),
            ("北京\u{2067}公司", "invisible_character", "U+2067"),
            ("北京\u{200F}公司", "invisible_character", "U+200F"),
            ("张\u{200B}三", "invisible_character", "U+200B"),
            ("\u{FEFF}张三", "invisible_character", "U+FEFF"),
            ("张三\u{E0041}", "invisible_character", "U+E0041"),
            ("张三\u{FE0F}", "invisible_character", "U+FE0F"),
            ("\u{3164}", "invisible_character", "U+3164"),
            ("张\u{00AD}三", "invisible_character", "U+00AD"),
            ("张\u{E000}三", "private_use_character", "U+E000"),
            ("张\u{F0000}三", "private_use_character", "U+F0000"),
            ("张\u{0378}三", "unassigned_character", "U+0378"),
            ("张\u{FFFE}三", "unassigned_character", "U+FFFE"),
            ("张\u{0007}三", "invalid_characters", "U+0007"),
            ("张\u{001B}[31m三", "invalid_characters", "U+001B"),
            ("张\u{0085}三", "invalid_characters", "U+0085"),
        ] {
            for kind in [TextKind::Free, TextKind::Name] {
                let p = check(s, kind).unwrap_err();
                assert_eq!(p.code, expected, "{s:?}");
                assert!(p.message.contains(cp), "{s:?}: {}", p.message);
            }
        }
        let p = check("北京\u{202E}公\u{202C}司", TextKind::Free).unwrap_err();
        assert!(p.message.contains("bidirectional"), "{}", p.message);
        assert!(p.message.contains("1 other"), "{}", p.message);
    }

    #[test]
    fn names_need_a_letter_and_no_symbols() {
        assert_eq!(
            code("\u{200B}\u{200B}", TextKind::Name),
            Some("invisible_character")
        );
        assert_eq!(code("·", TextKind::Name), Some("name_no_letter"));
        assert_eq!(code("123", TextKind::Name), Some("name_no_letter"));
        assert_eq!(code("（）", TextKind::Name), Some("name_no_letter"));
        for s in [
            "星河科技😀",
            "星河科技★",
            "星河™",
            "星河$",
            "星河+",
            "星河①",
            "星河/科技",
            "星河#1",
            "张•三",
            "张・三",
            "\u{0301}张",
            "1\u{20E3}",
            "星河\u{1F1E8}\u{1F1F3}",
        ] {
            let p = check(s, TextKind::Name).unwrap_err();
            assert_eq!(p.code, "name_character", "{s:?}");
            assert!(p.message.contains("U+"), "{}", p.message);
        }
        // Free text (an address) may hold symbols, never invisible characters.
        assert_eq!(
            check("海淀区中关村大街27号 #502/5F ★", TextKind::Free),
            Ok(())
        );
    }

    #[test]
    fn escaping_shows_invisible_characters_and_keeps_the_rest() {
        assert!(matches!(
            escape_for_display("北京（分公司）"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_for_display("北京\u{202E}公司\u{7}\u{1B}[2J"),
            "北京\\u{202E}公司\\u{0007}\\u{001B}[2J"
        );
        assert_eq!(escape_for_display("a\\u{202E}"), "a\\\\u{202E}");
        assert_eq!(escape_for_display("a\u{2028}b\nc"), "a\\u{2028}b\\u{000A}c");
        assert_eq!(
            escape_for_display("\u{E0041}\u{E000}"),
            "\\u{E0041}\\u{E000}"
        );
    }

    proptest! {
        /// Whatever the input, the escaped form holds nothing a check would refuse, and nothing
        /// that breaks a line.
        #[test]
        fn escaped_text_is_always_printable(s in any::<String>()) {
            let shown = escape_for_display(&s);
            prop_assert_eq!(check(&shown, TextKind::Free), Ok(()));
            let breaks = ['\n', '\r', '\u{2028}', '\u{2029}'];
            prop_assert!(!shown.contains(breaks), "{:?}", shown);
        }

        /// A value with any refused code point inserted anywhere is refused, in either kind,
        /// and the message names that code point.
        #[test]
        fn an_inserted_invisible_code_point_is_always_refused(
            name in "[北京星河科技有限公司张三李四]{1,12}",
            at in 0usize..13,
            c in prop::sample::select(vec![
                '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}',
                '\u{2067}', '\u{2068}', '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}',
                '\u{200E}', '\u{200F}', '\u{2060}', '\u{FEFF}', '\u{E0001}', '\u{E0020}',
                '\u{E007F}', '\u{E000}', '\u{F8FF}', '\u{10FFFD}', '\u{0000}', '\u{009F}',
            ]),
        ) {
            let mut chars: Vec<char> = name.chars().collect();
            chars.insert(at.min(chars.len()), c);
            let s: String = chars.into_iter().collect();
            for kind in [TextKind::Free, TextKind::Name] {
                let p = check(&s, kind).unwrap_err();
                prop_assert!(p.message.contains(&code_point(c)), "{}", p.message);
            }
        }

        /// Names built only from the allowed alphabet pass as long as they hold a letter.
        #[test]
        fn names_of_the_allowed_alphabet_pass(
            s in "[北京星河A-Za-z0-9０-９ ()（）·\\-－.．&＆,，、'’]{0,20}[北京星河A-Za-z]"
        ) {
            prop_assert_eq!(check(&s, TextKind::Name), Ok(()));
        }
    }
}
