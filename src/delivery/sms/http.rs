//! The transport shared by the HTTP channels (Aliyun, webhook): which endpoints may receive a
//! PIN, the one way their client is built, and what a failed exchange means for a resend.

use super::{SendOutcome, SmsError};

/// Renders an error with its source chain ("error sending request: connection refused"), because
/// reqwest's top-level message alone does not say what happened.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Checks an HTTP endpoint: `https`, or plain `http` only to a loopback host (tests, a local
/// gateway agent), because the request body carries the PIN.
pub(super) fn check_endpoint(field: &'static str, url: &str) -> Result<reqwest::Url, SmsError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| SmsError::InvalidConfig {
        field,
        reason: format!("not a URL ({e})"),
    })?;
    // `host_str` writes IPv6 addresses in brackets.
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(SmsError::InvalidConfig {
            field,
            reason: "plain http is only allowed to a loopback host; use https".to_owned(),
        }),
        other => Err(SmsError::InvalidConfig {
            field,
            reason: format!("unsupported scheme {other:?}"),
        }),
    }
}

/// Checks the HMAC key an HTTP channel signs its requests with: present. It is taken as written,
/// not trimmed: a space may be part of a secret.
pub(super) fn check_signing_secret(field: &'static str, secret: &str) -> Result<(), SmsError> {
    if secret.is_empty() {
        return Err(SmsError::InvalidConfig {
            field,
            reason: "is empty".to_owned(),
        });
    }
    Ok(())
}

/// Builds the HTTP client shared by the HTTP channels: explicit timeouts, and no redirects (a
/// redirect would re-send the PIN to a host we did not configure).
pub(crate) fn http_client(
    connect_timeout: std::time::Duration,
    request_timeout: std::time::Duration,
) -> Result<reqwest::Client, SmsError> {
    if connect_timeout.is_zero() {
        return Err(SmsError::InvalidConfig {
            field: "connect_timeout",
            reason: "must be greater than zero".to_owned(),
        });
    }
    if request_timeout.is_zero() {
        return Err(SmsError::InvalidConfig {
            field: "request_timeout",
            reason: "must be greater than zero".to_owned(),
        });
    }
    install_ring_tls_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SmsError::HttpClient {
            reason: error_chain(&e),
        })
}

/// Makes ring the process's rustls crypto provider, before an HTTP client is built.
///
/// reqwest is compiled with `rustls-no-provider` (no aws-lc: ring is the station's one crypto
/// stack), so it takes the process-wide default provider and panics when there is none. It is
/// installed here, where every HTTP client is built, rather than in `main`, so that every caller
/// of the library (tests, benchmarks) gets it as well.
pub(crate) fn install_ring_tls_provider() {
    // `Err` only when a provider is installed already: a previous call, or a library user's
    // choice, which is theirs to make. ring is the only provider compiled in.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// Classifies a transport-level failure of an HTTP send.
///
/// A failure to connect means nothing was sent: retry. Anything later (timeout while waiting for
/// the answer, connection reset, unreadable body) may have reached the provider: unknown.
pub(super) fn transport_outcome(channel: &str, err: reqwest::Error) -> SendOutcome {
    let err = err.without_url();
    let chain = error_chain(&err);
    if err.is_builder() {
        SendOutcome::Permanent {
            reason: format!("{channel}: could not build the HTTP request: {chain}"),
        }
    } else if err.is_connect() {
        SendOutcome::Retryable {
            reason: format!("{channel}: could not connect (nothing sent): {chain}"),
        }
    } else if err.is_timeout() {
        SendOutcome::Unknown {
            reason: format!(
                "{channel}: timed out after sending, the provider may have the message: {chain}"
            ),
        }
    } else {
        SendOutcome::Unknown {
            reason: format!(
                "{channel}: HTTP exchange failed after sending, the provider may have the message: {chain}"
            ),
        }
    }
}
