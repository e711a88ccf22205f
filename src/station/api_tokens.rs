//! API tokens (issue 17, item 3): what the portal and automated issuance jobs present to the
//! order API (`Authorization: Bearer <token>`), and who they act as.
//!
//! A token is `ksapi1_` and 32 random bytes in hex, made like an operator's credential
//! ([`super::operators`]): written once, mode 0600, to the file `api-token add --out FILE`
//! names, and stored only as its SHA-256. It belongs to a registered operator, so every state
//! change made with it is audited under that operator's name (and `api.order_submitted` names
//! the token), and has [`Scope`]s. Managing tokens (add, revoke) needs an administrator's
//! credential, like managing operators, and is audited; a revoked token authenticates nobody,
//! nor does a token whose operator is disabled. Adding or revoking a token is four-eyes once the
//! station has two administrators (`super::four_eyes`): an API token is an identity.
//!
//! Security notes: the token is never on a command line, in an environment variable, a log, an
//! error or an audit record; a refused request is audited (`api.request_refused`) without it,
//! at most its id when the token is live but lacks the scope, and the web front rate-limits
//! those records per client so a client cannot flood the trail.

use super::Station;
use super::operators::Provenance;
use super::operators::{new_token, token_hash, well_formed};
use crate::audit::event::{ApiRequestRefused, ApiTokenAdded, ApiTokenRevoked, AuditEvent};
use crate::domain::api::{Scope, Scopes, scopes_text};
use crate::domain::{OperatorId, OperatorRefused};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::random::RandomError;
use crate::station::argument::InvalidArgument;
use crate::store::{Actor, ApiTokenRecord, AuditEntry, NewApiToken, StoreError, Tx};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The prefix of an API token (its format's version).
pub const API_TOKEN_PREFIX: &str = "ksapi1_";

/// Errors managing API tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiTokenError {
    /// Refused (who acts, the operator named), or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument is not acceptable (named).
    #[error(transparent)]
    Invalid(#[from] InvalidArgument),
    /// No token could be drawn.
    #[error("drawing an API token: {0}")]
    Random(#[from] RandomError),
    /// The token file could not be written (it is never overwritten).
    #[error("writing the API token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No token has this id.
    #[error("no API token {0}")]
    NotFound(i64),
    /// The token was revoked already.
    #[error("API token {0} is revoked already")]
    AlreadyRevoked(i64),
}

impl Coded for ApiTokenError {
    fn code(&self) -> ErrorCode {
        match self {
            ApiTokenError::Store(e) => e.code(),
            ApiTokenError::Invalid(_) => ec::USAGE,
            ApiTokenError::Random(_) => ec::RANDOM,
            ApiTokenError::TokenFile { .. } => ec::IO,
            ApiTokenError::NotFound(_) => ec::API_TOKEN_NOT_FOUND,
            ApiTokenError::AlreadyRevoked(_) => ec::API_TOKEN_REVOKED,
        }
    }
}

/// Why a request's token authenticates nobody (the token is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiAuthRefused {
    /// No `Authorization: Bearer` token, or not the form of an API token.
    #[error("no API token (Authorization: Bearer ksapi1_ and 64 hex digits)")]
    Missing,
    /// No token with this text is registered.
    #[error("unknown API token")]
    Unknown,
    /// The token was revoked.
    #[error("the API token is revoked")]
    Revoked,
    /// The token's operator is disabled.
    #[error("the API token's operator is disabled")]
    OperatorDisabled,
}

impl ApiAuthRefused {
    /// Stable name, as audited (`missing`, `unknown`, `revoked`, `operator_disabled`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ApiAuthRefused::Missing => "missing",
            ApiAuthRefused::Unknown => "unknown",
            ApiAuthRefused::Revoked => "revoked",
            ApiAuthRefused::OperatorDisabled => "operator_disabled",
        }
    }
}

/// A refused API request, as audited (never the token's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRefusal {
    /// The client's address.
    pub remote: String,
    /// Why: an [`ApiAuthRefused`]'s name, or `scope_missing`.
    pub reason: &'static str,
    /// The scope the route needs, when that is why.
    pub scope: Option<Scope>,
    /// The live token's id, when it lacks the scope.
    pub token_id: Option<i64>,
    /// The status answered (401, 403).
    pub status: u16,
    /// Refusals of this client left unrecorded since its previous record.
    pub suppressed: u64,
}

/// Errors authenticating an API request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiAuthError {
    /// The token authenticates nobody.
    #[error("{0}")]
    Refused(ApiAuthRefused),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for ApiAuthError {
    fn code(&self) -> ErrorCode {
        match self {
            ApiAuthError::Refused(_) => ec::API_UNAUTHENTICATED,
            ApiAuthError::Store(e) => e.code(),
        }
    }
}

/// An authenticated API client: its live token and the operator it acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    /// The token's id.
    pub token_id: i64,
    /// The registered (enabled) operator.
    pub operator: OperatorId,
    /// What the token may be used for.
    pub scopes: Scopes,
}

