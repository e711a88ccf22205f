//! `station.toml`: the station's configuration.
//!
//! Versioned (`version = 1`) and strict: every table has `deny_unknown_fields`, so a misspelt key
//! is an error at start-up instead of a silently ignored setting. Relative paths are resolved
//! against `station.data_dir`, itself relative to the directory of the config file. No secret is
//! ever written in this file: secrets live in files it points to (`pkcs11.pin_file`, ...).

use crate::domain::PinPolicy;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config format this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The example configuration that `keystation init` starts from.
pub const EXAMPLE: &str = include_str!("../hsm-config/station.example.toml");

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
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
    /// No config file was given and `KEYSTATION_CONFIG` is not set.
    #[error(
        "no configuration: pass --config FILE or set KEYSTATION_CONFIG (create one with `keystation init --dir DIR`)"
    )]
    Missing,
}

/// Key algorithms the station can generate on PKCS#11 tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (default; PKCS#11 has no standard SM2 mechanism).
    EcdsaP256,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
}

impl KeyAlgorithm {
    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
        }
    }
}

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
    /// Directory the config file is in (not a key of the file).
    #[serde(skip)]
    pub config_dir: PathBuf,
}

/// `[station]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSection {
    /// Name of this station in audit records and job leases.
    pub id: String,
    /// Data directory; relative paths elsewhere are resolved against it.
    #[serde(default = "dot")]
    pub data_dir: PathBuf,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://station.db` (relative to the data dir) or `postgres://...`.
    pub url: String,
}

/// `[pkcs11]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// Path of the PKCS#11 module; default: SoftHSM2 in its usual Debian locations.
    pub module: Option<PathBuf>,
    /// SoftHSM only: its configuration file (exported as `SOFTHSM2_CONF` for the module).
    pub softhsm2_conf: Option<PathBuf>,
    /// File holding the user PIN of the CA and vault tokens (mode 0600, see README "Secrets").
    #[serde(default = "default_pin_file")]
    pub pin_file: PathBuf,
    /// USB key models (vendor/product id -> model, module).
    #[serde(default = "default_usb_tokens")]
    pub usb_tokens: PathBuf,
}

impl Default for Pkcs11Section {
    fn default() -> Self {
        Pkcs11Section {
            module: None,
            softhsm2_conf: None,
            pin_file: default_pin_file(),
            usb_tokens: default_usb_tokens(),
        }
    }
}

/// `[ca]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Label of the token holding the CA key.
    #[serde(default = "default_ca_token")]
    pub token_label: String,
    /// Label (and CKA_LABEL) of the CA private key on that token.
    #[serde(default = "default_ca_key")]
    pub key_label: String,
    /// Algorithm of a CA key created by `init`.
    #[serde(default = "default_alg")]
    pub key_algorithm: KeyAlgorithm,
    /// CA certificate (PEM), written by `init` or provided for an existing CA.
    #[serde(default = "default_ca_cert")]
    pub certificate: PathBuf,
    /// Subject CN of a CA created by `init`.
    #[serde(default = "default_ca_cn")]
    pub common_name: String,
    /// Subject O of a CA created by `init`.
    #[serde(default = "default_ca_org")]
    pub organization: String,
    /// CRL distribution point put into issued certificates.
    #[serde(default = "default_crl_url")]
    pub crl_url: String,
    /// Validity of a CA certificate created by `init`, in years.
    #[serde(default = "default_ca_years")]
    pub validity_years: u8,
}

impl Default for CaSection {
    fn default() -> Self {
        CaSection {
            token_label: default_ca_token(),
            key_label: default_ca_key(),
            key_algorithm: default_alg(),
            certificate: default_ca_cert(),
            common_name: default_ca_cn(),
            organization: default_ca_org(),
            crl_url: default_crl_url(),
            validity_years: default_ca_years(),
        }
    }
}

/// `[vault]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Label of the vault token.
    #[serde(default = "default_vault_token")]
    pub token_label: String,
}

impl Default for VaultSection {
    fn default() -> Self {
        VaultSection {
            token_label: default_vault_token(),
        }
    }
}

/// `[product]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSection {
    /// Algorithm of the company key pair generated on the USB key.
    #[serde(default = "default_alg")]
    pub key_algorithm: KeyAlgorithm,
}

impl Default for ProductSection {
    fn default() -> Self {
        ProductSection {
            key_algorithm: default_alg(),
        }
    }
}

/// `[seal]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealSection {
    /// `vid` of the SES_Header (IA5, identifies the seal system vendor).
    #[serde(default = "default_vid")]
    pub vendor_id: String,
    /// Label of the seal-maker key on the CA token.
    #[serde(default = "default_maker_key")]
    pub maker_key_label: String,
    /// The seal maker's certificate (PEM), issued by the station's CA at `init`.
    #[serde(default = "default_maker_cert")]
    pub maker_certificate: PathBuf,
    /// Printed size of the company seal, millimetres (42 for joint-stock / state-owned).
    #[serde(default = "default_company_mm")]
    pub company_mm: (u32, u32),
    /// Printed size of the legal representative's seal, millimetres.
    #[serde(default = "default_legal_rep_mm")]
    pub legal_rep_mm: (u32, u32),
}

