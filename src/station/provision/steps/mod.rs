//! The steps of a provisioning job after the claim, by family, each a method of the
//! [`Job`](super::job::Job) that journals it: [`token`] (`init_token`, `init_pin`,
//! `generate_key`), [`certificate`] (`issue_certificate`, `write_certificate`) and [`finish`]
//! (`write_seals`, `finish`); and [`resume`], what a run does before them.

mod certificate;
mod finish;
mod resume;
mod token;

use super::error::StepError;
use rand::TryRngCore;
use rand::rngs::OsRng;

/// `N` bytes from the OS random generator (key ids, certificate serials).
fn random_bytes<const N: usize>() -> Result<[u8; N], StepError> {
    let mut b = [0u8; N];
    OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| StepError::Random(e.to_string()))?;
    Ok(b)
}
