//! The tables of `keystation serve` and of what it publishes: `[ocsp]` (the responder's URL,
//! its delegated signer, how long an answer is valid) and `[serve]` (where the server listens).

use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// `[ocsp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcspSection {
    /// The responder's URL, written into every unit certificate (Authority Information Access);
    /// `keystation serve` answers at its path.
    #[serde(default = "default_ocsp_url")]
    pub url: String,
    /// Label of the delegated OCSP signer's key on the CA token.
    #[serde(default = "default_signer_key")]
    pub signer_key_label: String,
    /// The signer's certificate (PEM), written by `init` and `ca ocsp-signer`.
    #[serde(default = "default_signer_cert")]
    pub signer_certificate: PathBuf,
    /// Validity of a signer certificate, in days (never past the CA's own end).
    #[serde(default = "default_signer_days")]
    pub signer_validity_days: u32,
    /// Validity of an answer (nextUpdate - thisUpdate), in seconds; an answer for an unchanged
    /// status is reused until half of it has passed.
    #[serde(default = "default_response_secs")]
    pub response_validity_secs: u64,
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            url: default_ocsp_url(),
            signer_key_label: default_signer_key(),
            signer_certificate: default_signer_cert(),
            signer_validity_days: default_signer_days(),
            response_validity_secs: default_response_secs(),
        }
    }
}

/// Shortest and longest answer validity accepted (one minute, one week).
pub const RESPONSE_VALIDITY_SECS: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;

impl OcspSection {
    /// The path of [`OcspSection::url`] (`/ocsp` for `http://ocsp.example/ocsp`), where
    /// `keystation serve` answers.
    pub fn path(&self) -> Result<String, ConfigError> {
        let bad = |message: &str| ConfigError::Value {
            key: "ocsp.url",
            message: format!("{:?}: {message}", self.url),
        };
        let lower = self.url.to_ascii_lowercase();
        let rest = ["http://", "https://"]
            .iter()
            .find_map(|scheme| lower.starts_with(scheme).then(|| &self.url[scheme.len()..]))
            .ok_or_else(|| bad("must be an http:// or https:// URL"))?;
        if !self.url.bytes().all(|b| b.is_ascii_graphic()) || rest.contains(['?', '#']) {
            return Err(bad(
                "must be printable ASCII without spaces, query or fragment",
            ));
        }
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let path = path.trim_end_matches('/');
        Ok(if path.is_empty() { "/" } else { path }.to_string())
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.path()?;
        if !RESPONSE_VALIDITY_SECS.contains(&self.response_validity_secs) {
            return Err(ConfigError::Value {
                key: "ocsp.response_validity_secs",
                message: format!(
                    "must be {} to {} seconds",
                    RESPONSE_VALIDITY_SECS.start(),
                    RESPONSE_VALIDITY_SECS.end()
                ),
            });
        }
        if !(1..=3650).contains(&self.signer_validity_days) {
            return Err(ConfigError::Value {
                key: "ocsp.signer_validity_days",
                message: "must be 1 to 3650 days".into(),
            });
        }
        if self.signer_key_label.trim().is_empty() {
            return Err(ConfigError::Value {
                key: "ocsp.signer_key_label",
                message: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

/// `[serve]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Address of the public listener (OCSP, CRL) when `serve` gets no `--listen`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            listen: default_listen(),
        }
    }
}

impl ServeSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .map(|_| ())
            .map_err(|e| ConfigError::Value {
                key: "serve.listen",
                message: format!("{:?}: {e} (e.g. 127.0.0.1:8080)", self.listen),
            })
    }
}

/// `[console]`: the operators' console of `keystation serve` (see `crate::web::console`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// Address of the console's own listener when `serve` gets no `--console-listen`; none:
    /// no console. Without TLS, a loopback address only.
    #[serde(default)]
    pub listen: Option<String>,
    /// Minutes without a request after which a session ends.
    #[serde(default = "default_idle_minutes")]
    pub idle_timeout_minutes: u32,
    /// The console's TLS certificate chain (PEM, leaf first; relative: to the data directory).
    /// With `tls_key`, the console speaks HTTPS only and may listen on any address.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM: PKCS#8, PKCS#1 or SEC1), a file of mode 0600.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            listen: None,
            idle_timeout_minutes: default_idle_minutes(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl ConsoleSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if let Some(listen) = &self.listen {
            listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| ConfigError::Value {
                    key: "console.listen",
                    message: format!("{listen:?}: {e} (e.g. 127.0.0.1:8443)"),
                })?;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Value {
                key: if self.tls_cert.is_some() {
                    "console.tls_key"
                } else {
                    "console.tls_cert"
                },
                message: "tls_cert and tls_key go together: give both, or neither".into(),
            });
        }
        if !(1..=24 * 60).contains(&self.idle_timeout_minutes) {
            return Err(ConfigError::Value {
                key: "console.idle_timeout_minutes",
                message: format!(
                    "{} is not between 1 and 1440 minutes",
                    self.idle_timeout_minutes
                ),
            });
        }
        Ok(())
    }
}

fn default_idle_minutes() -> u32 {
    15
}

fn default_ocsp_url() -> String {
    "http://ocsp.keystation.invalid/ocsp".into()
}
fn default_signer_key() -> String {
    "ocsp-signer".into()
}
fn default_signer_cert() -> PathBuf {
    PathBuf::from("ca/ocsp-signer.pem")
}
fn default_signer_days() -> u32 {
    365
}
fn default_response_secs() -> u64 {
    4 * 3600
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
