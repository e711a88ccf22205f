//! Remote unlock: SO PIN generations by SO identity, and the public halves of unlock requests
//! with the sending of their authorisation codes. Nothing secret is stored: SO PINs are
//! re-derived in the vault from the identity and the generation; the code is never kept.

use super::{DbContext, Store, StoreError, Tx};
use crate::clock::format_utc;
use sqlx::Row;
use sqlx::any::AnyRow;

/// The SO PIN generation of a token (by its SO identity).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct SoPinGeneration {
    /// The generation the token's SO PIN is known to have (0: never rotated).
    pub current: u32,
    /// The next one, carried by an unlock code whose use is not yet confirmed.
    pub pending: Option<u32>,
    /// The unlock request whose code carried the pending generation last.
    pub pending_request: Option<String>,
}

/// An unlock request's public half and the sending of its code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnlockRecord {
    /// The service request.
    pub request_id: String,
    /// The key's serial, from the request code.
    pub token_serial: String,
    /// Hex.
    pub request_nonce: String,
    /// Hex.
    pub ephemeral_public: String,
    /// `unsent`, `sending`, `sent`, `in_doubt` or `failed`.
    pub send_state: String,
    /// Contacts with the SMTP server.
    pub sends: i64,
    /// Where the code went, masked.
    pub destination_masked: Option<String>,
    /// When the code last sent expires.
    pub expires_at: Option<String>,
    /// When it was accepted by the server.
    pub sent_at: Option<String>,
    /// Why the last send failed.
    pub last_error: Option<String>,
}

/// A key whose SO PIN rotation by an unlock code is not confirmed (for `check`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingUnlock {
    /// The unlock request whose code carried the pending generation last.
    pub request_id: String,
    /// The order of that request.
    pub order_no: String,
    /// The key, from the request code.
    pub token_serial: String,
    /// When the code last sent expires (none before it was sent).
    pub expires_at: Option<String>,
}

/// How a send of the code ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRecord {
    /// Claimed: the server is about to be contacted.
    Sending {
        /// Masked address.
        destination_masked: String,
        /// Expiry of the code.
        expires_at: String,
    },
    /// Accepted by the server.
    Sent,
    /// Not handed over (may be sent again).
    Failed(String),
    /// Maybe handed over: never sent again without `--resend`.
    InDoubt(String),
}

fn generation(v: Option<i64>, what: &str) -> Result<Option<u32>, StoreError> {
    v.map(|g| u32::try_from(g).map_err(|_| StoreError::Corrupt(format!("{what}: generation {g}"))))
        .transpose()
}

fn read_generation(row: Option<AnyRow>) -> Result<SoPinGeneration, StoreError> {
    let Some(r) = row else {
        return Ok(SoPinGeneration::default());
    };
    let current: i64 = r
        .try_get("current_generation")
        .ctx("reading an SO PIN generation")?;
    let pending: Option<i64> = r
        .try_get("pending_generation")
        .ctx("reading an SO PIN generation")?;
    Ok(SoPinGeneration {
        current: generation(Some(current), "so_pin_generations.current_generation")?
            .unwrap_or_default(),
        pending: generation(pending, "so_pin_generations.pending_generation")?,
        pending_request: r
            .try_get("pending_request_id")
            .ctx("reading an SO PIN generation")?,
    })
}

const GEN_SQL: &str = "SELECT current_generation, pending_generation, pending_request_id FROM so_pin_generations \
     WHERE so_identity = $1";

const UNLOCK_COLUMNS: &str = "request_id, token_serial, request_nonce, ephemeral_public, \
     send_state, sends, destination_masked, expires_at, sent_at, last_error";

fn unlock_row(r: &AnyRow) -> Result<UnlockRecord, sqlx::Error> {
    Ok(UnlockRecord {
        request_id: r.try_get("request_id")?,
        token_serial: r.try_get("token_serial")?,
        request_nonce: r.try_get("request_nonce")?,
        ephemeral_public: r.try_get("ephemeral_public")?,
        send_state: r.try_get("send_state")?,
        sends: r.try_get("sends")?,
        destination_masked: r.try_get("destination_masked")?,
        expires_at: r.try_get("expires_at")?,
        sent_at: r.try_get("sent_at")?,
        last_error: r.try_get("last_error")?,
    })
}

impl Tx {
    /// The SO PIN generation of the token with `so_identity` (generation 0 when none is recorded).
    pub async fn so_pin_generation(
        &mut self,
        so_identity: &str,
    ) -> Result<SoPinGeneration, StoreError> {
        let row = sqlx::query(GEN_SQL)
            .bind(so_identity)
            .fetch_optional(self.conn())
            .await
            .ctx("reading an SO PIN generation")?;
        read_generation(row)
    }

