//! The order API's rows (migration 0019): API tokens (operator, scopes, the SHA-256 of the
//! token, never the token) and the orders submitted through the API with the SHA-256 of the
//! request that made each. The station authenticates and decides; the store keeps the rows.

use super::attachments::Written;
use super::orders::insert_order;
use super::{Actor, AuditEntry, DbContext, NewOrder, Store, StoreError, Tx};
use crate::audit::event::{ApiOrderSubmitted, AuditEvent};
use crate::clock::format_utc;
use crate::domain::api::{Scopes, parse_scopes, scopes_text};
use crate::domain::{OperatorId, OrderNo};
use sqlx::Row;
use sqlx::any::AnyRow;

/// `SELECT` of a token's columns followed by `$rest` (a literal: no SQL is built at run time).
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, operator, scopes, created_by, created_at, revoked_by, revoked_at \
             FROM api_tokens ",
            $rest
        )
    };
}

/// An API token as stored (without its hash: nothing outside the store needs it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiTokenRecord {
    /// Its id (`api-token revoke ID`).
    pub id: i64,
    /// The registered operator it acts as.
    pub operator: OperatorId,
    /// What it may be used for.
    pub scopes: Scopes,
    /// The administrator who added it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// The administrator who revoked it.
    pub revoked_by: Option<String>,
    /// When (a revoked token authenticates nobody).
    pub revoked_at: Option<String>,
}

/// A token to add.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// The operator it acts as.
    pub operator: OperatorId,
    /// Its scopes.
    pub scopes: Scopes,
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// The administrator adding it.
    pub created_by: String,
}

/// An order submitted through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSubmission {
    /// The order.
    pub order_no: OrderNo,
    /// SHA-256 (hex) of the request body that made it (canonical JSON).
    pub request_sha256: String,
    /// The token it came with.
    pub token_id: i64,
}

fn token_record(r: &AnyRow) -> Result<ApiTokenRecord, StoreError> {
    let ctx = "reading an API token";
    let text = |c: &'static str| r.try_get::<String, _>(c).ctx(ctx);
    let id: i64 = r.try_get("id").ctx(ctx)?;
    let operator = OperatorId::parse(&text("operator")?)
        .map_err(|e| StoreError::Corrupt(format!("api_tokens.operator of {id}: {e}")))?;
    let scopes = parse_scopes(&text("scopes")?)
        .map_err(|e| StoreError::Corrupt(format!("api_tokens.scopes of {id}: {e}")))?;
    Ok(ApiTokenRecord {
        id,
        operator,
        scopes,
        created_by: text("created_by")?,
        created_at: text("created_at")?,
        revoked_by: r.try_get("revoked_by").ctx(ctx)?,
        revoked_at: r.try_get("revoked_at").ctx(ctx)?,
    })
}

impl Tx {
    /// Adds a token; its id (the next one). The caller checked the operator and audits.
    pub async fn insert_api_token(&mut self, t: &NewApiToken) -> Result<i64, StoreError> {
        // Writers are serialised by the audit head this transaction holds: MAX + 1 is unique.
        let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM api_tokens")
            .fetch_one(self.conn())
            .await
            .and_then(|r| r.try_get("id"))
            .ctx("numbering an API token")?;
        sqlx::query(
            "INSERT INTO api_tokens (id, operator, scopes, token_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(t.operator.as_str())
        .bind(scopes_text(&t.scopes))
        .bind(&t.token_hash)
        .bind(&t.created_by)
        .bind(format_utc(self.now()))
        .execute(self.conn())
        .await
        .ctx("adding an API token")?;
        Ok(id)
    }

    /// The token `id`, read inside this transaction.
    pub async fn api_token_in_tx(&mut self, id: i64) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row = sqlx::query(select_tokens!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading an API token")?;
        row.as_ref().map(token_record).transpose()
    }

    /// Marks the token `id` revoked by `by` (the caller read it, unrevoked, and audits).
    pub async fn revoke_api_token(&mut self, id: i64, by: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_by = $1, revoked_at = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(by)
        .bind(format_utc(self.now()))
        .bind(id)
        .execute(self.conn())
        .await
        .ctx("revoking an API token")?;
        Ok(())
    }
}

impl Store {
    /// Every API token, revoked ones too, by id.
    pub async fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        sqlx::query(select_tokens!("ORDER BY id"))
            .fetch_all(self.pool())
            .await
            .ctx("listing API tokens")?
            .iter()
            .map(token_record)
            .collect()
    }

    /// The token whose SHA-256 is `token_hash` (revoked or not: the caller decides).
    pub async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row = sqlx::query(select_tokens!("WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await
            .ctx("looking up an API token")?;
        row.as_ref().map(token_record).transpose()
    }

    /// How `order_no` came through the API, if it did.
    pub async fn api_submission(
        &self,
        order_no: &OrderNo,
    ) -> Result<Option<ApiSubmission>, StoreError> {
        let row =
            sqlx::query("SELECT request_sha256, token_id FROM api_submissions WHERE order_no = $1")
                .bind(order_no.as_str())
                .fetch_optional(self.pool())
                .await
                .ctx("reading an API submission")?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(ApiSubmission {
            order_no: order_no.clone(),
            request_sha256: r
                .try_get("request_sha256")
                .ctx("reading an API submission")?,
            token_id: r.try_get("token_id").ctx("reading an API submission")?,
        }))
    }

    /// Stores an order submitted through the API in ONE transaction: the order (with its
    /// `order.imported` record, as an import stores it), the submission, and an
    /// `api.order_submitted` record naming the token. [`StoreError::DuplicateOrder`] when the
    /// number exists.
    pub async fn insert_api_order(
        &self,
        new: &NewOrder,
        submission: &ApiSubmission,
        actor: &Actor,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(now).await?;
        insert_order(&mut tx, new, actor, &mut Written::default()).await?;
        sqlx::query(
            "INSERT INTO api_submissions (order_no, request_sha256, token_id, submitted_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(submission.order_no.as_str())
        .bind(&submission.request_sha256)
        .bind(submission.token_id)
        .bind(format_utc(now))
        .execute(tx.conn())
        .await
        .ctx("recording an API submission")?;
        tx.audit(
            actor,
            AuditEntry::order(
                &submission.order_no,
                AuditEvent::ApiOrderSubmitted(ApiOrderSubmitted {
                    token_id: submission.token_id,
                    request_sha256: submission.request_sha256.clone(),
                }),
            ),
        )
        .await?;
        tx.commit().await
    }
}
