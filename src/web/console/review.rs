//! An order's review page: the application's fields beside its documents (rendered as images,
//! served from the station's store), the warnings recorded at import, the company's other keys,
//! the history; and the decisions — approve, reject with a reason, revoke — each the CLI's
//! station method, acting as the logged-in operator.

use super::texts::Texts;
use super::{Console, CsrfForm, Frame, LoggedIn, Posted, error_page, render, station_error};
use crate::domain::{OrderNo, OrderState};
use crate::error_code::{self as ec, Coded};
use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

struct Field {
    label: String,
    value: String,
}

struct Document {
    url: String,
    label: String,
    file_name: String,
    size: i64,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    order_no: String,
    state: &'static str,
    state_label: &'static str,
    fields: Vec<Field>,
    warnings: Vec<String>,
    other_keys: Vec<String>,
    review: Option<String>,
    history: Vec<String>,
    documents: Vec<Document>,
    can_approve: bool,
    can_reject: bool,
    can_revoke: bool,
    pending_revokes: Vec<super::requests::PendingRevoke>,
}

/// The scalar fields of the order's JSON, depth first, labelled in `t`'s language, with their
/// path (lists are shown elsewhere).
fn flatten(t: &Texts, prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, Field)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(t, &path, v, out);
            }
        }
        serde_json::Value::Array(_) | serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push((
            prefix.to_string(),
            Field {
                label: t.field_label(prefix).to_string(),
                value: t.value_label(prefix, s),
            },
        )),
        other => out.push((
            prefix.to_string(),
            Field {
                label: t.field_label(prefix).to_string(),
                value: other.to_string(),
            },
        )),
    }
}

/// The order number of a path, or the 404 page.
fn order_no(text: &str, frame: &Frame) -> Result<OrderNo, Response> {
    OrderNo::parse(text).map_err(|e| {
        error_page(
            StatusCode::NOT_FOUND,
            ec::ORDER_NOT_FOUND,
            &e.to_string(),
            Some(frame),
        )
    })
}

/// The opening of a page of order `no`: the logged-in operator's frame and the order number;
/// the way to the login page, or a 404 page, otherwise.
fn order_page(
    console: &Console,
    headers: &HeaderMap,
    no: &str,
) -> Result<(Frame, OrderNo), Response> {
    let frame = Frame::from(&console.logged_in(headers)?);
    let no = order_no(no, &frame)?;
    Ok((frame, no))
}

/// `GET /orders/{order_no}`.
pub async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(no): Path<String>,
) -> Response {
    let (frame, no) = match order_page(&console, &headers, &no) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let details = match console.station().order_details(&no).await {
        Ok(d) => d,
        Err(e) => return station_error(&e, &frame),
    };
    let record = &details.record;
    let t = frame.t;
    let mut fields = Vec::new();
    flatten(
        t,
        "",
        &serde_json::to_value(&record.order).unwrap_or_default(),
        &mut fields,
    );
    // In the order of the application form (the table's), then whatever else it has.
    fields.sort_by_key(|(path, _)| t.field_rank(path));
    let fields = fields.into_iter().map(|(_, f)| f).collect();
    let warnings = record
        .warnings
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let get = |k: &str| w.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            t.f3(t.warning_line, get("field"), get("message"), get("code"))
        })
        .chain(
            record
                .uscc_override_reason
                .iter()
                .map(|r| t.f1(t.uscc_override, r)),
        )
        .collect();
    let other_keys = details
        .company_keys
        .iter()
        .filter(|k| k.order_no != no)
        .map(|k| {
            let live = k
                .certificates
                .iter()
                .filter(|c| c.status == crate::domain::CertificateStatus::Issued)
                .count();
            t.f4(
                t.other_key_line,
                &k.order_no,
                if k.key_role == crate::domain::KeyRole::Main {
                    t.key_main
                } else {
                    t.key_secondary
                },
                t.order_state(k.state),
                live,
            )
        })
        .collect();
    let review = record.reviewed_by.as_ref().map(|by| {
        let reason = record.review_reason.as_ref();
        t.f2(
            t.reviewed_by,
            by,
            record.reviewed_at.as_deref().unwrap_or_default(),
        ) + &reason.map(|r| t.f1(t.reason_suffix, r)).unwrap_or_default()
    });
    let documents = record
        .attachments
        .iter()
        .map(|a| Document {
            url: format!("/orders/{no}/documents/{}/{}", a.role, a.kind),
            label: t.document_label(&a.kind).to_string(),
            file_name: a.file_name.clone(),
            size: a.size,
        })
        .collect();
    let pending_revokes = match super::requests::pending_revokes(&console, &no).await {
        Ok(p) => p,
        Err(e) => return station_error(&e, &frame),
    };
    let state = record.state;
    render(&ReviewPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t,
        order_no: no.to_string(),
        state: state.as_str(),
        state_label: t.order_state(state),
        fields,
        warnings,
        other_keys,
        review,
        history: details
            .history
            .iter()
            .map(|h| format!("{} {} {}", h.at, h.actor, h.action))
            .collect(),
        documents,
        can_approve: state == OrderState::Submitted,
        can_reject: matches!(state, OrderState::Submitted | OrderState::Failed),
        can_revoke: matches!(
            state,
            OrderState::Provisioned | OrderState::Shipped | OrderState::PinDelivered
        ) && pending_revokes.is_empty(),
        pending_revokes,
    })
}

