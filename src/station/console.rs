//! What the operators' console (`keystation serve --console-listen`, see `crate::web::console`)
//! asks of the station beyond the commands the CLI shares with it: logging an operator in by
//! their credential token, the queue with its search, an order's stored documents, and the
//! random values of sessions.
//!
//! Login (this slice): the operator pastes the token of their credential file (`ksop1_...`).
//! The station compares its SHA-256 with the stored ones, exactly as for `--credential`, so the
//! console has no second secret to manage; every login and every refused one is audited (the
//! token never is). Once logged in, the console acts by the account's name on a station without
//! a credential file ([`Station::for_authenticated_operator`]): each command still goes through
//! [`Station::operator_actor`], which checks the account is registered, enabled and holds the
//! role.

use super::Station;
use super::operators::{TOKEN_PREFIX, token_hash, well_formed};
use crate::audit::event::{AuditEvent, ConsoleLogin, ConsoleLoginFailed};
use crate::domain::console::QueueSearch;
use crate::domain::{OperatorId, OrderNo, OrderState};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::random::RandomError;
use crate::store::{AttachmentMeta, AuditEntry, OperatorRecord, OrderSummary, StoreError};
use zeroize::Zeroizing;

/// Why a console login was refused (the token is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefused {
    /// The text is not a credential token.
    #[error("not a credential token (ksop1_ and 64 hex digits)")]
    Malformed,
    /// No registered operator has this credential.
    #[error("no registered operator has this credential")]
    UnknownCredential,
    /// The account is disabled.
    #[error("operator {0} is disabled")]
    Disabled(OperatorId),
    /// Too many failed logins from this client lately.
    #[error("too many failed logins from this client: try again later")]
    RateLimited,
}

impl LoginRefused {
    /// Stable name, as audited.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginRefused::Malformed => "malformed",
            LoginRefused::UnknownCredential => "unknown_credential",
            LoginRefused::Disabled(_) => "disabled",
            LoginRefused::RateLimited => "rate_limited",
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
}

impl Coded for ConsoleLoginError {
    fn code(&self) -> ErrorCode {
        match self {
            ConsoleLoginError::Refused(_) => ec::CONSOLE_LOGIN,
            ConsoleLoginError::Store(e) => e.code(),
        }
    }
}

impl Station {
    /// Logs in the operator whose credential token is `token`, from the client `remote`:
    /// the enabled account, with a `console.login` record; refused otherwise, with a
    /// `console.login_failed` record.
    pub async fn console_login(
        &self,
        token: Zeroizing<String>,
        remote: &str,
    ) -> Result<OperatorRecord, ConsoleLoginError> {
        let token = token.trim();
        let account = if well_formed(token, TOKEN_PREFIX) {
            self.store
                .operator_by_credential(&token_hash(token))
                .await?
        } else {
            return Err(self
                .console_login_refused(remote, LoginRefused::Malformed)
                .await);
        };
        let account = match account {
            None => {
                return Err(self
                    .console_login_refused(remote, LoginRefused::UnknownCredential)
                    .await);
            }
            Some(a) if !a.enabled => {
                return Err(self
                    .console_login_refused(remote, LoginRefused::Disabled(a.name))
                    .await);
            }
            Some(a) => a,
        };
        let actor = self.operator_actor_unchecked(account.name.as_str());
        let mut tx = self.store.begin_write(self.clock.now()).await?;
        tx.audit(
            &actor,
            AuditEntry::new(AuditEvent::ConsoleLogin(ConsoleLogin {
                operator: account.name.to_string(),
                remote: remote.to_string(),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(account)
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
            operator: match &why {
                LoginRefused::Disabled(name) => Some(name.to_string()),
                _ => None,
            },
        });
        let recorded = async {
            let mut tx = self.store.begin_write(self.clock.now()).await?;
            tx.audit(&self.station_actor(), AuditEntry::new(event))
                .await?;
            tx.commit().await
        };
        match recorded.await {
            Ok(()) => ConsoleLoginError::Refused(why),
            Err(e) => ConsoleLoginError::Store(e),
        }
    }

    /// The same station for an operator a web front authenticated (a console login, an API
    /// token): the commands it calls name the account, and [`Station::operator_actor`]
    /// resolves that name (without the serving process's own credential file).
    pub fn for_authenticated_operator(&self) -> Station {
        Station {
            identity: super::operators::Identity::Front,
            ..self.clone()
        }
    }

    /// The console's queue: orders in `state` (all: `None`) that `search` finds, oldest first.
    pub async fn order_queue(
        &self,
        state: Option<OrderState>,
        search: &QueueSearch,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let mut orders = self.store.list_orders(state).await?;
        orders.retain(|o| search.matches(&o.order_no, &o.company_name, &o.uscc));
        Ok(orders)
    }

    /// A stored document or seal picture of `order_no` (`role` `document` or `seal`, `kind` its
    /// kind), checked against its SHA-256; `None` when the order has no such attachment.
    pub async fn order_attachment(
        &self,
        order_no: &OrderNo,
        role: &str,
        kind: &str,
    ) -> Result<Option<(AttachmentMeta, Vec<u8>)>, StoreError> {
        self.store.attachment_content(order_no, role, kind).await
    }

    /// 32 random bytes from the station's source, hex (a console session id, a CSRF token).
    pub fn console_secret(&self) -> Result<Zeroizing<String>, RandomError> {
        let bytes = Zeroizing::new(self.random.bytes::<32>()?);
        Ok(Zeroizing::new(hex::encode(bytes.as_slice())))
    }
}
