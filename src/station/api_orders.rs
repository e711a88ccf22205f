//! What the order API (`crate::web::api`) asks of the station: take an order in with its
//! documents, say where an order stands, list orders by state and time.
//!
//! A submission is validated by the very code `order import` runs (`intake::check_items`), with its
//! documents read from the request instead of a directory, and stored as an import stores it
//! (the `order.imported` record names the token's registered operator, who needs the role for
//! `import_order`), plus an `api.order_submitted` record naming the token.
//!
//! Idempotent by order number: the SHA-256 of the request body (its canonical JSON: keys
//! sorted, no blanks) is kept with the order. The same body again answers with the order as it
//! stands, storing nothing; another body under a number that exists (or an order of that number
//! imported from a file) is a conflict.
//!
//! The portal's view of an order ([`OrderProgress`]) gives its state, with a Chinese label, and
//! the steps of its progress with their times, taken from the audit trail
//! ([`crate::domain::api::progress_state`]) — never who did them (operators' names stay inside),
//! nor any detail of the records; a rejection's reason is given, since the applicant is told it
//! anyway (the review-outcome notice).

use super::Station;
use super::api_tokens::ApiCaller;
use super::intake::{Checked, DocumentSource, check_items};
use crate::domain::api::{progress_state, submission_parts};
use crate::domain::application_json::{ApplicationJsonError, parse_application};
use crate::domain::{Action, OrderNo, OrderState, ValidationContext, Violation};
use crate::error_code::{self as ec, Coded, ErrorCode};
use crate::store::{ApiSubmission, ChangedAfter, OrderSummary, StoreError};
use sha2::{Digest, Sha256};

/// Why a submission was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiSubmitError {
    /// The body is not JSON (serde_json's message, with line and column).
    #[error("the body is not JSON: {0}")]
    Json(String),
    /// The submission has violations (every one, located in the body); nothing was stored.
    #[error("{} violation(s); nothing was stored", .0.len())]
    Invalid(Vec<Violation>),
    /// Another submission (or a file import) holds this order number.
    #[error(
        "order {0} exists already with other content: an order number is submitted once (the \
         same body again is answered with the order)"
    )]
    Conflict(OrderNo),
    /// Refused (the token's operator may not import orders), or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for ApiSubmitError {
    fn code(&self) -> ErrorCode {
        match self {
            ApiSubmitError::Json(_) => ec::API_JSON,
            ApiSubmitError::Invalid(_) => ec::INPUT_INVALID,
            ApiSubmitError::Conflict(_) => ec::API_CONFLICT,
            ApiSubmitError::Store(e) => e.code(),
        }
    }
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSubmitted {
    /// The order (normalised number).
    pub order_no: OrderNo,
    /// Stored now (`false`: the same body was stored before).
    pub created: bool,
}

/// Where an order stands, as the portal's progress page (订单查询) shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderProgress {
    /// The order.
    pub order_no: OrderNo,
    /// Its state.
    pub state: OrderState,
    /// The state in Chinese.
    pub state_label: &'static str,
    /// When it was taken in.
    pub submitted_at: String,
    /// Its last change.
    pub updated_at: String,
    /// Why it was rejected, when it was.
    pub reason: Option<String>,
    /// Warnings recorded when it was taken in (field, code, message).
    pub warnings: serde_json::Value,
    /// The steps of its progress, oldest first.
    pub history: Vec<ProgressStep>,
}

/// A step of an order's progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProgressStep {
    /// When.
    pub at: String,
    /// The state reached.
    pub state: OrderState,
    /// The state in Chinese.
    pub state_label: &'static str,
}

/// A listing's question (`GET /api/v1/orders`).
#[derive(Debug, Clone, Default)]
pub struct OrderListQuery {
    /// Only orders in this state.
    pub state: Option<OrderState>,
    /// Only orders changed at or after this time.
    pub since: Option<time::OffsetDateTime>,
    /// Where the page starts: the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// The most orders in the page.
    pub limit: u32,
}

/// A page of a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderPage {
    /// The orders, in the order they last changed.
    pub orders: Vec<OrderLine>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An order in a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderLine {
    /// The order.
    pub order_no: OrderNo,
    /// Its state.
    pub state: OrderState,
    /// The state in Chinese.
    pub state_label: &'static str,
    /// When it was taken in.
    pub submitted_at: String,
    /// Its last change.
    pub updated_at: String,
}

impl From<OrderSummary> for OrderLine {
    fn from(o: OrderSummary) -> OrderLine {
        OrderLine {
            state_label: o.state.label_zh(),
            order_no: o.order_no,
            state: o.state,
            submitted_at: o.submitted_at,
            updated_at: o.updated_at,
        }
    }
}

/// The cursor after `o`: its last change and number (opaque to clients).
fn cursor_after(o: &OrderLine) -> String {
    format!("{}~{}", o.updated_at, o.order_no)
}

/// Reads a cursor [`cursor_after`] gave; `None` if it is not one.
fn parse_cursor(text: &str) -> Option<ChangedAfter> {
    let (at, no) = text.split_once('~')?;
    crate::clock::parse_utc(at)?;
    Some(ChangedAfter {
        updated_at: at.to_string(),
        order_no: OrderNo::parse(no).ok()?,
    })
}

