//! `[api]`: the order API's own settings; so far its webhook (`[api.webhook]`), where every
//! order state change is pushed, signed (see `crate::domain::webhook`).

use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// `[api]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// The webhook; none: events are kept, nothing is pushed.
    #[serde(default)]
    pub webhook: Option<ApiWebhookSection>,
}

/// `[api.webhook]`: where order state changes are pushed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiWebhookSection {
    /// The receiver's URL: https, or plain http only to a loopback address.
    pub url: String,
    /// The file holding the HMAC key (first line; mode 0600; relative: to the data directory).
    /// Never the key itself: no secret is written in `station.toml`.
    pub secret_file: PathBuf,
    /// Seconds allowed for one exchange (connecting included); past it the outcome is unknown
    /// and the event is not sent again automatically.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts of an event the receiver did not take (5xx, 408, 429, connection refused).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds before the second attempt; each further one waits twice as long, at most an
    /// hour.
    #[serde(default = "default_retry_initial_secs")]
    pub retry_initial_secs: u64,
}

impl ApiSection {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let Some(w) = &self.webhook else {
            return Ok(());
        };
        w.endpoint()?;
        if w.secret_file.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                key: "api.webhook.secret_file",
                message: "must name the file holding the HMAC key".into(),
            });
        }
        if !(1..=300).contains(&w.timeout_secs) {
            return Err(ConfigError::Value {
                key: "api.webhook.timeout_secs",
                message: format!("{} is not between 1 and 300 seconds", w.timeout_secs),
            });
        }
        if !(1..=100).contains(&w.max_attempts) {
            return Err(ConfigError::Value {
                key: "api.webhook.max_attempts",
                message: format!("{} is not between 1 and 100", w.max_attempts),
            });
        }
        if !(1..=3600).contains(&w.retry_initial_secs) {
            return Err(ConfigError::Value {
                key: "api.webhook.retry_initial_secs",
                message: format!("{} is not between 1 and 3600 seconds", w.retry_initial_secs),
            });
        }
        Ok(())
    }
}

impl ApiWebhookSection {
    /// The URL, checked: https, or http to a loopback address (`localhost`, 127.0.0.0/8,
    /// `::1`), without credentials.
    pub fn endpoint(&self) -> Result<reqwest::Url, ConfigError> {
        let bad = |message: String| ConfigError::Value {
            key: "api.webhook.url",
            message,
        };
        let shown = super::redacted_url(&self.url);
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| bad(format!("{shown:?} is not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "must not carry credentials (the requests are signed instead)".into(),
            ));
        }
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" if !host.is_empty() => Ok(url),
            "http" if loopback => Ok(url),
            "http" => Err(bad(format!(
                "{shown:?}: plain http is only allowed to a loopback address; use https"
            ))),
            other => Err(bad(format!(
                "{shown:?}: unsupported scheme {other:?} (https, or http to a loopback address)"
            ))),
        }
    }

    /// The exchange's time limit.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }

    /// The delay before the second attempt.
    pub fn retry_initial(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.retry_initial_secs)
    }
}

fn default_timeout_secs() -> u64 {
    10
}
fn default_max_attempts() -> u32 {
    5
}
fn default_retry_initial_secs() -> u64 {
    30
}
