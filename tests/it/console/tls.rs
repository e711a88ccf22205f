//! The console over HTTPS (`[console] tls_cert`, `tls_key`): a certificate made by the test
//! (rcgen), trusted by the test's reqwest client; the session cookie is `Secure`, and a whole
//! login by password and TOTP goes through. A key file open to others is refused, named.

use super::http::Client;
use super::{console_of, register, serve_refused};
use crate::ocsp::Serve;
use std::os::unix::fs::PermissionsExt;

/// Writes a self-signed certificate for 127.0.0.1 and its key (mode 0600) into the station's
/// directory and names them in its configuration; returns the certificate's PEM.
fn configure_tls(st: &crate::support::Station) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = st.dir();
    std::fs::write(dir.join("console.crt"), cert.pem()).unwrap();
    let key_file = dir.join("console.key");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = std::fs::read_to_string(&st.config).unwrap();
    assert_eq!(config.matches("\n[console]\n").count(), 1, "{config}");
    let config = config.replacen(
        "\n[console]\n",
        "\n[console]\ntls_cert = \"console.crt\"\ntls_key = \"console.key\"\n",
        1,
    );
    std::fs::write(&st.config, config).unwrap();
    cert.pem()
}

#[test]
fn over_tls_the_cookie_is_secure_and_a_login_by_password_and_totp_works() {
    let st = crate::support::Station::sqlite();
    let pem = configure_tls(&st);
    let (st, serve) = console_of(st);
    let base = serve.console_url.clone().unwrap();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let rita = register(&st, "console-rita", "reviewer");

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    let mut c = Client::with(trusting);
    let page = c.get(&serve, "/login");
    assert_eq!(page.status, 200, "{}", page.text());
    let cookie = page.header("set-cookie");
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let ok = c.login(&serve, &rita);
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert!(ok.header("set-cookie").contains("; Secure"));
    let queue = c.get(&serve, "/");
    assert_eq!(queue.status, 200);
    assert!(queue.text().contains("console-rita"));
    // The language's cookie is `Secure` too.
    let switched = c.get(&serve, "/?lang=en");
    assert_eq!(switched.status, 303);
    let cookie = switched.header("set-cookie");
    assert!(
        cookie.starts_with("ks_lang=en;") && cookie.ends_with("; Secure"),
        "{cookie}"
    );
    assert!(c.get(&serve, "/").text().contains("<html lang=\"en\">"));

    // A client that does not trust the certificate gets no answer; plain HTTP none either.
    let rt = crate::support::runtime();
    let untrusting = reqwest::Client::new();
    assert!(rt.block_on(untrusting.get(&base).send()).is_err());
    let plain = base.replacen("https://", "http://", 1);
    let answer = rt.block_on(untrusting.get(format!("{plain}login")).send());
    assert!(answer.is_err() || !answer.unwrap().status().is_success());
    drop(serve);
}

#[test]
fn a_console_key_open_to_others_is_refused_naming_it() {
    let st = crate::support::Station::sqlite();
    configure_tls(&st);
    let key = st.dir().join("console.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = serve_refused(&st, "127.0.0.1:0");
    assert!(
        stderr.contains("E-CONSOLE-TLS")
            && stderr.contains("console.tls_key")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

/// With TLS, a console on a non-loopback address is allowed (here: every address, reached by
/// the test on loopback only); [`Serve`] waits for it to say where it listens.
#[test]
fn with_tls_the_console_may_listen_beyond_loopback() {
    let st = crate::support::Station::sqlite();
    let pem = configure_tls(&st);
    let serve = Serve::start_with(&st.config, &["--console-listen", "0.0.0.0:0"]);
    let base = serve.console_url.clone().unwrap();
    let port = base.rsplit(':').next().unwrap().trim_end_matches('/');
    let rt = crate::support::runtime();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let page = rt
        .block_on(client.get(format!("https://127.0.0.1:{port}/login")).send())
        .unwrap();
    assert_eq!(page.status(), 200);
    drop(serve);
}
