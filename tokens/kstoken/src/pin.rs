//! PINs: retry counters that lock as a real key does, and the PIN-wrapped token key.
//!
//! Each token has a random 256-bit *token key* that encrypts the secret values of its keys on
//! disk. The key is stored twice, wrapped (AES-256-GCM) under a key derived from the SO PIN and
//! from the user PIN (PBKDF2-HMAC-SHA256, per-record salt). A PIN is right when its record
//! unwraps: no PIN hash exists apart from the wrapped key. The SO can therefore set a new user
//! PIN (`C_InitPIN`) without knowing the old one, which is how a locked user PIN is unlocked.
//!
//! Counters follow PKCS#11 v2.40 §3.2 (token information flags): after a wrong PIN
//! `*_PIN_COUNT_LOW` is raised until the next right one; with one try left `*_PIN_FINAL_TRY`; with
//! none `*_PIN_LOCKED`, and from then on the PIN is not even checked (`CKR_PIN_LOCKED`).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use zeroize::Zeroizing;

/// PBKDF2 rounds. Low on purpose: this is a test token whose PINs are typed hundreds of times
/// per test run; a real key checks its PIN inside tamper-resistant hardware instead.
const PBKDF2_ROUNDS: u32 = 2_000;

/// Wrong-PIN counter of one PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinCounter {
    /// Tries a fresh PIN has.
    pub max: u32,
    /// Tries left.
    pub left: u32,
}

/// The flags a counter raises, without the user/SO distinction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterFlags {
    /// A wrong PIN was given since the last right one.
    pub count_low: bool,
    /// The next wrong PIN locks.
    pub final_try: bool,
    /// Locked.
    pub locked: bool,
}

impl PinCounter {
    /// A counter with every try left.
    pub fn new(max: u32) -> PinCounter {
        PinCounter { max, left: max }
    }

    /// True when the PIN may no longer be tried.
    pub fn is_locked(&self) -> bool {
        self.left == 0
    }

    /// Records a wrong PIN; returns true when this try locked the PIN.
    pub fn fail(&mut self) -> bool {
        let before = self.left;
        self.left = before.saturating_sub(1);
        before == 1
    }

    /// Records a right PIN (or a new PIN set by the SO): every try is back.
    pub fn reset(&mut self) {
        self.left = self.max;
    }

    /// The token-information flags this counter raises.
    pub fn flags(&self) -> CounterFlags {
        CounterFlags {
            count_low: self.left < self.max,
            final_try: self.left == 1 && self.max > 1,
            locked: self.left == 0,
        }
    }
}

/// The token key: encrypts key material at rest. Zeroized when dropped.
#[derive(Clone)]
pub struct TokenKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Bytes sealed with AES-256-GCM: hex nonce and hex ciphertext‖tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    nonce: String,
    ciphertext: String,
}

/// Why sealing or opening failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoError;

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| CryptoError)?;
    Ok(b)
}

fn seal_with(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Sealed, CryptoError> {
    let nonce = random::<12>()?;
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError)?);
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| CryptoError)?;
    Ok(Sealed {
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(buf),
    })
}

fn open_with(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce: [u8; 12] = hex::decode(&sealed.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(CryptoError)?;
    let mut buf = Zeroizing::new(hex::decode(&sealed.ciphertext).map_err(|_| CryptoError)?);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| CryptoError)?);
    let len = k
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

impl TokenKey {
    /// A fresh random key.
    pub fn generate() -> Result<TokenKey, CryptoError> {
        Ok(TokenKey(Zeroizing::new(random::<32>()?)))
    }

    /// Encrypts `plain`, bound to `aad` (the object it belongs to).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Sealed, CryptoError> {
        seal_with(&self.0, aad, plain)
    }

    /// Decrypts what [`TokenKey::seal`] made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.0, aad, sealed)
    }
}

/// A PIN's record: the token key wrapped under a key derived from the PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    salt: String,
    rounds: u32,
    wrapped: Sealed,
}

