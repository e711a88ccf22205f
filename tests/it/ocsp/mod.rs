//! Issue 15, item 2: the OCSP responder (and the CRL route) of `keystation serve`, with `openssl ocsp` as the
//! relying party against a real server on a loopback port, pkilint as the independent linter,
//! and hostile input that must get the right OCSP error status and leave the server serving.
//!
//! - `relying_party`: good, revoked (with its reason) after `order revoke`, unknown; nonce; GET
//!   with its caching headers; the signer certificate and the answers linted;
//! - `bad_input`: garbage, a truncated request, a 1 MiB body, another CA's certificate;
//! - `signer`: `ca ocsp-signer` renews the signer and a running server takes it into use;
//! - `crl_route`: the CRL at its distribution point, with its caching headers, and the next one
//!   served within seconds of a revocation made by another process;
//! - `shared_database`: a revocation by another station of the installation (one PostgreSQL)
//!   reaches this station's answers.

mod bad_input;
mod crl_route;
mod relying_party;
mod shared_database;
mod signer;

use crate::station::{TestStation, order_json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pkilint venv scripts/setup.sh installs.
pub const PKILINT: &str = "/opt/keystation/pkilint/bin";

/// A running `keystation serve` on a free loopback port; SIGTERM when dropped.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT/ocsp`.
    pub url: String,
    /// `http://127.0.0.1:PORT/unit-ca.crl`: the CRL at its distribution point's path.
    pub crl_url: String,
    /// `http://127.0.0.1:PORT/`: the operators' console, when started with it.
    pub console_url: Option<String>,
}

impl Serve {
    /// Starts `keystation serve --listen 127.0.0.1:0` for the station of `config` and waits for
    /// its first line.
    pub fn start(config: &Path) -> Serve {
        Serve::start_with(config, &[])
    }

    /// [`Serve::start`] with the console on its own free loopback port
    /// (`--console-listen 127.0.0.1:0`); waits for its line too.
    pub fn start_with_console(config: &Path) -> Serve {
        Serve::start_with(config, &["--console-listen", "127.0.0.1:0"])
    }

    /// [`Serve::start`] with `extra` arguments that start the console (e.g. its address);
    /// waits for the console's line too.
    pub fn start_with(config: &Path, extra: &[&str]) -> Serve {
        Serve::start_with_env(config, extra, &[])
    }

    /// [`Serve::start_with`], the server's environment with `env` added (e.g. failpoints).
    pub fn start_with_env(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let console = !extra.is_empty();
        let mut child = crate::support::keystation()
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting keystation serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("reading serve's first line");
        // "keystation serve: listening on http://127.0.0.1:PORT (OCSP at /ocsp, CRL at /x.crl)"
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("serve did not say where it listens: {line:?}"))
            .to_string();
        let (path, crl_path) = line
            .split_once("(OCSP at ")
            .and_then(|(_, rest)| rest.trim().strip_suffix(')'))
            .and_then(|paths| paths.split_once(", CRL at "))
            .unwrap_or_else(|| panic!("no OCSP and CRL paths in {line:?}"));
        // "keystation serve: console on http://127.0.0.1:PORT/" (https:// with TLS)
        let console_url = console.then(|| {
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .expect("reading serve's console line");
            line.split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .unwrap_or_else(|| panic!("serve did not say where the console is: {line:?}"))
                .to_string()
        });
        Serve {
            url: format!("{base}{path}"),
            crl_url: format!("{base}{crl_path}"),
            console_url,
            child,
        }
    }

    /// SIGTERM, then the exit status (the server ends gracefully).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for serve") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("keystation serve did not end after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

/// A station with one provisioned order; returns the station, the certificate's PEM file and
/// its serial (hex).
pub fn station_with_certificate(order_no: &str) -> (TestStation, PathBuf, String) {
    let st = TestStation::new();
    st.import_approved(&order_json(order_no, "legal_rep_phone", "company", "main"));
    let report = st.json(&["provision", order_no]);
    let serial = report["certificate_serial"].as_str().unwrap().to_string();
    let pem = certificate_pem(&st, &serial);
    (st, pem, serial)
}

