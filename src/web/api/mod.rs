//! The order API (issue 17, item 3) under `/api/v1/`, for the portal and automated issuance
//! jobs, served by `keystation serve` on the console's listener (`--console-listen`).
//!
//! Routes ([`ApiRoute`], the one list the router is built from and the OpenAPI document
//! ([`openapi`]) is checked against): submit an order with its documents, an order's progress,
//! a listing by state and time ([`orders`]), and the OpenAPI document itself.
//!
//! Authentication ([`auth`]): `Authorization: Bearer <API token>`; no token, or one that is
//! unknown, revoked or whose operator is disabled: 401 with `WWW-Authenticate`; a token without
//! the route's scope: 403. Client certificates (mutual TLS) are not taken in this slice: the
//! console's listener has no TLS yet, so it is loopback only, and so is the API.
//!
//! Every answer is JSON; an error is an RFC 9457 problem (`application/problem+json`:
//! `status`, `title`, `detail`, and the station's `code`; `violations` for bad input, each with
//! its `field`, `code` and `message`). A failure is logged and answered without its detail.

// A handler's early answer (a refusal) is an axum `Response`, returned as the `Err` of small
// helpers once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod openapi;
pub mod orders;

use crate::domain::Violation;
use crate::error_code::{Coded, ErrorCode};
use crate::station::Station;
use crate::station::operation::OperationContext;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

/// The API's shared state: the station, and which refusals were audited lately.
#[derive(Debug, Clone)]
pub struct Api {
    station: Station,
    refusals: std::sync::Arc<std::sync::Mutex<crate::domain::console::RefusalAudit>>,
}

/// Every route of the API: the router serves exactly these, and the OpenAPI document documents
/// exactly these (a test checks both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiRoute {
    /// `GET /api/v1/openapi.json`.
    OpenApi,
    /// `POST /api/v1/orders`.
    SubmitOrder,
    /// `GET /api/v1/orders`.
    ListOrders,
    /// `GET /api/v1/orders/{order_no}`.
    OrderProgress,
}

impl ApiRoute {
    /// Every route.
    pub const ALL: [ApiRoute; 4] = [
        ApiRoute::OpenApi,
        ApiRoute::SubmitOrder,
        ApiRoute::ListOrders,
        ApiRoute::OrderProgress,
    ];

    /// Its method, lower-case as OpenAPI writes it.
    pub fn method(self) -> &'static str {
        match self {
            ApiRoute::SubmitOrder => "post",
            ApiRoute::OpenApi | ApiRoute::ListOrders | ApiRoute::OrderProgress => "get",
        }
    }

    /// Its path, as axum and OpenAPI write it.
    pub fn path(self) -> &'static str {
        match self {
            ApiRoute::OpenApi => "/api/v1/openapi.json",
            ApiRoute::SubmitOrder | ApiRoute::ListOrders => "/api/v1/orders",
            ApiRoute::OrderProgress => "/api/v1/orders/{order_no}",
        }
    }

    fn handler(self) -> MethodRouter<Api> {
        match self {
            ApiRoute::OpenApi => get(openapi::document),
            ApiRoute::SubmitOrder => post(orders::submit),
            ApiRoute::ListOrders => get(orders::list),
            ApiRoute::OrderProgress => get(orders::progress),
        }
    }
}

impl Api {
    /// The API of `station`.
    pub fn new(station: Station) -> Api {
        Api {
            station,
            refusals: Default::default(),
        }
    }

    /// Its routes: [`ApiRoute::ALL`], the methods of one path together.
    pub fn routes(self) -> Router {
        let mut router: Router<Api> = Router::new();
        let mut paths: Vec<&str> = Vec::new();
        for route in ApiRoute::ALL {
            if paths.contains(&route.path()) {
                continue;
            }
            paths.push(route.path());
            let methods = ApiRoute::ALL
                .iter()
                .filter(|r| r.path() == route.path())
                .fold(MethodRouter::new(), |m, r| m.merge(r.handler()));
            router = router.route(route.path(), methods);
        }
        router
            .layer(axum::middleware::map_response(api_headers))
            .with_state(self)
    }

    /// The station, bound to a new operation, acting for the token's operator.
    fn station(&self) -> Station {
        self.station
            .for_operation(&OperationContext::new())
            .for_authenticated_operator()
    }
}

/// An error answer (RFC 9457 problem details, with the station's code).
#[derive(Debug, serde::Serialize)]
pub struct Problem {
    /// The HTTP status.
    pub status: u16,
    /// The status's reason phrase.
    pub title: &'static str,
    /// What went wrong (never a secret, never a failure's internals).
    pub detail: String,
    /// The station's stable error code.
    pub code: ErrorCode,
    /// Every violation of a bad input, with its field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

impl Problem {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Problem {
        Problem {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail: detail.into(),
            code,
            violations: Vec::new(),
        }
    }

    /// The same problem listing `violations`.
    pub fn with_violations(mut self, violations: Vec<Violation>) -> Problem {
        self.violations = violations;
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The answer to an error of a station call: a refusal with its status
/// ([`super::refusal_status`]), a failure as a 500 without its detail (logged).
fn station_error<E: Coded + std::fmt::Display>(e: &E) -> Response {
    let code = e.code();
    match super::refusal_status(code) {
        Some(status) => Problem::new(status, code, e.to_string()).into_response(),
        None => {
            tracing::error!(code = %code, error = %e, "api: request failed");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                "internal error: see the station's log",
            )
            .into_response()
        }
    }
}

/// Headers on every answer of the API.
async fn api_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
