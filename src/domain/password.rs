//! Console passwords, pure: the policy a new password must meet ([`check_policy`]), and their
//! one stored form, an argon2id PHC string ([`hash`], [`verify`]) — the salt is the caller's
//! (the station's random source), so this stays a function of its arguments.
//!
//! Security notes: a [`Password`] is a secret type (no `Display`, redacted `Debug`, zeroized on
//! drop). Only its argon2id hash is ever stored; argon2's parameters are RFC 9106's / OWASP's
//! second recommendation (19 MiB, 2 passes, 1 lane), written into each PHC string, so stronger
//! ones later still verify the old hashes.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use std::fmt;
use zeroize::Zeroizing;

/// The fewest characters of a password.
pub const MIN_CHARS: usize = 12;
/// The most bytes of a password (argon2 takes any length; a bound keeps a request cheap).
pub const MAX_BYTES: usize = 1024;
/// Bytes of a salt.
pub const SALT_BYTES: usize = 16;

/// An operator's console password.
pub struct Password(Zeroizing<String>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// The password typed (read from a terminal without echo, or a login form).
    pub fn from_secret(text: Zeroizing<String>) -> Password {
        Password(text)
    }

    /// The text: for argon2 only.
    fn expose_secret(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Why a new password is refused (the password itself is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefused {
    /// Too short.
    #[error("a password needs at least {MIN_CHARS} characters")]
    TooShort,
    /// Too long.
    #[error("a password has at most {MAX_BYTES} bytes")]
    TooLong,
    /// Only white space at either end, or a control character (a pasted line break).
    #[error("a password has no control characters and no white space at either end")]
    BadCharacters,
}

/// Whether `password` may be set as a console password.
pub fn check_policy(password: &Password) -> Result<(), PasswordRefused> {
    let text = password.0.as_str();
    if text.len() > MAX_BYTES {
        return Err(PasswordRefused::TooLong);
    }
    if text.chars().any(char::is_control) || text.trim() != text {
        return Err(PasswordRefused::BadCharacters);
    }
    if text.chars().count() < MIN_CHARS {
        return Err(PasswordRefused::TooShort);
    }
    Ok(())
}

fn argon2id() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The argon2id PHC string of `password` with `salt`.
pub fn hash(password: &Password, salt: &[u8; SALT_BYTES]) -> Result<String, String> {
    argon2id()
        .hash_password_with_salt(password.expose_secret(), salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2id: {e}"))
}

/// Whether `password` is the one of the PHC string `stored` (a malformed string matches
/// nothing). Any argon2 variant and parameters the string names are honoured.
pub fn verify(password: &Password, stored: &str) -> bool {
    if password.0.len() > MAX_BYTES {
        return false;
    }
    argon2id()
        .verify_password(password.expose_secret(), stored)
        .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pw(s: &str) -> Password {
        Password::from_secret(Zeroizing::new(s.to_string()))
    }

    #[test]
    fn the_policy_names_what_is_wrong() {
        assert_eq!(check_policy(&pw("short")), Err(PasswordRefused::TooShort));
        // Characters, not bytes: eleven Chinese characters are still too short.
        assert_eq!(
            check_policy(&pw("一二三四五六七八九十壹")),
            Err(PasswordRefused::TooShort)
        );
        assert_eq!(check_policy(&pw("一二三四五六七八九十壹贰")), Ok(()));
        assert_eq!(check_policy(&pw("correct horse battery")), Ok(()));
        for bad in [
            " leading space ok",
            "trailing space ok ",
            "line\nbreak inside",
        ] {
            assert_eq!(check_policy(&pw(bad)), Err(PasswordRefused::BadCharacters));
        }
        assert_eq!(
            check_policy(&pw(&"x".repeat(MAX_BYTES + 1))),
            Err(PasswordRefused::TooLong)
        );
    }

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies_only_its_password() {
        let p = pw("correct horse battery");
        let h = hash(&p, &[7; SALT_BYTES]).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains("correct"));
        assert!(verify(&p, &h));
        assert!(!verify(&pw("correct horse batterz"), &h));
        assert_ne!(h, hash(&p, &[8; SALT_BYTES]).unwrap());
        assert!(!verify(&p, "not a phc string"));
        assert!(!verify(&p, ""));
        assert_eq!(format!("{p:?}"), "Password(..)");
    }
}
