//! Requests waiting for a second approval: every pending service-desk request on `/requests`
//! (PIN reset, retirement, unlock, revocation of an order or a certificate, reissue), an
//! order's revocation requests on its review page, and the decision on one — the CLI's own
//! decision for its kind: `revoke approve` (carried out at once), `reissue approve` (the
//! replacement order made at once), `pin-reset|retire|unlock approve` (approved; carried out at
//! the desk later), and `... reject` for all. The four-eyes rule is the station's: the console
//! only passes the logged-in operator, and the requester's own decision comes back refused
//! (`E-REQUEST-SAME-OPERATOR`, 403). The station's own requests (operators, API tokens, the
//! CA's OCSP signer, a token's reinit) are listed too, to be decided on the command line.

use super::review::decided;
use super::texts::Texts;
use super::{Console, Frame, LoggedIn, render, station_error};
use crate::domain::{OrderNo, RequestKind, RequestState, View};
use crate::station::Station;
use crate::station::service_desk::ServiceDeskError;
use crate::store::ServiceRequestFilter;
use askama::Template;
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
) -> Result<(LoggedIn, Station, OrderNo, RequestKind), Response> {
    let l = console.posted(headers, &form.csrf)?;
    let station = console.station();
    match station.service_request(id).await {
        Ok(d) => Ok((l, station, d.request.order_no, d.request.kind)),
        Err(e) => Err(station_error(&e, &Frame::from(&l))),
    }
}

/// A station request (operators, API tokens, the CA, a reinit) waiting for its second
/// operator: shown, decided on the command line (an approval may write a credential file the
/// approver hands over, which a browser page does not do).
struct StationRow {
    id: String,
    kind: &'static str,
    summary: String,
    command: &'static str,
    requested_by: String,
    requested_at: String,
}

struct WaitingRow {
    id: String,
    kind: &'static str,
    kind_code: &'static str,
    order_no: String,
    requested_by: String,
    requested_at: String,
    reason: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    requests: Vec<WaitingRow>,
    station_requests: Vec<StationRow>,
}

/// `GET /requests`: every request waiting for its second operator, oldest first.
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (frame, station) = match console.viewing(&headers, View::Requests).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let filter = ServiceRequestFilter {
        order_no: None,
        state: Some(RequestState::Requested),
        kind: None,
    };
    let requests = match station.service_requests(&filter).await {
        Ok(r) => r,
        Err(e) => return station_error(&e, &frame),
    };
    let waiting = match station
        .station_requests(None, Some(RequestState::Requested))
        .await
    {
        Ok(r) => r,
        Err(e) => return station_error(&e, &frame),
    };
    render(&RequestsPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        station_requests: waiting
            .into_iter()
            .map(|r| StationRow {
                kind: frame.t.station_change(&r.change),
                summary: r.change.summary(),
                command: r.change.family().command(),
                id: r.id,
                requested_by: r.requested_by.to_string(),
                requested_at: r.requested_at,
            })
            .collect(),
        requests: requests
            .into_iter()
            .map(|r| WaitingRow {
                id: r.id,
                kind: frame.t.request_kind(r.kind),
                kind_code: r.kind.as_str(),
                order_no: r.order_no.to_string(),
                requested_by: r.requested_by.to_string(),
                requested_at: r.requested_at,
                reason: r.reason,
                detail: r.evidence,
            })
            .collect(),
    })
}

/// `POST /requests/{id}/approve`: the second operator's approval, as the CLI decides the
/// request's kind (see the module docs).
pub async fn approve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    let (l, station, order, kind) = match posted_on(&console, &headers, &form, &id).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let by = l.operator.as_str();
    let note = Some(form.note.trim()).filter(|n| !n.is_empty());
    match kind {
        RequestKind::Revoke | RequestKind::RevokeCertificate => {
            decided(station.approve_revoke(&id, by, note).await, &order, &l)
        }
        RequestKind::Reissue => decided(station.approve_reissue(&id, by, note).await, &order, &l),
        RequestKind::PinReset | RequestKind::Retire | RequestKind::Unlock => decided(
            station.decide_request(&id, by, true, note).await,
            &order,
            &l,
        ),
    }
}

/// `POST /requests/{id}/reject`: a second security officer turns the request down, with a
/// note (`... reject ID --reason`); nothing is carried out.
pub async fn reject(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    let (l, station, order, _) = match posted_on(&console, &headers, &form, &id).await {
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
