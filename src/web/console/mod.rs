//! The operators' console (issue 17, item 2): zh-CN pages (English at the switch in every
//! page's header, [`language`]; every text from the catalogue of [`texts`]) served by
//! `keystation serve` on its own listener (`--console-listen`, `[console] listen`): HTTPS with
//! `[console] tls_cert` and `tls_key` ([`crate::web::tls`]), else plain HTTP on loopback only.
//!
//! Pages: login ([`login`]), the queue with its state filter and search ([`queue`]), an order's
//! review page with its form fields beside its documents rendered as images, its validation
//! warnings, and the approve / reject / revoke-request forms ([`review`]), with the order's
//! revoke requests waiting for a second security officer; every request waiting for a second
//! approval ([`requests`]); the provisioning desk with its batch and live progress over
//! server-sent events ([`provision`], [`batch_board`]); certificates and the CRL
//! ([`certificates`]); PIN deliveries ([`deliveries`]); the audit trail with its verdict
//! ([`audit`]); `check`'s results ([`check`]). Every change goes through the
//! same [`Station`] method as the CLI, acting as the logged-in operator, so the role checks are
//! the station's: a refusal is a 403 page naming the code.
//!
//! Security notes: server-side sessions ([`session`]) behind an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` when served over TLS; the language's cookie, `ks_lang`, holds only `en` or
//! `zh-CN`, with the same attributes); login by operator name, password and TOTP code
//! ([`crate::station::login`]); a CSRF token in every form, checked before anything else on
//! every POST (refused: 403, `E-CONSOLE-CSRF`); failed logins limited per client
//! ([`crate::domain::console::LoginThrottle`]), answered with one message whatever failed, and
//! audited with what failed; a Content-Security-Policy that allows only the console's own
//! script (`/static/provision.js`, the provisioning page's event stream reader), style sheet,
//! images and event stream, nothing inline; no secret is ever rendered. Templates are compiled in
//! (askama) and escape everything they print.

// A handler's early answer (the login redirect, a refusal page) is an axum `Response`, returned
// as the `Err` of small helpers once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod batch_board;
pub mod certificates;
pub mod check;
pub mod deliveries;
pub mod language;
pub mod login;
pub mod provision;
pub mod queue;
pub mod requests;
pub mod review;
pub mod session;
pub mod texts;

use crate::domain::console::LoginThrottle;
use crate::domain::{OperatorId, View};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::station::operation::OperationContext;
use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use session::{Session, Sessions};
use std::sync::{Arc, Mutex};
use texts::{Lang, Texts};

/// The console's Content-Security-Policy: only its own script, style sheet, images and event
/// stream; nothing inline, nothing from elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const STYLE_SHEET: &str = include_str!("static/console.css");

/// The console's shared state: the station, the sessions, the login throttle.
#[derive(Debug, Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    station: Station,
    /// The vault opens operators' TOTP secrets at login.
    hsm: Arc<Hsm>,
    sessions: Sessions,
    throttle: Mutex<LoginThrottle>,
    /// The provisioning batch started from this console (one at a time).
    board: batch_board::Board,
    /// Served over TLS: cookies are `Secure`.
    tls: bool,
}

/// A console form: it carries the session's CSRF token besides its own fields.
pub trait CsrfForm {
    /// The CSRF token as posted.
    fn csrf(&self) -> &str;
}

/// A form posted by a logged-in operator, its CSRF token checked against the session: the
/// handlers' last argument. Refused, the answer is the CSRF refusal (403) or the way to the
/// login page.
#[derive(Debug)]
pub struct Posted<F> {
    l: LoggedIn,
    form: F,
}

impl<F: CsrfForm + DeserializeOwned + Send> FromRequest<Console> for Posted<F> {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Console) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let Form(form) = Form::<F>::from_request(req, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let l = console.posted(&headers, form.csrf())?;
        Ok(Self { l, form })
    }
}

/// A logged-in request: its session and operator.
#[derive(Debug)]
pub struct LoggedIn {
    /// The session.
    pub session: Session,
    /// Its operator.
    pub operator: OperatorId,
    /// The texts of the request's language.
    pub t: &'static Texts,
}

