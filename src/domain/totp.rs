//! Time-based one-time passwords (RFC 6238 over RFC 4226), pure: the second factor of a console
//! login. HMAC-SHA-1, 6 digits, 30-second steps from the Unix epoch — what every authenticator
//! app speaks by default.
//!
//! A code is accepted for the current step and one step either side (clocks drift, people type
//! slowly), and only for a step later than the last one accepted for the account
//! ([`verify`]'s `last_step`): a code seen once, on the wire or over a shoulder, cannot be used
//! again. The caller stores the step [`verify`] returns.
//!
//! Security notes: a [`TotpSecret`] is a secret type (no `Display`, redacted `Debug`, zeroized
//! on drop); it leaves this type only through [`TotpSecret::expose_secret`] (to the vault's
//! sealing, and once to the operator's terminal as base32 and an `otpauth://` URI at enrolment).

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::fmt;
use zeroize::Zeroizing;

/// Seconds of one time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation for HMAC-SHA-1).
pub const SECRET_BYTES: usize = 20;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;

/// An account's TOTP secret (raw bytes).
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// The secret of these bytes (drawn by the caller's random source, or unsealed).
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> TotpSecret {
        TotpSecret(bytes)
    }

    /// The raw bytes: for sealing in the vault, and for [`TotpSecret::base32`] at enrolment.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The secret in base32 without padding (RFC 4648), as authenticator apps take it typed.
    /// Shown once, at enrolment.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.0))
    }

    /// The `otpauth://totp/` URI of Google Authenticator's key-URI format, for a QR code or
    /// an app's "enter a setup key" (issuer and account percent-encoded).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let (issuer, account) = (percent_encode(issuer), percent_encode(account));
        Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            self.base32().as_str()
        ))
    }
}

/// The time step of the Unix time `unix_seconds` (negative times have no step: 0).
pub fn time_step(unix_seconds: i64) -> i64 {
    unix_seconds.max(0) / STEP_SECONDS
}

/// The code of `secret` for time step `step` (RFC 4226 HOTP with the step as counter).
pub fn code_at(secret: &[u8], step: i64) -> String {
    // An HMAC key may have any length: new_from_slice cannot fail for HMAC.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.max(0).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS as u32),
        width = DIGITS
    )
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpRefused {
    /// Not six digits.
    #[error("the code is not {DIGITS} digits")]
    Malformed,
    /// No step of the window has this code.
    #[error("the code is wrong or expired")]
    Wrong,
    /// The code's step is not later than the last one accepted: it was used already.
    #[error("the code was used already")]
    Replayed,
}

/// Checks `code` (spaces ignored) for `secret` at `unix_seconds`, given the last accepted step
/// of the account; the step to store as the new last one.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_seconds: i64,
    last_step: Option<i64>,
) -> Result<i64, TotpRefused> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpRefused::Malformed);
    }
    let now = time_step(unix_seconds);
    // Every step of the window is computed, whichever matches, so the time taken does not say
    // which one did.
    let mut matched = None;
    for step in now - SKEW_STEPS..=now + SKEW_STEPS {
        if constant_time_eq(code_at(secret, step).as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    let step = matched.ok_or(TotpRefused::Wrong)?;
    match last_step {
        Some(last) if step <= last => Err(TotpRefused::Replayed),
        _ => Ok(step),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 seed.
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        // (time, 8-digit TOTP of the RFC): the last six digits are the 6-digit code.
        for (t, totp8) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_at(RFC_SEED, time_step(t)), totp8[2..], "T = {t}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_never_twice() {
        let t = 1_234_567_890;
        let now = time_step(t);
        let code = code_at(RFC_SEED, now);
        assert_eq!(verify(RFC_SEED, &code, t, None), Ok(now));
        assert_eq!(
            verify(RFC_SEED, &code, t, Some(now)),
            Err(TotpRefused::Replayed)
        );
        assert_eq!(
            verify(RFC_SEED, &code, t, Some(now + 1)),
            Err(TotpRefused::Replayed)
        );
        // The previous and next steps' codes, typed with a space.
        let before = code_at(RFC_SEED, now - 1);
        let spaced = format!("{} {}", &before[..3], &before[3..]);
        assert_eq!(verify(RFC_SEED, &spaced, t, Some(now - 2)), Ok(now - 1));
        let next = code_at(RFC_SEED, now + 1);
        assert_eq!(verify(RFC_SEED, &next, t, Some(now)), Ok(now + 1));
        // Two steps off: wrong.
        let old = code_at(RFC_SEED, now - 2);
        assert_eq!(verify(RFC_SEED, &old, t, None), Err(TotpRefused::Wrong));
        assert_eq!(
            verify(b"another secret", &code, t, None),
            Err(TotpRefused::Wrong)
        );
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(
                verify(RFC_SEED, bad, t, None),
                Err(TotpRefused::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_secret_is_shown_as_base32_and_an_otpauth_uri_and_never_debugged() {
        let s = TotpSecret::from_bytes(Zeroizing::new(RFC_SEED.to_vec()));
        assert_eq!(s.base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            s.otpauth_uri("keystation st-1", "rita").as_str(),
            "otpauth://totp/keystation%20st-1:rita?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=keystation%20st-1&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(format!("{s:?}"), "TotpSecret(..)");
    }
}
