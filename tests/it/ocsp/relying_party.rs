//! `openssl ocsp` as the relying party: good, revoked with its reason after `order revoke`,
//! unknown for a serial the CA never issued; the nonce echoed; GET with RFC 5019's caching
//! headers; answers without a nonce handed out again rather than signed anew; pkilint on the
//! signer certificate, the unit certificate (now with AIA) and an answer.

use super::{
    PKILINT, Serve, ask, ask_with, ca_pem, eventually, get, openssl_ocsp, request_der,
    station_with_certificate,
};
use crate::support::openssl;
use base64::Engine;
use std::path::Path;
use std::process::Command;

/// pkilint's `linter` on `file`: no finding of severity ERROR or worse.
fn pkilint_clean(linter: &str, file: &Path) {
    let out = Command::new(format!("{PKILINT}/{linter}"))
        .args(["lint", "-s", "ERROR", file.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("{linter} ({e}): scripts/setup.sh installs pkilint"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "{linter} {}: {text}",
        file.display()
    );
}

#[test]
fn openssl_sees_good_then_revoked_with_its_reason_then_unknown() {
    let (st, cert, serial) = station_with_certificate("OCSP-RP-1");
    let ca = ca_pem(&st);
    let signer = st.path().join("ca/ocsp-signer.pem");
    assert!(
        signer.is_file(),
        "init writes the OCSP signer beside ca.pem"
    );
    pkilint_clean("lint_pkix_cert", &signer);
    pkilint_clean("lint_pkix_cert", &cert);
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", cert.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(
        text.contains("OCSP - URI:http://ocsp.keystation.invalid/ocsp"),
        "the unit certificate names the responder (AIA): {text}"
    );

    let serve = Serve::start(&st.config());
    let (ok, out) = ask(&serve, &ca, &cert);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{}: good", cert.display())), "{out}");
    assert!(!out.contains("nonce"), "the nonce is echoed: {out}");

    // Unknown: a serial this CA never issued.
    let (ok, out) = openssl_ocsp(&[
        "-issuer",
        ca.to_str().unwrap(),
        "-serial",
        "0x0123456789abcdef01",
        "-url",
        &serve.url,
        "-CAfile",
        ca.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains(": unknown"), "{out}");

    // Without a nonce, the same answer is handed out again (ECDSA signatures differ each time:
    // equal bytes mean it was not signed anew).
    let answer = |name: &str| {
        let path = st.tmp().join(name);
        let (ok, out) = ask_with(
            &serve.url,
            &ca,
            &cert,
            &["-no_nonce", "-respout", path.to_str().unwrap()],
        );
        assert!(ok && out.contains(": good"), "{out}");
        std::fs::read(path).unwrap()
    };
    assert_eq!(answer("a.der"), answer("b.der"));
    pkilint_clean("lint_ocsp_response", &st.tmp().join("a.der"));

    st.revoke(&[
        "order",
        "revoke",
        "OCSP-RP-1",
        "--reason",
        "keyCompromise",
        "--operator",
        "alice",
    ]);
    // The kept answer ("good", asked without a nonce) is dropped once the revocation's revision
    // is seen: openssl asking without a nonce gets the revocation too.
    let out = eventually("openssl sees the revocation without a nonce", || {
        let (ok, out) = ask_with(&serve.url, &ca, &cert, &["-no_nonce"]);
        (ok && out.contains(": revoked")).then_some(out)
    });
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    let (ok, out) = ask(&serve, &ca, &cert);
    assert!(ok && out.contains(": revoked"), "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(out.contains("Revocation Time:"), "{out}");

    // GET (RFC 6960 Appendix A): the request openssl writes, base64 and URL-encoded in the path.
    let req = request_der(&ca, &cert, &st.tmp().join("get-req.der"), &["-no_nonce"]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(req);
    let encoded = b64
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let url = format!("{}/{encoded}", serve.url);
    let (status, headers, body) = get(&url, &[]);
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {headers:?}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/ocsp-response");
    let cache = header("cache-control");
    let max_age: i64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age: {cache}"))
        .parse()
        .unwrap();
    assert!(max_age > 0 && max_age <= 4 * 3600, "{cache}");
    for name in ["last-modified", "expires"] {
        assert!(header(name).ends_with(" GMT"), "{name}: {}", header(name));
    }
    let etag = header("etag");
    let resp = st.tmp().join("get-resp.der");
    std::fs::write(&resp, &body).unwrap();
    let (ok, out) = openssl_ocsp(&[
        "-respin",
        resp.to_str().unwrap(),
        "-issuer",
        ca.to_str().unwrap(),
        "-cert",
        cert.to_str().unwrap(),
        "-CAfile",
        ca.to_str().unwrap(),
        "-no_nonce",
    ]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(
        out.contains(": revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    pkilint_clean("lint_ocsp_response", &resp);
    let (status, _, body) = get(&url, &[("if-none-match", &etag)]);
    assert_eq!(status, 304, "a client holding the answer gets Not Modified");
    assert!(body.is_empty());

    // A GET with a nonce is answered, signed for it alone, and not cacheable.
    let nonce_req = st.tmp().join("nonce-req.der");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(request_der(
        &ca,
        &cert,
        &nonce_req,
        &[],
    ));
    let (status, headers, body) = get(&format!("{}/{b64}", serve.url), &[]);
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    let resp = st.tmp().join("nonce-resp.der");
    std::fs::write(&resp, &body).unwrap();
    let (ok, out) = openssl_ocsp(&[
        "-respin",
        resp.to_str().unwrap(),
        "-reqin",
        nonce_req.to_str().unwrap(),
        "-CAfile",
        ca.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(!out.contains("nonce"), "nonce echoed: {out}");

    let status = serve.stop();
    assert!(status.success(), "serve ends cleanly on SIGTERM: {status}");
    drop(serial);
}