impl Default for SealSection {
    fn default() -> Self {
        SealSection {
            vendor_id: default_vid(),
            maker_key_label: default_maker_key(),
            maker_certificate: default_maker_cert(),
            company_mm: default_company_mm(),
            legal_rep_mm: default_legal_rep_mm(),
        }
    }
}

fn default_vid() -> String {
    "KEYSTATION".into()
}
fn default_maker_key() -> String {
    "seal-maker".into()
}
fn default_maker_cert() -> PathBuf {
    PathBuf::from("ca/seal-maker.pem")
}
fn default_company_mm() -> (u32, u32) {
    (40, 40)
}
fn default_legal_rep_mm() -> (u32, u32) {
    (20, 20)
}

fn dot() -> PathBuf {
    PathBuf::from(".")
}
fn default_pin_file() -> PathBuf {
    PathBuf::from("secrets/station-hsm.pin")
}
fn default_usb_tokens() -> PathBuf {
    PathBuf::from("usb-tokens.toml")
}
fn default_ca_token() -> String {
    "keystation-ca".into()
}
fn default_ca_key() -> String {
    "issuing-ca".into()
}
fn default_alg() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}
fn default_ca_cert() -> PathBuf {
    PathBuf::from("ca/ca.pem")
}
fn default_ca_cn() -> String {
    "keystation Demo Unit Certificate CA".into()
}
fn default_ca_org() -> String {
    "keystation Demo CA".into()
}
fn default_crl_url() -> String {
    "http://crl.keystation.invalid/unit-ca.crl".into()
}
fn default_ca_years() -> u8 {
    10
}
fn default_vault_token() -> String {
    "keystation-vault".into()
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
            .unwrap_or_else(dot);
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

    fn check(&self) -> Result<(), ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(ConfigError::Value {
                key: "version",
                message: format!(
                    "this keystation reads config version {CONFIG_VERSION}, the file says {}",
                    self.version
                ),
            });
        }
        if self.station.id.trim().is_empty() {
            return Err(ConfigError::Value {
                key: "station.id",
                message: "must not be empty".into(),
            });
        }
        if self.seal.vendor_id.is_empty() || !self.seal.vendor_id.is_ascii() {
            return Err(ConfigError::Value {
                key: "seal.vendor_id",
                message: "must be non-empty ASCII (an IA5String in the seal header)".into(),
            });
        }
        for (key, (w, h)) in [
            ("seal.company_mm", self.seal.company_mm),
            ("seal.legal_rep_mm", self.seal.legal_rep_mm),
        ] {
            if !(1..=200).contains(&w) || !(1..=200).contains(&h) {
                return Err(ConfigError::Value {
                    key,
                    message: format!("{w}x{h} mm is not a plausible seal size"),
                });
            }
        }
        self.pin.validate().map_err(|e| ConfigError::Value {
            key: "pin.length",
            message: e.to_string(),
        })?;
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Value {
                key: "database.url",
                message: "must start with sqlite: or postgres://".into(),
            });
        }
        for (key, label) in [
            ("ca.token_label", &self.ca.token_label),
            ("vault.token_label", &self.vault.token_label),
        ] {
            if label.is_empty() || label.len() > 32 {
                return Err(ConfigError::Value {
                    key,
                    message: "a PKCS#11 token label has 1 to 32 bytes".into(),
                });
            }
        }
        Ok(())
    }

    /// The data directory, absolute.
    pub fn data_dir(&self) -> PathBuf {
        without_dot_components(&self.config_dir.join(&self.station.data_dir))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn example_config_parses() {
        let cfg = Config::parse(EXAMPLE, Path::new("/srv/ks")).unwrap();
        assert_eq!(cfg.version, 1);
        assert_eq!(cfg.database_url(), "sqlite:///srv/ks/station.db?mode=rwc");
        assert_eq!(cfg.pin, PinPolicy::default());
    }

    #[test]
    fn key_algorithm_spellings() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let v = serde_json::to_value(alg).unwrap();
            assert_eq!(v, alg.as_str());
            assert_eq!(serde_json::from_value::<KeyAlgorithm>(v).unwrap(), alg);
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = EXAMPLE.replace("[database]", "[database]\nurll = \"x\"");
        let err = Config::parse(&text, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
    }

    #[test]
    fn wrong_version_is_an_error() {
        let text = EXAMPLE.replace("version = 1", "version = 2");
        assert!(matches!(
            Config::parse(&text, Path::new("/")),
            Err(ConfigError::Value { key: "version", .. })
        ));
    }

    #[test]
    fn bad_pin_policy_is_an_error() {
        let text = format!("{EXAMPLE}\n");
        let text = text.replace("length = 8", "length = 4");
        assert!(matches!(
            Config::parse(&text, Path::new("/")),
            Err(ConfigError::Value {
                key: "pin.length",
                ..
            })
        ));
    }
}
