//! `GET /audit?page=N`: the audit trail, newest record first, a page of [`PER_PAGE`] at a time,
//! under `audit verify`'s verdict computed by the station (the hash chain, the signed anchors,
//! the anchor the vault HSM holds). Read-only; for the roles of [`View::Audit`] (auditor).
//! Records hold no secret (see `crate::audit`); their details are shown as stored.

use super::texts::Texts;
use super::{Console, render, station_error};
use crate::domain::View;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

/// Records per page.
pub const PER_PAGE: usize = 50;

/// The page's query string.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    page: String,
}

struct Row {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    order_no: String,
    details: String,
}

struct Verdict {
    ok: bool,
    records: usize,
    anchors: usize,
    last_anchored_seq: i64,
    unanchored_records: i64,
    problem: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    verdict: Verdict,
    rows: Vec<Row>,
    page: usize,
    pages: usize,
    newer: Option<usize>,
    older: Option<usize>,
}

/// `GET /audit`.
pub async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let (frame, station) = match console.viewing(&headers, View::Audit).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let hsm = console.hsm();
    let verdict = match station.verify_audit(&hsm).await {
        Ok(v) => v,
        Err(e) => return station_error(&e, &frame),
    };
    let records = match station.audit_records(None).await {
        Ok(r) => r,
        Err(e) => return station_error(&e, &frame),
    };
    // Pages count from 1 (the newest); an unreadable or too large number is the last page.
    let pages = records.len().div_ceil(PER_PAGE).max(1);
    let page = query
        .page
        .trim()
        .parse::<usize>()
        .unwrap_or(1)
        .clamp(1, pages);
    let rows = records
        .iter()
        .rev()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .map(|r| Row {
            seq: r.seq,
            at: r.at.clone(),
            actor: r.actor.clone(),
            action: r.action.clone(),
            order_no: r.order_no.clone().unwrap_or_default(),
            details: r.details.clone(),
        })
        .collect();
    render(&AuditPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        verdict: Verdict {
            ok: verdict.ok,
            records: verdict.records,
            anchors: verdict.anchors,
            last_anchored_seq: verdict.last_anchored_seq,
            unanchored_records: verdict.unanchored_records,
            problem: verdict.problem.unwrap_or_default(),
        },
        rows,
        page,
        pages,
        newer: (page > 1).then(|| page - 1),
        older: (page < pages).then(|| page + 1),
    })
}
