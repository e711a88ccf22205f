//! HTTPS from the SMS channels runs on ring, the station's one crypto stack: no aws-lc in the
//! build, and the provider is in place wherever a channel builds its HTTP client (here: in this
//! test process, where `main` never ran).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use keystation::delivery::sms::{SendOutcome, SmsChannel, WebhookChannel, WebhookConfig};
use zeroize::Zeroizing;

use crate::sms::{FixedStamps, fixed_now, reason, sms};

#[test]
fn the_lock_file_holds_no_second_crypto_stack() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    for stack in ["aws-lc-rs", "aws-lc-sys"] {
        assert!(
            !lock.contains(&format!("name = \"{stack}\"")),
            "Cargo.lock holds {stack}: something asks for rustls with aws-lc (`cargo tree -i {stack}`)"
        );
    }
}

/// A real TLS server (`openssl s_server`) with a self-signed certificate: the webhook channel
/// runs the handshake on ring (key exchange, key schedule and record decryption happen before the
/// server's certificate can be read), refuses the certificate, and sends nothing.
#[tokio::test]
async fn an_https_gateway_is_reached_through_ring_and_an_untrusted_certificate_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    crate::support::run_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:P-256"])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );

    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-naccept",
            "1",
            "-www",
        ])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // "ACCEPT 127.0.0.1:PORT" once it listens (after a line about DH parameters).
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut said = String::new();
    let port = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("openssl s_server ended without listening: {said:?}");
        }
        if let Some(port) = line.trim().strip_prefix("ACCEPT 127.0.0.1:") {
            break port.to_owned();
        }
        said.push_str(&line);
    };

    let mut config = WebhookConfig::new(
        &format!("https://127.0.0.1:{port}/sms"),
        Zeroizing::new("gateway-shared-secret".to_owned()),
    );
    config.connect_timeout = Duration::from_secs(10);
    config.request_timeout = Duration::from_secs(10);
    let channel = SmsChannel::Webhook(
        WebhookChannel::new(config, Arc::new(FixedStamps::at(fixed_now()))).unwrap(),
    );
    let outcome = channel.send(&sms("dlv-tls1")).await;

    let _ = server.kill();
    let _ = server.wait();
    let mut server_log = String::new();
    let _ = server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut server_log);
    let why = reason(&outcome);
    assert!(
        matches!(outcome, SendOutcome::Retryable { .. })
            && why.contains("could not connect (nothing sent)")
            && why.contains("certificate"),
        "{outcome:?}\nopenssl s_server: {server_log}"
    );

    // The provider that did the handshake is ring's, installed by the channel itself.
    let installed = rustls::crypto::CryptoProvider::get_default()
        .expect("building an HTTP channel installs a rustls crypto provider");
    let suites = |p: &rustls::crypto::CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        suites(installed),
        suites(&rustls::crypto::ring::default_provider())
    );
    assert_eq!(
        installed.kx_groups.len(),
        rustls::crypto::ring::default_provider().kx_groups.len()
    );
}
