//! How an operator proves who they are to the console: a password (argon2id,
//! [`crate::domain::password`]) and a TOTP code ([`crate::domain::totp`]), both set from the
//! CLI (`keystation operator password|totp NAME`), checked at each console login.
//!
//! Why this and not mutual TLS by default: it works in any browser at a desk, without issuing
//! client certificates to operators' keys and installing them in each browser; client
//! certificates stay possible later behind the same [`Station::console_login`] answer.
//!
//! Who may set them: the operator themselves (by their own credential file), or an
//! administrator for anyone (a new colleague's first password, a lost phone). Either way the
//! change is one transaction with an audit record naming whose secret it is and who set it
//! (`operator.password_set`, `operator.totp_enrolled`); never the secret.
//!
//! Security notes: the password is stored only as an argon2id PHC string; the TOTP secret only
//! sealed by the vault (the AES key that seals PINs and escrowed keys, AAD = the operator's
//! name, [`crate::token::vault::totp_aad`]): reading the database alone gives neither. The
//! secret is shown once, at enrolment, on the operator's terminal. A TOTP step is taken by one
//! conditional `UPDATE` ([`crate::store::Tx::take_totp_step`]) in the login's own transaction,
//! so a code works once even when two logins race with it. An unknown operator costs the same
//! argon2 work as a known one, and every refusal answers the same to the client; the audit
//! trail records which check failed.

use super::Station;
use super::hsm::{Hsm, HsmError, blocking};
use super::operators::OperatorError;
use crate::audit::event::{AuditEvent, ConsoleLogin, ConsoleLoginFailed, OperatorSecretSet};
use crate::domain::password::{self, Password};
use crate::domain::totp::{self, TotpRefused, TotpSecret};
use crate::domain::{OperatorId, SealedKey};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::store::{AuditEntry, LoginSecrets, OperatorRecord, StoreError};
use crate::token::TokenError;
use crate::token::vault::totp_aad;
use zeroize::Zeroizing;

/// Why a console login was refused (no secret typed is ever part of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefused {
    /// No registered operator has this name.
    #[error("no registered operator has this name")]
    UnknownOperator,
    /// The account is disabled.
    #[error("operator {0} is disabled")]
    Disabled(OperatorId),
    /// The account has no console password or no TOTP secret yet.
    #[error("operator {0} has no console password or TOTP enrolled")]
    NotEnrolled(OperatorId),
    /// The password is not the account's.
    #[error("wrong password for operator {0}")]
    WrongPassword(OperatorId),
    /// The code is not the account's for this time.
    #[error("wrong TOTP code for operator {0}")]
    WrongCode(OperatorId),
    /// The code was used already.
    #[error("TOTP code of operator {0} used already")]
    ReplayedCode(OperatorId),
    /// Too many failed logins from this client lately.
    #[error("too many failed logins from this client: try again later")]
    RateLimited,
}

impl LoginRefused {
    /// Stable name, as audited.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginRefused::UnknownOperator => "unknown_operator",
            LoginRefused::Disabled(_) => "disabled",
            LoginRefused::NotEnrolled(_) => "not_enrolled",
            LoginRefused::WrongPassword(_) => "wrong_password",
            LoginRefused::WrongCode(_) => "wrong_code",
            LoginRefused::ReplayedCode(_) => "replayed_code",
            LoginRefused::RateLimited => "rate_limited",
        }
    }

    /// The registered account it names, if any.
    fn operator(&self) -> Option<&OperatorId> {
        match self {
            LoginRefused::Disabled(o)
            | LoginRefused::NotEnrolled(o)
            | LoginRefused::WrongPassword(o)
            | LoginRefused::WrongCode(o)
            | LoginRefused::ReplayedCode(o) => Some(o),
            LoginRefused::UnknownOperator | LoginRefused::RateLimited => None,
        }
    }
}

