//! How a job reaches tokens from async code: blocking PKCS#11 calls through the station's one
//! boundary ([`crate::station::hsm::blocking`]), and how the workers of this process share the
//! blank tokens: each reserves the blank token it initialises, so that no two take the same one
//! and none waits for another's token longer than its `C_InitToken`.

use crate::token::{Pkcs11Module, Token, TokenError};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use tokio::sync::Notify;

/// Blocking token work crosses into async at the station's one boundary.
pub(super) use crate::station::hsm::blocking;

/// The blank tokens that this process's workers have chosen and not yet initialised.
pub(super) struct BlankTokens {
    held: Mutex<Held>,
    released: Notify,
}

#[derive(Default)]
struct Held {
    /// Slots of the reserved tokens.
    slots: HashSet<u64>,
    /// How many reservations have ended: a look that overlapped one looks again.
    ended: u64,
}

/// The process's one set of reservations.
pub(super) fn blank_tokens() -> &'static BlankTokens {
    static TOKENS: OnceLock<BlankTokens> = OnceLock::new();
    TOKENS.get_or_init(|| BlankTokens {
        held: Mutex::new(Held::default()),
        released: Notify::new(),
    })
}

/// A blank token reserved for one worker until dropped, which the worker does once its
/// `C_InitToken` has made the token no longer blank (or once it gave up on it).
pub(super) struct Reserved {
    token: Token,
    owner: &'static BlankTokens,
}

impl Reserved {
    /// The reserved token.
    pub(super) fn token(&self) -> &Token {
        &self.token
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut held = self.owner.lock();
        held.slots.remove(&self.token.slot());
        held.ended += 1;
        drop(held);
        self.owner.released.notify_waiters();
    }
}

impl BlankTokens {
    fn lock(&self) -> MutexGuard<'_, Held> {
        // The set stays consistent whatever a panicking holder did: it only inserts and removes.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a blank token of `module` that no other worker holds. When every blank token
    /// is held by a worker initialising it (SoftHSM and the test token show one blank slot at a
    /// time, and a new one after each `C_InitToken`), waits for one of them to finish and looks
    /// again. `None` when no token is blank and none is being initialised.
    pub(super) async fn reserve(
        &'static self,
        module: &Pkcs11Module,
    ) -> Result<Option<Reserved>, TokenError> {
        loop {
            // Registered before the look, so that a reservation ending during it is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (held, ended) = {
                let h = self.lock();
                (h.slots.clone(), h.ended)
            };
            let found = blocking(|| module.first_blank_except(&held))?;
            {
                let mut h = self.lock();
                match found {
                    Some(token) if h.slots.insert(token.slot()) => {
                        return Ok(Some(Reserved { token, owner: self }));
                    }
                    // Taken by another worker since the look: look again.
                    Some(_) => continue,
                    None if h.slots.is_empty() && h.ended == ended => return Ok(None),
                    // Ended during the look: look again.
                    None if h.slots.is_empty() => continue,
                    None => {}
                }
            }
            released.await;
        }
    }

    /// Reserves `token` itself (the order's bound or requested token), waiting while another
    /// worker holds it.
    pub(super) async fn hold(&'static self, token: Token) -> Reserved {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.lock().slots.insert(token.slot()) {
                return Reserved { token, owner: self };
            }
            released.await;
        }
    }

    /// Whether a worker can find a blank token in `module`: one is there, or is being
    /// initialised by a worker of this process (then, as [`BlankTokens::reserve`] does, after
    /// it ends). Reserves nothing.
    pub(super) async fn any(&'static self, module: &Pkcs11Module) -> Result<bool, TokenError> {
        Ok(self.reserve(module).await?.is_some())
    }
}
