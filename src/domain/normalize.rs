//! Input normalisation applied to an order before validation; what it produces is what gets stored.
//!
//! Two families of fields are treated differently, on purpose:
//! - **codes** (USCC, ID numbers, taxpayer ids, account numbers, phones, e-mail, order numbers):
//!   full-width characters folded to ASCII, surrounding space trimmed, and for the identifiers
//!   the separators people type (spaces, hyphens) removed and letters upper-cased. Two spellings
//!   of one code must compare equal, so they are stored in one canonical form.
//! - **names and addresses**: NFC-normalised (one spelling of `é`, of a CJK compatibility
//!   ideograph), trimmed, and with runs of white space collapsed. Never width-folded: Chinese legal
//!   names are written with full-width punctuation (`（分公司）`); folding it would change the name
//!   that goes into the certificate away from the one on the business licence. NFC leaves
//!   full-width forms alone (they are compatibility, not canonical, equivalents).
//!
//! Which characters a normalised text may then hold is [`super::text`]'s business.

use unicode_normalization::UnicodeNormalization;

/// Folds full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space (U+3000) to ASCII.
pub fn fold_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// A free-text field (name, address): NFC, trimmed, inner white space runs collapsed to one space.
pub fn text(s: &str) -> String {
    let nfc: String = s.nfc().collect();
    let mut out = String::with_capacity(nfc.len());
    for word in nfc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// An identifier (USCC, resident ID, taxpayer id, order number): width-folded, separators
/// (white space, hyphens) removed, upper-cased.
pub fn code(s: &str) -> String {
    fold_width(s)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// An order number: width-folded, trimmed, upper-cased. Applied at intake AND to every order
/// number an operator types later (`order show ks-demo-0001`), so both name the same order.
pub fn order_no(s: &str) -> String {
    fold_width(s).trim().to_uppercase()
}

/// A certificate serial as an operator may copy it (`openssl` prints upper case, some tools with
/// colons between the bytes): trimmed, colons removed, lower-cased, which is how the station
/// writes serials.
pub fn cert_serial(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A digit string such as an account number: width-folded, spaces and hyphens removed.
pub fn digits(s: &str) -> String {
    fold_width(s)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// An e-mail address: width-folded and trimmed; the domain part lower-cased (it is
/// case-insensitive), the local part kept as typed (it may not be).
pub fn email(s: &str) -> String {
    let folded = fold_width(s).trim().to_string();
    match folded.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => folded,
    }
}

/// A telephone number as typed (landline or mobile): width-folded and trimmed, inner spacing kept.
pub fn phone(s: &str) -> String {
    text(&fold_width(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_full_width_digits_letters_and_space() {
        assert_eq!(fold_width("９１１１ＡＢ\u{3000}ｘ"), "9111AB x");
    }

    #[test]
    fn codes_lose_separators_and_case() {
        assert_eq!(code(" 9111-0000 6000 3734 1ｌ "), "91110000600037341L");
        assert_eq!(code("11010519491231002x"), "11010519491231002X");
    }

    #[test]
    fn names_keep_full_width_punctuation() {
        assert_eq!(
            text("  北京某某科技有限公司（分公司）  "),
            "北京某某科技有限公司（分公司）"
        );
        assert_eq!(text("Acme \t  Ltd"), "Acme Ltd");
    }

    #[test]
    fn names_are_nfc_and_keep_their_width() {
        // e + COMBINING ACUTE ACCENT composes; a CJK compatibility ideograph maps to the unified
        // one; full-width brackets and letters stay full-width.
        assert_eq!(
            text("Jose\u{301} ＡＢＣ（分公司）"),
            "Jos\u{E9} ＡＢＣ（分公司）"
        );
        assert_eq!(text("\u{F900}"), "\u{8C48}");
        assert_eq!(text("\u{3000}张\u{00A0}\u{00A0}三\u{2028}"), "张 三");
    }

    #[test]
    fn order_numbers_fold_trim_and_upper_case() {
        assert_eq!(order_no(" ks-demo-０００1 "), "KS-DEMO-0001");
    }

    #[test]
    fn email_domain_lowercased_only() {
        assert_eq!(email(" Zhang.San@Example.COM "), "Zhang.San@example.com");
    }
}
