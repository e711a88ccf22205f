//! The caching headers of what relying parties fetch and may keep until its nextUpdate: an OCSP
//! answer (RFC 5019 §6.2) and a CRL — `Cache-Control: max-age` counting down to nextUpdate,
//! `Last-Modified` (thisUpdate), `Expires` (nextUpdate), a strong `ETag`, and `304 Not
//! Modified` for a matching `If-None-Match`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

/// A body and how long it stays good.
#[derive(Debug)]
pub(crate) struct Cacheable<'a> {
    /// The DER body.
    pub der: &'a [u8],
    /// Its media type.
    pub content_type: &'static str,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// A strong validator (without quotes).
    pub etag: &'a str,
}

/// `200` with the body, or `304` when `if_none_match` names its ETag (or `*`); both with the
/// caching headers as of `now`.
pub(crate) fn cached(
    body: Cacheable<'_>,
    if_none_match: Option<&HeaderValue>,
    now: OffsetDateTime,
) -> Response {
    let etag = format!("\"{}\"", body.etag);
    let max_age = (body.next_update - now).whole_seconds().max(0);
    let not_modified = if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body.der.to_vec()).into_response()
    };
    let headers = response.headers_mut();
    set_headers(
        headers,
        body.content_type,
        &format!("max-age={max_age}, public, no-transform, must-revalidate"),
    );
    for (name, value) in [
        (header::ETAG, etag),
        (header::LAST_MODIFIED, http_date(body.this_update)),
        (header::EXPIRES, http_date(body.next_update)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

/// Sets `Content-Type` and `Cache-Control`.
pub(crate) fn set_headers(headers: &mut HeaderMap, content_type: &'static str, cache: &str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(cache) {
        headers.insert(header::CACHE_CONTROL, v);
    }
}

/// An HTTP date (RFC 9110 §5.6.7, IMF-fixdate).
pub(crate) fn http_date(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdate() {
        let t = time::macros::datetime!(1994-11-06 08:49:37 UTC);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        let beijing = t.to_offset(time::macros::offset!(+8));
        assert_eq!(http_date(beijing), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn max_age_counts_down_to_next_update_and_a_matching_etag_is_not_modified() {
        let now = time::macros::datetime!(2026-12-06 00:00:00 UTC);
        let body = || Cacheable {
            der: b"crl",
            content_type: "application/pkix-crl",
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::seconds(90),
            etag: "7-abc",
        };
        let r = cached(body(), None, now);
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(
            h[header::CACHE_CONTROL],
            "max-age=90, public, no-transform, must-revalidate"
        );
        assert_eq!(h[header::ETAG], "\"7-abc\"");
        assert_eq!(h[header::EXPIRES], "Sun, 06 Dec 2026 00:01:30 GMT");
        assert_eq!(h[header::LAST_MODIFIED], "Sat, 05 Dec 2026 23:00:00 GMT");
        let same = HeaderValue::from_static("\"other\", \"7-abc\"");
        assert_eq!(
            cached(body(), Some(&same), now).status(),
            StatusCode::NOT_MODIFIED
        );
        let other = HeaderValue::from_static("\"7-abd\"");
        assert_eq!(cached(body(), Some(&other), now).status(), StatusCode::OK);
        let late = now + time::Duration::minutes(5);
        assert_eq!(
            cached(body(), None, late).headers()[header::CACHE_CONTROL],
            "max-age=0, public, no-transform, must-revalidate"
        );
    }
}