/// The certificate `serial` as the station stored it, written as PEM (converted by openssl).
pub fn certificate_pem(st: &TestStation, serial: &str) -> PathBuf {
    let (rt, mut db) = st.sqlite();
    let der: Vec<u8> = rt
        .block_on(
            sqlx::query_scalar("SELECT der FROM certificates WHERE serial = $1")
                .bind(serial)
                .fetch_one(&mut db),
        )
        .unwrap();
    crate::support::certificate_as_pem(st.tmp(), serial, &der)
}

/// The station's CA certificate.
pub fn ca_pem(st: &TestStation) -> PathBuf {
    st.path().join("ca/ca.pem")
}

/// `openssl ocsp` with `args`; (exit ok, stdout + stderr).
pub fn openssl_ocsp(args: &[&str]) -> (bool, String) {
    let mut all = vec!["ocsp"];
    all.extend_from_slice(args);
    crate::support::openssl(&all)
}

/// Asks the responder at `url` about `cert` (issued by `ca`) the way a relying party does (with
/// a nonce unless `extra` says `-no_nonce`), verifying the answer under `ca`; `extra` adds
/// options (`-respout FILE`, ...).
pub fn ask_with(url: &str, ca: &Path, cert: &Path, extra: &[&str]) -> (bool, String) {
    let (ca, cert) = (ca.to_str().unwrap(), cert.to_str().unwrap());
    let mut args = vec!["-issuer", ca, "-cert", cert, "-url", url, "-CAfile", ca];
    args.extend_from_slice(extra);
    openssl_ocsp(&args)
}

/// Asks the server about `cert` (issued by `ca`) the way a relying party does, with a nonce.
pub fn ask(serve: &Serve, ca: &Path, cert: &Path) -> (bool, String) {
    ask_with(&serve.url, ca, cert, &[])
}

/// The DER OCSP request `openssl ocsp` makes for `cert` (with a nonce unless `extra` says
/// `-no_nonce`), written to `out`.
pub fn request_der(ca: &Path, cert: &Path, out: &Path, extra: &[&str]) -> Vec<u8> {
    let (ca, cert) = (ca.to_str().unwrap(), cert.to_str().unwrap());
    let mut args = vec![
        "-issuer",
        ca,
        "-cert",
        cert,
        "-reqout",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, text) = openssl_ocsp(&args);
    assert!(ok, "openssl ocsp -reqout: {text}");
    std::fs::read(out).unwrap()
}

/// Repeats `probe` until it holds (a revocation reaches the answers within seconds); gives up
/// after a minute, failing the test. No timing is asserted.
pub fn eventually(what: &str, mut probe: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An HTTP client (plain HTTP here; reqwest still wants a TLS provider: ring, the station's).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// POSTs `body` to the responder; (HTTP status, headers, body).
pub fn post(url: &str, body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let rt = crate::support::runtime();
    rt.block_on(async {
        let r = client()
            .post(url)
            .header("content-type", "application/ocsp-request")
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.expect("body").to_vec())
    })
}

/// GETs `url`, with optional extra headers; (HTTP status, headers, body).
pub fn get(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let rt = crate::support::runtime();
    rt.block_on(async {
        let mut req = client().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("GET");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.bytes().await.expect("body").to_vec())
    })
}

/// The responseStatus of a DER OCSPResponse (`SEQUENCE { ENUMERATED, ... }`).
pub fn response_status(der: &[u8]) -> u8 {
    assert!(
        der.len() >= 5 && der[0] == 0x30,
        "not an OCSPResponse: {der:02x?}"
    );
    let at = if der[1] & 0x80 != 0 {
        2 + usize::from(der[1] & 0x7f)
    } else {
        2
    };
    assert_eq!(
        &der[at..at + 2],
        &[0x0a, 0x01],
        "no ENUMERATED status: {der:02x?}"
    );
    der[at + 2]
}
