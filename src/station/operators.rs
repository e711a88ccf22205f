//! Who is acting (issue 17): registered operators, their credentials, and the one check every
//! state-changing command goes through ([`Station::operator_actor`]).
//!
//! Identity is a per-operator credential file: a random 32-byte token (hex, with a `ksop1_`
//! prefix) written once, mode 0600, by `operator add --credential-out FILE` (the first
//! administrator's by `init`), and stored in the database only as its SHA-256. A command names
//! it with `--credential FILE` or `[operator] credential_file`; the station reads it, finds the
//! account, and checks that it is enabled and holds a role that permits the action
//! ([`crate::domain::operator`]). Every audit record the command writes names that account.
//!
//! The other proofs: the OS user running the command, mapped to an operator in
//! `[operator.os_users]` (the password database's name of the effective uid, never `$USER`), and
//! a front that authenticated its operator itself (the console's login,
//! [`Station::for_authenticated_operator`]). `--operator NAME` must name the operator proven; a name
//! alone proves nothing and is refused (`E-OPERATOR-CREDENTIAL`,
//! [`crate::domain::operator::proof`]).

use super::Station;
use crate::audit::event::{AuditEvent, FourEyes, OperatorAdded, OperatorChanged};
use crate::domain::operator::proof::{Proof, claimed_operator};
use crate::domain::operator::{Roles, authorize, roles_text};
use crate::domain::{Action, OperatorId, OperatorRefused, Role};
use crate::random::RandomError;
use crate::station::argument::InvalidArgument;
use crate::store::{Actor, AuditEntry, NewOperator, OperatorRecord, StoreError, Tx};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The prefix of a credential token (its format's version).
pub(super) const TOKEN_PREFIX: &str = "ksop1_";

/// The most bytes read from a credential file.
const CREDENTIAL_MAX_BYTES: u64 = 1024;

/// The first administrator's name at `init`.
pub const FIRST_ADMINISTRATOR: &str = "admin";

/// Errors managing operators.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// Refused (who acts, or the change itself), or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument is not acceptable (named).
    #[error(transparent)]
    Invalid(#[from] InvalidArgument),
    /// No token could be drawn.
    #[error("drawing an operator credential: {0}")]
    Random(#[from] RandomError),
    /// A new console password does not meet the policy.
    #[error("password: {0}")]
    Password(crate::domain::password::PasswordRefused),
    /// The HSM (the vault, sealing a TOTP secret) failed.
    #[error(transparent)]
    Hsm(#[from] super::hsm::HsmError),
    /// The credential file could not be written (it is never overwritten).
    #[error("writing the credential file {path}: {source}")]
    CredentialFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What an administrator changes on an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorChange {
    /// It may no longer act.
    Disable,
    /// It may act again.
    Enable,
    /// Its roles become these.
    SetRoles(Roles),
}

/// SHA-256 (hex) of a credential token, as stored.
pub(super) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token from `random`: `prefix` and 32 random bytes in hex (an operator's credential,
/// an API token).
pub(super) fn new_token(
    random: &dyn crate::random::Random,
    prefix: &str,
) -> Result<Zeroizing<String>, RandomError> {
    let bytes = Zeroizing::new(random.bytes::<32>()?);
    Ok(Zeroizing::new(format!(
        "{prefix}{}",
        hex::encode(bytes.as_slice())
    )))
}

/// Whether `token` has the form [`new_token`] gives with `prefix` (64 lower-case hex digits).
pub(super) fn well_formed(token: &str, prefix: &str) -> bool {
    token.strip_prefix(prefix).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// Reads the token of the credential file `path` (never in an error).
fn read_token(path: &Path) -> Result<Zeroizing<String>, OperatorRefused> {
    let bad = |problem: String| OperatorRefused::BadCredential {
        file: path.display().to_string(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if let Some(why) = crate::private_files::too_open(&meta) {
        return Err(bad(why));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(CREDENTIAL_MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|_| bad("not a credential (not text)".into()))?;
    let token = text.trim();
    if !well_formed(token, TOKEN_PREFIX) {
        return Err(bad(format!(
            "not a credential (one line: {TOKEN_PREFIX} and 64 hex digits)"
        )));
    }
    Ok(Zeroizing::new(token.to_string()))
}

/// How a station instance knows who acts (see the module docs and
/// [`crate::domain::operator::proof`]).
#[derive(Debug, Clone, Default)]
pub(crate) enum Identity {
    /// A command: the OS user running it, when `[operator.os_users]` maps it.
    #[default]
    Command,
    /// A command with an operator credential file.
    Credential(std::sync::Arc<PathBuf>),
    /// A front that authenticated its operator itself (the console after login): it acts by
    /// the name it passes.
    Front,
}

/// The login name of the effective uid (the password database, never `$USER`).
fn os_user() -> String {
    whoami::username().unwrap_or_else(|_| format!("uid {}", rustix::process::geteuid().as_raw()))
}

impl Station {
    /// The same station acting with the operator credential in `file` (a front passes
    /// `--credential`); without one, the configuration's `[operator] credential_file`; without
    /// either, as the OS user's operator (`[operator.os_users]`), if mapped.
    pub fn with_credential(self, file: Option<PathBuf>) -> Station {
        let identity = file
            .or_else(|| {
                self.config
                    .operator
                    .credential_file
                    .as_ref()
                    .map(|p| self.config.path(p))
            })
            .map(|f| Identity::Credential(std::sync::Arc::new(f)))
            .unwrap_or_default();
        Station { identity, ..self }
    }

    /// What proves who acts ([`Proof`]): the credential's account (unknown credential:
    /// refused), the OS user and its mapping, or the front.
    async fn proof(&self) -> Result<Proof, StoreError> {
        match &self.identity {
            Identity::Credential(path) => {
                let token = read_token(path)?;
                let account = self
                    .store
                    .operator_by_credential(&token_hash(&token))
                    .await?
                    .ok_or_else(|| {
                        OperatorRefused::UnknownCredential(path.display().to_string())
                    })?;
                Ok(Proof::Credential(account.name))
            }
            Identity::Command => {
                let user = os_user();
                let operator = match self.config.operator.os_users.get(&user) {
                    Some(name) => Some(OperatorId::parse(name).map_err(|e| {
                        OperatorRefused::BadCredential {
                            file: format!("[operator.os_users] {user}"),
                            problem: e.to_string(),
                        }
                    })?),
                    None => None,
                };
                Ok(Proof::OsUser { user, operator })
            }
            Identity::Front => Ok(Proof::Front),
        }
    }

    /// The one check of who acts: the registered operator doing `action`, as the actor of the
    /// audit records it writes. `claimed` is the name the front was given (`--operator`), which
    /// must be the one proven ([`claimed_operator`]).
    pub async fn acting_operator(
        &self,
        claimed: Option<&str>,
        action: Action,
    ) -> Result<(OperatorRecord, Actor), StoreError> {
        let claimed = claimed
            .map(|c| {
                OperatorId::parse(c).map_err(|e| OperatorRefused::BadCredential {
                    file: "--operator".into(),
                    problem: e.to_string(),
                })
            })
            .transpose()?;
        let name = claimed_operator(&self.proof().await?, claimed.as_ref())?;
        let account = self
            .store
            .operator(&name)
            .await?
            .ok_or(OperatorRefused::NotRegistered(name))?;
        authorize(&account.name, &account.roles, account.enabled, action)?;
        let actor = self.operator_actor_unchecked(account.name.as_str());
        Ok((account, actor))
    }

    /// Who may change `name`'s own login secrets (console password, TOTP): the operator
    /// themselves by their own credential or mapped OS user (enabled), or an administrator.
    pub(super) async fn self_or_administrator(
        &self,
        name: &OperatorId,
    ) -> Result<Actor, StoreError> {
        let proven = match self.proof().await? {
            Proof::Credential(op)
            | Proof::OsUser {
                operator: Some(op), ..
            } => Some(op),
            Proof::OsUser { operator: None, .. } | Proof::Front => None,
        };
        if proven.as_ref() == Some(name) {
            let account = self
                .store
                .operator(name)
                .await?
                .ok_or_else(|| OperatorRefused::NotRegistered(name.clone()))?;
            if !account.enabled {
                return Err(OperatorRefused::Disabled(account.name).into());
            }
            return Ok(self.operator_actor_unchecked(account.name.as_str()));
        }
        Ok(self.acting_operator(None, Action::ManageOperators).await?.1)
    }

    /// [`Station::acting_operator`] for a command that names its operator: the actor.
    pub async fn operator_actor(&self, claimed: &str, action: Action) -> Result<Actor, StoreError> {
        Ok(self.acting_operator(Some(claimed), action).await?.1)
    }

    /// Every operator account, by name.
    pub async fn operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.store.operators().await
    }

    /// The demo's operators (`demo-intake`, `demo-reviewer`, `demo-shipping`, the simulated bank), added by the
    /// station itself when missing, each with its credential in the data directory.
    pub(super) async fn demo_operators(&self) -> Result<(), OperatorError> {
        for (name, role) in [
            ("demo-intake", Role::Reviewer),
            ("demo-reviewer", Role::Reviewer),
            ("demo-desk", Role::Provisioner),
            ("demo-shipping", Role::Provisioner),
            ("demo-simulated-bank", Role::Provisioner),
        ] {
            let name = OperatorId::parse(name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if self.store.operator(&name).await?.is_some() {
                continue;
            }
            let file = self.config.data_dir().join(format!("{name}.credential"));
            let actor = self.station_actor();
            let mut tx = self.begin_write().await?;
            add_in(
                &mut tx,
                &actor,
                (&name, &[role].into()),
                self.random.as_ref(),
                &file,
                &Provenance::default(),
            )
            .await?;
            if let Err(e) = tx.commit().await {
                let _ = crate::private_files::erase_file(&file);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The station acting as the demo's operator `name` ([`Station::demo_operators`]), by its
    /// credential in the data directory.
    pub(super) fn as_demo_operator(&self, name: &str) -> Station {
        let file = self.config.data_dir().join(format!("{name}.credential"));
        self.clone().with_credential(Some(file))
    }

    /// The actor named `name` in the bound operation, unchecked: only for
    /// [`Station::acting_operator`] and the station's own first administrator.
    pub(super) fn operator_actor_unchecked(&self, name: &str) -> Actor {
        Actor {
            name: name.to_string(),
            station_id: Some(self.config.station.id.clone()),
            operation_id: self.operation.id().to_string(),
        }
    }
}

/// Adds the account `name` in `tx` (audited as `actor`) and writes its new credential to
/// `credential_out`; the caller commits, or erases the file when it cannot.
pub(super) async fn add_in(
    tx: &mut Tx,
    actor: &Actor,
    (name, roles): (&OperatorId, &Roles),
    random: &dyn crate::random::Random,
    credential_out: &Path,
    how: &Provenance,
) -> Result<(), OperatorError> {
    let token = new_token(random, TOKEN_PREFIX)?;
    tx.insert_operator(&NewOperator {
        name: name.clone(),
        roles: roles.clone(),
        credential_hash: token_hash(&token),
        created_by: actor.name.clone(),
    })
    .await?;
    tx.audit(
        actor,
        AuditEntry::new(AuditEvent::OperatorAdded(OperatorAdded {
            operator: name.to_string(),
            roles: roles_text(roles),
            added_by: actor.name.clone(),
            four_eyes: how.four_eyes.clone(),
            bootstrap: how.bootstrap,
        })),
    )
    .await?;
    let line = Zeroizing::new(format!("{}\n", token.as_str()));
    crate::private_files::write_new_file(credential_out, line.as_bytes()).map_err(|source| {
        OperatorError::CredentialFile {
            path: credential_out.to_path_buf(),
            source,
        }
    })
}

/// How a change of operators or API tokens came to be carried out, as its audit record says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Provenance {
    /// The station request it carries out (who asked, who approved).
    pub four_eyes: Option<FourEyes>,
    /// It took effect at once: the station's only enabled administrator made it.
    pub bootstrap: bool,
}

/// Changes the account `name` in `tx` (audited as `actor`); the last enabled administrator
/// stays one. The caller commits.
pub(super) async fn change_in(
    tx: &mut Tx,
    actor: &Actor,
    name: &OperatorId,
    change: OperatorChange,
    how: &Provenance,
) -> Result<OperatorRecord, OperatorError> {
    let before = tx
        .operator_in_tx(name)
        .await?
        .ok_or_else(|| StoreError::from(OperatorRefused::NotRegistered(name.clone())))?;
    let mut after = before.clone();
    match change {
        OperatorChange::Disable => after.enabled = false,
        OperatorChange::Enable => after.enabled = true,
        OperatorChange::SetRoles(roles) => after.roles = roles,
    }
    if before.is_active_administrator()
        && !after.is_active_administrator()
        && tx.active_administrators().await? == [name.clone()]
    {
        return Err(StoreError::from(OperatorRefused::LastAdministrator(name.clone())).into());
    }
    tx.update_operator(name, &after.roles, after.enabled)
        .await?;
    tx.audit(
        actor,
        AuditEntry::new(AuditEvent::OperatorChanged(OperatorChanged {
            operator: name.to_string(),
            roles_before: roles_text(&before.roles),
            roles: roles_text(&after.roles),
            enabled_before: before.enabled,
            enabled: after.enabled,
            changed_by: actor.name.clone(),
            four_eyes: how.four_eyes.clone(),
            bootstrap: how.bootstrap,
        })),
    )
    .await?;
    tx.operator_in_tx(name)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("operator {name} vanished")).into())
}

/// The roles of the first administrator `init` makes.
pub fn first_administrator_roles() -> Roles {
    [Role::Administrator].into()
}

/// The `NAME` argument of an operator command, parsed.
pub(super) fn name_arg(name: &str) -> Result<OperatorId, OperatorError> {
    OperatorId::parse(name).map_err(|e| {
        OperatorError::Invalid(InvalidArgument {
            field: "NAME",
            message: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_is_prefixed_hex_of_32_bytes_and_read_back_only_from_a_private_file() {
        let random = crate::random::SeededRandom::new(3);
        let token = new_token(&random, TOKEN_PREFIX).unwrap();
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(
            token.as_str(),
            new_token(&random, TOKEN_PREFIX).unwrap().as_str()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cred");
        crate::private_files::write_new_file(&path, format!("{}\n", *token).as_bytes()).unwrap();
        assert_eq!(read_token(&path).unwrap().as_str(), token.as_str());
        // Written once: never overwritten.
        assert!(crate::private_files::write_new_file(&path, b"x").is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains(&token[TOKEN_PREFIX.len()..]), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "ksop1_nothex").unwrap();
        assert!(
            read_token(&path)
                .unwrap_err()
                .to_string()
                .contains("not a credential")
        );
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token[TOKEN_PREFIX.len()..]);
    }
}