impl Console {
    /// The console of `station` with its `hsm` (sessions end after `idle` without a request;
    /// `tls`: it is served over HTTPS, so its cookie is `Secure`).
    pub fn new(station: Station, hsm: Arc<Hsm>, idle: time::Duration, tls: bool) -> Console {
        Console {
            inner: Arc::new(Inner {
                station,
                hsm,
                sessions: Sessions::new(idle),
                throttle: Mutex::new(LoginThrottle::default()),
                board: batch_board::Board::default(),
                tls,
            }),
        }
    }

    /// Its routes.
    pub fn routes(self) -> Router {
        Router::new()
            .route("/", get(queue::page))
            .route("/login", get(login::page).post(login::submit))
            .route("/logout", post(login::logout))
            .route("/orders/{order_no}", get(review::page))
            .route(
                "/orders/{order_no}/documents/{role}/{kind}",
                get(review::document),
            )
            .route("/orders/{order_no}/approve", post(review::approve))
            .route("/orders/{order_no}/reject", post(review::reject))
            .route("/orders/{order_no}/revoke", post(review::revoke))
            .route("/requests/{id}/approve", post(requests::approve))
            .route("/requests/{id}/reject", post(requests::reject))
            .route("/static/console.css", get(style_sheet))
            .merge(Self::page_routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                language::switch,
            ))
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self)
    }

    /// The pages beyond the queue and the review (issue 17, item 2: provisioning, requests,
    /// certificates, audit, deliveries, check), in a block of their own.
    fn page_routes() -> Router<Console> {
        Router::new()
            .route("/provision", get(provision::page))
            .route("/provision/batch", post(provision::start))
            .route("/provision/stop", post(provision::stop))
            .route("/provision/events", get(batch_board::events))
            .route("/static/provision.js", get(provision::script))
            .route("/requests", get(requests::page))
            .route("/certificates", get(certificates::page))
            .route("/audit", get(audit::page))
            .route("/deliveries", get(deliveries::page))
            .route("/deliveries/{id}/retry", post(deliveries::retry))
            .route("/deliveries/{id}/cancel", post(deliveries::cancel))
            .route("/check", get(check::page))
    }

    /// The HSM context `serve` opened (its session pools shared by every request and by a
    /// console batch).
    fn hsm(&self) -> Arc<Hsm> {
        self.inner.hsm.clone()
    }

    /// The station, bound to a new operation, acting for the logged-in operator.
    fn station(&self) -> Station {
        self.inner
            .station
            .for_operation(&OperationContext::new())
            .for_authenticated_operator()
    }

    /// The live session of the request, if any.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let id = session::id_from_cookies(cookies)?;
        self.inner.sessions.get(id, self.inner.station.now())
    }

    /// The language of a request (its cookie's, its browser's, or zh-CN).
    fn lang(headers: &HeaderMap) -> Lang {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        Lang::of_request(header(header::COOKIE), header(header::ACCEPT_LANGUAGE))
    }

    /// The logged-in session of a page request; otherwise the way to the login page.
    fn logged_in(&self, headers: &HeaderMap) -> Result<LoggedIn, Response> {
        let t = Self::lang(headers).texts();
        match self.session(headers) {
            Some(session) => match session.operator.clone() {
                Some((operator, _)) => Ok(LoggedIn {
                    session,
                    operator,
                    t,
                }),
                None => Err(Redirect::to("/login").into_response()),
            },
            None => Err(Redirect::to("/login").into_response()),
        }
    }

    /// The logged-in session of a form post whose CSRF token is `csrf`; a 403 otherwise.
    /// A page's opening: the session's operator (else the way to the login page), who may look
    /// at `view` (the station checks: else its refusal page); the page's frame, and the station
    /// acting for the request.
    async fn viewing(&self, headers: &HeaderMap, view: View) -> Result<(Frame, Station), Response> {
        let l = self.logged_in(headers)?;
        let frame = Frame::from(&l);
        let station = self.station();
        if let Err(e) = station.viewer(l.operator.as_str(), view).await {
            return Err(station_error(&e, &frame));
        }
        Ok((frame, station))
    }

    fn posted(&self, headers: &HeaderMap, csrf: &str) -> Result<LoggedIn, Response> {
        let t = Self::lang(headers).texts();
        let session = self
            .session(headers)
            .filter(|s| s.csrf_matches(csrf))
            .ok_or_else(|| csrf_refused(&Frame::anonymous(t, String::new())))?;
        match session.operator.clone() {
            Some((operator, _)) => Ok(LoggedIn {
                session,
                operator,
                t,
            }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }

    /// A new session (fresh id and CSRF token), with its `Set-Cookie` value.
    fn start_session(
        &self,
        operator: Option<(OperatorId, crate::domain::Roles)>,
    ) -> Result<(Session, HeaderValue), Response> {
        let station = &self.inner.station;
        let draw = || {
            station
                .console_secret()
                .map(|s| s.to_string())
                .map_err(|e| failure(ec::RANDOM, &e.to_string(), None))
        };
        let session = self
            .inner
            .sessions
            .start(draw()?, draw()?, operator, station.now());
        let cookie = HeaderValue::from_str(&session::set_cookie(&session.id, self.inner.tls))
            .map_err(|e| failure(ec::IO, &e.to_string(), None))?;
        Ok((session, cookie))
    }
}

/// What every page shows of its session: the operator (none on the login page), the CSRF
/// token its forms carry, and the texts of its language.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The operator's name.
    pub operator: Option<String>,
    /// The session's CSRF token.
    pub csrf: String,
    /// The texts of the request's language.
    pub t: &'static Texts,
}

