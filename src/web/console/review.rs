//! An order's review page: the application's fields beside its documents (rendered as images,
//! served from the station's store), the warnings recorded at import, the company's other keys,
//! the history; and the decisions — approve, reject with a reason, revoke — each the CLI's
//! station method, acting as the logged-in operator.

use super::{Console, Frame, LoggedIn, error_page, render, station_error};
use crate::domain::{OrderNo, OrderState};
use crate::error_code::{self as ec, Coded};
use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Chinese labels of the application's fields, by their path in the order; others show the path.
const FIELD_LABELS: &[(&str, &str)] = &[
    ("order_no", "订单号"),
    ("auth_method", "PIN 送达方式"),
    ("company.name", "单位名称"),
    ("company.uscc", "统一社会信用代码"),
    ("company.department", "部门"),
    ("company.phone", "单位电话"),
    ("legal_rep.name", "法定代表人"),
    ("legal_rep.mobile", "法定代表人手机"),
    ("legal_rep.id_type", "法定代表人证件类型"),
    ("legal_rep.id_number", "法定代表人证件号码"),
    ("product.key_role", "密钥类型"),
    ("product.main_order_no", "主密钥订单"),
    ("product.years", "有效期（年）"),
    ("product.seal_service", "印章服务"),
    ("invoice.title", "发票抬头"),
    ("invoice.taxpayer_id", "纳税人识别号"),
    ("invoice.address_phone", "地址、电话"),
    ("invoice.bank_account", "开户行及账号"),
    ("handler.name", "经办人"),
    ("handler.mobile", "经办人手机"),
    ("handler.id_type", "经办人证件类型"),
    ("handler.id_number", "经办人证件号码"),
    ("handler.email", "经办人邮箱"),
    ("shipping.province", "省"),
    ("shipping.city", "市"),
    ("shipping.address", "收件地址"),
];

/// Chinese names of the form's coded values, by field path and value (the code itself is shown
/// beside them: the reviewer sees what the portal sent).
const VALUE_LABELS: &[(&str, &str, &str)] = &[
    ("auth_method", "legal_rep_phone", "法定代表人手机"),
    ("auth_method", "legal_rep_bank_card", "法定代表人银行卡"),
    ("auth_method", "corporate_transfer", "对公打款"),
    ("legal_rep.id_type", "resident_id", "居民身份证"),
    ("handler.id_type", "resident_id", "居民身份证"),
    ("product.key_role", "main", "主密钥"),
    ("product.key_role", "secondary", "副密钥（副锁）"),
    (
        "product.seal_service",
        "company_and_legal_rep",
        "单位印章和法定代表人印章",
    ),
    ("product.seal_service", "company", "单位印章"),
    ("product.seal_service", "none", "不制作电子印章"),
];

/// A coded value as the reviewer reads it: its Chinese name and the code, or the value as it is.
fn value_label(path: &str, value: &str) -> String {
    VALUE_LABELS
        .iter()
        .find(|(p, v, _)| *p == path && *v == value)
        .map_or_else(|| value.to_string(), |(_, v, l)| format!("{l}（{v}）"))
}

/// Chinese names of the documents and seal pictures, by kind.
const DOCUMENT_LABELS: &[(&str, &str)] = &[
    ("business_license", "营业执照"),
    ("handler_id_front", "经办人身份证（人像面）"),
    ("handler_id_back", "经办人身份证（国徽面）"),
    ("power_of_attorney", "授权委托书"),
    ("seal_collection_form", "印章采集表"),
    ("company", "单位印章图片"),
    ("legal_rep", "法定代表人印章图片"),
];

fn label<'a>(table: &[(&str, &'a str)], key: &'a str) -> &'a str {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, l)| *l)
}

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

/// The scalar fields of the order's JSON, depth first, by path (lists are shown elsewhere).
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<Field>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        serde_json::Value::Array(_) | serde_json::Value::Null => {}
        serde_json::Value::String(s) => out.push(Field {
            label: label(FIELD_LABELS, prefix).to_string(),
            value: value_label(prefix, s),
        }),
        other => out.push(Field {
            label: label(FIELD_LABELS, prefix).to_string(),
            value: other.to_string(),
        }),
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

