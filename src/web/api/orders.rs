//! `/api/v1/orders`: submit an order with its documents (`POST`), list orders by state and
//! time (`GET`), and an order's progress (`GET /api/v1/orders/{order_no}`).
//!
//! A submission is checked in this order: the token (401, 403), the body's type (415,
//! `application/json` only), its size (413, at most [`MAX_ORDER_FILE_BYTES`], what a file
//! import takes), JSON (400), then the station's validation (422, every violation located in
//! the body: `order.company.uscc`, `files["docs/licence.png"]`) and the order number (409 for
//! other content under a number that exists). Taken: 201 with `Location`; the same body again:
//! 200 with the same answer, storing nothing.

use super::{Api, Problem, station_error};
use crate::domain::OrderNo;
use crate::domain::api::{Scope, list_limit};
use crate::domain::{OrderState, Violation};
use crate::error_code as ec;
use crate::station::api_orders::{ApiSubmitError, OrderListQuery, OrderProgress};
use crate::station::intake::MAX_ORDER_FILE_BYTES;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The answer to a submission: whether it was stored now, and the order as it stands.
#[derive(Debug, serde::Serialize)]
struct Submitted {
    created: bool,
    #[serde(flatten)]
    order: OrderProgress,
}

/// Whether the request's body is declared `application/json` (parameters aside).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn too_large() -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ec::API_TOO_LARGE,
        format!("the body is larger than {MAX_ORDER_FILE_BYTES} bytes"),
    )
    .into_response()
}

/// `POST /api/v1/orders` (scope `orders:submit`).
pub(super) async fn submit(
    State(api): State<Api>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (caller, station) = match api.caller(&headers, remote, Scope::OrdersSubmit).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    if !is_json(&headers) {
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ec::API_MEDIA_TYPE,
            "the body must be application/json",
        )
        .into_response();
    }
    let limit = usize::try_from(MAX_ORDER_FILE_BYTES).unwrap_or(usize::MAX);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ORDER_FILE_BYTES) {
        return too_large();
    }
    // A body that stops early or runs past the limit is not read further.
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return too_large();
    };
    let done = match station.submit_api_order(&caller, &bytes).await {
        Ok(done) => done,
        Err(ApiSubmitError::Json(why)) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                ec::API_JSON,
                format!("the body is not JSON: {why}"),
            )
            .into_response();
        }
        Err(ApiSubmitError::Invalid(vs)) => {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ec::INPUT_INVALID,
                format!("{} violation(s); nothing was stored", vs.len()),
            )
            .with_violations(vs)
            .into_response();
        }
        Err(e) => return station_error(&e),
    };
    tracing::info!(
        order_no = %done.order_no,
        token = caller.token_id,
        operator = %caller.operator,
        created = done.created,
        "api: order submitted"
    );
    let order = match station.order_progress(&done.order_no).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            return station_error(&crate::store::StoreError::OrderNotFound(done.order_no));
        }
        Err(e) => return station_error(&e),
    };
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        Json(Submitted {
            created: done.created,
            order,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/orders/{}", done.order_no)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `GET /api/v1/orders/{order_no}` (scope `orders:read`).
pub(super) async fn progress(
    State(api): State<Api>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(order_no): Path<String>,
) -> Response {
    let (_, station) = match api.caller(&headers, remote, Scope::OrdersRead).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            ec::ORDER_NOT_FOUND,
            "no order with this number",
        )
        .into_response()
    };
    let Ok(order_no) = OrderNo::parse(&order_no) else {
        return not_found();
    };
    match station.order_progress(&order_no).await {
        Ok(Some(order)) => Json(order).into_response(),
        Ok(None) => not_found(),
        Err(e) => station_error(&e),
    }
}

/// The parameters of a listing, or every violation among them.
fn list_query(params: &BTreeMap<String, String>) -> Result<OrderListQuery, Vec<Violation>> {
    let mut out = Vec::new();
    for key in params.keys() {
        if !["state", "since", "cursor", "limit"].contains(&key.as_str()) {
            out.push(Violation::error(
                crate::domain::text::escape_for_display(key),
                "unknown_field",
                "not a parameter of the listing (state, since, cursor, limit)",
            ));
        }
    }
    let state = params.get("state").and_then(|s| {
        let state = OrderState::parse(s);
        if state.is_none() {
            let names: Vec<&str> = OrderState::ALL.iter().map(|s| s.as_str()).collect();
            out.push(Violation::error(
                "state",
                "enum_invalid",
                format!("one of {}", names.join(", ")),
            ));
        }
        state
    });
    let since = params.get("since").and_then(|s| {
        let since = crate::clock::parse_utc(s.trim());
        if since.is_none() {
            out.push(Violation::error(
                "since",
                "time_invalid",
                "an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
            ));
        }
        since
    });
    let limit = list_limit(params.get("limit").map(String::as_str)).unwrap_or_else(|why| {
        out.push(Violation::error("limit", "limit_invalid", why));
        0
    });
    if !out.is_empty() {
        return Err(out);
    }
    Ok(OrderListQuery {
        state,
        since,
        cursor: params.get("cursor").cloned(),
        limit,
    })
}

fn bad_query(violations: Vec<Violation>) -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        ec::INPUT_INVALID,
        "the query parameters are not acceptable",
    )
    .with_violations(violations)
    .into_response()
}

/// `GET /api/v1/orders?state=&since=&cursor=&limit=` (scope `orders:read`).
pub(super) async fn list(
    State(api): State<Api>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Response {
    let (_, station) = match api.caller(&headers, remote, Scope::OrdersRead).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    let Ok(Query(params)) = params else {
        return bad_query(vec![Violation::error(
            "",
            "query_invalid",
            "not a URL-encoded query",
        )]);
    };
    let query = match list_query(&params) {
        Ok(q) => q,
        Err(vs) => return bad_query(vs),
    };
    match station.api_order_page(&query).await {
        Ok(page) => Json(page).into_response(),
        Err(ApiSubmitError::Invalid(vs)) => bad_query(vs),
        Err(e) => station_error(&e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_listing_query_names_every_bad_parameter() {
        let q = list_query(&params(&[
            ("state", "approved"),
            ("since", "2026-12-01T00:00:00+08:00"),
            ("limit", "10"),
        ]))
        .unwrap();
        assert_eq!(q.state, Some(OrderState::Approved));
        assert_eq!(q.limit, 10);
        assert!(q.since.is_some() && q.cursor.is_none());
        let fields: Vec<String> = list_query(&params(&[
            ("state", "done"),
            ("since", "yesterday"),
            ("limit", "0"),
            ("page", "2"),
        ]))
        .unwrap_err()
        .into_iter()
        .map(|v| v.field)
        .collect();
        assert_eq!(fields, ["page", "state", "since", "limit"]);
    }

    #[test]
    fn only_application_json_is_json() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }
}