impl ApiCaller {
    /// Whether the token has `scope`.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

impl Station {
    /// Every API token (revoked ones too), by id.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.store.api_tokens().await
    }

    /// Records a refused API request (`api.request_refused`, as the station: nobody is
    /// identified). The web front decides which refusals are recorded
    /// ([`crate::domain::console::RefusalAudit`]) so a client cannot flood the trail.
    pub async fn api_request_refused(&self, refusal: &ApiRefusal) -> Result<(), StoreError> {
        let refusal = ApiRequestRefused {
            remote: refusal.remote.clone(),
            reason: refusal.reason.to_string(),
            scope: refusal.scope.map(|s| s.to_string()),
            token_id: refusal.token_id,
            status: i64::from(refusal.status),
            suppressed: i64::try_from(refusal.suppressed).unwrap_or(i64::MAX),
        };
        let mut tx = self.begin_write().await?;
        tx.audit(
            &self.station_actor(),
            AuditEntry::new(AuditEvent::ApiRequestRefused(refusal)),
        )
        .await?;
        tx.commit().await
    }

    /// The caller presenting `token`: a registered, unrevoked token of an enabled operator.
    pub async fn api_caller(&self, token: &str) -> Result<ApiCaller, ApiAuthError> {
        let token = token.trim();
        if !well_formed(token, API_TOKEN_PREFIX) {
            return Err(ApiAuthError::Refused(ApiAuthRefused::Missing));
        }
        let record = self
            .store
            .api_token_by_hash(&token_hash(token))
            .await?
            .ok_or(ApiAuthError::Refused(ApiAuthRefused::Unknown))?;
        if record.revoked_at.is_some() {
            return Err(ApiAuthError::Refused(ApiAuthRefused::Revoked));
        }
        let enabled = self
            .store
            .operator(&record.operator)
            .await?
            .is_some_and(|o| o.enabled);
        if !enabled {
            return Err(ApiAuthError::Refused(ApiAuthRefused::OperatorDisabled));
        }
        Ok(ApiCaller {
            token_id: record.id,
            operator: record.operator,
            scopes: record.scopes,
        })
    }
}

/// Gives the registered operator `operator` a new token with `scopes` in `tx` (audited as
/// `actor`, `how` it came to be) and writes it to `out` (created, 0600, never overwritten); the
/// caller commits, or erases `out` when it cannot.
pub(super) async fn add_token_in(
    tx: &mut Tx,
    actor: &Actor,
    (operator, scopes): (&OperatorId, &Scopes),
    random: &dyn crate::random::Random,
    out: &Path,
    how: &Provenance,
) -> Result<ApiTokenRecord, ApiTokenError> {
    if tx.operator_in_tx(operator).await?.is_none() {
        return Err(StoreError::from(OperatorRefused::NotRegistered(operator.clone())).into());
    }
    let token = new_token(random, API_TOKEN_PREFIX)?;
    let id = tx
        .insert_api_token(&NewApiToken {
            operator: operator.clone(),
            scopes: scopes.clone(),
            token_hash: token_hash(&token),
            created_by: actor.name.clone(),
        })
        .await?;
    tx.audit(
        actor,
        AuditEntry::new(AuditEvent::ApiTokenAdded(ApiTokenAdded {
            token_id: id,
            operator: operator.to_string(),
            scopes: scopes_text(scopes),
            added_by: actor.name.clone(),
            four_eyes: how.four_eyes.clone(),
            bootstrap: how.bootstrap,
        })),
    )
    .await?;
    let added = tx
        .api_token_in_tx(id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("API token {id} was not stored")))?;
    let line = Zeroizing::new(format!("{}\n", token.as_str()));
    crate::private_files::write_new_file(out, line.as_bytes()).map_err(|source| {
        ApiTokenError::TokenFile {
            path: out.to_path_buf(),
            source,
        }
    })?;
    Ok(added)
}

/// Whether token `id` exists and is live (a revoke request is refused otherwise).
pub(super) async fn live_token_in(tx: &mut Tx, id: i64) -> Result<ApiTokenRecord, ApiTokenError> {
    let token = tx
        .api_token_in_tx(id)
        .await?
        .ok_or(ApiTokenError::NotFound(id))?;
    if token.revoked_at.is_some() {
        return Err(ApiTokenError::AlreadyRevoked(id));
    }
    Ok(token)
}

/// Revokes token `id` in `tx` (audited as `actor`, `how` it came to be); the caller commits.
pub(super) async fn revoke_token_in(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    how: &Provenance,
) -> Result<ApiTokenRecord, ApiTokenError> {
    let token = live_token_in(tx, id).await?;
    tx.revoke_api_token(id, &actor.name).await?;
    tx.audit(
        actor,
        AuditEntry::new(AuditEvent::ApiTokenRevoked(ApiTokenRevoked {
            token_id: id,
            operator: token.operator.to_string(),
            revoked_by: actor.name.clone(),
            four_eyes: how.four_eyes.clone(),
            bootstrap: how.bootstrap,
        })),
    )
    .await?;
    tx.api_token_in_tx(id)
        .await?
        .ok_or(ApiTokenError::NotFound(id))
}
