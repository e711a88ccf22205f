//! Hostile input to the responder: garbage, a truncated request, a 1 MiB body and a request for
//! another CA's certificate each get their OCSP error status (malformedRequest,
//! malformedRequest, malformedRequest with 413, unauthorized), and the server goes on serving.

use super::{
    Serve, ask, ca_pem, get, openssl_ocsp, post, request_der, response_status,
    station_with_certificate,
};
use crate::support::run_ok;
use std::process::Command;

const MALFORMED: u8 = 1;
const UNAUTHORIZED: u8 = 6;

#[test]
fn bad_requests_get_their_error_status_and_the_server_keeps_serving() {
    let (st, cert, _) = station_with_certificate("OCSP-BAD-1");
    let ca = ca_pem(&st);
    let serve = Serve::start(&st.config());

    // Garbage.
    let (status, headers, body) = post(&serve.url, b"GET / HTTP/1.0\r\n\r\n".to_vec());
    assert_eq!((status, response_status(&body)), (200, MALFORMED));
    assert_eq!(headers["content-type"], "application/ocsp-response");
    let (status, _, body) = post(&serve.url, Vec::new());
    assert_eq!((status, response_status(&body)), (200, MALFORMED));
    let (status, _, body) = get(&format!("{}/not-base64!", serve.url), &[]);
    assert_eq!((status, response_status(&body)), (200, MALFORMED));

    // A truncated request (every cut of a real one).
    let req = request_der(&ca, &cert, &st.tmp().join("req.der"), &[]);
    for cut in [1, req.len() / 2, req.len() - 1] {
        let (status, _, body) = post(&serve.url, req[..cut].to_vec());
        assert_eq!(
            (status, response_status(&body)),
            (200, MALFORMED),
            "cut at {cut}"
        );
    }

    // 1 MiB: refused from its Content-Length. curl asks first (Expect: 100-continue), as
    // clients of large uploads do, and gets the answer without sending the body.
    let big = st.tmp().join("big.bin");
    std::fs::write(&big, vec![0x30u8; 1 << 20]).unwrap();
    let big_resp = st.tmp().join("big-resp.der");
    let out = run_ok(Command::new("curl").args([
        "-sS",
        "-o",
        big_resp.to_str().unwrap(),
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/ocsp-request",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &format!("@{}", big.display()),
        &serve.url,
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413");
    assert_eq!(
        response_status(&std::fs::read(&big_resp).unwrap()),
        MALFORMED
    );
    // Without asking first: the server answers from the header and does not read the body; the
    // client may see the answer or the connection closed under its upload. Either way the
    // server is unharmed (checked below).
    let rt = crate::support::runtime();
    let sent = rt.block_on(
        super::client()
            .post(&serve.url)
            .body(vec![0x30u8; 1 << 20])
            .send(),
    );
    if let Ok(r) = sent {
        assert_eq!(r.status().as_u16(), 413);
        let body = rt.block_on(r.bytes()).unwrap();
        assert_eq!(response_status(&body), MALFORMED);
    }

    // Another CA's certificate (RFC 5019 §2.2.3: unauthorized).
    let other_key = st.tmp().join("other.key");
    let other_ca = st.tmp().join("other-ca.pem");
    run_ok(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/C=CN/O=Other/CN=Other CA",
        "-days",
        "2",
        "-keyout",
        other_key.to_str().unwrap(),
        "-out",
        other_ca.to_str().unwrap(),
    ]));
    let (_, out) = openssl_ocsp(&[
        "-issuer",
        other_ca.to_str().unwrap(),
        "-serial",
        "0x01",
        "-url",
        &serve.url,
    ]);
    assert!(out.contains("unauthorized"), "{out}");
    let foreign = st.tmp().join("foreign.der");
    run_ok(Command::new("openssl").args([
        "ocsp",
        "-issuer",
        other_ca.to_str().unwrap(),
        "-serial",
        "0x01",
        "-reqout",
        foreign.to_str().unwrap(),
    ]));
    let (status, _, body) = post(&serve.url, std::fs::read(foreign).unwrap());
    assert_eq!((status, response_status(&body)), (200, UNAUTHORIZED));

    // Still serving.
    let (ok, out) = ask(&serve, &ca, &cert);
    assert!(
        ok && out.contains(": good") && out.contains("Response verify OK"),
        "{out}"
    );
    assert!(serve.stop().success());
}
