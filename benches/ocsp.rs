//! OCSP benchmark (issue 15): answers per second on loopback, `keystation serve` against
//! OpenSSL's own responder (`openssl ocsp -index ... -port`) serving the same CA on the same
//! machine in the same run, for a mix of good and revoked serials.
//!
//! Setup: one station (`keystation init` on /dev/shm when it exists), `KEYSTATION_BENCH_OCSP_ORDERS`
//! orders (default 6) provisioned for real, half of them revoked with `order revoke --reason
//! keyCompromise`. OpenSSL's responder needs its signing key in a file, and the station's is in
//! the HSM: the bench has the same CA (its key on the station's SoftHSM token, through the
//! library's `Hsm::ca_signer` and `ca::issuance::issue_ocsp_signer_cert`, the very path `ca
//! ocsp-signer` takes) certify a software P-256 key it generates, valid for a day, with the same
//! profile (EKU OCSPSigning, ocsp-nocheck). That certificate is never recorded by the station;
//! it exists in the bench's temporary directory only. OpenSSL's `index.txt` lists the same serials
//! with the same statuses (the revoked ones with their time and keyCompromise).
//!
//! Clients: this process, 8 concurrent requesters on a 2-thread runtime, each POSTing
//! pre-built DER requests (one certificate each, serials in turn) for `KEYSTATION_BENCH_OCSP_SECS`
//! seconds (default 5) per cell; "keep-alive" reuses connections, "per connection" opens one per
//! request; "nonce" gives every request a fresh 16-byte nonce (so every answer must be signed
//! for it), "no nonce" asks as RFC 5019 clients do. Every answer is checked to be a successful
//! OCSPResponse, and the first of each serial decoded and its status compared with what it must
//! be. OpenSSL's responder speaks HTTP/1.0 and closes after each answer, so its keep-alive cell
//! is really per connection; it is measured with one process (its default) and with `-multi 2`
//! (one per core).
//!
//! `cargo bench --bench ocsp`; without `--bench` (as `cargo test --all-targets` runs it) a smoke
//! run (2 orders, a fraction of a second per cell) that checks every answer and claims no figure.
//! Figures as JSON in `target/bench/ocsp.json` (a smoke run: `ocsp-smoke.json`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod figures;

use figures::{keystation, ok};

use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use keystation::ca::issuance::issue_ocsp_signer_cert;
use keystation::ca::ocsp::OID_OCSP_NONCE;
use keystation::ca::ocsp::asn1::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, Request, ResponseData,
    ResponseStatus, TbsRequest, Version,
};
use keystation::ca::profile::ocsp_signer_params;
use keystation::clock::{Clock, SystemClock};
use keystation::config::Config;
use keystation::station::hsm::{Hsm, certificate_pem};
use rand::RngCore;
use rcgen::PublicKeyData;
use serde_json::json;
use sha1::{Digest, Sha1};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use x509_cert::ext::Extension;
use x509_cert::spki::AlgorithmIdentifierOwned;

const CONCURRENCY: usize = 8;
const SHA1_ALG: &[u8] = &[
    0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
];

/// A serial the CA issued, and whether it is revoked.
#[derive(Debug, Clone)]
struct Serial {
    hex: String,
    revoked: bool,
}

/// `orders` orders imported, approved and provisioned; every other one revoked.
async fn certificates(config: &Path, dir: &Path, orders: usize) -> Vec<Serial> {
    let imported = figures::orders::approved(config, dir, orders).await;
    ok(keystation()
        .arg("--config")
        .arg(config)
        .arg("--credential")
        .arg(figures::credential(config, "bench"))
        .args(["--json", "provision", "--all-approved", "--workers", "2"]));
    let mut serials = Vec::new();
    for (i, no) in imported.iter().enumerate() {
        let shown: serde_json::Value = serde_json::from_slice(
            &ok(keystation().arg("--config").arg(config).args([
                "--json",
                "order",
                "show",
                no.as_str(),
            ]))
            .stdout,
        )
        .unwrap();
        let hex = shown["certificates"][0]["serial"]
            .as_str()
            .unwrap_or_else(|| panic!("no certificate in {shown}"))
            .to_string();
        let revoked = i % 2 == 1;
        if revoked {
            // Four-eyes: requested by one operator, approved (and carried out) by another.
            let requested = ok(keystation()
                .arg("--config")
                .arg(config)
                .args([
                    "--json",
                    "order",
                    "revoke",
                    no.as_str(),
                    "--reason",
                    "keyCompromise",
                    "--operator",
                    "bench",
                    "--credential",
                ])
                .arg(config.parent().unwrap().join("bench.credential")));
            let request: serde_json::Value = serde_json::from_slice(&requested.stdout).unwrap();
            let id = request["id"].as_str().expect("request id");
            ok(keystation()
                .arg("--config")
                .arg(config)
                .args([
                    "revoke",
                    "approve",
                    id,
                    "--operator",
                    "bench-2",
                    "--credential",
                ])
                .arg(config.parent().unwrap().join("bench-2.credential")));
        }
        serials.push(Serial { hex, revoked });
    }
    serials
}

