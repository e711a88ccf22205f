//! `GET /check`: `keystation check`'s results — the station's invariants checked against the
//! database and the tokens, each finding with its rule and order. Read-only; for the roles of
//! [`View::Check`] (auditor). The check runs when the page is opened.

use super::texts::Texts;
use super::{Console, render, station_error};
use crate::domain::View;
use crate::station::check::Level;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

struct Row {
    violation: bool,
    rule: &'static str,
    order_no: String,
    message: String,
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    ok: bool,
    orders: usize,
    tokens: usize,
    findings: Vec<Row>,
}

/// `GET /check`.
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (frame, station) = match console.viewing(&headers, View::Check).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let hsm = console.hsm();
    let report = match station.check(&hsm).await {
        Ok(r) => r,
        Err(e) => return station_error(&e, &frame),
    };
    render(&CheckPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        ok: report.ok(),
        orders: report.orders,
        tokens: report.tokens_checked,
        findings: report
            .findings
            .into_iter()
            .map(|f| Row {
                violation: f.level == Level::Violation,
                rule: f.rule,
                order_no: f.order_no.unwrap_or_default(),
                message: f.message,
            })
            .collect(),
    })
}
