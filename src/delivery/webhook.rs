//! The order API's webhook transport: one signed JSON POST per event (see
//! `crate::domain::webhook` for the headers, the signature and what an answer means).
//!
//! Redirects are not followed (a redirect would send the event where nobody configured it), the
//! answer's body is never read into a reason, and a failure to connect is the only transport
//! error after which nothing was sent: anything later (timeout while waiting for the answer,
//! broken exchange) leaves the outcome unknown.
//!
//! Security notes: the HMAC key is held in zeroizing memory and redacted from `Debug`; the
//! body carries no secret.

use crate::delivery::sms::{error_chain, http_client};
use crate::domain::webhook::{
    EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookOutcome, signature,
};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where events go, and how they are signed.
pub struct WebhookChannel {
    url: reqwest::Url,
    key: Zeroizing<Vec<u8>>,
    client: reqwest::Client,
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.url.as_str())
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// A channel to `url` signing with `key`, each exchange within `timeout` (connecting within
    /// at most 5 s of it).
    pub fn new(
        url: reqwest::Url,
        key: Zeroizing<Vec<u8>>,
        timeout: Duration,
    ) -> Result<WebhookChannel, String> {
        let client =
            http_client(timeout.min(Duration::from_secs(5)), timeout).map_err(|e| e.to_string())?;
        Ok(WebhookChannel { url, key, client })
    }

    /// The receiver's URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// POSTs `body` as event `event_id`, signed at `timestamp` (unix seconds).
    pub async fn post(&self, event_id: &str, timestamp: &str, body: &[u8]) -> WebhookOutcome {
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event_id)
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature(&self.key, timestamp, body))
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(answer) => WebhookOutcome::of_status(answer.status().as_u16()),
            Err(e) => transport_outcome(e),
        }
    }
}

/// A transport failure: retryable only when nothing was sent (no connection).
fn transport_outcome(err: reqwest::Error) -> WebhookOutcome {
    let err = err.without_url();
    let chain = error_chain(&err);
    if err.is_connect() {
        WebhookOutcome::Retryable {
            reason: format!("could not connect (nothing sent): {chain}"),
        }
    } else if err.is_timeout() {
        WebhookOutcome::Unknown {
            reason: format!("timed out after sending, the receiver may have it: {chain}"),
        }
    } else {
        WebhookOutcome::Unknown {
            reason: format!("the exchange failed after sending, the receiver may have it: {chain}"),
        }
    }
}