impl Station {
    /// `POST /api/v1/orders`: takes in the submission `body` from `caller` (see the module
    /// docs).
    pub async fn submit_api_order(
        &self,
        caller: &ApiCaller,
        body: &[u8],
    ) -> Result<ApiSubmitted, ApiSubmitError> {
        let value = parse_application(body).map_err(|e| match e {
            ApplicationJsonError::Syntax(e) => ApiSubmitError::Json(e.to_string()),
            ApplicationJsonError::DuplicateKeys(vs) => ApiSubmitError::Invalid(vs),
        })?;
        // serde_json's maps are sorted: this text is the same for the same content.
        let request_sha256 = hex::encode(Sha256::digest(value.to_string().as_bytes()));
        let (parts, mut violations) = submission_parts(&value).map_err(ApiSubmitError::Invalid)?;
        let ctx = ValidationContext {
            today: self.clock.today_beijing(),
            uscc_checksum_override: None,
        };
        let Checked {
            mut orders,
            violations: in_form,
            ..
        } = check_items(
            &[parts.order],
            false,
            DocumentSource::Inline(&parts.files),
            &ctx,
        );
        violations.extend(in_form.into_iter().map(|v| v.prefixed("order")));
        let new = match orders.pop() {
            Some((_, new)) if violations.is_empty() => new,
            _ => return Err(ApiSubmitError::Invalid(violations)),
        };
        let order_no = new.order.order_no.clone();
        if let Some(done) = self.resubmitted(&order_no, &request_sha256).await? {
            return Ok(done);
        }
        let actor = self
            .operator_actor(caller.operator.as_str(), Action::ImportOrder)
            .await?;
        let submission = ApiSubmission {
            order_no: order_no.clone(),
            request_sha256: request_sha256.clone(),
            token_id: caller.token_id,
        };
        match self
            .store
            .insert_api_order(&new, &submission, &actor, self.clock.now())
            .await
        {
            Ok(()) => Ok(ApiSubmitted {
                order_no,
                created: true,
            }),
            // Stored by another request between our look and our insert: the same answer as
            // if it had come first.
            Err(StoreError::DuplicateOrder(_)) => self
                .resubmitted(&order_no, &request_sha256)
                .await?
                .ok_or(ApiSubmitError::Conflict(order_no)),
            Err(e) => Err(e.into()),
        }
    }

    /// When `order_no` exists: the earlier submission of this very body, or a conflict.
    async fn resubmitted(
        &self,
        order_no: &OrderNo,
        request_sha256: &str,
    ) -> Result<Option<ApiSubmitted>, ApiSubmitError> {
        match self.store.api_submission(order_no).await? {
            Some(s) if s.request_sha256 == request_sha256 => Ok(Some(ApiSubmitted {
                order_no: order_no.clone(),
                created: false,
            })),
            Some(_) => Err(ApiSubmitError::Conflict(order_no.clone())),
            None if !self
                .store
                .existing_orders(std::slice::from_ref(order_no))
                .await?
                .is_empty() =>
            {
                Err(ApiSubmitError::Conflict(order_no.clone()))
            }
            None => Ok(None),
        }
    }

    /// `GET /api/v1/orders/{order_no}`: where the order stands; `None` for an unknown order.
    pub async fn order_progress(
        &self,
        order_no: &OrderNo,
    ) -> Result<Option<OrderProgress>, StoreError> {
        let Some(record) = self.store.order(order_no).await? else {
            return Ok(None);
        };
        let history = self
            .audit_records(Some(order_no))
            .await?
            .into_iter()
            .filter_map(|r| {
                progress_state(&r.action).map(|state| ProgressStep {
                    at: r.at,
                    state,
                    state_label: state.label_zh(),
                })
            })
            .collect();
        Ok(Some(OrderProgress {
            order_no: order_no.clone(),
            state: record.state,
            state_label: record.state.label_zh(),
            submitted_at: record.submitted_at,
            updated_at: record.updated_at,
            reason: match record.state {
                OrderState::Rejected => record.review_reason,
                _ => None,
            },
            warnings: record.warnings,
            history,
        }))
    }

    /// `GET /api/v1/orders`: a page of orders by state and time of last change; a cursor that
    /// is not one is refused, naming `cursor`.
    pub async fn api_order_page(&self, q: &OrderListQuery) -> Result<OrderPage, ApiSubmitError> {
        let after = match q.cursor.as_deref() {
            None => None,
            Some(text) => Some(parse_cursor(text).ok_or_else(|| {
                ApiSubmitError::Invalid(vec![Violation::error(
                    "cursor",
                    "cursor_invalid",
                    "not a cursor this API gave (next_cursor of the previous page)",
                )])
            })?),
        };
        let since = q.since.map(crate::clock::format_utc).unwrap_or_default();
        let orders: Vec<OrderLine> = self
            .store
            .orders_changed(q.state, &since, after.as_ref(), q.limit)
            .await?
            .into_iter()
            .map(OrderLine::from)
            .collect();
        let next_cursor = match orders.last() {
            Some(last) if orders.len() as u64 == u64::from(q.limit) => Some(cursor_after(last)),
            _ => None,
        };
        Ok(OrderPage {
            orders,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_was_made_of_and_nothing_else_is_one() {
        let line = OrderLine {
            order_no: OrderNo::parse("KS-0001").unwrap(),
            state: OrderState::Approved,
            state_label: "已批准",
            submitted_at: "2026-12-01T00:00:00.000000Z".into(),
            updated_at: "2026-12-02T03:04:05.000006Z".into(),
        };
        let c = parse_cursor(&cursor_after(&line)).unwrap();
        assert_eq!(c.updated_at, line.updated_at);
        assert_eq!(c.order_no, line.order_no);
        for bad in [
            "",
            "KS-0001",
            "yesterday~KS-0001",
            "2026-12-02T03:04:05Z~bad no",
        ] {
            assert!(parse_cursor(bad).is_none(), "{bad}");
        }
    }
}