    /// Records the next generation as pending for unlock request `request_id`, unless one is
    /// pending already (an earlier code's use is unconfirmed: the same next SO PIN is carried
    /// again, so the key ends at it whichever state it is in). Returns the generations.
    pub async fn reserve_so_pin_generation(
        &mut self,
        so_identity: &str,
        request_id: &str,
    ) -> Result<SoPinGeneration, StoreError> {
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO so_pin_generations (so_identity, current_generation, \
             pending_generation, pending_request_id, updated_at) VALUES ($1, 0, 1, $2, $3) \
             ON CONFLICT (so_identity) DO UPDATE SET \
             pending_generation = COALESCE(so_pin_generations.pending_generation, \
             so_pin_generations.current_generation + 1), pending_request_id = $2, updated_at = $3",
        )
        .bind(so_identity)
        .bind(request_id)
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("reserving an SO PIN generation")?;
        self.so_pin_generation(so_identity).await
    }

    /// The pending generation becomes current (the customer's tool rotated the SO PIN).
    /// Returns the generations before the change; `None` pending means nothing changed.
    pub async fn confirm_so_pin_generation(
        &mut self,
        so_identity: &str,
    ) -> Result<SoPinGeneration, StoreError> {
        let before = self.so_pin_generation(so_identity).await?;
        if before.pending.is_some() {
            let now = format_utc(self.now());
            sqlx::query(
                "UPDATE so_pin_generations SET current_generation = pending_generation, \
                 pending_generation = NULL, pending_request_id = NULL, updated_at = $1 \
                 WHERE so_identity = $2",
            )
            .bind(&now)
            .bind(so_identity)
            .execute(self.conn())
            .await
            .ctx("confirming an SO PIN generation")?;
        }
        Ok(before)
    }

    /// Records an unlock request's public half. A request code used before is
    /// [`StoreError::UnlockCodeUsed`].
    pub async fn insert_unlock_request(
        &mut self,
        request_id: &str,
        token_serial: &str,
        request_nonce: &str,
        ephemeral_public: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO unlock_requests (request_id, token_serial, request_nonce, \
             ephemeral_public) VALUES ($1, $2, $3, $4)",
        )
        .bind(request_id)
        .bind(token_serial)
        .bind(request_nonce)
        .bind(ephemeral_public)
        .execute(self.conn())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::UnlockCodeUsed,
            _ => StoreError::Db {
                context: "recording an unlock request",
                source: e,
            },
        })?;
        Ok(())
    }

    /// An unlock request's public half, read in this transaction.
    pub async fn unlock_request(&mut self, request_id: &str) -> Result<UnlockRecord, StoreError> {
        let sql = format!("SELECT {UNLOCK_COLUMNS} FROM unlock_requests WHERE request_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(request_id)
            .fetch_optional(self.conn())
            .await
            .ctx("reading an unlock request")?
            .ok_or_else(|| StoreError::RequestNotFound(request_id.to_string()))?;
        unlock_row(&row).ctx("reading an unlock request")
    }

    /// Records a send of the code (claim before contacting the server, then its outcome).
    pub async fn record_unlock_send(
        &mut self,
        request_id: &str,
        record: &SendRecord,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let q = match record {
            SendRecord::Sending {
                destination_masked,
                expires_at,
            } => sqlx::query(
                "UPDATE unlock_requests SET send_state = 'sending', sends = sends + 1, \
                 destination_masked = $1, expires_at = $2, last_error = NULL \
                 WHERE request_id = $3",
            )
            .bind(destination_masked.clone())
            .bind(expires_at.clone()),
            SendRecord::Sent => sqlx::query(
                "UPDATE unlock_requests SET send_state = 'sent', sent_at = $1 \
                 WHERE request_id = $2",
            )
            .bind(now),
            SendRecord::Failed(why) => sqlx::query(
                "UPDATE unlock_requests SET send_state = 'failed', last_error = $1 \
                 WHERE request_id = $2",
            )
            .bind(why.clone()),
            SendRecord::InDoubt(why) => sqlx::query(
                "UPDATE unlock_requests SET send_state = 'in_doubt', last_error = $1 \
                 WHERE request_id = $2",
            )
            .bind(why.clone()),
        };
        q.bind(request_id)
            .execute(self.conn())
            .await
            .ctx("recording the send of an unlock code")?;
        Ok(())
    }
}

impl Store {
    /// The SO PIN generation of the token with `so_identity`.
    pub async fn so_pin_generation(
        &self,
        so_identity: &str,
    ) -> Result<SoPinGeneration, StoreError> {
        let row = sqlx::query(GEN_SQL)
            .bind(so_identity)
            .fetch_optional(self.pool())
            .await
            .ctx("reading an SO PIN generation")?;
        read_generation(row)
    }

    /// An unlock request's public half, if `request_id` is an unlock request.
    pub async fn unlock_request(
        &self,
        request_id: &str,
    ) -> Result<Option<UnlockRecord>, StoreError> {
        let sql = format!("SELECT {UNLOCK_COLUMNS} FROM unlock_requests WHERE request_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(request_id)
            .fetch_optional(self.pool())
            .await
            .ctx("reading an unlock request")?
            .map(|r| unlock_row(&r))
            .transpose()
            .ctx("reading an unlock request")
    }

    /// Every key whose SO PIN rotation by an unlock code is not confirmed, by request id.
    pub async fn pending_unlocks(&self) -> Result<Vec<PendingUnlock>, StoreError> {
        let rows = sqlx::query(
            "SELECT g.pending_request_id, r.order_no, u.token_serial, u.expires_at \
             FROM so_pin_generations g \
             JOIN unlock_requests u ON u.request_id = g.pending_request_id \
             JOIN service_requests r ON r.id = g.pending_request_id \
             WHERE g.pending_generation IS NOT NULL ORDER BY g.pending_request_id",
        )
        .fetch_all(self.pool())
        .await
        .ctx("listing unconfirmed unlock codes")?;
        rows.iter()
            .map(|r| {
                Ok(PendingUnlock {
                    request_id: r.try_get("pending_request_id")?,
                    order_no: r.try_get("order_no")?,
                    token_serial: r.try_get("token_serial")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .ctx("listing unconfirmed unlock codes")
    }
}
