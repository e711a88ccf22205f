//! The OCSP responder over HTTP (RFC 6960 Appendix A, RFC 5019 §5): `POST <path>` with an
//! `application/ocsp-request` body, and `GET <path>/<url-encoded base64 request>`; answers are
//! `application/ocsp-response`. A GET answer to a request without a nonce carries the caching
//! headers of RFC 5019 §6.2 — `Cache-Control: max-age` (up to nextUpdate), `Last-Modified`
//! (thisUpdate), `Expires` (nextUpdate), `ETag` — and `If-None-Match` gets `304`. Every other
//! answer is `Cache-Control: no-store`.
//!
//! A body over [`MAX_BODY`] is refused from its `Content-Length`, or once that many bytes have
//! come, without reading the rest: `413` with a `malformedRequest` OCSPResponse. Every other
//! answer, an OCSP error status included, is `200` (RFC 6960 §2.3: the status is in the body).

use super::cache::{Cacheable, cached, set_headers};
use crate::ca::ocsp::asn1::ResponseStatus;
use crate::ca::ocsp::error_response;
use crate::station::ocsp::{OcspAnswer, OcspResponder};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use std::sync::Arc;
use time::OffsetDateTime;

/// Largest request body read (an RFC 5019 request is about a hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

const OCSP_RESPONSE: &str = "application/ocsp-response";

#[derive(Clone)]
struct Ocsp {
    responder: Arc<OcspResponder>,
    /// The path prefix of GET requests, with its trailing `/`.
    get_prefix: String,
}

/// The responder's routes at `path` (the path of `ocsp.url`, e.g. `/ocsp`).
pub fn routes(responder: Arc<OcspResponder>, path: &str) -> Router {
    let path = path.trim_end_matches('/');
    let state = Ocsp {
        responder,
        get_prefix: format!("{path}/"),
    };
    let root = if path.is_empty() { "/" } else { path };
    let mut router = Router::new()
        .route(root, post(post_request))
        .route(&format!("{path}/{{*request}}"), get(get_request));
    if !path.is_empty() {
        router = router.route(&format!("{path}/"), post(post_request));
    }
    router.with_state(state)
}

async fn post_request(State(ocsp): State<Ocsp>, headers: HeaderMap, body: Body) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return too_large();
    };
    let answer = ocsp.responder.answer(&body).await;
    respond(&answer, None, ocsp.responder.now())
}

async fn get_request(State(ocsp): State<Ocsp>, uri: Uri, headers: HeaderMap) -> Response {
    let encoded = uri
        .path()
        .strip_prefix(&ocsp.get_prefix)
        .unwrap_or_default();
    let answer = match decode_get(encoded) {
        Some(der) => ocsp.responder.answer(&der).await,
        None => OcspAnswer {
            der: Arc::new(error_response(ResponseStatus::MalformedRequest)),
            status: ResponseStatus::MalformedRequest,
            freshness: None,
        },
    };
    respond(
        &answer,
        Some(headers.get(header::IF_NONE_MATCH)),
        ocsp.responder.now(),
    )
}

/// The DER request of a GET path segment: percent-decoded, then base64 (standard alphabet, as
/// RFC 6960 asks; the URL-safe one and missing padding are accepted too).
fn decode_get(encoded: &str) -> Option<Vec<u8>> {
    if encoded.is_empty() || encoded.len() > 2 * MAX_BODY {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut text = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                text.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'-' => {
                text.push(b'+');
                i += 1;
            }
            b'_' => {
                text.push(b'/');
                i += 1;
            }
            b => {
                text.push(b);
                i += 1;
            }
        }
    }
    while text.last() == Some(&b'=') {
        text.pop();
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&text)
        .ok()
}

fn too_large() -> Response {
    let mut response = (
        StatusCode::PAYLOAD_TOO_LARGE,
        error_response(ResponseStatus::MalformedRequest),
    )
        .into_response();
    set_headers(response.headers_mut(), OCSP_RESPONSE, "no-store");
    response
}

/// The HTTP answer; `get` holds the request's `If-None-Match` for a GET.
fn respond(
    answer: &OcspAnswer,
    get: Option<Option<&HeaderValue>>,
    now: OffsetDateTime,
) -> Response {
    let cacheable = get.and_then(|inm| answer.freshness.as_ref().map(|f| (inm, f)));
    let Some((if_none_match, fresh)) = cacheable else {
        let mut response = (StatusCode::OK, answer.der.as_ref().clone()).into_response();
        set_headers(response.headers_mut(), OCSP_RESPONSE, "no-store");
        return response;
    };
    cached(
        Cacheable {
            der: answer.der.as_ref(),
            content_type: OCSP_RESPONSE,
            this_update: fresh.this_update,
            next_update: fresh.next_update,
            etag: &fresh.etag,
        },
        if_none_match,
        now,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn get_paths_decode_as_rfc_6960_appendix_a_asks() {
        let der = vec![0x30, 0x03, 0xfb, 0xff, 0x3e];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert!(b64.contains('+') || b64.contains('/'), "{b64}");
        assert_eq!(decode_get(&b64).unwrap(), der);
        let url = b64
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        assert_eq!(decode_get(&url).unwrap(), der);
        let safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
        assert_eq!(decode_get(&safe).unwrap(), der);
        for bad in ["", "%", "%4", "%zz", "!!!!", "a"] {
            assert_eq!(decode_get(bad), None, "{bad:?}");
        }
    }
}
