//! Sessions and logins.
//!
//! A login is attempted only after `C_GetTokenInfo` says it is safe: a locked PIN or one on its
//! final try is refused without touching the retry counter. "Already logged in" counts as
//! success (the PKCS#11 login state is shared by every session of the application on a token,
//! so concurrent workers on the CA token meet it routinely), and the station never calls
//! `C_Logout` on shared station tokens: closing a session is enough, and logging out would log
//! out every other worker's session too.

use super::TokenError;
use super::module::Token;
use crate::domain::{Pin, SoPin};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::fmt;

/// Which PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// The normal user (the certificate holder; the station operator on station tokens).
    User,
    /// The security officer.
    So,
}

impl fmt::Display for UserKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserKind::User => "user",
            UserKind::So => "SO",
        })
    }
}

/// An open read-write session on one token.
pub struct TokenSession {
    pub(crate) session: Session,
    pub(crate) token: Token,
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
        use cryptoki::session::SessionState;
        matches!(
            self.session.get_session_info().map(|i| i.session_state()),
            Ok(SessionState::RwUser | SessionState::RoUser)
        )
    }
}

impl Token {
    /// `C_InitToken`: (re-)initialises the token with `label`, erasing every object on it.
    /// Returns the token's info afterwards (a SoftHSM blank slot gains its serial here).
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
        // Exposed to C_InitToken only: the SO PIN's one purpose.
        let pin = AuthPin::from(so_pin.expose_secret().to_string());
        self.module()
            .ctx()
            .init_token(self.slot(), &pin, label)
            .map_err(|e| {
                let err = self.login_failure(UserKind::So, e);
                if matches!(err, TokenError::PinIncorrect { .. }) {
                    super::sim::login_result(&self.info().serial, UserKind::So, false);
                }
                err
            })?;
        self.refresh()?;
        super::sim::token_reset(&self.info().serial);
        Ok(())
    }

    /// Opens a read-write session (following the token if its slot changed).
    pub fn open(&mut self) -> Result<TokenSession, TokenError> {
        self.refresh()?;
        let session = self
            .module()
            .ctx()
            .open_rw_session(self.slot())
            .map_err(|e| self.explain(e))?;
        Ok(TokenSession {
            session,
            token: self.clone(),
        })
    }

    /// Opens a session logged in as the user.
    pub fn login_user(&mut self, pin: &Pin) -> Result<TokenSession, TokenError> {
        let s = self.open()?;
        s.login(UserKind::User, pin.expose_secret())?;
        Ok(s)
    }

    /// Opens a session logged in as the SO.
    pub fn login_so(&mut self, so_pin: &SoPin) -> Result<TokenSession, TokenError> {
        let s = self.open()?;
        s.login(UserKind::So, so_pin.expose_secret())?;
        Ok(s)
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

fn login_error(token: &str, user: UserKind, e: CkError) -> TokenError {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => TokenError::PinIncorrect {
            token: token.to_string(),
            user,
        },
        CkError::Pkcs11(RvError::PinLocked, _) => TokenError::PinLocked {
            token: token.to_string(),
            user,
            hint: "",
        },
        other => TokenError::from_ck(token, other),
    }
}

impl Token {
    fn login_failure(&self, user: UserKind, e: CkError) -> TokenError {
        match e {
            CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _) => {
                login_error(&self.name(), user, e)
            }
            other => self.explain(other),
        }
    }
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

    fn login(&self, user: UserKind, pin: &str) -> Result<(), TokenError> {
        let name = self.name();
        let info = self.token.info();
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
        let ut = match user {
            UserKind::User => UserType::User,
            UserKind::So => UserType::So,
        };
        let serial = info.serial.clone();
        if super::sim::locked(&serial, user) {
            return Err(login_error(
                &name,
                user,
                CkError::Pkcs11(RvError::PinLocked, cryptoki::context::Function::Login),
            ));
        }
        let auth = AuthPin::from(pin.to_string());
        let result = match self.session.login(ut, Some(&auth)) {
            Ok(()) => Ok(()),
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => Err(self.token.login_failure(user, e)),
        };
        match &result {
            Ok(()) => super::sim::login_result(&serial, user, true),
            Err(TokenError::PinIncorrect { .. }) => super::sim::login_result(&serial, user, false),
            Err(_) => {}
        }
        result
    }

    /// `C_InitPIN` (in an SO session): sets the user PIN.
    pub fn init_user_pin(&self, pin: &Pin) -> Result<(), TokenError> {
        // Exposed to C_InitPIN only: setting it on the token is the point.
        let auth = AuthPin::from(pin.expose_secret().to_string());
        self.ck(self.session.init_pin(&auth))?;
        super::sim::user_pin_reset(&self.token.info().serial);
        Ok(())
    }

    /// Refuses to create one more object on a token that has no room left (only the fault
    /// simulator knows capacities; real modules answer `CKR_DEVICE_MEMORY` themselves).
    pub(crate) fn room_for_objects(&self, n: usize) -> Result<(), TokenError> {
        let Some(max) = super::sim::max_objects(&self.token.info().serial) else {
            return Ok(());
        };
        let present = self.ck(self.session.find_objects(&[]))?.len();
        if present + n > max {
            return Err(TokenError::from_ck(
                &self.name(),
                CkError::Pkcs11(
                    RvError::DeviceMemory,
                    cryptoki::context::Function::CreateObject,
                ),
            ));
        }
        Ok(())
    }

    /// `C_GenerateRandom` from the token's RNG.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, TokenError> {
        let mut buf = vec![0u8; len];
        self.ck(self.session.generate_random_slice(&mut buf))?;
        Ok(buf)
    }

    pub(crate) fn ck<T>(&self, r: Result<T, CkError>) -> Result<T, TokenError> {
        r.map_err(|e| self.token.explain(e))
    }
}