const WRAP_AAD: &[u8] = b"kstoken/token-key/v1";

fn derive(pin: &[u8], salt: &[u8], rounds: u32) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let rounds = NonZeroU32::new(rounds).ok_or(CryptoError)?;
    let mut out = Zeroizing::new([0u8; 32]);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        pin,
        out.as_mut(),
    );
    Ok(out)
}

impl PinRecord {
    /// Wraps `key` under `pin`.
    pub fn new(pin: &[u8], key: &TokenKey) -> Result<PinRecord, CryptoError> {
        let salt = random::<16>()?;
        let kek = derive(pin, &salt, PBKDF2_ROUNDS)?;
        Ok(PinRecord {
            salt: hex::encode(salt),
            rounds: PBKDF2_ROUNDS,
            wrapped: seal_with(&kek, WRAP_AAD, key.0.as_ref())?,
        })
    }

    /// The token key if `pin` is right, `None` if it is wrong.
    pub fn unwrap_key(&self, pin: &[u8]) -> Option<TokenKey> {
        let salt = hex::decode(&self.salt).ok()?;
        let kek = derive(pin, &salt, self.rounds).ok()?;
        let raw = open_with(&kek, WRAP_AAD, &self.wrapped).ok()?;
        let key: [u8; 32] = raw.as_slice().try_into().ok()?;
        Some(TokenKey(Zeroizing::new(key)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counter_raises_the_flags_a_real_key_raises_and_locks_at_zero() {
        let mut c = PinCounter::new(3);
        assert_eq!(c.flags(), CounterFlags::default());
        assert!(!c.fail());
        assert_eq!(
            c.flags(),
            CounterFlags {
                count_low: true,
                final_try: false,
                locked: false
            }
        );
        assert!(!c.fail());
        assert_eq!(
            c.flags(),
            CounterFlags {
                count_low: true,
                final_try: true,
                locked: false
            }
        );
        assert!(c.fail(), "the third wrong PIN locks");
        assert!(c.is_locked());
        assert_eq!(
            c.flags(),
            CounterFlags {
                count_low: true,
                final_try: false,
                locked: true
            }
        );
        assert!(!c.fail(), "a locked counter stays at zero");
        assert_eq!(c.left, 0);
        c.reset();
        assert_eq!(c.flags(), CounterFlags::default());
        assert_eq!(c.left, 3);
    }

    #[test]
    fn a_right_pin_after_wrong_ones_clears_count_low() {
        let mut c = PinCounter::new(6);
        c.fail();
        c.fail();
        assert!(c.flags().count_low);
        c.reset();
        assert!(!c.flags().count_low);
    }

    #[test]
    fn a_single_try_pin_is_locked_by_its_first_failure() {
        let mut c = PinCounter::new(1);
        assert!(
            !c.flags().final_try,
            "FINAL_TRY is not raised on a fresh PIN"
        );
        assert!(c.fail());
        assert!(c.flags().locked);
    }

    #[test]
    fn the_record_unwraps_only_with_its_pin() {
        let key = TokenKey::generate().unwrap();
        let rec = PinRecord::new(b"12345678", &key).unwrap();
        let got = rec.unwrap_key(b"12345678").unwrap();
        assert_eq!(got.0.as_ref(), key.0.as_ref());
        assert!(rec.unwrap_key(b"12345679").is_none());
        assert!(rec.unwrap_key(b"").is_none());
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_object() {
        let key = TokenKey::generate().unwrap();
        let other = TokenKey::generate().unwrap();
        let s = key.seal(b"obj-1", b"secret scalar").unwrap();
        assert_eq!(key.open(b"obj-1", &s).unwrap().as_slice(), b"secret scalar");
        assert!(key.open(b"obj-2", &s).is_err(), "moved to another object");
        assert!(other.open(b"obj-1", &s).is_err(), "another token's key");
        assert!(!s.ciphertext.contains(&hex::encode(b"secret scalar")));
    }
}
