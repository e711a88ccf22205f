//! Registered operators (migration 0015): name, roles, enabled, who added them, and the hash of
//! their credential (never the credential itself); for the console (migration 0018), the
//! argon2id hash of their password, their TOTP secret sealed by the vault, and the last TOTP
//! step accepted. The station resolves and authorises; the store only keeps the rows.

use super::{DbContext, Store, StoreError, Tx};
use crate::clock::format_utc;
use crate::domain::operator::{Role, Roles, parse_roles, roles_text};
use crate::domain::{OperatorId, OperatorRefused, SealedKey};
use sqlx::Row;
use sqlx::any::AnyRow;

/// `SELECT` of an account's columns followed by `$rest` (a literal: no SQL is built at run
/// time).
macro_rules! select_operators {
    ($rest:literal) => {
        concat!(
            "SELECT name, roles, enabled, created_by, created_at, updated_at FROM operators ",
            $rest
        )
    };
}

/// An operator account as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorRecord {
    /// The name audit records give.
    pub name: OperatorId,
    /// What it may do.
    pub roles: Roles,
    /// Whether it may act at all.
    pub enabled: bool,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// Last change (roles, enabled).
    pub updated_at: String,
}

impl OperatorRecord {
    /// Whether it is an enabled administrator.
    pub fn is_active_administrator(&self) -> bool {
        self.enabled && self.roles.contains(&Role::Administrator)
    }
}

/// An account to add.
#[derive(Debug, Clone)]
pub struct NewOperator {
    /// Its name.
    pub name: OperatorId,
    /// Its roles.
    pub roles: Roles,
    /// SHA-256 (hex) of its credential token.
    pub credential_hash: String,
    /// Who adds it.
    pub created_by: String,
}

/// What a console login checks of an account, as stored (nothing here is a secret in clear).
#[derive(Debug, Clone)]
pub struct LoginSecrets {
    /// The account.
    pub account: OperatorRecord,
    /// Its argon2id PHC string, once a password is set.
    pub password_hash: Option<String>,
    /// Its TOTP secret sealed by the vault, once enrolled.
    pub totp_sealed: Option<SealedKey>,
    /// The last TOTP time step accepted.
    pub totp_last_step: Option<i64>,
}

fn record(r: &AnyRow) -> Result<OperatorRecord, StoreError> {
    let text = |c: &'static str| r.try_get::<String, _>(c).ctx("reading an operator");
    let name = text("name")?;
    let name = OperatorId::parse(&name)
        .map_err(|e| StoreError::Corrupt(format!("operators.name: {e}")))?;
    let roles = parse_roles(&text("roles")?)
        .map_err(|e| StoreError::Corrupt(format!("operators.roles of {name}: {e}")))?;
    let enabled: i64 = r.try_get("enabled").ctx("reading an operator")?;
    Ok(OperatorRecord {
        name,
        roles,
        enabled: enabled != 0,
        created_by: text("created_by")?,
        created_at: text("created_at")?,
        updated_at: text("updated_at")?,
    })
}

