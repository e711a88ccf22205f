//! Sessions and logins.
//!
//! A login is attempted only after `C_GetTokenInfo` says it is safe: a locked PIN or one on its
//! final try is refused without touching the retry counter. "Already logged in" counts as
//! success (the PKCS#11 login state is shared by every session of the application on a token,
//! so concurrent workers on the CA token meet it routinely), and the station never calls
//! `C_Logout` on shared station tokens: closing a session is enough, and logging out would log
//! out every other worker's session too.

pub use super::model::UserKind;

use super::TokenError;
use super::backend::{Credential, SessionBackend};
use super::module::Token;
use crate::domain::{Pin, SoPin};
use std::fmt;

/// An open read-write session on one token.
pub struct TokenSession {
    pub(super) backend: Box<dyn SessionBackend>,
    token: Token,
}

impl fmt::Debug for TokenSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSession")
            .field("token", &self.token.name())
            .finish()
    }
}

impl TokenSession {
    /// True while the session is open and logged in as the user (`C_GetSessionInfo`): a
    /// session kept between jobs is checked with this before it is used again.
    pub fn is_user_session(&self) -> bool {
        self.backend.is_user_session()
    }
}

impl Token {
    /// `C_InitToken`: (re-)initialises the token with `label`, erasing every object on it.
    /// Afterwards the token's info is read again (a SoftHSM blank slot gains its serial here).
    pub fn init_token(&mut self, so_pin: &SoPin, label: &str) -> Result<(), TokenError> {
        let name = self.name();
        let info = self.refresh()?.clone();
        if info.initialized {
            refuse_if_unsafe(
                &name,
                UserKind::So,
                info.so_pin_locked,
                info.so_pin_final_try,
            )?;
        }
        {
            let _writing = self.module().writing_store();
            self.module().backend().init_token(&info, so_pin, label)?;
        }
        self.refresh()?;
        Ok(())
    }

    /// Opens a read-write session (following the token if its slot changed).
    pub fn open(&mut self) -> Result<TokenSession, TokenError> {
        self.refresh()?;
        let backend = self.module().backend().open_session(self.info())?;
        Ok(TokenSession {
            backend,
            token: self.clone(),
        })
    }

    /// Opens a session logged in as the user.
    pub fn login_user(&mut self, pin: &Pin) -> Result<TokenSession, TokenError> {
        let s = self.open()?;
        s.login(Credential::User(pin))?;
        Ok(s)
    }

    /// Opens a session logged in as the SO.
    pub fn login_so(&mut self, so_pin: &SoPin) -> Result<TokenSession, TokenError> {
        let s = self.open()?;
        s.login(Credential::So(so_pin))?;
        Ok(s)
    }

    /// Replaces the user PIN (PKCS#11 has no PUK: SO login, then `C_InitPIN`), then proves the
    /// new one by logging in with it. May be repeated with the same `pin` (a run resumed after a
    /// crash): the result is the same token.
    pub fn reset_user_pin(&mut self, so_pin: &SoPin, pin: &Pin) -> Result<(), TokenError> {
        {
            let so = self.login_so(so_pin)?;
            so.init_user_pin(pin)?;
        }
        self.refresh()?;
        drop(self.login_user(pin)?);
        Ok(())
    }

    /// Remote unlock on the customer's PC: SO login with `so_pin`, `C_InitPIN` with `pin`,
    /// then `C_SetPIN` as SO from `so_pin` to `next_so_pin`, then a login with `pin` as proof.
    ///
    /// When `so_pin` is refused but `next_so_pin` opens the SO, an earlier unlock already
    /// rotated it (and stopped before the station learnt it): the PIN is set under
    /// `next_so_pin` and nothing is rotated. Returns whether this call rotated the SO PIN.
    pub fn unlock_user_pin(
        &mut self,
        so_pin: &SoPin,
        next_so_pin: &SoPin,
        pin: &Pin,
    ) -> Result<bool, TokenError> {
        let rotated = {
            let (so, rotate) = match self.login_so(so_pin) {
                Ok(so) => (so, true),
                Err(TokenError::PinIncorrect { .. }) => {
                    self.refresh()?;
                    (self.login_so(next_so_pin)?, false)
                }
                Err(e) => return Err(e),
            };
            so.init_user_pin(pin)?;
            if rotate {
                let _writing = so.writing_store();
                so.backend.set_so_pin(so_pin, next_so_pin)?;
            }
            rotate
        };
        self.refresh()?;
        drop(self.login_user(pin)?);
        Ok(rotated)
    }
}

fn refuse_if_unsafe(
    token: &str,
    user: UserKind,
    locked: bool,
    final_try: bool,
) -> Result<(), TokenError> {
    if locked {
        return Err(TokenError::PinLocked {
            token: token.to_string(),
            user,
            hint: match user {
                UserKind::User => {
                    ": unlock it with the SO PIN (keystation re-derives it) and a new user PIN"
                }
                UserKind::So => ": the token can no longer be re-initialised by the station",
            },
        });
    }
    if final_try {
        return Err(TokenError::PinFinalTry {
            token: token.to_string(),
            user,
        });
    }
    Ok(())
}

impl TokenSession {
    /// The token of this session.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Name for messages.
    pub fn name(&self) -> String {
        self.token.name()
    }

    fn login(&self, credential: Credential<'_>) -> Result<(), TokenError> {
        let name = self.name();
        let info = self.token.info();
        let user = credential.user();
        match user {
            UserKind::User => {
                refuse_if_unsafe(&name, user, info.user_pin_locked, info.user_pin_final_try)?;
                if !info.user_pin_initialized {
                    return Err(TokenError::Unexpected {
                        token: name,
                        what: "the user PIN is not initialised".into(),
                    });
                }
                if info.user_pin_count_low {
                    tracing::warn!(token = %name, "user PIN retry counter is low: a wrong PIN was tried on this token");
                }
            }
            UserKind::So => {
                refuse_if_unsafe(&name, user, info.so_pin_locked, info.so_pin_final_try)?;
                if info.so_pin_count_low {
                    tracing::warn!(token = %name, "SO PIN retry counter is low");
                }
            }
        }
        let _writing = self.token.module().writing_store();
        self.backend.login(credential)
    }

    /// `C_InitPIN` (in an SO session): sets the user PIN.
    pub fn init_user_pin(&self, pin: &Pin) -> Result<(), TokenError> {
        let _writing = self.token.module().writing_store();
        self.backend.init_user_pin(pin)
    }

    /// The token store's lock taken exclusive, if the module shares one (see
    /// [`super::store_lock`]): for a write to a token other processes read.
    pub(super) fn writing_store(&self) -> Option<super::store_lock::StoreGuard> {
        self.token.module().writing_store()
    }

    /// `C_GenerateRandom` from the token's RNG.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        self.backend.random(len)
    }
}
