//! The steps of a provisioning job after the claim, by family, each a method of the
//! [`Job`](super::job::Job) that journals it: [`token`] (`init_token`, `init_pin`,
//! `generate_key`), [`certificate`] (`issue_certificate`, `write_certificate`), [`dual`]
//! (`dual_certificate`, SM2 dual certificates only) and [`finish`]
//! (`write_seals`, `finish`); and [`resume`], what a run does before them.

mod certificate;
mod dual;
mod finish;
mod resume;
mod token;

use super::error::StepError;
use crate::random::Random;

/// `N` bytes from the station's random source (key ids, certificate serials).
fn random_bytes<const N: usize>(random: &dyn Random) -> Result<[u8; N], StepError> {
    random
        .bytes::<N>()
        .map_err(|e| StepError::Random(e.to_string()))
}
pub(crate) use dual::encryption_key_id;
