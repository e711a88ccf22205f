//! Generic webhook channel: a signed JSON POST to an SMS gateway run by the CA or a partner.
//!
//! Responsibility: POST `{"delivery_id","to","order_no","text"}` to the configured URL with
//! - `X-Keystation-Timestamp`: unix seconds,
//! - `X-Keystation-Signature`: `v1=` + hex(HMAC-SHA256(secret, timestamp + "." + body)),
//! - `Idempotency-Key`: the delivery id,
//!
//! and map the answer: 2xx with `{"id": "..."}` → `Accepted`; 408, 429, 5xx → `Retryable`; other
//! 4xx and redirects → `Permanent`; connection refused → `Retryable`; timeout or reset after
//! sending, or a 2xx without an id → `Unknown`.
//!
//! Invariants:
//! - The gateway contract: it must verify the signature (see [`verify_webhook_signature`]), reject
//!   stale timestamps, and de-duplicate on `Idempotency-Key`. That is why this channel has no
//!   query (`QueryOutcome::Unsupported`): after an `Unknown` outcome, resending the same
//!   `delivery_id` is safe, the gateway answers with the id of the message it already has.
//!
//! Security notes: the body carries the PIN, so the URL must be https (plain http only to a
//! loopback host); redirects are not followed; the response body is never copied into a reason
//! (a gateway may echo the request); the secret has a redacted `Debug`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::http::{
    check_endpoint, check_signing_secret, error_chain, http_client, transport_outcome,
};
use super::{OutgoingSms, RequestStamps, SendOutcome, SmsError, message_json, sanitize};

/// Header carrying the unix time the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Keystation-Timestamp";
/// Header carrying `v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Keystation-Signature";
/// Header carrying the delivery id, for the gateway's de-duplication.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Webhook channel configuration.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Gateway URL (https, or http to a loopback host).
    pub url: String,
    /// Shared HMAC secret.
    pub secret: Zeroizing<String>,
    /// Time allowed to establish the connection (nothing is sent before it succeeds).
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange; past it the outcome is `Unknown`.
    pub request_timeout: Duration,
}

impl WebhookConfig {
    /// 5 s to connect, 15 s in total.
    pub fn new(url: &str, secret: Zeroizing<String>) -> Self {
        Self {
            url: url.to_owned(),
            secret,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Signed JSON webhook channel.
#[derive(Debug)]
pub struct WebhookChannel {
    url: reqwest::Url,
    config: WebhookConfig,
    client: reqwest::Client,
    stamps: Arc<dyn RequestStamps>,
}

/// The request body. Borrowed from the message, serialized only into a zeroizing buffer.
#[derive(Serialize)]
struct WebhookBody<'a> {
    delivery_id: &'a str,
    to: &'a str,
    order_no: &'a str,
    text: &'a str,
}

#[derive(Deserialize)]
struct WebhookAnswer {
    id: String,
}

/// `v1=` + hex(HMAC-SHA256(secret, timestamp + "." + body)).
pub fn webhook_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> Result<String, SmsError> {
    let mac = webhook_mac(secret, timestamp, body).ok_or(SmsError::InvalidConfig {
        field: "webhook.secret",
        reason: "rejected as an HMAC key".to_owned(),
    })?;
    Ok(format!("v1={}", hex::encode(mac.finalize().into_bytes())))
}

fn webhook_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Checks an `X-Keystation-Signature` header value for a request, in constant time.
///
/// For gateway implementers: call it with the raw body bytes as received, then also reject
/// timestamps too far from your clock (replay protection is the receiver's part).
pub fn verify_webhook_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.trim().strip_prefix("v1=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_mac) else {
        return false;
    };
    match webhook_mac(secret, timestamp, body) {
        // `verify_slice` compares in constant time and rejects wrong lengths.
        Some(mac) => mac.verify_slice(&given).is_ok(),
        None => false,
    }
}

impl WebhookChannel {
    /// Checks the configuration and builds the HTTP client.
    pub fn new(config: WebhookConfig, stamps: Arc<dyn RequestStamps>) -> Result<Self, SmsError> {
        let url = check_endpoint("webhook.url", &config.url)?;
        check_signing_secret("webhook.secret", &config.secret)?;
        let client = http_client(config.connect_timeout, config.request_timeout)?;
        Ok(Self {
            url,
            config,
            client,
            stamps,
        })
    }

