//! A small SMTP receiver on loopback that speaks real SMTP (RFC 5321): greeting, `EHLO`/`HELO`,
//! `STARTTLS` (RFC 3207) or TLS from the first byte, `AUTH PLAIN` and `AUTH LOGIN` (RFC 4954)
//! checked against one user, `MAIL`/`RCPT`/`DATA` with dot-unstuffing, `RSET`, `NOOP`, `QUIT`.
//! Every message it accepts is kept (envelope and text) for the test to count and read.
//!
//! Why a receiver of our own rather than Python's aiosmtpd: it runs inside the test process
//! with no virtualenv to install in CI, the test reads the mailbox directly, and it can require
//! TLS and AUTH the way a submission server does. It is a real peer: lettre talks to it over a
//! TCP socket, through rustls for the TLS modes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed, CRLF line ends).
    pub data: String,
    /// Whether the session was encrypted when the message was accepted.
    pub encrypted: bool,
    /// The user that authenticated, if any.
    pub user: Option<String>,
}

impl Received {
    /// The decoded text body (lettre sends UTF-8 bodies quoted-printable or base64).
    pub fn body(&self) -> String {
        let (headers, body) = self.data.split_once("\r\n\r\n").unwrap();
        let encoding = headers
            .lines()
            .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
            .unwrap_or("7bit")
            .trim()
            .to_ascii_lowercase();
        match encoding.as_str() {
            "base64" => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(body.replace("\r\n", ""))
                    .unwrap(),
            )
            .unwrap(),
            "quoted-printable" => decode_qp(body),
            _ => body.to_string(),
        }
    }

    /// A header's raw value.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = self.data.split_once("\r\n\r\n").unwrap();
        headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// How the server protects the connection.
#[derive(Clone)]
pub enum Security {
    /// Plain SMTP.
    None,
    /// `STARTTLS` offered, and required before `AUTH` and `MAIL`.
    Starttls(Arc<ServerConfig>),
    /// TLS from the first byte.
    Tls(Arc<ServerConfig>),
}

#[derive(Default)]
struct Mailbox {
    received: Vec<Received>,
    auth_failures: usize,
}

/// A running receiver.
pub struct SmtpServer {
    pub addr: SocketAddr,
    mailbox: Arc<Mutex<Mailbox>>,
}

#[derive(Clone)]
struct Settings {
    security: Security,
    /// Required user and password (none: AUTH not required).
    user: Option<(String, String)>,
}

impl SmtpServer {
    /// Starts a receiver on 127.0.0.1 (a free port).
    pub async fn start(security: Security, user: Option<(&str, &str)>) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let settings = Settings {
            security,
            user: user.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        let mb = mailbox.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (mb, settings) = (mb.clone(), settings.clone());
                tokio::spawn(async move {
                    match settings.security.clone() {
                        Security::Tls(config) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            if let Ok(tls) = acceptor.accept(socket).await {
                                let _ = session(tls, &settings, &mb, true, true).await;
                            }
                        }
                        Security::Starttls(config) => {
                            if let Ok(Some(stream)) =
                                session(socket, &settings, &mb, false, true).await
                            {
                                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                                if let Ok(tls) = acceptor.accept(stream).await {
                                    let _ = session(tls, &settings, &mb, true, false).await;
                                }
                            }
                        }
                        Security::None => {
                            let _ = session(socket, &settings, &mb, false, true).await;
                        }
                    }
                });
            }
        });
        SmtpServer { addr, mailbox }
    }

    pub fn received(&self) -> Vec<Received> {
        self.mailbox.lock().unwrap().received.clone()
    }

    pub fn auth_failures(&self) -> usize {
        self.mailbox.lock().unwrap().auth_failures
    }
}

