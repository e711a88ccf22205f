//! The SO PIN of a customer's key, generation-aware: the ONE way to it. PIN reset, provisioning
//! (`--reinit`) and remote unlock all ask here.
//!
//! Generation 0 is the derivation every key had before SO PIN rotation existed (the vault's
//! HMAC of the binding's SO identity); a remote unlock rotates the key to the next generation
//! (the identity and the generation), recorded in `so_pin_generations` by SO identity, which a
//! key keeps across `--reinit`. While an unlock code carrying the next generation is not
//! confirmed used, the key's SO PIN is one of two and nothing that logs in as SO guesses which
//! (each wrong try costs the key an SO retry): [`ServiceDeskError::UnlockUnconfirmed`].

use super::ServiceDeskError;
use crate::domain::SoPin;
use crate::station::hsm::{Hsm, blocking};
use crate::store::{SoPinGeneration, Store};
use crate::token::{TokenError, Vault};

/// The generation the SO PIN of the key with `so_identity` has now, refused while an unlock
/// code's rotation is unconfirmed. `token` names the key in the refusal.
pub async fn current_generation(
    store: &Store,
    so_identity: &str,
    token: &str,
) -> Result<u32, ServiceDeskError> {
    let g = store.so_pin_generation(so_identity).await?;
    known_generation(&g, token)
}

fn known_generation(g: &SoPinGeneration, token: &str) -> Result<u32, ServiceDeskError> {
    match (&g.pending, &g.pending_request) {
        (None, _) => Ok(g.current),
        (Some(_), request) => Err(ServiceDeskError::UnlockUnconfirmed {
            token_serial: token.to_string(),
            request_id: request.clone().unwrap_or_default(),
        }),
    }
}

/// The SO PIN of generation `generation`, derived in `vault`.
pub fn so_pin_at(vault: &Vault, so_identity: &str, generation: u32) -> Result<SoPin, TokenError> {
    vault.derive_so_pin_generation(so_identity, generation)
}

/// The current SO PIN of the key with `so_identity`: [`current_generation`] derived in the
/// vault of `hsm`.
pub async fn current_so_pin(
    store: &Store,
    hsm: &Hsm,
    so_identity: &str,
    token: &str,
) -> Result<SoPin, ServiceDeskError> {
    let generation = current_generation(store, so_identity, token).await?;
    blocking(|| -> Result<SoPin, ServiceDeskError> {
        let vault = hsm.vault()?;
        Ok(so_pin_at(&vault, so_identity, generation)?)
    })
}

/// Both SO PINs an unlock code carries: the key's current one and the pending next one.
pub(super) fn unlock_pair(
    hsm: &Hsm,
    so_identity: &str,
    g: &SoPinGeneration,
) -> Result<(SoPin, SoPin, u32), ServiceDeskError> {
    let next = g.pending.ok_or_else(|| {
        ServiceDeskError::Inconsistent("an unlock code without a pending SO PIN generation".into())
    })?;
    let vault = hsm.vault()?;
    Ok((
        so_pin_at(&vault, so_identity, g.current)?,
        so_pin_at(&vault, so_identity, next)?,
        next,
    ))
}
