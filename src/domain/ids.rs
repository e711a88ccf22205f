//! Chinese identifiers and their check algorithms, exactly as ../shared/docs/domain.md §2 states them.
//!
//! Every function takes an already normalised value (see [`super::normalize`]) and returns a typed
//! reason on failure; turning reasons into user-facing violations is [`super::validate`]'s job.

use time::Date;

/// USCC character set in value order: digits, then letters without I, O, S, V, Z.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a unified social credit code (GB 32100-2015) is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsccError {
    /// Not exactly 18 characters.
    Length(usize),
    /// A character outside `0-9 A-H J-N P Q R T U W X Y` (1-based position).
    Charset(usize),
    /// Positions 3-8 (the administrative region) must be digits (1-based position).
    Region(usize),
    /// The 18th character does not match the check computed over the first 17.
    Checksum {
        /// The check character the first 17 compute to.
        expected: char,
    },
}

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters of a USCC, if they are all in the alphabet.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in bytes.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(*b)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(USCC_ALPHABET[check as usize] as char)
}

/// Checks a normalised USCC: length, character set, region digits, then the checksum.
/// Positions 1-2 may be letters (registration authorities A, G, J, N, Q, Y exist).
pub fn check_uscc(code: &str) -> Result<(), UsccError> {
    let n = code.chars().count();
    if n != 18 {
        return Err(UsccError::Length(n));
    }
    let bytes = code.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if uscc_value(*b).is_none() {
            return Err(UsccError::Charset(i + 1));
        }
    }
    if let Some(i) = bytes[2..8].iter().position(|b| !b.is_ascii_digit()) {
        return Err(UsccError::Region(i + 3));
    }
    let expected = uscc_check_char(&code[..17]).ok_or(UsccError::Charset(1))?;
    if bytes[17] as char != expected {
        return Err(UsccError::Checksum { expected });
    }
    Ok(())
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Why a resident identity card number (GB 11643-1999) is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResidentIdError {
    /// A 15-digit first-generation number: no longer accepted for certificates.
    Legacy15,
    /// Not 18 characters.
    Length(usize),
    /// Positions 1-17 must be digits, position 18 a digit or `X` (1-based position).
    Charset(usize),
    /// Wrong check character.
    Checksum {
        /// The check character the first 17 digits compute to.
        expected: char,
    },
    /// Birth date is not a calendar date.
    DateInvalid,
    /// Birth date is after today.
    DateFuture,
    /// Birth year before 1900.
    DateTooOld,
}

/// The check character for the first 17 digits of a resident ID.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// Checks a normalised resident ID number against `today` (the birth date may not be after it).
/// Unknown region codes are not rejected: the official list changes and is not ours to police.
pub fn check_resident_id(id: &str, today: Date) -> Result<(), ResidentIdError> {
    let n = id.chars().count();
    if n == 15 && id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ResidentIdError::Legacy15);
    }
    if n != 18 {
        return Err(ResidentIdError::Length(n));
    }
    let bytes = id.as_bytes();
    if let Some(i) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
        return Err(ResidentIdError::Charset(i + 1));
    }
    if !(bytes[17].is_ascii_digit() || bytes[17] == b'X') {
        return Err(ResidentIdError::Charset(18));
    }
    let expected = resident_id_check_char(&id[..17]).ok_or(ResidentIdError::Charset(1))?;
    if bytes[17] as char != expected {
        return Err(ResidentIdError::Checksum { expected });
    }
    let birth = birth_date(id).ok_or(ResidentIdError::DateInvalid)?;
    if birth.year() < 1900 {
        return Err(ResidentIdError::DateTooOld);
    }
    if birth > today {
        return Err(ResidentIdError::DateFuture);
    }
    Ok(())
}