/// Errors of a console login.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleLoginError {
    /// Refused (and audited).
    #[error("console login refused: {0}")]
    Refused(LoginRefused),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault could not open the account's TOTP secret.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl Coded for ConsoleLoginError {
    fn code(&self) -> ErrorCode {
        match self {
            ConsoleLoginError::Refused(_) => ec::CONSOLE_LOGIN,
            ConsoleLoginError::Store(e) => e.code(),
            ConsoleLoginError::Token(e) => e.code(),
        }
    }
}

/// What `operator totp NAME` shows the operator, once.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// The account.
    pub operator: OperatorId,
    /// The secret, base32 (typed into an authenticator app).
    pub secret_base32: Zeroizing<String>,
    /// The `otpauth://` URI (scanned or pasted into an authenticator app).
    pub uri: Zeroizing<String>,
}

/// The argon2id hash an unknown operator's (or a password-less account's) password is
/// checked against, so that every name costs the same argon2 work. Made once per process; what
/// it matches does not matter: such a login is refused whatever the password.
fn unknown_operator_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let filler = Password::from_secret(Zeroizing::new("keystation: no such operator".into()));
        password::hash(&filler, &[0x6b; password::SALT_BYTES]).unwrap_or_default()
    })
}

impl Station {
    /// `operator password NAME`: sets the console password of `name` (the operator themselves,
    /// or an administrator), checked against the policy and stored as an argon2id hash.
    pub async fn set_console_password(
        &self,
        name: &str,
        new: Password,
    ) -> Result<OperatorRecord, OperatorError> {
        let name = super::operators::name_arg(name)?;
        password::check_policy(&new).map_err(OperatorError::Password)?;
        let actor = self.self_or_administrator(&name).await?;
        let salt = self.random.bytes::<{ password::SALT_BYTES }>()?;
        // Hashing takes argon2's tens of milliseconds: off the async workers.
        let hash = blocking(|| password::hash(&new, &salt)).map_err(StoreError::Corrupt)?;
        let mut tx = self.begin_write().await?;
        tx.set_operator_password(&name, &hash).await?;
        tx.audit(
            &actor,
            AuditEntry::new(AuditEvent::OperatorPasswordSet(OperatorSecretSet {
                operator: name.to_string(),
                set_by: actor.name.clone(),
            })),
        )
        .await?;
        let account = tx
            .operator_in_tx(&name)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("operator {name} vanished")))?;
        tx.commit().await?;
        Ok(account)
    }

    /// `operator totp NAME`: draws a new TOTP secret for `name` (the operator themselves, or an
    /// administrator), stores it sealed by the vault (replacing any earlier one) and returns it
    /// for the terminal, once.
    pub async fn enrol_totp(&self, hsm: &Hsm, name: &str) -> Result<TotpEnrolment, OperatorError> {
        let name = super::operators::name_arg(name)?;
        let actor = self.self_or_administrator(&name).await?;
        let drawn = Zeroizing::new(self.random.bytes::<{ totp::SECRET_BYTES }>()?);
        let secret = TotpSecret::from_bytes(Zeroizing::new(drawn.to_vec()));
        let sealed = blocking(|| {
            hsm.vault()?
                .seal_totp_secret(&secret, &totp_aad(name.as_str()))
        })
        .map_err(|e| OperatorError::Hsm(HsmError::Token(e)))?;
        let mut tx = self.begin_write().await?;
        tx.set_operator_totp(&name, &sealed).await?;
        tx.audit(
            &actor,
            AuditEntry::new(AuditEvent::OperatorTotpEnrolled(OperatorSecretSet {
                operator: name.to_string(),
                set_by: actor.name.clone(),
            })),
        )
        .await?;
        tx.commit().await?;
        let issuer = format!("keystation {}", self.config.station.id);
        Ok(TotpEnrolment {
            uri: secret.otpauth_uri(&issuer, name.as_str()),
            secret_base32: secret.base32(),
            operator: name,
        })
    }

    /// Logs in the operator `name` by `password` and TOTP `code`, from the client `remote`: the
    /// enabled account, with a `console.login` record; refused otherwise, with a
    /// `console.login_failed` record naming the check that failed.
    pub async fn console_login(
        &self,
        hsm: &Hsm,
        name: &str,
        password: Password,
        code: Zeroizing<String>,
        remote: &str,
    ) -> Result<OperatorRecord, ConsoleLoginError> {
        let found = match OperatorId::parse(name.trim()) {
            Ok(name) => self.store.login_secrets(&name).await?,
            Err(_) => None,
        };
        // The password is checked first whatever else is wrong: the same work for every name.
        let stored = found
            .as_ref()
            .and_then(|f| f.password_hash.as_deref())
            .unwrap_or(unknown_operator_hash());
        let password_ok = blocking(|| password::verify(&password, stored));
        let refused = |why: LoginRefused| self.console_login_refused(remote, why);
        let Some(LoginSecrets {
            account,
            password_hash,
            totp_sealed,
            totp_last_step,
        }) = found
        else {
            return Err(refused(LoginRefused::UnknownOperator).await);
        };
        let who = account.name.clone();
        if !account.enabled {
            return Err(refused(LoginRefused::Disabled(who)).await);
        }
        let (Some(_), Some(sealed)) = (password_hash, totp_sealed) else {
            return Err(refused(LoginRefused::NotEnrolled(who)).await);
        };
        if !password_ok {
            return Err(refused(LoginRefused::WrongPassword(who)).await);
        }
        let now = self.clock.now();
        let step = match self.check_code(hsm, &who, &sealed, &code, now, totp_last_step) {
            Ok(step) => step?,
            Err(TotpRefused::Replayed) => {
                return Err(refused(LoginRefused::ReplayedCode(who)).await);
            }
            Err(_) => return Err(refused(LoginRefused::WrongCode(who)).await),
        };
        let actor = self.operator_actor_unchecked(who.as_str());
        let mut tx = self.store.begin_write(now).await?;
        if !tx.take_totp_step(&who, step).await? {
            drop(tx);
            return Err(refused(LoginRefused::ReplayedCode(who)).await);
        }
        tx.audit(
            &actor,
            AuditEntry::new(AuditEvent::ConsoleLogin(ConsoleLogin {
                operator: who.to_string(),
                remote: remote.to_string(),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// The TOTP step `code` matches for the account (outer error: refused; inner: the vault).
    fn check_code(
        &self,
        hsm: &Hsm,
        who: &OperatorId,
        sealed: &SealedKey,
        code: &str,
        now: time::OffsetDateTime,
        last_step: Option<i64>,
    ) -> Result<Result<i64, TokenError>, TotpRefused> {
        let secret = match blocking(|| {
            hsm.vault()?
                .unseal_totp_secret(sealed, &totp_aad(who.as_str()))
        }) {
            Ok(secret) => secret,
            Err(e) => return Ok(Err(e)),
        };
        totp::verify(
            secret.expose_secret(),
            code,
            now.unix_timestamp(),
            last_step,
        )
        .map(Ok)
    }

    /// Records a refused console login (`console.login_failed`, as the station: nobody is
    /// identified) and returns the refusal; the front calls it itself for
    /// [`LoginRefused::RateLimited`].
    pub async fn console_login_refused(
        &self,
        remote: &str,
        why: LoginRefused,
    ) -> ConsoleLoginError {
        let event = AuditEvent::ConsoleLoginFailed(ConsoleLoginFailed {
            remote: remote.to_string(),
            reason: why.as_str().to_string(),
            operator: why.operator().map(|o| o.to_string()),
        });
        let recorded = async {
            let mut tx = self.begin_write().await?;
            tx.audit(&self.station_actor(), AuditEntry::new(event))
                .await?;
            tx.commit().await
        };
        match recorded.await {
            Ok(()) => ConsoleLoginError::Refused(why),
            Err(e) => ConsoleLoginError::Store(e),
        }
    }
}
