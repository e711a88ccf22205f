//! `GET /`: the queue — orders filtered by state and found by order number, company or USCC.

use super::texts::Texts;
use super::{Console, Frame, render, station_error};
use crate::domain::OrderState;
use crate::domain::console::QueueSearch;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

/// The queue's query string.
#[derive(Debug, Default, serde::Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    q: String,
}

struct StateOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

struct Row {
    order_no: String,
    state: &'static str,
    state_label: &'static str,
    company_name: String,
    uscc: String,
    auth_method: String,
    submitted_at: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    states: Vec<StateOption>,
    q: String,
    orders: Vec<Row>,
}

/// `GET /?state=submitted&q=...`.
pub async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Response {
    let logged_in = match console.logged_in(&headers) {
        Ok(l) => l,
        Err(to_login) => return to_login,
    };
    let frame = Frame::from(&logged_in);
    // An unknown state in the query is no filter (the select offers only known ones).
    let state = OrderState::parse(&query.state);
    let search = QueueSearch::new(&query.q);
    let orders = match console.station().order_queue(state, &search).await {
        Ok(o) => o,
        Err(e) => return station_error(&e, &frame),
    };
    render(&QueuePage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        states: OrderState::ALL
            .into_iter()
            .map(|s| StateOption {
                value: s.as_str(),
                label: frame.t.order_state(s),
                selected: Some(s) == state,
            })
            .collect(),
        q: query.q,
        orders: orders
            .into_iter()
            .map(|o| Row {
                order_no: o.order_no.to_string(),
                state: o.state.as_str(),
                state_label: frame.t.order_state(o.state),
                company_name: o.company_name,
                uscc: o.uscc,
                auth_method: frame.t.value_label("auth_method", &o.auth_method),
                submitted_at: o.submitted_at,
            })
            .collect(),
    })
}
