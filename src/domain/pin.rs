//! PIN secret types and the PIN policy.
//!
//! # Security notes
//! - [`Pin`] and [`SoPin`] own their text in [`Zeroizing`] memory: dropped means wiped.
//! - Neither implements `Display` or `Serialize`; `Debug` prints `<redacted>`. The only way to the
//!   characters is [`Pin::expose_secret`], whose callers are the token (`C_InitPIN`, `C_Login`),
//!   the vault (sealing) and the delivery channel (the message), each commented at the call.
//! - Generation draws from the caller's cryptographic RNG with uniform (rejection) sampling, so
//!   every character of the alphabet is equally likely.

use rand::{CryptoRng, Rng};
use serde::Deserialize;
use std::fmt;
use zeroize::Zeroizing;

/// Unambiguous alphanumerics: no `0/O/o`, `1/l/I`, so a PIN read from an SMS or a bank memo
/// cannot be mistyped between look-alikes.
pub const UNAMBIGUOUS_ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";
/// Digits only, for SMS templates and tokens that need numeric PINs.
pub const DIGITS_ALPHABET: &str = "0123456789";

/// Which characters a generated PIN uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinAlphabet {
    /// [`UNAMBIGUOUS_ALPHABET`].
    Unambiguous,
    /// [`DIGITS_ALPHABET`].
    Digits,
}

impl PinAlphabet {
    fn chars(self) -> &'static [u8] {
        match self {
            PinAlphabet::Unambiguous => UNAMBIGUOUS_ALPHABET.as_bytes(),
            PinAlphabet::Digits => DIGITS_ALPHABET.as_bytes(),
        }
    }
}

/// User PIN policy (domain doc §5): length 6-16, alphabet; default 8 unambiguous characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinPolicy {
    /// Number of characters, 6..=16.
    pub length: usize,
    /// Character set.
    pub alphabet: PinAlphabet,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            length: 8,
            alphabet: PinAlphabet::Unambiguous,
        }
    }
}

/// A PIN policy outside what tokens and channels support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pin.length must be between 6 and 16, got {0}")]
pub struct PinPolicyError(pub usize);

impl PinPolicy {
    /// Checks the bounds (6..=16).
    pub fn validate(&self) -> Result<(), PinPolicyError> {
        if (6..=16).contains(&self.length) {
            Ok(())
        } else {
            Err(PinPolicyError(self.length))
        }
    }

    /// Entropy of one generated PIN in bits (for the operator's information).
    pub fn entropy_bits(&self) -> f64 {
        self.length as f64 * (self.alphabet.chars().len() as f64).log2()
    }
}

/// A token user PIN ("certificate password").
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Draws a PIN from `rng` (the OS CSPRNG in production) following `policy`.
    pub fn generate<R: Rng + CryptoRng + ?Sized>(policy: &PinPolicy, rng: &mut R) -> Pin {
        let alphabet = policy.alphabet.chars();
        let mut s = Zeroizing::new(String::with_capacity(policy.length));
        for _ in 0..policy.length {
            // `random_range` is uniform (rejection sampling), never a biased modulo.
            s.push(char::from(alphabet[rng.random_range(0..alphabet.len())]));
        }
        Pin(s)
    }

    /// Wraps PIN text that came from a trusted place (the vault's unsealing, an operator's file).
    pub fn from_secret(text: Zeroizing<String>) -> Pin {
        Pin(text)
    }

    /// The characters. Every caller must be one of the intended destinations of a PIN (token,
    /// vault, delivery message) and say so in a comment.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// True for an empty PIN (never generated; possible from a bad file).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Alphabet of derived SO PINs: the unambiguous set, 16 characters (≈ 93 bits), fitting the
/// 16-character maximum many USB keys have.
const SO_PIN_LEN: usize = 16;

/// A token security-officer PIN. Derived in the vault HSM, never stored, re-derivable.
pub struct SoPin(Zeroizing<String>);