/// `GET /orders/{order_no}/documents/{role}/{kind}`: the stored bytes with their media type.
pub async fn document(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((no, role, kind)): Path<(String, String, String)>,
) -> Response {
    let (frame, no) = match order_page(&console, &headers, &no) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    match console.station().order_attachment(&no, &role, &kind).await {
        // Only pictures are shown inline; the store recognised the type from the content.
        Ok(Some((meta, bytes)))
            if matches!(meta.media_type.as_str(), "image/png" | "image/jpeg") =>
        {
            ([(header::CONTENT_TYPE, meta.media_type)], bytes).into_response()
        }
        // Anything else is never rendered by the browser: a download.
        Ok(Some((_, bytes))) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment"),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => error_page(
            StatusCode::NOT_FOUND,
            ec::ORDER_NOT_FOUND,
            &frame
                .t
                .f2(frame.t.no_document, &no, format!("{role}/{kind}")),
            Some(&frame),
        ),
        Err(e) => station_error(&e, &frame),
    }
}

/// A decision form as posted.
#[derive(Debug, serde::Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    detail: String,
}

/// A decision posted on order `{order_no}`: the operator (CSRF checked), the order, the form.
#[derive(Debug)]
pub struct Decision {
    l: LoggedIn,
    no: OrderNo,
    form: DecisionForm,
}

impl CsrfForm for DecisionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl FromRequest<Console> for Decision {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(no) = Path::<String>::from_request_parts(&mut parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let posted = Request::from_parts(parts, body);
        let Posted { l, form } = Posted::<DecisionForm>::from_request(posted, console).await?;
        let no = order_no(&no, &Frame::from(&l))?;
        Ok(Self { l, no, form })
    }
}

/// After a decision: back to the order's page.
fn back_to(no: &OrderNo) -> Response {
    Redirect::to(&format!("/orders/{no}")).into_response()
}

/// The answer to a decision on order `no` by the logged-in `l`: back to the order's page, or
/// the station's refusal.
pub(super) fn decided<T, E: Coded + std::fmt::Display>(
    result: Result<T, E>,
    no: &OrderNo,
    l: &LoggedIn,
) -> Response {
    match result {
        Ok(_) => back_to(no),
        Err(e) => station_error(&e, &Frame::from(l)),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// `POST /orders/{order_no}/approve` (`order approve`).
pub async fn approve(
    State(console): State<Console>,
    Decision { l, no, form }: Decision,
) -> Response {
    let result = console
        .station()
        .approve_order(&no, l.operator.as_str(), non_empty(&form.note))
        .await;
    decided(result, &no, &l)
}

/// `POST /orders/{order_no}/reject` (`order reject`): the reason is required.
pub async fn reject(
    State(console): State<Console>,
    Decision { l, no, form }: Decision,
) -> Response {
    let Some(reason) = non_empty(&form.reason) else {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            ec::USAGE,
            l.t.reject_needs_reason,
            Some(&Frame::from(&l)),
        );
    };
    let result = console
        .station()
        .reject_order(&no, l.operator.as_str(), reason)
        .await;
    decided(result, &no, &l)
}

/// `POST /orders/{order_no}/revoke` (`order revoke`; a security officer's request, which
/// revokes nothing until a second security officer approves it: [`super::requests`]).
pub async fn revoke(
    State(console): State<Console>,
    Decision { l, no, form }: Decision,
) -> Response {
    let result = console
        .station()
        .request_order_revoke(
            &no,
            form.reason.trim(),
            non_empty(&form.detail),
            l.operator.as_str(),
        )
        .await;
    decided(result, &no, &l)
}
