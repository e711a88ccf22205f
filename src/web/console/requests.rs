//! Revocation requests waiting for a second security officer, shown on their order's review
//! page, and the decision on one (the CLI's `revoke approve` / `revoke reject`). The four-eyes
//! rule is the station's: the console only passes the logged-in operator, and the requester's
//! own decision comes back refused (`E-REQUEST-SAME-OPERATOR`, 403).

use super::review::decided;
use super::{Console, Frame, LoggedIn, station_error};
use crate::domain::{OrderNo, RequestKind, RequestState};
use crate::station::Station;
use crate::station::service_desk::ServiceDeskError;
use crate::store::ServiceRequestFilter;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

/// A revocation request of the order, waiting for its second operator.
#[derive(Debug, Clone)]
pub struct PendingRevoke {
    /// The request id.
    pub id: String,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: String,
    /// The RFC 5280 reason asked for.
    pub reason: String,
    /// The requester's words.
    pub detail: String,
}

/// The order's revocation requests still waiting for a decision.
pub(super) async fn pending_revokes(
    console: &Console,
    no: &OrderNo,
) -> Result<Vec<PendingRevoke>, ServiceDeskError> {
    let filter = ServiceRequestFilter {
        order_no: Some(no.clone()),
        state: Some(RequestState::Requested),
        kind: Some(RequestKind::Revoke),
    };
    Ok(console
        .station()
        .service_requests(&filter)
        .await?
        .into_iter()
        .map(|r| PendingRevoke {
            id: r.id,
            requested_by: r.requested_by.to_string(),
            requested_at: r.requested_at,
            reason: r.reason,
            detail: r.evidence,
        })
        .collect())
}

/// A decision's form: its CSRF token, and the note a rejection must carry.
#[derive(Debug, serde::Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

/// A decision posted on request `id`: its session and CSRF token checked, the station acting
/// for the logged-in operator, and the request's order (where the answer goes back to).
async fn posted_on(
    console: &Console,
    headers: &HeaderMap,
    form: &RequestForm,
    id: &str,
) -> Result<(LoggedIn, Station, OrderNo), Response> {
    let l = console.posted(headers, &form.csrf)?;
    let station = console.station();
    match station.service_request(id).await {
        Ok(d) => Ok((l, station, d.request.order_no)),
        Err(e) => Err(station_error(&e, &Frame::from(&l))),
    }
}

/// `POST /requests/{id}/approve`: the second security officer's approval, which carries out
/// the revocation at once (`revoke approve ID`).
pub async fn approve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    let (l, station, order) = match posted_on(&console, &headers, &form, &id).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    decided(
        station.approve_revoke(&id, l.operator.as_str(), None).await,
        &order,
        &l,
    )
}

/// `POST /requests/{id}/reject`: a second security officer turns the request down, with a
/// note (`revoke reject ID --reason`); the certificate stays live.
pub async fn reject(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    let (l, station, order) = match posted_on(&console, &headers, &form, &id).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    decided(
        station
            .decide_request(&id, l.operator.as_str(), false, Some(form.note.trim()))
            .await,
        &order,
        &l,
    )
}