/// One SMTP session on `stream`. Returns the stream when the client asked for `STARTTLS`
/// (the caller upgrades it and runs a new session, without a greeting, as RFC 3207 says).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    settings: &Settings,
    mailbox: &Mutex<Mailbox>,
    encrypted: bool,
    greet: bool,
) -> std::io::Result<Option<S>> {
    let mut io = BufReader::new(stream);
    if greet {
        io.write_all(b"220 loopback.test ESMTP keystation-test\r\n")
            .await?;
    }
    let starttls_offered = matches!(settings.security, Security::Starttls(_)) && !encrypted;
    let tls_required = !matches!(settings.security, Security::None);
    let mut user: Option<String> = None;
    let mut from: Option<String> = None;
    let mut rcpt: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut r = String::from("250-loopback.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
            if starttls_offered {
                r.push_str("250-STARTTLS\r\n");
            }
            if settings.user.is_some() && (encrypted || !tls_required) {
                r.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            r.push_str("250 SIZE 1000000\r\n");
            r
        } else if upper == "STARTTLS" && starttls_offered {
            io.write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
            io.flush().await?;
            return Ok(Some(io.into_inner()));
        } else if upper.starts_with("AUTH ") {
            if tls_required && !encrypted {
                "538 5.7.11 encryption required\r\n".into()
            } else {
                let given = read_auth(&mut io, &cmd).await?;
                match (&settings.user, given) {
                    (Some((u, p)), Some((gu, gp))) if *u == gu && *p == gp => {
                        user = Some(gu);
                        "235 2.7.0 authenticated\r\n".into()
                    }
                    _ => {
                        mailbox.lock().unwrap().auth_failures += 1;
                        "535 5.7.8 authentication credentials invalid\r\n".into()
                    }
                }
            }
        } else if upper.starts_with("MAIL FROM:") {
            if tls_required && !encrypted {
                "530 5.7.0 must issue STARTTLS first\r\n".into()
            } else if settings.user.is_some() && user.is_none() {
                "530 5.7.0 authentication required\r\n".into()
            } else {
                from = Some(address(&cmd[10..]));
                rcpt.clear();
                "250 2.1.0 ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                "503 5.5.1 need MAIL first\r\n".into()
            } else {
                rcpt.push(address(&cmd[8..]));
                "250 2.1.5 ok\r\n".into()
            }
        } else if upper == "DATA" {
            if rcpt.is_empty() {
                "503 5.5.1 need RCPT first\r\n".into()
            } else {
                io.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                io.flush().await?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if io.read_line(&mut l).await? == 0 {
                        return Ok(None);
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                let mut mb = mailbox.lock().unwrap();
                mb.received.push(Received {
                    mail_from: from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt),
                    data,
                    encrypted,
                    user: user.clone(),
                });
                format!("250 2.0.0 ok queued as Q{}\r\n", mb.received.len())
            }
        } else if upper == "RSET" {
            from = None;
            rcpt.clear();
            "250 2.0.0 ok\r\n".into()
        } else if upper == "NOOP" {
            "250 2.0.0 ok\r\n".into()
        } else if upper == "QUIT" {
            io.write_all(b"221 2.0.0 bye\r\n").await?;
            io.flush().await?;
            return Ok(None);
        } else {
            "502 5.5.2 command not implemented\r\n".into()
        };
        io.write_all(reply.as_bytes()).await?;
        io.flush().await?;
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(arg, |(a, _)| a);
    inner.to_string()
}

/// `AUTH PLAIN [initial]` or `AUTH LOGIN` (with its two 334 challenges); returns user and
/// password as given.
async fn read_auth<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    cmd: &str,
) -> std::io::Result<Option<(String, String)>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = cmd.split_whitespace().skip(1);
    let mechanism = parts.next().unwrap_or("").to_ascii_uppercase();
    let next_line = async |io: &mut BufReader<S>, challenge: &[u8]| -> std::io::Result<String> {
        io.write_all(challenge).await?;
        io.flush().await?;
        let mut l = String::new();
        io.read_line(&mut l).await?;
        Ok(l.trim_end().to_string())
    };
    let decode = |s: &str| b64.decode(s).ok().and_then(|v| String::from_utf8(v).ok());
    match mechanism.as_str() {
        "PLAIN" => {
            let initial = match parts.next() {
                Some(i) => i.to_string(),
                None => next_line(io, b"334 \r\n").await?,
            };
            let Some(text) = decode(&initial) else {
                return Ok(None);
            };
            let mut fields = text.split('\0');
            let _authzid = fields.next();
            match (fields.next(), fields.next()) {
                (Some(u), Some(p)) => Ok(Some((u.to_string(), p.to_string()))),
                _ => Ok(None),
            }
        }
        "LOGIN" => {
            let u = next_line(io, b"334 VXNlcm5hbWU6\r\n").await?;
            let p = next_line(io, b"334 UGFzc3dvcmQ6\r\n").await?;
            Ok(decode(&u).zip(decode(&p)))
        }
        _ => Ok(None),
    }
}

/// A self-signed certificate for 127.0.0.1 / localhost (rcgen on ring) and the server config
/// that presents it; returns the config and the certificate's PEM (for `ca_file`).
pub fn tls_config() -> (Arc<ServerConfig>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = CertificateDer::from(cert.der().to_vec());
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der], key_der)
        .unwrap();
    (Arc::new(config), cert.pem())
}
