//! The language switch in every page's header: a GET with `?lang=en` (or `?lang=zh-CN`) sets
//! the `ks_lang` cookie ([`texts::set_cookie`]: `HttpOnly`, `SameSite=Strict`, `Secure` over
//! TLS) and answers with the way back to the same page without the parameter, so the page is
//! then rendered in the chosen language ([`texts::Lang::of_request`]) and its address stays
//! clean. An unknown language is a 400 naming the field. Other methods are left alone: a form
//! post never changes the language.

use super::texts::{self, Lang};
use super::{Console, Frame, error_page};
use crate::error_code as ec;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// The middleware (see the module docs).
pub(super) async fn switch(State(console): State<Console>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let Some((asked, rest)) = req.uri().query().and_then(take_lang) else {
        return next.run(req).await;
    };
    let Some(lang) = Lang::parse(&asked) else {
        let frame = Frame {
            t: Console::lang(req.headers()).texts(),
            ..Frame::default()
        };
        let t = frame.t;
        return error_page(
            StatusCode::BAD_REQUEST,
            ec::USAGE,
            t.lang_unknown,
            Some(&frame),
        );
    };
    let back = back_to(req.uri().path(), &rest);
    match HeaderValue::from_str(&texts::set_cookie(lang, console.inner.tls)) {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response(),
        Err(_) => Redirect::to(&back).into_response(),
    }
}

/// The `lang` parameter of a query string (its last value) and the rest of the query, as sent;
/// `None` without one.
fn take_lang(query: &str) -> Option<(String, String)> {
    let mut lang = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("lang", v)) => lang = Some(v.to_string()),
            _ if pair == "lang" => lang = Some(String::new()),
            _ => rest.push(pair),
        }
    }
    lang.map(|l| (l, rest.join("&")))
}

/// The address of the same page: the path and the rest of the query. A path that a browser
/// would read as another host's (`//host`, `/\host`) goes to the queue instead.
fn back_to(path: &str, rest: &str) -> String {
    let path = if path.starts_with("//") || path.starts_with("/\\") || !path.starts_with('/') {
        "/"
    } else {
        path
    };
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lang_parameter_is_taken_out_of_the_query_and_the_rest_kept() {
        assert_eq!(take_lang("lang=en"), Some(("en".into(), String::new())));
        assert_eq!(
            take_lang("state=submitted&lang=zh-CN&q=x"),
            Some(("zh-CN".into(), "state=submitted&q=x".into()))
        );
        assert_eq!(take_lang("lang"), Some((String::new(), String::new())));
        assert_eq!(take_lang("language=en&q=1"), None);
        assert_eq!(take_lang(""), None);
    }

    #[test]
    fn the_way_back_stays_on_this_console() {
        assert_eq!(back_to("/orders/KS-1", ""), "/orders/KS-1");
        assert_eq!(back_to("/", "state=approved"), "/?state=approved");
        assert_eq!(back_to("//evil.example", ""), "/");
        assert_eq!(back_to("/\\evil.example", "a=1"), "/?a=1");
    }
}