/// The birth date encoded in positions 7-14 of an 18-character resident ID, if it is a real date.
pub fn birth_date(id: &str) -> Option<Date> {
    let digits = id.get(6..14)?;
    let year: i32 = digits.get(0..4)?.parse().ok()?;
    let month: u8 = digits.get(4..6)?.parse().ok()?;
    let day: u8 = digits.get(6..8)?.parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// Normalises a mainland mobile number: strips `+86`, `0086`, `86`, spaces and hyphens, and
/// returns the 11 digits if they match `^1[3-9]\d{9}$`.
pub fn normalize_mobile(raw: &str) -> Option<String> {
    let compact: String = super::normalize::fold_width(raw)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let national = compact
        .strip_prefix("+86")
        .or_else(|| compact.strip_prefix("0086"))
        .or_else(|| {
            // A bare `86` prefix only when what follows is a full mobile number.
            compact.strip_prefix("86").filter(|rest| rest.len() == 11)
        })
        .unwrap_or(&compact);
    let b = national.as_bytes();
    let ok = b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit);
    ok.then(|| national.to_string())
}

/// A deliberately plain e-mail check: one `@`, a non-empty local part of printable ASCII without
/// spaces, and a domain of at least two dot-separated labels of letters, digits and hyphens.
/// (Full RFC 5322 accepts addresses no mail system of a Chinese enterprise will ever deliver to.)
pub fn is_plausible_email(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    if local.is_empty()
        || local.len() > 64
        || domain.len() > 253
        || !local
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'@' && b != b'"' && b != b',')
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Why a taxpayer identification number is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxpayerIdError {
    /// Only 15, 18 or 20 characters exist.
    Length(usize),
    /// Only digits and upper-case letters (1-based position).
    Charset(usize),
}

/// Checks the shape of a taxpayer id (15, 18 or 20 alphanumerics). Whether an 18-character one
/// equals the company's USCC is a separate, softer rule (a warning) applied by the validator.
pub fn check_taxpayer_id(id: &str) -> Result<(), TaxpayerIdError> {
    let n = id.chars().count();
    if let Some(i) = id
        .chars()
        .position(|c| !(c.is_ascii_digit() || c.is_ascii_uppercase()))
    {
        return Err(TaxpayerIdError::Charset(i + 1));
    }
    if ![15, 18, 20].contains(&n) {
        return Err(TaxpayerIdError::Length(n));
    }
    Ok(())
}

