//! `station.toml`: the station's configuration.
//!
//! Versioned (`version = 1`) and strict: every table has `deny_unknown_fields`, so a misspelt key
//! is an error at start-up instead of a silently ignored setting. Relative paths are resolved
//! against `station.data_dir`, itself relative to the directory of the config file. No secret is
//! ever written in this file: secrets live in files it points to (`pkcs11.pin_file`, ...).
//!
//! - this file: the [`Config`] as a whole, loading it, and the paths it resolves;
//! - `sections`: the station's own tables (`[station]`, `[database]`, `[pkcs11]`, `[ca]`,
//!   `[vault]`, `[product]`, `[seal]`, `[crl]`) with their defaults;
//! - `delivery`: the `[delivery]` tables (trigger, retries, SMS channels, bank) with theirs;
//! - `serve`: `[ocsp]`, `[serve]` and `[console]`, what `keystation serve` publishes and where;
//! - `api`: `[api]`, the order API's webhook;
//! - `check`: the rules a loaded file must meet, checked once at start-up.

mod api;
mod check;
mod delivery;
mod sections;
mod serve;
#[cfg(test)]
mod tests;

pub use api::{ApiSection, ApiWebhookSection};
pub use delivery::{
    AliyunConfirm, AliyunSection, BankSection, DeliverySection, DeliveryTrigger, EmailSection,
    NoticesSection, SmsKind, SmsSection, SmtpSecurity, WebhookSection,
};
pub use sections::{
    CaSection, CrlSection, DatabaseSection, OperatorSection, Pkcs11Section, ProductSection,
    SealSection, StationSection, VaultSection,
};
pub use serve::{ConsoleSection, OcspSection, RESPONSE_VALIDITY_SECS, ServeSection};

use crate::domain::PinPolicy;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config format this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The name of a station's configuration file in its directory (found there when no
/// `--config` is given).
pub const FILE_NAME: &str = "station.toml";

/// The example configuration that `keystation init` starts from.
pub const EXAMPLE: &str = include_str!("../../hsm-config/station.example.toml");

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown/mistyped key.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// What toml reported (names the key).
        message: String,
    },
    /// A value outside what the station supports.
    #[error("invalid config value {key}: {message}")]
    Value {
        /// The dotted key.
        key: &'static str,
        /// Why.
        message: String,
    },
    /// No config file was given, `KEYSTATION_CONFIG` is not set and the current directory has
    /// no `station.toml`.
    #[error(
        "no configuration: pass --config FILE, set KEYSTATION_CONFIG, or run from the station's \
         directory (./station.toml); create one with `keystation init --dir DIR`"
    )]
    Missing,
}

impl crate::error_code::Coded for ConfigError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            ConfigError::Read { .. } | ConfigError::Parse { .. } | ConfigError::Value { .. } => {
                ec::CONFIG_INVALID
            }
            ConfigError::Missing => ec::CONFIG_MISSING,
        }
    }
}

/// Key algorithms the station can generate on PKCS#11 tokens; one enum for the crate, in
/// `domain`.
pub use crate::domain::KeyAlgorithm;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; must be [`CONFIG_VERSION`].
    pub version: u32,
    /// This station.
    pub station: StationSection,
    /// Where orders, journal and audit live.
    pub database: DatabaseSection,
    /// The PKCS#11 module and the station's own token PIN.
    #[serde(default)]
    pub pkcs11: Pkcs11Section,
    /// The issuing CA.
    #[serde(default)]
    pub ca: CaSection,
    /// The vault token (SO PIN derivation, PIN sealing).
    #[serde(default)]
    pub vault: VaultSection,
    /// What goes onto customers' keys.
    #[serde(default)]
    pub product: ProductSection,
    /// User PIN policy.
    #[serde(default)]
    pub pin: PinPolicy,
    /// Electronic seals.
    #[serde(default)]
    pub seal: SealSection,
    /// PIN delivery: trigger, retries, SMS and bank channels.
    #[serde(default)]
    pub delivery: DeliverySection,
    /// Certificate revocation lists: validity, publication.
    #[serde(default)]
    pub crl: CrlSection,
    /// The OCSP responder: URL, delegated signer, answer validity.
    #[serde(default)]
    pub ocsp: OcspSection,
    /// `keystation serve`: where it listens.
    #[serde(default)]
    pub serve: ServeSection,
    /// The operators' console of `keystation serve`.
    #[serde(default)]
    pub console: ConsoleSection,
    /// Who commands act as: `credential_file`.
    #[serde(default)]
    pub operator: OperatorSection,
    /// The order API: its webhook.
    #[serde(default)]
    pub api: ApiSection,
    /// Directory the config file is in (not a key of the file).
    #[serde(skip)]
    pub config_dir: PathBuf,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(sections::dot);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Config::parse(&text, &dir).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text as if it were in `config_dir`.
    pub fn parse(text: &str, config_dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.config_dir = config_dir.to_path_buf();
        cfg.check()?;
        Ok(cfg)
    }

    /// The data directory, absolute.
    pub fn data_dir(&self) -> PathBuf {
        without_dot_components(&self.config_dir.join(&self.station.data_dir))
    }

    /// The PKCS#11 module of the vault token: `vault.module`, else `pkcs11.module` (none: SoftHSM).
    pub fn vault_module(&self) -> Option<&Path> {
        self.vault
            .module
            .as_deref()
            .or(self.pkcs11.module.as_deref())
    }

    /// Resolves a path from the config against the data directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            without_dot_components(&self.data_dir().join(p))
        }
    }

    /// The database URL with a relative SQLite path made absolute.
    pub fn database_url(&self) -> String {
        let url = &self.database.url;
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            let path = path.trim_start_matches("//");
            if path == ":memory:" {
                return url.clone();
            }
            let abs = self.path(Path::new(path));
            let mut out = format!("sqlite://{}", abs.display());
            if let Some(q) = query {
                out.push('?');
                out.push_str(q);
            }
            out
        } else {
            url.clone()
        }
    }
}

/// Drops `.` components so printed paths (README hints, `SOFTHSM2_CONF=...`) read cleanly.
fn without_dot_components(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// `url` as a message or the terminal may show it: a password in it (`scheme://user:PASSWORD@host`)
/// becomes `***`, since no secret goes into a log, an error or an output.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
