//! `/provision`: the desk — the tokens the station's PKCS#11 module sees (blank ones are what a
//! batch uses), the approved orders waiting for a key — and the form that starts a batch with N
//! workers: the same [`crate::station::Station::provision_batch`] as `provision
//! --all-approved`, run on the server's runtime as a background job, acting for the logged-in
//! operator (see `crate::station::desk`: the station checks the `provisioner` role, 403
//! otherwise, and every record of the batch names the operator). One batch at a time per
//! console (409, `E-CONSOLE-BATCH-RUNNING`). Its progress reaches the page over server-sent
//! events ([`super::batch_board`]), read by the console's one script, `/static/provision.js`
//! (the Content-Security-Policy allows no inline script).

use super::batch_board::LogProgress;
use super::texts::Texts;
use super::{Console, CsrfForm, Frame, Posted, error_page, render, station_error};
use crate::domain::View;
use crate::error_code as ec;
use crate::station::batch::BatchOptions;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// The most workers a console batch may ask for.
pub const MAX_WORKERS: usize = 8;

/// The script of the page's live progress.
pub const SCRIPT: &str = include_str!("static/provision.js");

struct TokenRow {
    serial: String,
    label: String,
    model: String,
    role: String,
    blank: bool,
}

struct WaitingRow {
    order_no: String,
    company_name: String,
    uscc: String,
    auth_method: String,
}

#[derive(Template)]
#[template(path = "provision.html")]
struct ProvisionPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    tokens: Vec<TokenRow>,
    blank: usize,
    usb: Vec<String>,
    waiting: Vec<WaitingRow>,
    running_by: Option<String>,
    max_workers: usize,
}

/// `GET /provision`.
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (frame, station) = match console.viewing(&headers, View::Desk).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let listing = match station.token_listing().await {
        Ok(t) => t,
        Err(e) => return station_error(&e, &frame),
    };
    let waiting = match station.waiting_for_keys().await {
        Ok(w) => w,
        Err(e) => return station_error(&e, &frame),
    };
    let tokens: Vec<TokenRow> = listing
        .tokens
        .iter()
        .map(|t| TokenRow {
            serial: t.token.serial.clone(),
            label: t.token.label.clone(),
            model: t.token.model.clone(),
            role: frame.t.token_role(&t.role),
            blank: t.role == "blank",
        })
        .collect();
    let usb = match (&listing.usb.devices, &listing.usb.reason) {
        (Some(keys), _) => keys.iter().map(|k| k.line.clone()).collect(),
        (None, reason) => vec![frame.t.f1(
            frame.t.usb_unavailable,
            reason.as_deref().unwrap_or(frame.t.unavailable),
        )],
    };
    let running_by = console
        .inner
        .board
        .current()
        .filter(|b| !b.ended())
        .map(|b| b.started_by().to_string());
    render(&ProvisionPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        blank: tokens.iter().filter(|t| t.blank).count(),
        tokens,
        usb,
        waiting: waiting
            .into_iter()
            .map(|o| WaitingRow {
                order_no: o.order_no.to_string(),
                company_name: o.company_name,
                uscc: o.uscc,
                auth_method: frame.t.value_label("auth_method", &o.auth_method),
            })
            .collect(),
        running_by,
        max_workers: MAX_WORKERS,
    })
}

/// The batch form as posted.
#[derive(Debug, serde::Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    workers: String,
}

impl CsrfForm for StartForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /provision/batch`: starts a batch (see the module docs) and answers at once with the
/// way back to the page, where its progress shows.
pub async fn start(
    State(console): State<Console>,
    Posted { l, form }: Posted<StartForm>,
) -> Response {
    let frame = Frame::from(&l);
    let workers = match form.workers.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => n,
        _ => {
            return error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                ec::USAGE,
                &frame.t.f1(frame.t.workers_invalid, MAX_WORKERS),
                Some(&frame),
            );
        }
    };
    let station = match console.station().for_provisioner(l.operator.as_str()).await {
        Ok(s) => s,
        Err(e) => return station_error(&e, &frame),
    };
    let Some(log) = console.inner.board.begin(l.operator.as_str()) else {
        return error_page(
            StatusCode::CONFLICT,
            ec::CONSOLE_BATCH_RUNNING,
            frame.t.batch_conflict,
            Some(&frame),
        );
    };
    let hsm = console.hsm();
    let progress = Arc::new(LogProgress(log.clone()));
    let run = {
        let log = log.clone();
        tokio::spawn(async move {
            let opts = BatchOptions {
                workers,
                limit: None,
            };
            // Set by `POST /provision/stop`. A server shutdown ends the runtime instead, and
            // the orders in hand stay journaled, resumable by the next batch.
            let stop = log.stop_flag();
            match station.provision_batch(&hsm, opts, progress, stop).await {
                Ok(summary) => log.end(&Ok(summary)),
                Err(e) => {
                    tracing::error!(error = %e, "console: a provisioning batch did not run");
                    log.end_error(&e);
                }
            }
        })
    };
    // A batch that panicked still ends on the board (the next one may start).
    tokio::spawn(async move {
        if let Err(e) = run.await {
            tracing::error!(error = %e, "console: a provisioning batch stopped abnormally");
            log.end(&Err("批量任务异常终止，详情见服务日志。".into()));
        }
    });
    Redirect::to("/provision").into_response()
}

/// The stop form as posted.
#[derive(Debug, serde::Deserialize)]
pub struct StopForm {
    #[serde(default)]
    csrf: String,
}

impl CsrfForm for StopForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /provision/stop`: a provisioner (the station checks the role, as for a start) asks the
/// running batch to stop: its workers finish the orders in hand and take no new one; the
/// orders not started stay Approved. The batch's `stopping` event names who asked. Without a
/// running batch there is nothing to stop: back to the page.
pub async fn stop(State(console): State<Console>, Posted { l, .. }: Posted<StopForm>) -> Response {
    let frame = Frame::from(&l);
    if let Err(e) = console.station().for_provisioner(l.operator.as_str()).await {
        return station_error(&e, &frame);
    }
    if let Some(batch) = console.inner.board.current() {
        if batch.request_stop(l.operator.as_str()) {
            tracing::info!(
                operator = %l.operator,
                started_by = %batch.started_by(),
                "console: stop of the provisioning batch requested"
            );
        }
    }
    Redirect::to("/provision").into_response()
}

/// `GET /static/provision.js`.
pub async fn script() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        SCRIPT,
    )
        .into_response()
}