/// A bank account number as Chinese banks print it: 8 to 32 digits.
pub fn is_valid_account_number(n: &str) -> bool {
    (8..=32).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 24);

    #[test]
    fn uscc_vectors_from_domain_doc() {
        for valid in [
            "91110000600037341L",
            "91310115MA1K3BTP2B",
            "121200004013590816",
            "9144030071526726XG",
            "91110108MA01BJ7K88",
            "92110000123456788J",
            "52110000500000007X",
            "N2110108MA01NC3K9X",
            "Y1110000MA01QT5R1D",
        ] {
            assert_eq!(check_uscc(valid), Ok(()), "{valid}");
        }
        assert_eq!(
            check_uscc("91110000600037341M"),
            Err(UsccError::Checksum { expected: 'L' })
        );
        assert_eq!(
            check_uscc("9111000060003734IL"),
            Err(UsccError::Charset(17))
        );
        assert_eq!(check_uscc("91A10000600037341L"), Err(UsccError::Region(3)));
        assert_eq!(check_uscc("91110000600037341"), Err(UsccError::Length(17)));
        // A legal early pilot code that fails the checksum: detected, never silently accepted.
        assert!(matches!(
            check_uscc("91350100M0001TGQXM"),
            Err(UsccError::Checksum { .. })
        ));
    }

    #[test]
    fn resident_id_vectors_from_domain_doc() {
        for valid in [
            "11010519491231002X",
            "110108200001011237",
            "440305198512310026",
            "31011520000229003X",
        ] {
            assert_eq!(check_resident_id(valid, TODAY), Ok(()), "{valid}");
        }
        for bad_date in [
            "310115197002290035",
            "110105194902300020",
            "110105194913010029",
            "110105194912320025",
        ] {
            assert_eq!(
                check_resident_id(bad_date, TODAY),
                Err(ResidentIdError::DateInvalid),
                "{bad_date}"
            );
        }
        assert_eq!(
            check_resident_id("110105209901010020", TODAY),
            Err(ResidentIdError::DateFuture)
        );
        assert_eq!(
            check_resident_id("110105194912310021", TODAY),
            Err(ResidentIdError::Checksum { expected: 'X' })
        );
        assert_eq!(
            check_resident_id("11010519491231002", TODAY),
            Err(ResidentIdError::Length(17))
        );
        assert_eq!(
            check_resident_id("110105491231002", TODAY),
            Err(ResidentIdError::Legacy15)
        );
    }

    #[test]
    fn resident_id_year_before_1900_rejected() {
        let first17 = "11010518991231002";
        let id = format!("{first17}{}", resident_id_check_char(first17).unwrap());
        assert_eq!(
            check_resident_id(&id, TODAY),
            Err(ResidentIdError::DateTooOld)
        );
    }

    #[test]
    fn mobile_vectors_from_domain_doc() {
        for written in [
            "13800138000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "8613800138000",
        ] {
            assert_eq!(
                normalize_mobile(written).as_deref(),
                Some("13800138000"),
                "{written}"
            );
        }
        assert_eq!(normalize_mobile("12345678901"), None);
        assert_eq!(normalize_mobile("1380013800"), None);
    }

    #[test]
    fn emails() {
        assert!(is_plausible_email("zhang.san@example.com.cn"));
        assert!(!is_plausible_email("zhang.san@localhost"));
        assert!(!is_plausible_email("zhang san@example.com"));
        assert!(!is_plausible_email("@example.com"));
        assert!(!is_plausible_email("a@b@example.com"));
    }

    #[test]
    fn taxpayer_ids() {
        assert_eq!(check_taxpayer_id("91110000600037341L"), Ok(()));
        assert_eq!(check_taxpayer_id("110105123456789"), Ok(()));
        assert_eq!(check_taxpayer_id("11010512345678901234"), Ok(()));
        assert_eq!(
            check_taxpayer_id("1101051234567890"),
            Err(TaxpayerIdError::Length(16))
        );
        assert_eq!(
            check_taxpayer_id("11010512345678a"),
            Err(TaxpayerIdError::Charset(15))
        );
    }

    fn uscc_char() -> impl Strategy<Value = char> {
        proptest::sample::select(USCC_ALPHABET.to_vec()).prop_map(char::from)
    }

    prop_compose! {
        fn valid_uscc()(
            head in proptest::collection::vec(uscc_char(), 2),
            region in proptest::collection::vec(proptest::char::range('0', '9'), 6),
            tail in proptest::collection::vec(uscc_char(), 9),
        ) -> String {
            let first17: String = head.into_iter().chain(region).chain(tail).collect();
            let check = uscc_check_char(&first17).unwrap();
            format!("{first17}{check}")
        }
    }

    prop_compose! {
        fn valid_resident_id()(
            region in 110000u32..660000,
            days in 0i64..(365 * 120),
            seq in 0u32..1000,
        ) -> String {
            let birth = date!(1900 - 01 - 01) + time::Duration::days(days);
            let first17 = format!(
                "{region:06}{:04}{:02}{:02}{seq:03}",
                birth.year(), u8::from(birth.month()), birth.day()
            );
            let check = resident_id_check_char(&first17).unwrap();
            format!("{first17}{check}")
        }
    }

    proptest! {
        #[test]
        fn generated_uscc_always_passes(code in valid_uscc()) {
            prop_assert_eq!(check_uscc(&code), Ok(()));
        }

        #[test]
        fn any_single_character_change_of_a_uscc_fails(
            code in valid_uscc(), pos in 0usize..18, replacement in uscc_char()
        ) {
            let mut chars: Vec<char> = code.chars().collect();
            prop_assume!(chars[pos] != replacement);
            chars[pos] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(check_uscc(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn generated_resident_id_always_passes(id in valid_resident_id()) {
            prop_assert_eq!(check_resident_id(&id, TODAY), Ok(()));
        }

        #[test]
        fn any_single_character_change_of_a_resident_id_fails(
            id in valid_resident_id(), pos in 0usize..18,
            replacement in proptest::sample::select(b"0123456789X".to_vec()).prop_map(char::from)
        ) {
            let mut chars: Vec<char> = id.chars().collect();
            prop_assume!(chars[pos] != replacement);
            chars[pos] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(check_resident_id(&changed, TODAY).is_err(), "{} accepted", changed);
        }
    }
}
