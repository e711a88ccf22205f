//! E-mail over SMTP (`lettre`): STARTTLS or implicit TLS (rustls on ring, the platform's roots
//! plus an optional private CA), `AUTH PLAIN`/`LOGIN`, one connection per message.
//!
//! Responsibility: the channel side only, like [`super::sms`]: the worker hands an
//! [`OutgoingEmail`] to [`EmailChannel::send`] and records the [`SendOutcome`] (the SMS
//! channels' outcome type, so both go through the same journal and rules).
//!
//! Where a failure happened decides what it means, which is why the connection is driven step
//! by step rather than through lettre's transport:
//! - connecting, TLS, `EHLO`, `STARTTLS`, `AUTH`: nothing was handed over. A 5xx answer (bad
//!   credentials, STARTTLS refused) is [`SendOutcome::Permanent`]; everything else (refused
//!   connection, 4xx, timeout) is [`SendOutcome::Retryable`];
//! - `MAIL`/`RCPT`/`DATA` answered 4xx or 5xx: the server did not take the message
//!   (Retryable / Permanent);
//! - the connection broke or timed out once the transaction had begun: the server may have the
//!   message, [`SendOutcome::Unknown`]. The caller must not send again blindly.
//!
//! Every message carries `Message-ID: <{id}@keystation>` so a duplicate is recognisable at the
//! receiving end.
//!
//! Security notes:
//! - The SMTP password is read from a file (mode 0600) into zeroizing memory; [`EmailConfig`]'s
//!   `Debug` is redacted. lettre's `Credentials` takes a plain `String`: it is built for each
//!   connection and dropped after `AUTH`, a copy outside our zeroizing control.
//! - Plain SMTP (no TLS) is refused by the configuration unless the server is on loopback.
//! - Reasons are built from SMTP codes and error kinds, never from the message.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use zeroize::Zeroizing;

use super::sms::SendOutcome;
use crate::config::SmtpSecurity;

/// Errors building the channel or a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// A configuration value is unusable.
    #[error("e-mail channel config {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A recipient address is unusable.
    #[error("e-mail recipient: not an address ({reason})")]
    InvalidRecipient {
        /// What is wrong with it.
        reason: String,
    },
}

impl crate::error_code::Coded for EmailError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            EmailError::InvalidConfig { .. } => ec::SMS_CHANNEL,
            EmailError::InvalidRecipient { .. } => ec::SMS_MESSAGE,
        }
    }
}

/// What the channel needs (from `[delivery.email]`).
pub struct EmailConfig {
    /// Server host (and the name its certificate must carry).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection protection.
    pub security: SmtpSecurity,
    /// User name and password for `AUTH`.
    pub credentials: Option<(String, Zeroizing<String>)>,
    /// `From:`.
    pub from: String,
    /// Extra trusted roots (PEM).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Bound of each SMTP step.
    pub timeout: Duration,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field(
                "username",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One message.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    /// Stable id (the notice's), in the `Message-ID`.
    pub id: String,
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// A configured SMTP server.
pub struct EmailChannel {
    config: EmailConfig,
    from: Mailbox,
    tls: Option<TlsParameters>,
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("config", &self.config)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Checks the configuration and prepares the TLS parameters.
    pub fn new(config: EmailConfig) -> Result<Self, EmailError> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| EmailError::InvalidConfig {
                field: "from",
                reason: e.to_string(),
            })?;
        if config.timeout.is_zero() {
            return Err(EmailError::InvalidConfig {
                field: "timeout_secs",
                reason: "must be greater than zero".into(),
            });
        }
        let tls = match config.security {
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                crate::delivery::sms::install_ring_tls_provider();
                let mut b = TlsParameters::builder(config.host.clone());
                if let Some(pem) = &config.extra_roots_pem {
                    // lettre accepts a PEM text without any certificate in it.
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(EmailError::InvalidConfig {
                            field: "ca_file",
                            reason: "holds no PEM certificate".into(),
                        });
                    }
                    let cert =
                        Certificate::from_pem(pem).map_err(|e| EmailError::InvalidConfig {
                            field: "ca_file",
                            reason: e.to_string(),
                        })?;
                    b = b.add_root_certificate(cert);
                }
                Some(b.build_rustls().map_err(|e| EmailError::InvalidConfig {
                    field: "security",
                    reason: e.to_string(),
                })?)
            }
        };
        Ok(EmailChannel { config, from, tls })
    }

    fn message(&self, mail: &OutgoingEmail) -> Result<Message, EmailError> {
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| EmailError::InvalidRecipient {
                reason: e.to_string(),
            })?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!("<{}@keystation>", mail.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| EmailError::InvalidRecipient {
                reason: e.to_string(),
            })
    }

    /// Sends one message. Never panics; see the module docs for what each outcome means.
    pub async fn send(&self, mail: &OutgoingEmail) -> SendOutcome {
        let message = match self.message(mail) {
            Ok(m) => m,
            Err(e) => {
                return SendOutcome::Permanent {
                    reason: format!("e-mail: {e}"),
                };
            }
        };
        let hello = ClientId::Domain("keystation".into());
        let timeout = Some(self.config.timeout);
        let implicit = match self.config.security {
            SmtpSecurity::Tls => self.tls.clone(),
            _ => None,
        };
        let server = (self.config.host.as_str(), self.config.port);
        let mut conn = match AsyncSmtpConnection::connect_tokio1(
            server, timeout, &hello, implicit, None,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return before_handover("connecting", &e),
        };
        if let (SmtpSecurity::Starttls, Some(tls)) = (self.config.security, &self.tls) {
            if !conn.can_starttls() {
                conn.abort().await;
                return SendOutcome::Permanent {
                    reason: "e-mail: the server does not offer STARTTLS, which is required".into(),
                };
            }
            if let Err(e) = conn.starttls(tls.clone(), &hello).await {
                // Dropped, not aborted: a failed upgrade leaves lettre's stream empty, and
                // writing QUIT to it trips lettre's own debug assertion.
                drop(conn);
                return before_handover("STARTTLS", &e);
            }
        }
        if let Some((user, password)) = &self.config.credentials {
            let creds = Credentials::new(user.clone(), password.to_string());
            let auth = conn
                .auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await;
            drop(creds);
            if let Err(e) = auth {
                conn.abort().await;
                return before_handover("AUTH", &e);
            }
        }
        let envelope = message.envelope().clone();
        let outcome = match conn.send(&envelope, &message.formatted()).await {
            Ok(response) => SendOutcome::Accepted {
                provider_id: response
                    .first_line()
                    .map(sanitize)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| format!("<{}@keystation>", mail.id)),
            },
            Err(e) if e.is_permanent() || e.is_transient() => {
                before_handover("the mail transaction", &e)
            }
            Err(e) => SendOutcome::Unknown {
                reason: format!(
                    "e-mail: the connection failed during the mail transaction, the server may have the message: {}",
                    kind(&e)
                ),
            },
        };
        if matches!(outcome, SendOutcome::Accepted { .. }) {
            // The message is the server's now; a failed QUIT changes nothing.
            let _ = conn.quit().await;
        } else {
            conn.abort().await;
        }
        outcome
    }
}