/// `GET /orders/{order_no}`.
pub async fn page(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(no): Path<String>,
) -> Response {
    let logged_in = match console.logged_in(&headers) {
        Ok(l) => l,
        Err(to_login) => return to_login,
    };
    let frame = Frame::from(&logged_in);
    let no = match order_no(&no, &frame) {
        Ok(no) => no,
        Err(page) => return page,
    };
    let details = match console.station().order_details(&no).await {
        Ok(d) => d,
        Err(e) => return station_error(&e, &frame),
    };
    let record = &details.record;
    let mut fields = Vec::new();
    flatten(
        "",
        &serde_json::to_value(&record.order).unwrap_or_default(),
        &mut fields,
    );
    // In the order of the application form (the table's), then whatever else it has.
    fields.sort_by_key(|f| {
        FIELD_LABELS
            .iter()
            .position(|(_, l)| *l == f.label)
            .unwrap_or(usize::MAX)
    });
    let warnings = record
        .warnings
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let get = |k: &str| w.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            format!("{}：{}［{}］", get("field"), get("message"), get("code"))
        })
        .chain(
            record
                .uscc_override_reason
                .iter()
                .map(|r| format!("统一社会信用代码校验未通过，已按理由接受：{r}")),
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
            format!(
                "{}（{}）{}，有效证书 {live} 张",
                k.order_no,
                if k.key_role == crate::domain::KeyRole::Main {
                    "主密钥"
                } else {
                    "副密钥"
                },
                k.state.label_zh()
            )
        })
        .collect();
    let review = record.reviewed_by.as_ref().map(|by| {
        format!(
            "审核人 {by}，{}{}",
            record.reviewed_at.as_deref().unwrap_or_default(),
            record
                .review_reason
                .as_ref()
                .map(|r| format!("：{r}"))
                .unwrap_or_default()
        )
    });
    let documents = record
        .attachments
        .iter()
        .map(|a| Document {
            url: format!("/orders/{no}/documents/{}/{}", a.role, a.kind),
            label: label(DOCUMENT_LABELS, &a.kind).to_string(),
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
        order_no: no.to_string(),
        state: state.as_str(),
        state_label: state.label_zh(),
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
    let logged_in = match console.logged_in(&headers) {
        Ok(l) => l,
        Err(to_login) => return to_login,
    };
    let frame = Frame::from(&logged_in);
    let no = match order_no(&no, &frame) {
        Ok(no) => no,
        Err(page) => return page,
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
            &format!("订单 {no} 没有材料 {role}/{kind}"),
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

/// CSRF and session of a decision, and its order; the page to answer otherwise.
fn decision(
    console: &Console,
    headers: &HeaderMap,
    no: &str,
    form: &DecisionForm,
) -> Result<(LoggedIn, OrderNo), Response> {
    let logged_in = console.posted(headers, &form.csrf)?;
    let no = order_no(no, &Frame::from(&logged_in))?;
    Ok((logged_in, no))
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
    headers: HeaderMap,
    Path(no): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let (l, no) = match decision(&console, &headers, &no, &form) {
        Ok(d) => d,
        Err(page) => return page,
    };
    let result = console
        .station()
        .approve_order(&no, l.operator.as_str(), non_empty(&form.note))
        .await;
    decided(result, &no, &l)
}

/// `POST /orders/{order_no}/reject` (`order reject`): the reason is required.
pub async fn reject(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(no): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let (l, no) = match decision(&console, &headers, &no, &form) {
        Ok(d) => d,
        Err(page) => return page,
    };
    let Some(reason) = non_empty(&form.reason) else {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            ec::USAGE,
            "reason：驳回必须填写原因。",
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
    headers: HeaderMap,
    Path(no): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let (l, no) = match decision(&console, &headers, &no, &form) {
        Ok(d) => d,
        Err(page) => return page,
    };
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
