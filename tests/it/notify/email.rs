//! The e-mail channel against the loopback SMTP receiver: STARTTLS and implicit TLS through
//! rustls on ring with AUTH, what each failure means, and no password in any outcome.

use std::time::Duration;

use keystation::config::SmtpSecurity;
use keystation::delivery::email::{EmailChannel, EmailConfig, OutgoingEmail};
use keystation::delivery::sms::SendOutcome;
use zeroize::Zeroizing;

use super::smtp_server::{Received, Security, SmtpServer, tls_config};

const USER: &str = "station";
const PASSWORD: &str = "smtp-secret-42";

fn channel(port: u16, security: SmtpSecurity, password: &str, ca: Option<&str>) -> EmailChannel {
    EmailChannel::new(EmailConfig {
        host: "127.0.0.1".into(),
        port,
        security,
        credentials: Some((USER.into(), Zeroizing::new(password.into()))),
        from: "北京CA <ca@example.com>".into(),
        extra_roots_pem: ca.map(|c| c.as_bytes().to_vec()),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn mail(id: &str) -> OutgoingEmail {
    OutgoingEmail {
        id: id.into(),
        to: "li.si@example.com".into(),
        subject: "【北京CA】订单BJ1通知".into(),
        body: "您的单位证书订单BJ1已审核通过。\n第二行".into(),
    }
}

fn assert_no_password(outcome: &SendOutcome) {
    assert!(!format!("{outcome:?}").contains(PASSWORD), "{outcome:?}");
}

/// The mail `id` sent through a channel to `server` with this security, password and trusted CA.
async fn send(
    server: &SmtpServer,
    security: SmtpSecurity,
    password: &str,
    ca: Option<&str>,
    id: &str,
) -> SendOutcome {
    let ch = channel(server.addr.port(), security, password, ca);
    ch.send(&mail(id)).await
}

/// An accepted send: the receiver got exactly one message, over TLS; what it got.
#[track_caller]
fn delivered_encrypted(outcome: &SendOutcome, server: &SmtpServer) -> Vec<Received> {
    assert!(
        matches!(outcome, SendOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].encrypted);
    got
}

/// A send refused, permanently or to be retried, naming `why` if given: the receiver saw
/// `auth_failures` failed logins and received nothing, and the outcome shows no password.
#[track_caller]
fn assert_refused(
    outcome: &SendOutcome,
    permanent: bool,
    why: Option<&str>,
    server: &SmtpServer,
    auth_failures: usize,
) {
    let refused_permanently = match outcome {
        SendOutcome::Permanent { .. } => Some(true),
        SendOutcome::Retryable { .. } => Some(false),
        _ => None,
    };
    assert_eq!(refused_permanently, Some(permanent), "{outcome:?}");
    if let Some(why) = why {
        assert!(format!("{outcome:?}").contains(why), "{outcome:?}");
    }
    assert_eq!(server.auth_failures(), auth_failures);
    assert!(server.received().is_empty());
    assert_no_password(outcome);
}

#[tokio::test]
async fn starttls_with_auth_delivers_the_message_encrypted() {
    let (tls, ca) = tls_config();
    let server = SmtpServer::start(Security::Starttls(tls), Some((USER, PASSWORD))).await;
    let outcome = send(&server, SmtpSecurity::Starttls, PASSWORD, Some(&ca), "n-1").await;
    let got = delivered_encrypted(&outcome, &server);
    assert_eq!(got[0].user.as_deref(), Some(USER));
    assert_eq!(got[0].rcpt_to, vec!["li.si@example.com".to_string()]);
    assert_eq!(
        got[0].header("Message-ID").as_deref(),
        Some("<n-1@keystation>")
    );
    assert_eq!(got[0].body(), "您的单位证书订单BJ1已审核通过。\r\n第二行");
}

#[tokio::test]
async fn implicit_tls_with_auth_delivers_the_message_encrypted() {
    let (tls, ca) = tls_config();
    let server = SmtpServer::start(Security::Tls(tls), Some((USER, PASSWORD))).await;
    let outcome = send(&server, SmtpSecurity::Tls, PASSWORD, Some(&ca), "n-2").await;
    delivered_encrypted(&outcome, &server);
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_nothing_is_delivered() {
    let (tls, ca) = tls_config();
    let server = SmtpServer::start(Security::Starttls(tls), Some((USER, PASSWORD))).await;
    let outcome = send(&server, SmtpSecurity::Starttls, "not-it", Some(&ca), "n-3").await;
    assert_refused(&outcome, true, Some("535"), &server, 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_before_anything_is_sent() {
    let (tls, _ca) = tls_config();
    let server = SmtpServer::start(Security::Starttls(tls), Some((USER, PASSWORD))).await;
    // The platform's roots do not include the receiver's self-signed certificate.
    let outcome = send(&server, SmtpSecurity::Starttls, PASSWORD, None, "n-4").await;
    assert_refused(&outcome, false, Some("TLS"), &server, 0);
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    // A server that offers no STARTTLS: the channel does not fall back to plain text.
    let server = SmtpServer::start(Security::None, Some((USER, PASSWORD))).await;
    let (_, ca) = tls_config();
    let outcome = send(&server, SmtpSecurity::Starttls, PASSWORD, Some(&ca), "n-5").await;
    assert_refused(&outcome, true, None, &server, 0);
}
