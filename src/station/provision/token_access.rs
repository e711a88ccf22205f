//! How a job reaches tokens from async code: blocking PKCS#11 calls through the station's one
//! boundary ([`crate::station::hsm::blocking`]), and how the workers of this process share the
//! blank tokens: each reserves the blank token it initialises, so that no two take the same one
//! and none waits for another's token longer than its `C_InitToken`.

use crate::token::{Pkcs11Module, Token, TokenError};
use std::collections::HashSet;
use std::path::PathBuf;
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
    /// The reserved tokens: their module's path and slot.
    slots: HashSet<(PathBuf, u64)>,
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
        held.slots.remove(&key(&self.token));
        held.ended += 1;
        drop(held);
        self.owner.released.notify_waiters();
    }
}

/// What a reservation is known by: the token's module and slot.
fn key(token: &Token) -> (PathBuf, u64) {
    (token.module().path().to_path_buf(), token.slot())
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
                let mine = h.slots.iter().filter(|(m, _)| m == module.path());
                (mine.map(|(_, s)| *s).collect::<HashSet<u64>>(), h.ended)
            };
            let found = blocking(|| module.first_blank_except(&held))?;
            {
                let mut h = self.lock();
                match found {
                    // Nobody's reservation ended during the look, so a token found blank is
                    // still blank unless someone holds it now.
                    Some(token) if h.ended == ended && h.slots.insert(key(&token)) => {
                        return Ok(Some(Reserved { token, owner: self }));
                    }
                    // Held by another worker, or possibly initialised by one whose reservation
                    // ended during the look (its C_InitToken done, the token no longer blank,
                    // the slot free to insert again): look again.
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
            if self.lock().slots.insert(key(&token)) {
                return Reserved { token, owner: self };
            }
            released.await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::token::fake::{FakeModule, FakeToken};
    use futures_util::FutureExt;
    use std::sync::Arc;

    /// A module of `tokens` under a path of its own (reservations are per module and process).
    fn module(name: &str, tokens: Vec<FakeToken>) -> (FakeModule, Pkcs11Module) {
        let fake = FakeModule::new(tokens);
        let module = Pkcs11Module::with_backend(Arc::new(fake.clone()), PathBuf::from(name));
        (fake, module)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn workers_reserve_different_blank_tokens_and_none_when_none_is_blank() {
        let (_, m) = module(
            "reserve-two",
            vec![
                FakeToken::blank(),
                FakeToken::initialised("a1", "A"),
                FakeToken::blank(),
            ],
        );
        let first = blank_tokens().reserve(&m).await.unwrap().unwrap();
        let second = blank_tokens().reserve(&m).await.unwrap().unwrap();
        assert_eq!(first.token().slot(), 2, "searched from the last slot");
        assert_eq!(
            second.token().slot(),
            0,
            "the first one's slot is passed over"
        );
        drop((first, second));
        let (_, none) = module("reserve-none", vec![FakeToken::initialised("b1", "B")]);
        assert!(blank_tokens().reserve(&none).await.unwrap().is_none());
    }

    /// SoftHSM's way: one blank slot, and a new one after each C_InitToken. A second worker
    /// waits for the first one's token instead of finding "no blank token".
    #[tokio::test(flavor = "multi_thread")]
    async fn with_one_blank_slot_a_second_worker_waits_for_the_first_ones_init() {
        let (fake, m) = module("reserve-one", vec![FakeToken::blank()]);
        let m = Arc::new(m);
        let first = blank_tokens().reserve(&m).await.unwrap().unwrap();
        let mut second = Box::pin({
            let m = m.clone();
            async move { blank_tokens().reserve(&m).await }
        });
        assert!(
            (&mut second).now_or_never().is_none(),
            "the only blank token is reserved: the second worker must wait, not give up"
        );
        let mut also_held = Box::pin(blank_tokens().hold(first.token().clone()));
        assert!(
            (&mut also_held).now_or_never().is_none(),
            "a reserved token is not held twice"
        );
        drop(also_held);
        // The first worker's C_InitToken: its token is no longer blank; a blank slot appears.
        fake.state().tokens[0] = FakeToken::initialised("c1", "ORDER-1");
        fake.state().tokens.push(FakeToken::blank());
        drop(first);
        let second = second.await.unwrap().expect("the new blank slot");
        assert_eq!(second.token().slot(), 1);
    }

    /// A worker's look finds the blank slot; before it reserves it, another worker reserves
    /// the same slot, initialises its token and ends its reservation. The first worker must not
    /// take the now-initialised token (C_InitToken on it fails with CKR_SESSION_EXISTS, seen in
    /// the throughput bench's set-up): it looks again and takes the new blank slot.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_token_initialised_by_another_worker_during_the_look_is_not_taken() {
        let (fake, m) = module("reserve-raced", vec![FakeToken::blank()]);
        let other = fake.clone();
        let path = m.path().to_path_buf();
        fake.state().after_token_info =
            Some(crate::token::fake::AfterTokenInfo(Box::new(move || {
                let owner = blank_tokens();
                // The other worker: reserves slot 0, initialises it (SoftHSM shows a new blank
                // slot), and ends its reservation.
                assert!(owner.lock().slots.insert((path.clone(), 0)));
                other.state().tokens[0] = FakeToken::initialised("d1", "ORDER-2");
                other.state().tokens.push(FakeToken::blank());
                let mut held = owner.lock();
                held.slots.remove(&(path, 0));
                held.ended += 1;
            })));
        let mine = blank_tokens()
            .reserve(&m)
            .await
            .unwrap()
            .expect("a blank token");
        assert_eq!(
            mine.token().slot(),
            1,
            "the new blank slot, not the other's token"
        );
        assert!(!mine.token().info().initialized);
    }
}