/// A software P-256 key certified by the station's CA (key on its token) as an OCSP signer,
/// for OpenSSL's responder; (certificate PEM path, key PEM path).
fn openssl_signer(config: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = Config::load(config).unwrap();
    let hsm = Hsm::open(Arc::new(cfg.clone())).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let now = SystemClock.now();
    let mut serial = [0u8; 16];
    rand::rng().fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let params = ocsp_signer_params(
        &cfg.ca.common_name,
        &cfg.ca.organization,
        now,
        now + time::Duration::days(1),
        &serial,
    )
    .unwrap();
    let ca = hsm.ca_signer().unwrap();
    let der = issue_ocsp_signer_cert(
        &params,
        &key.subject_public_key_info(),
        hsm.ca_cert_der(),
        &*ca,
    )
    .unwrap();
    let cert = dir.join("openssl-signer.pem");
    let key_path = dir.join("openssl-signer.key");
    std::fs::write(&cert, certificate_pem(&der)).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert, key_path)
}

/// OpenSSL's index.txt for `serials` (all expiring in a year; the revoked ones revoked now).
fn index_txt(serials: &[Serial]) -> String {
    let fmt = time::macros::format_description!(
        "[year repr:last_two][month][day][hour][minute][second]Z"
    );
    let now = SystemClock.now();
    let expiry = (now + time::Duration::days(365)).format(&fmt).unwrap();
    let revoked_at = now.format(&fmt).unwrap();
    serials
        .iter()
        .map(|s| {
            let hex = s.hex.to_ascii_uppercase();
            if s.revoked {
                format!("R\t{expiry}\t{revoked_at},keyCompromise\t{hex}\tunknown\t/CN=bench\n")
            } else {
                format!("V\t{expiry}\t\t{hex}\tunknown\t/CN=bench\n")
            }
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A responder process, killed when dropped.
struct Responder {
    child: Child,
    url: String,
}

impl Drop for Responder {
    fn drop(&mut self) {
        // Its process group: `openssl ocsp -multi` leaves its children behind otherwise.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_keystation(config: &Path) -> Responder {
    let mut child = keystation()
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve said {line:?}"))
        .to_string();
    Responder {
        child,
        url: format!("{base}/ocsp"),
    }
}

/// Whether a responder on `port` answers the DER request `probe` (HTTP/1.0, as OpenSSL's).
fn answers(port: u16, probe: &[u8]) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let head = format!(
        "POST / HTTP/1.0\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
        probe.len()
    );
    let mut answer = Vec::new();
    s.write_all(head.as_bytes()).is_ok()
        && s.write_all(probe).is_ok()
        && s.read_to_end(&mut answer).is_ok()
        && answer.starts_with(b"HTTP/1.0 200")
}

fn start_openssl(
    dir: &Path,
    ca: &Path,
    signer: &(PathBuf, PathBuf),
    multi: Option<u32>,
    probe: &[u8],
) -> Responder {
    let port = free_port();
    let mut cmd = Command::new("openssl");
    cmd.args(["ocsp", "-index"])
        .arg(dir.join("index.txt"))
        .args(["-port", &port.to_string(), "-CA"])
        .arg(ca)
        .arg("-rsigner")
        .arg(&signer.0)
        .arg("-rkey")
        .arg(&signer.1)
        .args(["-nmin", "240", "-ignore_err"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let Some(n) = multi {
        cmd.args(["-multi", &n.to_string()]);
    }
    let child = cmd.spawn().unwrap();
    // Ready once it answers a real request. (A bare connect as a probe is not harmless: OpenSSL
    // 3.0's responder spins on a connection closed before it sent a request.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(port, probe) {
        assert!(Instant::now() < deadline, "openssl ocsp did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    Responder {
        child,
        url: format!("http://127.0.0.1:{port}/"),
    }
}

/// The CertID of `serial` under the CA `ca_der` (SHA-1, as RFC 5019 clients ask).
fn cert_id(ca_der: &[u8], serial: &str) -> CertId {
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der).unwrap();
    let mut bytes = hex::decode(serial).unwrap();
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    CertId {
        hash_algorithm: AlgorithmIdentifierOwned::from_der(SHA1_ALG).unwrap(),
        issuer_name_hash: OctetString::new(Sha1::digest(ca.subject().as_raw()).to_vec()).unwrap(),
        issuer_key_hash: OctetString::new(
            Sha1::digest(ca.public_key().subject_public_key.data.as_ref()).to_vec(),
        )
        .unwrap(),
        serial_number: Int::new(&bytes).unwrap(),
    }
}

fn request(id: &CertId, nonce: bool) -> Vec<u8> {
    let request_extensions = nonce.then(|| {
        let mut n = [0u8; 16];
        rand::rng().fill_bytes(&mut n);
        vec![Extension {
            extn_id: OID_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap()).unwrap(),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id.clone(),
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

/// Whether `answer` says `revoked` (or good) for the one certificate asked about.
fn decoded_revoked(answer: &[u8]) -> bool {
    let r = OcspResponse::from_der(answer).unwrap();
    assert_eq!(r.response_status, ResponseStatus::Successful);
    let basic = BasicOcspResponse::from_der(r.response_bytes.unwrap().response.as_bytes()).unwrap();
    let data = ResponseData::from_der(&basic.tbs_response_data.to_der().unwrap()).unwrap();
    match &data.responses[0].cert_status {
        CertStatus::Good(_) => false,
        CertStatus::Revoked(_) => true,
        other => panic!("unexpected status {other:?}"),
    }
}

/// POSTs the OCSP request `body` to `url`; the answer's body (as received, not copied).
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> impl std::ops::Deref<Target = [u8]> {
    client
        .post(url)
        .header("content-type", "application/ocsp-request")
        .body(body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

/// Answers per second from `url` over `secs` seconds; every answer checked.
async fn measure(
    url: &str,
    ids: &[(CertId, bool)],
    keep_alive: bool,
    nonce: bool,
    secs: f64,
) -> f64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = if keep_alive {
        reqwest::Client::new()
    } else {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    // The first answer of each serial, decoded: the right status, or no figure at all.
    for (id, revoked) in ids {
        let body = post(&client, url, request(id, nonce)).await;
        assert_eq!(decoded_revoked(&body), *revoked, "{url}: wrong status");
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let client = client.clone();
            let url = url.to_string();
            let ids = ids.to_vec();
            let done = done.clone();
            tokio::spawn(async move {
                let mut i = t;
                while Instant::now() < deadline {
                    let body = request(&ids[i % ids.len()].0, nonce);
                    i += 1;
                    let answer = post(&client, &url, body).await;
                    // SEQUENCE, then ENUMERATED successful(0).
                    let at = if answer[1] & 0x80 != 0 {
                        2 + usize::from(answer[1] & 0x7f)
                    } else {
                        2
                    };
                    assert_eq!(
                        &answer[at..at + 3],
                        &[0x0a, 0x01, 0x00],
                        "{url}: not successful"
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let mode = if bench { "bench" } else { "smoke" };
    let orders: usize = std::env::var("KEYSTATION_BENCH_OCSP_ORDERS")
        .map(|v| v.parse().expect("KEYSTATION_BENCH_OCSP_ORDERS is a number"))
        .unwrap_or(if bench { 6 } else { 2 });
    let secs: f64 = std::env::var("KEYSTATION_BENCH_OCSP_SECS")
        .map(|v| v.parse().expect("KEYSTATION_BENCH_OCSP_SECS is a number"))
        .unwrap_or(if bench { 5.0 } else { 0.3 });
    let shm = Path::new("/dev/shm");
    let root = tempfile::Builder::new()
        .prefix("ks-ocsp-")
        .tempdir_in(if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        })
        .unwrap();
    let station_dir = root.path().join("station");
    // SoftHSM reads its configuration from SOFTHSM2_CONF when the module is loaded (in
    // `openssl_signer`, below); the file is the one `init` writes.
    // SAFETY: no other thread exists yet (the runtime is built below); the value is a path.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", station_dir.join("softhsm2.conf"));
    }
    let (rt, load) = figures::start();
    println!("ocsp ({mode}): {orders} certificates, {secs} s per cell, load {load}");

    ok(keystation()
        .args(["init", "--generate-pins", "--dir"])
        .arg(&station_dir));
    let config = station_dir.join("station.toml");
    figures::register_operators(&config, &["bench", "bench-2"]);
    let serials = rt.block_on(certificates(&config, &root.path().join("orders"), orders));
    let signer = openssl_signer(&config, root.path());
    std::fs::write(root.path().join("index.txt"), index_txt(&serials)).unwrap();
    std::fs::write(root.path().join("index.txt.attr"), "unique_subject = no\n").unwrap();
    let ca_pem = station_dir.join("ca/ca.pem");
    let ca_der = keystation::station::hsm::read_certificate(&ca_pem).unwrap();
    let ids: Vec<(CertId, bool)> = serials
        .iter()
        .map(|s| (cert_id(&ca_der, &s.hex), s.revoked))
        .collect();

    let probe = request(&ids[0].0, false);
    let mut rows = Vec::new();
    let targets: [(&str, Option<u32>); 3] = [
        ("keystation serve", None),
        ("openssl ocsp", Some(1)),
        ("openssl ocsp -multi 2", Some(2)),
    ];
    for (name, multi) in targets {
        let responder = match multi {
            None => start_keystation(&config),
            Some(1) => start_openssl(root.path(), &ca_pem, &signer, None, &probe),
            Some(n) => start_openssl(root.path(), &ca_pem, &signer, Some(n), &probe),
        };
        for keep_alive in [true, false] {
            for nonce in [false, true] {
                let rate = rt.block_on(measure(&responder.url, &ids, keep_alive, nonce, secs));
                let conn = if keep_alive {
                    "keep-alive"
                } else {
                    "per connection"
                };
                let nonce_label = if nonce { "nonce" } else { "no nonce" };
                if bench {
                    println!("  {name:<22} {conn:<15} {nonce_label:<9} {rate:>9.0} answers/s");
                } else {
                    println!("  {name:<22} {conn:<15} {nonce_label:<9} ok (smoke: no figure)");
                }
                rows.push(json!({
                    "responder": name, "connection": conn, "nonce": nonce,
                    "answers_per_sec": if bench { json!(rate) } else { json!(null) },
                }));
            }
        }
        drop(responder);
    }
    if bench {
        let rate = |r: &str, c: &str, n: bool| {
            rows.iter()
                .find(|row| row["responder"] == r && row["connection"] == c && row["nonce"] == n)
                .and_then(|row| row["answers_per_sec"].as_f64())
                .unwrap_or(0.0)
        };
        for conn in ["keep-alive", "per connection"] {
            for nonce in [false, true] {
                let best_openssl = rate("openssl ocsp", conn, nonce).max(rate(
                    "openssl ocsp -multi 2",
                    conn,
                    nonce,
                ));
                println!(
                    "  ratio keystation / best openssl, {conn}, nonce {nonce}: {:.1}x",
                    rate("keystation serve", conn, nonce) / best_openssl
                );
            }
        }
    }
    let report = json!({
        "mode": mode, "certificates": orders, "revoked": serials.iter().filter(|s| s.revoked).count(),
        "seconds_per_cell": secs, "concurrency": CONCURRENCY, "load": load, "rows": rows,
    });
    // A smoke run's figures go to ocsp-smoke.json, never over a measured run's.
    figures::write("ocsp", bench, &report);
    if std::env::var_os("KEYSTATION_BENCH_KEEP").is_some() {
        println!("kept {}", root.keep().display());
    }
}
