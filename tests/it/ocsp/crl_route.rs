//! The CRL at its distribution point, served by `keystation serve`: what `openssl` as a relying
//! party fetches, with the caching headers, `304` for a known ETag, and after `order revoke`
//! (another process) the next CRL listing the certificate served within seconds.

use super::{Serve, ca_pem, eventually, get, station_with_certificate};
use crate::revocation::{openssl, openssl_crl, relying_party};
use std::path::Path;

/// The CRL fetched as DER, whose signature openssl must verify under `ca`; returns it as PEM
/// (`name.pem`).
fn fetched_crl_verifies(dir: &Path, name: &str, der: &[u8], ca: &Path) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.der"));
    std::fs::write(&path, der).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    let [ca, out] = [ca, &pem].map(|p| p.to_str().unwrap());
    let (ok, text) = openssl_crl(&path, &["-CAfile", ca, "-verify", "-out", out]);
    assert!(ok && text.contains("verify OK"), "{text}");
    pem
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn serve_hands_out_the_crl_with_caching_headers_and_the_next_one_after_a_revocation() {
    let (st, cert, serial) = station_with_certificate("CRLS-1");
    let ca = ca_pem(&st);
    let serve = Serve::start(&st.config());
    assert!(
        serve.crl_url.ends_with("/unit-ca.crl"),
        "the CRL is served at the path of ca.crl_url: {}",
        serve.crl_url
    );

    let (status, headers, body) = get(&serve.crl_url, &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/pkix-crl");
    let cache = header(&headers, "cache-control");
    let max_age: i64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .unwrap_or_else(|| panic!("no max-age in {cache:?}"))
        .parse()
        .unwrap();
    assert!(max_age > 0, "{cache}");
    for name in ["last-modified", "expires"] {
        assert!(header(&headers, name).ends_with(" GMT"), "{headers:?}");
    }
    let etag = header(&headers, "etag");
    let crl = fetched_crl_verifies(st.tmp(), "first", &body, &ca);
    let (ok, text) = relying_party(&ca, &crl, &cert);
    assert!(ok, "a live certificate: {text}");

    let (status, _, body) = get(&serve.crl_url, &[("if-none-match", &etag)]);
    assert_eq!(status, 304);
    assert!(body.is_empty());

    // Revoked by another process: its CRL reaches the server through the store.
    st.revoke(&[
        "order",
        "revoke",
        "CRLS-1",
        "--reason",
        "keyCompromise",
        "--operator",
        "alice",
    ]);
    let newer = eventually("the next CRL served", || {
        let (status, headers, body) = get(&serve.crl_url, &[("if-none-match", &etag)]);
        (status == 200).then(|| {
            assert_ne!(header(&headers, "etag"), etag);
            hex::encode(body)
        })
    });
    let crl = fetched_crl_verifies(st.tmp(), "after", &hex::decode(newer).unwrap(), &ca);
    let (ok, text) = relying_party(&ca, &crl, &cert);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (_, listing) = openssl(&["crl", "-in", crl.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        listing.to_uppercase().contains(&serial.to_uppercase())
            && listing.contains("Key Compromise"),
        "{serial}: {listing}"
    );
    assert!(serve.stop().success());
}