    pub(super) async fn send(&self, sms: &OutgoingSms) -> SendOutcome {
        let payload = WebhookBody {
            delivery_id: sms.delivery_id(),
            to: sms.phone(),
            order_no: sms.order_no(),
            text: sms.text().expose_secret(),
        };
        let fields = [
            payload.delivery_id,
            payload.to,
            payload.order_no,
            payload.text,
        ];
        let body = match message_json("webhook", "body", &payload, &fields) {
            Ok(b) => b,
            Err(outcome) => return outcome,
        };
        let timestamp = self.stamps.now().unix_timestamp().to_string();
        let signature = match webhook_signature(self.config.secret.as_bytes(), &timestamp, &body) {
            Ok(s) => s,
            Err(e) => {
                return SendOutcome::Permanent {
                    reason: format!("webhook: {e}"),
                };
            }
        };
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, &signature)
            .header(IDEMPOTENCY_HEADER, sms.delivery_id())
            // reqwest needs an owned body; this copy is outside our zeroizing control.
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return transport_outcome("webhook", e),
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => match response.bytes().await {
                Ok(answer) => match serde_json::from_slice::<WebhookAnswer>(&answer) {
                    Ok(a) if !a.id.is_empty() => SendOutcome::Accepted {
                        provider_id: sanitize(&a.id),
                    },
                    _ => SendOutcome::Unknown {
                        reason: format!("webhook: HTTP {status} without a JSON {{\"id\"}} answer"),
                    },
                },
                Err(e) => SendOutcome::Unknown {
                    reason: format!(
                        "webhook: HTTP {status} but the answer could not be read: {}",
                        error_chain(&e.without_url())
                    ),
                },
            },
            408 | 429 | 500..=599 => SendOutcome::Retryable {
                reason: format!("webhook: gateway answered HTTP {status}, retry later"),
            },
            300..=399 => SendOutcome::Permanent {
                reason: format!(
                    "webhook: gateway answered a redirect (HTTP {status}), not followed"
                ),
            },
            400..=499 => SendOutcome::Permanent {
                reason: format!("webhook: gateway refused the message with HTTP {status}"),
            },
            _ => SendOutcome::Unknown {
                reason: format!("webhook: unexpected HTTP {status}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    #[test]
    fn signature_matches_openssl() {
        let body = br#"{"delivery_id":"d1","to":"13800138000","order_no":"O1","text":"x"}"#;
        let mut input = b"1700000000.".to_vec();
        input.extend_from_slice(body);
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", "whsecret", "-hex", "-r"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let hex_mac = stdout.split_whitespace().next().unwrap();
        assert_eq!(hex_mac.len(), 64);
        let expected = format!("v1={hex_mac}");
        assert_eq!(
            webhook_signature(b"whsecret", "1700000000", body).unwrap(),
            expected
        );
        assert!(verify_webhook_signature(
            b"whsecret",
            "1700000000",
            body,
            &expected
        ));
    }

    #[test]
    fn verify_rejects_tampering() {
        let sig = webhook_signature(b"k", "100", b"body").unwrap();
        assert!(verify_webhook_signature(b"k", "100", b"body", &sig));
        assert!(!verify_webhook_signature(b"k2", "100", b"body", &sig));
        assert!(!verify_webhook_signature(b"k", "101", b"body", &sig));
        assert!(!verify_webhook_signature(b"k", "100", b"bodx", &sig));
        assert!(!verify_webhook_signature(b"k", "100", b"body", &sig[3..]));
        assert!(!verify_webhook_signature(
            b"k",
            "100",
            b"body",
            &sig.replace("v1=", "v2=")
        ));
        assert!(!verify_webhook_signature(
            b"k",
            "100",
            b"body",
            &sig[..sig.len() - 2]
        ));
        assert!(!verify_webhook_signature(b"k", "100", b"body", "v1=zz"));
        // Hex case is not significant.
        assert!(verify_webhook_signature(
            b"k",
            "100",
            b"body",
            &sig.to_uppercase().replace("V1=", "v1=")
        ));
    }

    #[test]
    fn config_debug_is_redacted() {
        let c = WebhookConfig::new(
            "https://gw.example/",
            Zeroizing::new("hooksecret".to_owned()),
        );
        assert!(!format!("{c:?}").contains("hooksecret"));
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        let c = WebhookConfig::new("http://gw.example/", Zeroizing::new("s".to_owned()));
        assert!(matches!(
            WebhookChannel::new(c, Arc::new(super::super::SystemStamps::default())),
            Err(SmsError::InvalidConfig {
                field: "webhook.url",
                ..
            })
        ));
    }
}