impl Tx {
    /// The account `name`, read inside this transaction.
    pub async fn operator_in_tx(
        &mut self,
        name: &OperatorId,
    ) -> Result<Option<OperatorRecord>, StoreError> {
        let row = sqlx::query(select_operators!("WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(self.conn())
            .await
            .ctx("reading an operator")?;
        row.as_ref().map(record).transpose()
    }

    /// Adds an account (enabled); [`OperatorRefused::Exists`] when the name is taken. The
    /// caller audits.
    pub async fn insert_operator(&mut self, op: &NewOperator) -> Result<(), StoreError> {
        if self.operator_in_tx(&op.name).await?.is_some() {
            return Err(OperatorRefused::Exists(op.name.clone()).into());
        }
        let now = format_utc(self.now());
        sqlx::query(
            "INSERT INTO operators (name, roles, enabled, credential_hash, created_by, \
             created_at, updated_at) VALUES ($1, $2, 1, $3, $4, $5, $5)",
        )
        .bind(op.name.as_str())
        .bind(roles_text(&op.roles))
        .bind(&op.credential_hash)
        .bind(&op.created_by)
        .bind(&now)
        .execute(self.conn())
        .await
        .ctx("adding an operator")?;
        Ok(())
    }

    /// Sets an existing account's roles and enabled flag (the caller read it in this
    /// transaction and audits).
    pub async fn update_operator(
        &mut self,
        name: &OperatorId,
        roles: &Roles,
        enabled: bool,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let done = sqlx::query(
            "UPDATE operators SET roles = $1, enabled = $2, updated_at = $3 WHERE name = $4",
        )
        .bind(roles_text(roles))
        .bind(i64::from(enabled))
        .bind(&now)
        .bind(name.as_str())
        .execute(self.conn())
        .await
        .ctx("changing an operator")?;
        if done.rows_affected() != 1 {
            return Err(OperatorRefused::NotRegistered(name.clone()).into());
        }
        Ok(())
    }

    /// The enabled administrators, read inside this transaction.
    pub async fn active_administrators(&mut self) -> Result<Vec<OperatorId>, StoreError> {
        let rows = sqlx::query(select_operators!("WHERE enabled = 1 ORDER BY name"))
            .fetch_all(self.conn())
            .await
            .ctx("listing administrators")?;
        let all = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        Ok(all
            .into_iter()
            .filter(OperatorRecord::is_active_administrator)
            .map(|o| o.name)
            .collect())
    }
}

impl Tx {
    /// Sets the account's console password hash (the caller audits).
    pub async fn set_operator_password(
        &mut self,
        name: &OperatorId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let done =
            sqlx::query("UPDATE operators SET password_hash = $1, updated_at = $2 WHERE name = $3")
                .bind(password_hash)
                .bind(&now)
                .bind(name.as_str())
                .execute(self.conn())
                .await
                .ctx("setting an operator's password")?;
        if done.rows_affected() != 1 {
            return Err(OperatorRefused::NotRegistered(name.clone()).into());
        }
        Ok(())
    }

    /// Sets the account's sealed TOTP secret; no step of the new secret is used yet (the caller
    /// audits).
    pub async fn set_operator_totp(
        &mut self,
        name: &OperatorId,
        sealed: &SealedKey,
    ) -> Result<(), StoreError> {
        let now = format_utc(self.now());
        let done = sqlx::query(
            "UPDATE operators SET totp_sealed = $1, totp_last_step = NULL, updated_at = $2 \
             WHERE name = $3",
        )
        .bind(&sealed.0)
        .bind(&now)
        .bind(name.as_str())
        .execute(self.conn())
        .await
        .ctx("enrolling an operator's TOTP")?;
        if done.rows_affected() != 1 {
            return Err(OperatorRefused::NotRegistered(name.clone()).into());
        }
        Ok(())
    }

    /// Records `step` as the account's last accepted TOTP step, only if it is later than the
    /// stored one: false when another login took this step (or a later one) first. One
    /// conditional `UPDATE`, so two logins racing with the same code cannot both win.
    pub async fn take_totp_step(
        &mut self,
        name: &OperatorId,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE operators SET totp_last_step = $1 \
             WHERE name = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(name.as_str())
        .execute(self.conn())
        .await
        .ctx("recording a TOTP step")?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// What a console login checks of the account `name`, if registered.
    pub async fn login_secrets(
        &self,
        name: &OperatorId,
    ) -> Result<Option<LoginSecrets>, StoreError> {
        let row = sqlx::query(
            "SELECT name, roles, enabled, created_by, created_at, updated_at, password_hash, \
             totp_sealed, totp_last_step FROM operators WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .ctx("reading an operator's login")?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(LoginSecrets {
            account: record(&r)?,
            password_hash: r
                .try_get("password_hash")
                .ctx("reading an operator's login")?,
            totp_sealed: r
                .try_get::<Option<Vec<u8>>, _>("totp_sealed")
                .ctx("reading an operator's login")?
                .map(SealedKey),
            totp_last_step: r
                .try_get("totp_last_step")
                .ctx("reading an operator's login")?,
        }))
    }

    /// The account `name`, if registered.
    pub async fn operator(&self, name: &OperatorId) -> Result<Option<OperatorRecord>, StoreError> {
        let row = sqlx::query(select_operators!("WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .ctx("reading an operator")?;
        row.as_ref().map(record).transpose()
    }

    /// The account whose credential hashes to `hash`, if any.
    pub async fn operator_by_credential(
        &self,
        hash: &str,
    ) -> Result<Option<OperatorRecord>, StoreError> {
        let row = sqlx::query(select_operators!("WHERE credential_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .ctx("resolving an operator credential")?;
        row.as_ref().map(record).transpose()
    }

    /// Every account, by name.
    pub async fn operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        let rows = sqlx::query(select_operators!("ORDER BY name"))
            .fetch_all(&self.pool)
            .await
            .ctx("listing operators")?;
        rows.iter().map(record).collect()
    }
}
