//! Login and logout: operator name, password and TOTP code, checked by the station
//! ([`crate::station::login`]). Every refusal gets the same page and message, whatever failed
//! (the audit trail says what); only the throttle's refusal differs (429), since it is about the
//! client, not the account.

use super::texts::Texts;
use super::{Console, Frame, csrf_refused, error_page, render, station_error};
use crate::domain::password::Password;
use crate::error_code as ec;
use crate::station::login::{ConsoleLoginError, LoginRefused};
use askama::Template;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    refused: Option<String>,
}

/// The login form as posted.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    operator: String,
    /// Moved into a [`Password`] as soon as the form is read.
    #[serde(default)]
    password: String,
    /// Moved into a [`Zeroizing`] as soon as the form is read.
    #[serde(default)]
    code: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm { .. }")
    }
}

/// The logout form as posted.
#[derive(Debug, serde::Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /login`: the form, in the request's session (a new one when it has none).
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let t = Console::lang(&headers).texts();
    if let Some(session) = console.session(&headers) {
        if session.operator.is_some() {
            return Redirect::to("/").into_response();
        }
        return render(&LoginPage {
            operator: None,
            csrf: session.csrf,
            t,
            refused: None,
        });
    }
    let (session, cookie) = match console.start_session(None) {
        Ok(s) => s,
        Err(page) => return page,
    };
    let page = render(&LoginPage {
        operator: None,
        csrf: session.csrf,
        t,
        refused: None,
    });
    ([(header::SET_COOKIE, cookie)], page).into_response()
}

/// `POST /login`: CSRF first, then the client's throttle, then the station's check of the
/// operator's password and code.
/// Success: a new session for the operator, and the queue.
pub async fn submit(
    State(console): State<Console>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = Console::lang(&headers).texts();
    let Some(session) = console
        .session(&headers)
        .filter(|s| s.csrf_matches(&form.csrf))
    else {
        return csrf_refused(&Frame::anonymous(t, String::new()));
    };
    let remote = peer.ip().to_string();
    let station = console.station();
    let now = station.now();
    let allowed = console
        .inner
        .throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allows(&remote, now);
    let LoginForm {
        operator,
        password,
        code,
        ..
    } = form;
    let (password, code) = (
        Password::from_secret(Zeroizing::new(password)),
        Zeroizing::new(code),
    );
    let outcome = if allowed {
        station
            .console_login(&console.inner.hsm, &operator, password, code, &remote)
            .await
    } else {
        Err(station
            .console_login_refused(&remote, LoginRefused::RateLimited)
            .await)
    };
    match outcome {
        Ok(account) => {
            console.inner.sessions.end(&session.id);
            let (_, cookie) =
                match console.start_session(Some((account.name.clone(), account.roles.clone()))) {
                    Ok(s) => s,
                    Err(page) => return page,
                };
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(ConsoleLoginError::Refused(why)) => {
            if why != LoginRefused::RateLimited {
                console
                    .inner
                    .throttle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed(&remote, now);
            }
            let (status, message) = match why {
                LoginRefused::RateLimited => (StatusCode::TOO_MANY_REQUESTS, t.login_throttled),
                _ => (StatusCode::UNAUTHORIZED, t.login_refused),
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                let frame = Frame::anonymous(t, session.csrf);
                return error_page(status, ec::CONSOLE_LOGIN, message, Some(&frame));
            }
            let page = render(&LoginPage {
                operator: None,
                csrf: session.csrf,
                t,
                refused: Some(t.with_code(message, ec::CONSOLE_LOGIN.as_str())),
            });
            (status, page).into_response()
        }
        Err(e) => station_error(&e, &Frame::anonymous(t, String::new())),
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    match console.posted(&headers, &form.csrf) {
        Ok(l) => {
            console.inner.sessions.end(&l.session.id);
            Redirect::to("/login").into_response()
        }
        Err(page) => page,
    }
}
