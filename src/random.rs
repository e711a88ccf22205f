//! Randomness as a parameter, like time ([`crate::clock`]): the station draws key ids,
//! certificate serials and user PINs from the [`Random`] it is given, never from a global, so a
//! test can make them reproducible. Production passes [`OsRandom`], the operating system's
//! CSPRNG.
//!
//! # Security notes
//! Every implementation used outside tests must be a cryptographically secure generator: user
//! PINs and certificate serials come from it. [`SeededRandom`] is reproducible by design and is
//! for tests only.

use rand::{SeedableRng, TryCryptoRng, TryRngCore};
use std::fmt::Debug;
use std::sync::Mutex;

/// The random source failed (the OS refused to give entropy).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the random source failed: {0}")]
pub struct RandomError(pub String);

/// A source of random bytes.
pub trait Random: Send + Sync + Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError>;
}

impl dyn Random + '_ {
    /// `N` random bytes.
    pub fn bytes<const N: usize>(&self) -> Result<[u8; N], RandomError> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }

    /// A `rand` generator over this source, for what takes one (`Pin::generate`). Like
    /// `OsRng.unwrap_err()`, it panics if the source fails: a PIN is never made from less.
    pub fn rng(&self) -> rand::rand_core::UnwrapErr<RandomRng<'_>> {
        RandomRng(self).unwrap_err()
    }

    /// This source for the curve crates (SM2 encryption); failures are errors, not panics.
    pub fn curve_rng(&self) -> CurveRng<'_> {
        CurveRng(self)
    }
}

/// The operating system's CSPRNG (`getrandom`), the source of every production station.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        rand::rngs::OsRng
            .try_fill_bytes(dest)
            .map_err(|e| RandomError(e.to_string()))
    }
}

/// A reproducible source from a seed, for tests: the same seed gives the same bytes.
#[derive(Debug)]
pub struct SeededRandom(Mutex<rand::rngs::StdRng>);

impl SeededRandom {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl Random for SeededRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rand::RngCore::fill_bytes(&mut *rng, dest);
        Ok(())
    }
}

/// The methods of a fallible generator over the [`Random`] in `self.0` (words little-endian):
/// the same for `rand`'s trait and the curve crates' newer one, which differ in name only.
macro_rules! generator_over_random {
    () => {
        fn try_next_u32(&mut self) -> Result<u32, RandomError> {
            let mut b = [0u8; 4];
            self.0.fill(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }

        fn try_next_u64(&mut self) -> Result<u64, RandomError> {
            let mut b = [0u8; 8];
            self.0.fill(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RandomError> {
            self.0.fill(dst)
        }
    };
}

/// A [`Random`] seen as a `rand` generator (made by `Random::rng`).
#[derive(Debug)]
pub struct RandomRng<'a>(&'a dyn Random);

impl TryRngCore for RandomRng<'_> {
    type Error = RandomError;

    generator_over_random!();
}

/// Only as secure as the source it wraps: production sources are CSPRNGs (see the module's
/// security notes).
impl TryCryptoRng for RandomRng<'_> {}

/// A [`Random`] seen as a generator of the RustCrypto curve crates (`rand_core` 0.10, a newer
/// trait than `rand`'s), for SM2 encryption's ephemeral key (made by `Random::curve_rng`).
#[derive(Debug)]
pub struct CurveRng<'a>(&'a dyn Random);

impl sm2::elliptic_curve::rand_core::TryRng for CurveRng<'_> {
    type Error = RandomError;

    generator_over_random!();
}

/// Only as secure as the source it wraps, like [`RandomRng`].
impl sm2::elliptic_curve::rand_core::TryCryptoRng for CurveRng<'_> {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::Pin;
    use crate::domain::pin::{PinAlphabet, PinPolicy};

    fn policy() -> PinPolicy {
        PinPolicy {
            length: 12,
            alphabet: PinAlphabet::Unambiguous,
        }
    }

    #[test]
    fn a_seeded_source_repeats_itself_and_seeds_differ() {
        let a: &dyn Random = &SeededRandom::new(7);
        let b: &dyn Random = &SeededRandom::new(7);
        let c: &dyn Random = &SeededRandom::new(8);
        let (a1, b1, c1) = (
            a.bytes::<16>().unwrap(),
            b.bytes::<16>().unwrap(),
            c.bytes::<16>().unwrap(),
        );
        assert_eq!(a1, b1);
        assert_ne!(a1, c1);
        assert_ne!(a1, a.bytes::<16>().unwrap(), "a source moves on");
    }

    #[test]
    fn pins_come_from_the_injected_source() {
        let a: &dyn Random = &SeededRandom::new(42);
        let b: &dyn Random = &SeededRandom::new(42);
        let pa = Pin::generate(&policy(), &mut a.rng());
        let pb = Pin::generate(&policy(), &mut b.rng());
        assert_eq!(pa.expose_secret(), pb.expose_secret());
        assert_eq!(pa.expose_secret().chars().count(), 12);
    }

    #[test]
    fn the_os_source_fills_and_does_not_repeat() {
        let os: &dyn Random = &OsRandom;
        assert_ne!(os.bytes::<32>().unwrap(), os.bytes::<32>().unwrap());
    }
}