impl SoPin {
    /// Maps HMAC output (at least 32 bytes) to SO PIN characters. Each character takes one byte
    /// reduced modulo 56; the bias (256 mod 56 = 32 favoured values) costs under 0.3 bits per
    /// character, irrelevant next to the ~93 bits of the whole and the HSM-held key behind it.
    pub fn from_mac(mac: &[u8]) -> Option<SoPin> {
        if mac.len() < SO_PIN_LEN {
            return None;
        }
        let alphabet = UNAMBIGUOUS_ALPHABET.as_bytes();
        let mut s = Zeroizing::new(String::with_capacity(SO_PIN_LEN));
        for b in &mac[..SO_PIN_LEN] {
            s.push(char::from(alphabet[usize::from(*b) % alphabet.len()]));
        }
        Some(SoPin(s))
    }

    /// Wraps SO PIN text from an operator's prompt or file (station tokens only).
    pub fn from_secret(text: Zeroizing<String>) -> SoPin {
        SoPin(text)
    }

    /// The characters, for `C_InitToken` / `C_Login(CKU_SO)` only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SoPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoPin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn generated_pin_follows_policy() {
        let mut rng = StdRng::seed_from_u64(7);
        for policy in [
            PinPolicy::default(),
            PinPolicy {
                length: 6,
                alphabet: PinAlphabet::Digits,
            },
            PinPolicy {
                length: 16,
                alphabet: PinAlphabet::Unambiguous,
            },
        ] {
            let pin = Pin::generate(&policy, &mut rng);
            assert_eq!(pin.len(), policy.length);
            assert!(
                pin.expose_secret()
                    .bytes()
                    .all(|b| policy.alphabet.chars().contains(&b))
            );
        }
    }

    #[test]
    fn unambiguous_alphabet_has_no_look_alikes() {
        for c in ['0', 'O', 'o', '1', 'l', 'I'] {
            assert!(!UNAMBIGUOUS_ALPHABET.contains(c), "{c}");
        }
    }

    #[test]
    fn all_characters_are_reachable() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let pin = Pin::generate(&PinPolicy::default(), &mut rng);
            seen.extend(pin.expose_secret().bytes());
        }
        assert_eq!(seen.len(), UNAMBIGUOUS_ALPHABET.len());
    }

    #[test]
    fn debug_is_redacted() {
        let pin = Pin::from_secret(Zeroizing::new("Ab3k9Qz7".into()));
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
        let so = SoPin::from_mac(&[42u8; 32]).unwrap_or_else(|| panic!("32 bytes suffice"));
        assert!(!format!("{so:?}").contains(so.expose_secret()));
    }

    #[test]
    fn policy_bounds() {
        assert!(
            PinPolicy {
                length: 5,
                alphabet: PinAlphabet::Digits
            }
            .validate()
            .is_err()
        );
        assert!(
            PinPolicy {
                length: 17,
                alphabet: PinAlphabet::Digits
            }
            .validate()
            .is_err()
        );
        assert!(PinPolicy::default().validate().is_ok());
        assert!(PinPolicy::default().entropy_bits() > 45.0);
    }

    #[test]
    fn so_pin_is_deterministic_and_needs_enough_mac() {
        let a = SoPin::from_mac(&[9u8; 32]).map(|p| p.expose_secret().to_string());
        let b = SoPin::from_mac(&[9u8; 32]).map(|p| p.expose_secret().to_string());
        assert_eq!(a, b);
        assert_eq!(a.map(|s| s.len()), Some(16));
        assert!(SoPin::from_mac(&[0u8; 8]).is_none());
    }
}

/// A user PIN sealed by the vault: `KSP1 ‖ IV ‖ ciphertext ‖ tag`. Defined here, not beside the
/// vault, because the store keeps it and hands it out, and the store does not know the token.
/// Not a secret in itself (it opens only inside the vault HSM), but kept out of the audit trail
/// all the same: no `Serialize`, and `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPin(pub Vec<u8>);

impl fmt::Debug for SealedPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedPin({} bytes)", self.0.len())
    }
}

/// The escrow copy of a dual certificate's SM2 encryption private key, sealed by the vault like a
/// PIN (`KSP1 ‖ IV ‖ ciphertext ‖ tag`, its own AAD): kept by the station's key management, it
/// opens only inside the vault HSM. Beside [`SealedPin`] for the same reason, and as guarded:
/// no `Serialize`, `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey(pub Vec<u8>);

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.len())
    }
}