impl Default for Frame {
    /// Nobody, no token, zh-CN.
    fn default() -> Frame {
        Frame::anonymous(Lang::default().texts(), String::new())
    }
}

impl Frame {
    /// The frame of a page before login, in `t`'s language, its forms carrying `csrf`.
    pub fn anonymous(t: &'static Texts, csrf: String) -> Frame {
        Frame {
            operator: None,
            csrf,
            t,
        }
    }
}

impl From<&LoggedIn> for Frame {
    fn from(l: &LoggedIn) -> Frame {
        Frame {
            operator: Some(l.operator.to_string()),
            csrf: l.session.csrf.clone(),
            t: l.t,
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    title: &'a str,
    code: &'a str,
    message: &'a str,
}

/// An error page with `status`.
fn error_page(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    frame: Option<&Frame>,
) -> Response {
    let frame = frame.cloned().unwrap_or_default();
    let t = frame.t;
    let title = match status {
        StatusCode::FORBIDDEN => t.err_forbidden,
        StatusCode::NOT_FOUND => t.err_not_found,
        StatusCode::TOO_MANY_REQUESTS => t.err_too_many,
        s if s.is_server_error() => t.err_internal,
        _ => t.err_refused,
    };
    let page = ErrorPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t,
        title,
        code: code.as_str(),
        message,
    };
    (status, render(&page)).into_response()
}

/// A refused form post (no CSRF token, another session's, or no session).
fn csrf_refused(frame: &Frame) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        ec::CONSOLE_CSRF,
        frame.t.err_csrf,
        Some(frame),
    )
}

/// A failure (logged; the page names its code, no detail).
fn failure(code: ErrorCode, detail: &str, frame: Option<&Frame>) -> Response {
    tracing::error!(code = %code, error = detail, "console: request failed");
    let t = frame.map_or(Lang::default().texts(), |f| f.t);
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        code,
        t.err_failure,
        frame,
    )
}

/// The page for an error of a station method: the status [`super::refusal_status`] gives a
/// refusal (its message names what), 500 for a failure.
fn station_error<E: Coded + std::fmt::Display>(e: &E, frame: &Frame) -> Response {
    let code = e.code();
    match super::refusal_status(code) {
        Some(status) => error_page(status, code, &e.to_string(), Some(frame)),
        None => failure(code, &e.to_string(), Some(frame)),
    }
}

/// A template rendered as HTML (a template that cannot render is a failure page).
fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: a template did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

async fn style_sheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_SHEET,
    )
        .into_response()
}

/// Headers on every answer of the console.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