/// An error before the server took the message: 5xx permanent, anything else retryable.
fn before_handover(step: &str, e: &lettre::transport::smtp::Error) -> SendOutcome {
    let reason = format!("e-mail: {step} failed: {}", kind(e));
    if e.is_permanent() {
        SendOutcome::Permanent { reason }
    } else {
        SendOutcome::Retryable { reason }
    }
}

/// What kind of failure, from codes and error kinds only (lettre's text for a response quotes
/// the server, which may echo input back).
fn kind(e: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = e.status() {
        return format!("server answered {code}");
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    if e.is_tls() {
        return "TLS handshake or certificate check failed".into();
    }
    if e.is_client() {
        return "client error (no usable AUTH mechanism, or STARTTLS not offered)".into();
    }
    if e.is_response() {
        return "unreadable server response".into();
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return format!("network error ({:?})", io.kind());
        }
        source = s.source();
    }
    "connection error".into()
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(120)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(security: SmtpSecurity) -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            security,
            credentials: Some(("station".into(), Zeroizing::new("smtp-secret".into()))),
            from: "CA <ca@example.com>".into(),
            extra_roots_pem: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn debug_is_redacted() {
        let c = config(SmtpSecurity::None);
        let d = format!("{c:?}");
        assert!(
            !d.contains("smtp-secret") && d.contains("<redacted>"),
            "{d}"
        );
        let ch = EmailChannel::new(config(SmtpSecurity::None)).unwrap();
        assert!(!format!("{ch:?}").contains("smtp-secret"));
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = config(SmtpSecurity::None);
        c.from = "not an address".into();
        let e = EmailChannel::new(c).unwrap_err().to_string();
        assert!(e.contains("from"), "{e}");
        let mut c = config(SmtpSecurity::Starttls);
        c.extra_roots_pem = Some(b"garbage".to_vec());
        let e = EmailChannel::new(c).unwrap_err().to_string();
        assert!(e.contains("ca_file"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        // A port nobody listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = config(SmtpSecurity::None);
        c.port = port;
        let ch = EmailChannel::new(c).unwrap();
        let out = ch
            .send(&OutgoingEmail {
                id: "n1".into(),
                to: "li.si@example.com".into(),
                subject: "s".into(),
                body: "b".into(),
            })
            .await;
        assert!(matches!(out, SendOutcome::Retryable { .. }), "{out:?}");
        let out = ch
            .send(&OutgoingEmail {
                id: "n1".into(),
                to: "nobody".into(),
                subject: "s".into(),
                body: "b".into(),
            })
            .await;
        assert!(matches!(out, SendOutcome::Permanent { .. }), "{out:?}");
    }
}
