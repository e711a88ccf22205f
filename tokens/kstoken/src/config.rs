//! The module's own configuration file, found the way SoftHSM finds `softhsm2.conf`: the file
//! named by `KSTOKEN_CONF`, else [`DEFAULT_PATH`]. It is read once, at `C_Initialize`.
//!
//! ```toml
//! token_dir = "tokens"          # relative paths are relative to this file's directory
//!
//! [pin]
//! user_max_tries = 6            # wrong user PINs before CKF_USER_PIN_LOCKED
//! so_max_tries = 10             # wrong SO PINs before CKF_SO_PIN_LOCKED
//! min_len = 4
//! max_len = 64
//!
//! [latency]                     # optional: milliseconds a real key spends per operation
//! keygen_ms = 0
//! sign_ms = 0
//! login_ms = 0
//! none_for_labels = ["KS-CA"]   # tokens that stand for an HSM partition (the CA's): no device time
//!
//! [sm2]
//! signature = "raw"             # "raw" r‖s (64 bytes) or "der" SEQUENCE { r, s }
//! ```
//!
//! Unknown keys are errors: a misspelt setting must not silently fall back to a default.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the configuration file.
pub const ENV_VAR: &str = "KSTOKEN_CONF";
/// Where the configuration file is looked for when [`ENV_VAR`] is not set.
pub const DEFAULT_PATH: &str = "/etc/kstoken/kstoken.conf";

/// How SM2 signatures leave the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// `r ‖ s`, 32 bytes each, as PKCS#11 returns ECDSA signatures.
    Raw,
    /// DER `SEQUENCE { r INTEGER, s INTEGER }`, as TASS modules return SM2 signatures.
    Der,
}

/// PIN policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinPolicy {
    /// Wrong user PINs in a row that lock the user PIN.
    pub user_max_tries: u32,
    /// Wrong SO PINs in a row that lock the SO PIN.
    pub so_max_tries: u32,
    /// Shortest PIN accepted.
    pub min_len: usize,
    /// Longest PIN accepted.
    pub max_len: usize,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            user_max_tries: 6,
            so_max_tries: 10,
            min_len: 4,
            max_len: 64,
        }
    }
}

/// Simulated time a real key spends on an operation (0 = none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    /// `C_GenerateKeyPair`.
    pub keygen_ms: u64,
    /// `C_Sign` / `C_SignFinal`.
    pub sign_ms: u64,
    /// `C_Login`.
    pub login_ms: u64,
    /// Labels of tokens that stand for an HSM partition rather than a USB key (the CA's
    /// token, when one module holds both): they spend no device time. A station's customers'
    /// keys are slow, its HSM is not.
    pub none_for_labels: Vec<String>,
}

impl Latency {
    /// The delay of one operation on the token labelled `label`.
    pub fn on(&self, label: &str, op: SlowOp) -> Duration {
        if self.none_for_labels.iter().any(|l| l == label) {
            Duration::ZERO
        } else {
            self.of(op)
        }
    }

    /// The delay of one operation on a USB key.
    pub fn of(&self, op: SlowOp) -> Duration {
        Duration::from_millis(match op {
            SlowOp::KeyGen => self.keygen_ms,
            SlowOp::Sign => self.sign_ms,
            SlowOp::Login => self.login_ms,
        })
    }
}

/// Operations that take device time on a real key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowOp {
    /// Key pair generation.
    KeyGen,
    /// A signature.
    Sign,
    /// A PIN check.
    Login,
}

/// SM2 behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sm2Settings {
    /// Encoding of SM2 signatures.
    pub signature: SignatureEncoding,
}

impl Default for Sm2Settings {
    fn default() -> Self {
        Sm2Settings {
            signature: SignatureEncoding::Raw,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    token_dir: PathBuf,
    #[serde(default)]
    pin: PinPolicy,
    #[serde(default)]
    latency: Latency,
    #[serde(default)]
    sm2: Sm2Settings,
}

/// The configuration in force.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding one sub-directory per initialised token.
    pub token_dir: PathBuf,
    /// PIN policy.
    pub pin: PinPolicy,
    /// Simulated latency.
    pub latency: Latency,
    /// SM2 behaviour.
    pub sm2: Sm2Settings,
}

impl Config {
    /// Reads the configuration named by `KSTOKEN_CONF` (or the default path).
    pub fn load_from_env() -> Result<Config, String> {
        let path = std::env::var_os(ENV_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        Config::load(&path)
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a configuration; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.pin.user_max_tries == 0 || file.pin.so_max_tries == 0 {
            return Err("pin.user_max_tries and pin.so_max_tries must be at least 1".into());
        }
        if file.pin.min_len == 0 || file.pin.min_len > file.pin.max_len {
            return Err("pin.min_len must be between 1 and pin.max_len".into());
        }
        let token_dir = if file.token_dir.is_absolute() {
            file.token_dir
        } else {
            base.join(file.token_dir)
        };
        Ok(Config {
            token_dir,
            pin: file.pin,
            latency: file.latency,
            sm2: file.sm2,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn minimal_file_takes_the_defaults_and_resolves_the_directory() {
        let c = Config::parse("token_dir = \"tokens\"\n", Path::new("/etc/x")).unwrap();
        assert_eq!(c.token_dir, Path::new("/etc/x/tokens"));
        assert_eq!(c.pin.user_max_tries, 6);
        assert_eq!(c.latency.of(SlowOp::Sign), Duration::ZERO);
        assert_eq!(c.sm2.signature, SignatureEncoding::Raw);
    }

    #[test]
    fn every_setting_is_read() {
        let c = Config::parse(
            "token_dir = \"/t\"\n[pin]\nuser_max_tries = 3\nso_max_tries = 5\nmin_len = 6\nmax_len = 16\n\
             [latency]\nkeygen_ms = 300\nsign_ms = 150\nlogin_ms = 20\nnone_for_labels = [\"CA\"]\n[sm2]\nsignature = \"der\"\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.token_dir, Path::new("/t"));
        assert_eq!((c.pin.user_max_tries, c.pin.so_max_tries), (3, 5));
        assert_eq!((c.pin.min_len, c.pin.max_len), (6, 16));
        assert_eq!(c.latency.of(SlowOp::KeyGen), Duration::from_millis(300));
        assert_eq!(c.latency.of(SlowOp::Login), Duration::from_millis(20));
        assert_eq!(
            c.latency.on("ORDER-1", SlowOp::Sign),
            Duration::from_millis(150)
        );
        assert_eq!(c.latency.on("CA", SlowOp::Sign), Duration::ZERO);
        assert_eq!(c.sm2.signature, SignatureEncoding::Der);
    }

    #[test]
    fn unknown_keys_and_impossible_values_are_refused() {
        assert!(Config::parse("token_dir = \"t\"\ntokendir = \"u\"\n", Path::new("/")).is_err());
        assert!(Config::parse("token_dir = \"t\"\n[latency]\nsign = 1\n", Path::new("/")).is_err());
        assert!(
            Config::parse(
                "token_dir = \"t\"\n[pin]\nuser_max_tries = 0\n",
                Path::new("/")
            )
            .is_err()
        );
        assert!(
            Config::parse(
                "token_dir = \"t\"\n[pin]\nmin_len = 9\nmax_len = 8\n",
                Path::new("/")
            )
            .is_err()
        );
        assert!(
            Config::parse("[pin]\n", Path::new("/")).is_err(),
            "token_dir is required"
        );
    }
}
