//! `/deliveries`: every PIN delivery with its state (channel, masked destination, attempts,
//! the last error), and the station's own operations on one — `deliver retry ID` for a failed
//! or needs-operator delivery, `deliver cancel ID --reason` for one not yet out — acting as the
//! logged-in operator (the station checks the `provisioner` role). Seeing the page needs a role
//! of [`View::Deliveries`]. No PIN is ever here: the destination is masked as stored.

use super::texts::Texts;
use super::{Console, CsrfForm, Frame, Posted, error_page, render, station_error};
use crate::domain::{DeliveryState, View};
use crate::error_code as ec;
use crate::store::DeliveryFilter;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

struct Row {
    id: String,
    order_no: String,
    channel: &'static str,
    state: &'static str,
    state_code: &'static str,
    destination: String,
    attempts: i64,
    last_error: String,
    retry: bool,
    cancel: bool,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    deliveries: Vec<Row>,
}

/// `GET /deliveries`.
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (frame, station) = match console.viewing(&headers, View::Deliveries).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let list = match station.delivery_status(&DeliveryFilter::default()).await {
        Ok(d) => d,
        Err(e) => return station_error(&e, &frame),
    };
    render(&DeliveriesPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        deliveries: list
            .into_iter()
            .map(|s| {
                let d = s.delivery;
                Row {
                    retry: matches!(
                        d.state,
                        DeliveryState::Failed | DeliveryState::NeedsOperator
                    ),
                    cancel: matches!(
                        d.state,
                        DeliveryState::Queued
                            | DeliveryState::Failed
                            | DeliveryState::NeedsOperator
                    ),
                    id: d.id,
                    order_no: d.order_no.to_string(),
                    channel: frame.t.channel(d.channel),
                    state: frame.t.delivery_state(d.state),
                    state_code: d.state.as_str(),
                    destination: d.destination_masked,
                    attempts: d.attempts,
                    last_error: d.last_error.unwrap_or_default(),
                }
            })
            .collect(),
    })
}

/// A delivery operation's form.
#[derive(Debug, serde::Deserialize)]
pub struct DeliveryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

impl CsrfForm for DeliveryForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /deliveries/{id}/retry` (`deliver retry ID`; a new bank transfer is the CLI's
/// `--force-new-transfer`, which needs the bank's word, and is not offered here).
pub async fn retry(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { l, .. }: Posted<DeliveryForm>,
) -> Response {
    match console
        .station()
        .retry_delivery(&id, l.operator.as_str(), false)
        .await
    {
        Ok(_) => Redirect::to("/deliveries").into_response(),
        Err(e) => station_error(&e, &Frame::from(&l)),
    }
}

/// `POST /deliveries/{id}/cancel` (`deliver cancel ID --reason`, the reason required).
pub async fn cancel(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { l, form }: Posted<DeliveryForm>,
) -> Response {
    let reason = form.reason.trim();
    if reason.is_empty() {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            ec::USAGE,
            l.t.cancel_needs_reason,
            Some(&Frame::from(&l)),
        );
    }
    match console
        .station()
        .cancel_delivery(&id, reason, l.operator.as_str())
        .await
    {
        Ok(_) => Redirect::to("/deliveries").into_response(),
        Err(e) => station_error(&e, &Frame::from(&l)),
    }
}
