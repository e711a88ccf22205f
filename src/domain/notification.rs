//! Notices to the applicant, pure: which events call for one ([`Notice`]), how a notice is
//! rendered from the station's Chinese templates ([`NoticeTemplates`]), and the life of one
//! queued notice ([`NoticeState`]).
//!
//! A notice goes to the order's handler (经办人), once by SMS to the handler's mobile and once by
//! e-mail to the handler's address. It is queued in the transaction of the state change that
//! causes it, under the key (order, kind, event ref, medium), so an event produces at most one
//! notice per medium however often the change is retried or the expiry tick runs.
//!
//! ```text
//!  queued ──claim──▶ sending ──accepted──▶ sent
//!    ▲                 │  │
//!    └──retryable──────┘  └──▶ failed: permanent refusal, retries exhausted, or the outcome
//!       (backoff; nothing        is unknown (a crash or timeout while the server had it):
//!        reached the server)     never sent again automatically — at most once
//!  failed ──operator retry──▶ queued
//! ```
//!
//! Security notes: a notice carries no secret. Its parameters are the order number, company,
//! the operator's rejection reason, carrier and tracking number, the PIN's channel with its
//! masked destination, dates and certificate serials; [`check_template`] refuses any
//! placeholder outside that list (`{pin}` included), so no configuration can put a PIN in one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of notice, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The review approved the order.
    Approved,
    /// The review rejected it (with the operator's reason).
    Rejected,
    /// The key was handed to a courier.
    Shipped,
    /// The PIN delivery was confirmed.
    PinSent,
    /// The certificate expires soon (30 or 7 days before notAfter).
    Expiring,
    /// The certificate was revoked.
    Revoked,
}

impl NoticeKind {
    /// Every kind.
    pub const ALL: [NoticeKind; 6] = [
        NoticeKind::Approved,
        NoticeKind::Rejected,
        NoticeKind::Shipped,
        NoticeKind::PinSent,
        NoticeKind::Expiring,
        NoticeKind::Revoked,
    ];

    /// Stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Approved => "approved",
            NoticeKind::Rejected => "rejected",
            NoticeKind::Shipped => "shipped",
            NoticeKind::PinSent => "pin_sent",
            NoticeKind::Expiring => "expiring",
            NoticeKind::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The placeholders a template of this kind may use (besides `{order_no}` and `{company}`).
    fn placeholders(self) -> &'static [&'static str] {
        match self {
            NoticeKind::Approved => &[],
            NoticeKind::Rejected => &["reason"],
            NoticeKind::Shipped => &["carrier", "tracking_no"],
            NoticeKind::PinSent => &["channel", "destination"],
            NoticeKind::Expiring => &["days", "not_after", "serial"],
            NoticeKind::Revoked => &["serial", "reason"],
        }
    }
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Days before notAfter at which an expiry notice goes out, largest first.
pub const EXPIRY_THRESHOLDS_DAYS: [i64; 2] = [30, 7];

/// One event the applicant is told about, with what the notice says. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// Review approved.
    Approved,
    /// Review rejected.
    Rejected {
        /// The operator's reason.
        reason: String,
    },
    /// Shipped.
    Shipped {
        /// The courier (`快递` when not recorded).
        carrier: Option<String>,
        /// The courier's tracking number.
        tracking_no: String,
    },
    /// PIN delivery confirmed.
    PinSent {
        /// How the PIN travelled: `sms` or `bank`.
        channel: String,
        /// Where, masked (`138****8000`, `****1234`).
        destination: String,
    },
    /// The certificate expires in at most `days` days.
    Expiring {
        /// The threshold crossed (30 or 7).
        days: i64,
        /// notAfter, as shown (Beijing date).
        not_after: String,
        /// The certificate's serial (hex).
        serial: String,
    },
    /// The certificate was revoked.
    Revoked {
        /// The certificate's serial (hex).
        serial: String,
        /// The RFC 5280 reason name.
        reason: String,
    },
}

impl Notice {
    /// Its kind.
    pub fn kind(&self) -> NoticeKind {
        match self {
            Notice::Approved => NoticeKind::Approved,
            Notice::Rejected { .. } => NoticeKind::Rejected,
            Notice::Shipped { .. } => NoticeKind::Shipped,
            Notice::PinSent { .. } => NoticeKind::PinSent,
            Notice::Expiring { .. } => NoticeKind::Expiring,
            Notice::Revoked { .. } => NoticeKind::Revoked,
        }
    }

    /// What distinguishes two events of the same kind on one order: one review, one shipment;
    /// a PIN delivery by its id (`delivery_id`); a certificate's expiry by threshold and serial;
    /// a revocation by serial.
    pub fn event_ref(&self, delivery_id: Option<&str>) -> String {
        match self {
            Notice::Approved | Notice::Rejected { .. } => "review".into(),
            Notice::Shipped { .. } => "shipment".into(),
            Notice::PinSent { .. } => delivery_id.unwrap_or("pin").into(),
            Notice::Expiring { days, serial, .. } => format!("{days}d:{serial}"),
            Notice::Revoked { serial, .. } => serial.clone(),
        }
    }

    fn value(&self, name: &str) -> Option<String> {
        let v = match (self, name) {
            (Notice::Rejected { reason }, "reason")
            | (Notice::Revoked { reason, .. }, "reason") => reason.clone(),
            (Notice::Shipped { carrier, .. }, "carrier") => {
                carrier.clone().unwrap_or_else(|| "快递".into())
            }
            (Notice::Shipped { tracking_no, .. }, "tracking_no") => tracking_no.clone(),
            (Notice::PinSent { channel, .. }, "channel") => match channel.as_str() {
                "sms" => "短信".into(),
                "bank" => "对公账户打款附言".into(),
                other => other.into(),
            },
            (Notice::PinSent { destination, .. }, "destination") => destination.clone(),
            (Notice::Expiring { days, .. }, "days") => days.to_string(),
            (Notice::Expiring { not_after, .. }, "not_after") => not_after.clone(),
            (Notice::Expiring { serial, .. } | Notice::Revoked { serial, .. }, "serial") => {
                serial.clone()
            }
            _ => return None,
        };
        Some(v)
    }
}

/// Which expiry threshold a certificate valid until `not_after` has crossed at `now`: the
/// smallest one not yet passed (a station that was down for weeks sends the 7-day notice, not
/// a late 30-day one as well). `None` before 30 days ahead, and once it has expired.
pub fn expiry_threshold(now: time::OffsetDateTime, not_after: time::OffsetDateTime) -> Option<i64> {
    if now >= not_after {
        return None;
    }
    let left = not_after - now;
    EXPIRY_THRESHOLDS_DAYS
        .iter()
        .rev()
        .copied()
        .find(|d| left <= time::Duration::days(*d))
}

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder this kind of notice does not have (`{pin}` among them, always).
    #[error("notice template {kind}: unknown placeholder {{{name}}}")]
    UnknownPlaceholder {
        /// The template's kind.
        kind: NoticeKind,
        /// The placeholder.
        name: String,
    },
    /// A brace that does not open or close a placeholder.
    #[error("notice template {kind}: unmatched brace at byte offset {offset}")]
    StrayBrace {
        /// The template's kind.
        kind: NoticeKind,
        /// Where.
        offset: usize,
    },
    /// Empty.
    #[error("notice template {kind}: is empty")]
    Empty {
        /// The template's kind.
        kind: NoticeKind,
    },
}

/// One part of a parsed template.
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn parse(kind: NoticeKind, template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let allowed =
        |name: &str| ["order_no", "company"].contains(&name) || kind.placeholders().contains(&name);
    scan(template, allowed).map_err(|e| match e {
        Scan::Empty => TemplateError::Empty { kind },
        Scan::StrayBrace(offset) => TemplateError::StrayBrace { kind, offset },
        Scan::Unknown(name) => TemplateError::UnknownPlaceholder { kind, name },
    })
}

/// Why [`scan`] refused a template.
pub(crate) enum Scan {
    Empty,
    StrayBrace(usize),
    Unknown(String),
}

/// Splits `template` into text and `{placeholder}`s, each of which `allowed` must accept: the
/// one template syntax of the station's texts (notices, the unlock e-mail).
pub(crate) fn scan(template: &str, allowed: impl Fn(&str) -> bool) -> Result<Vec<Piece<'_>>, Scan> {
    if template.trim().is_empty() {
        return Err(Scan::Empty);
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(i) = rest.find(['{', '}']) {
        if rest.as_bytes()[i] == b'}' {
            return Err(Scan::StrayBrace(offset + i));
        }
        let Some(close) = rest[i + 1..].find('}') else {
            return Err(Scan::StrayBrace(offset + i));
        };
        let name = &rest[i + 1..i + 1 + close];
        if !allowed(name) {
            return Err(Scan::Unknown(name.to_string()));
        }
        pieces.push(Piece::Text(&rest[..i]));
        pieces.push(Piece::Placeholder(name));
        let used = i + close + 2;
        offset += used;
        rest = &rest[used..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Checks a template of `kind`: only the placeholders of that kind, braces matched.
pub fn check_template(kind: NoticeKind, template: &str) -> Result<(), TemplateError> {
    parse(kind, template).map(|_| ())
}

/// The texts of the notices, one per kind (Chinese defaults; `station.toml` may replace them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeTemplates {
    /// E-mail subject, shared by every kind (`{order_no}`, `{company}`).
    #[serde(default = "defaults::subject")]
    pub subject: String,
    /// Review approved.
    #[serde(default = "defaults::approved")]
    pub approved: String,
    /// Review rejected (`{reason}`).
    #[serde(default = "defaults::rejected")]
    pub rejected: String,
    /// Shipped (`{carrier}`, `{tracking_no}`).
    #[serde(default = "defaults::shipped")]
    pub shipped: String,
    /// PIN sent (`{channel}`, `{destination}`).
    #[serde(default = "defaults::pin_sent")]
    pub pin_sent: String,
    /// Expiring (`{days}`, `{not_after}`, `{serial}`).
    #[serde(default = "defaults::expiring")]
    pub expiring: String,
    /// Revoked (`{serial}`, `{reason}`).
    #[serde(default = "defaults::revoked")]
    pub revoked: String,
}

impl Default for NoticeTemplates {
    fn default() -> Self {
        NoticeTemplates {
            subject: defaults::subject(),
            approved: defaults::approved(),
            rejected: defaults::rejected(),
            shipped: defaults::shipped(),
            pin_sent: defaults::pin_sent(),
            expiring: defaults::expiring(),
            revoked: defaults::revoked(),
        }
    }
}

/// A rendered notice (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedNotice {
    /// E-mail subject.
    pub subject: String,
    /// The text (SMS body without the signature; e-mail body).
    pub body: String,
}

impl NoticeTemplates {
    /// The body template of `kind`.
    pub fn body(&self, kind: NoticeKind) -> &str {
        match kind {
            NoticeKind::Approved => &self.approved,
            NoticeKind::Rejected => &self.rejected,
            NoticeKind::Shipped => &self.shipped,
            NoticeKind::PinSent => &self.pin_sent,
            NoticeKind::Expiring => &self.expiring,
            NoticeKind::Revoked => &self.revoked,
        }
    }

    /// Checks every template (at configuration load).
    pub fn check(&self) -> Result<(), TemplateError> {
        // The subject only knows the order and the company: checked as an "approved" text.
        check_template(NoticeKind::Approved, &self.subject)?;
        for kind in NoticeKind::ALL {
            check_template(kind, self.body(kind))?;
        }
        Ok(())
    }

    /// Renders `notice` for order `order_no` of `company`.
    pub fn render(
        &self,
        notice: &Notice,
        order_no: &str,
        company: &str,
    ) -> Result<RenderedNotice, TemplateError> {
        let fill = |kind: NoticeKind, template: &str| -> Result<String, TemplateError> {
            let mut out = String::with_capacity(template.len() + 64);
            for piece in parse(kind, template)? {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Placeholder("order_no") => out.push_str(order_no),
                    Piece::Placeholder("company") => out.push_str(company),
                    Piece::Placeholder(name) => {
                        out.push_str(&notice.value(name).unwrap_or_default())
                    }
                }
            }
            Ok(out)
        };
        Ok(RenderedNotice {
            subject: fill(NoticeKind::Approved, &self.subject)?,
            body: fill(notice.kind(), self.body(notice.kind()))?,
        })
    }
}

mod defaults {
    pub fn subject() -> String {
        "【北京CA】订单{order_no}通知".into()
    }
    pub fn approved() -> String {
        "您的单位证书订单{order_no}（{company}）已审核通过，我们将尽快制作并寄出USB Key。".into()
    }
    pub fn rejected() -> String {
        "您的单位证书订单{order_no}（{company}）未通过审核，原因：{reason}。".into()
    }
    pub fn shipped() -> String {
        "您的单位证书订单{order_no}的USB Key已寄出，{carrier}运单号{tracking_no}。".into()
    }
    pub fn pin_sent() -> String {
        "订单{order_no}的证书密码已通过{channel}发送至{destination}，请查收并于首次使用时修改。"
            .into()
    }
    pub fn expiring() -> String {
        "{company}的单位证书（序列号{serial}）将于{not_after}到期（不足{days}天）。到期前30天内可办理证书更新：请联系客服或到服务网点，报订单号{order_no}申请更新，审核通过后将为您制作新证书，原证书随之作废。"
            .into()
    }
    pub fn revoked() -> String {
        "{company}的单位证书（序列号{serial}）已被吊销（{reason}）。如有疑问请联系客服。".into()
    }
}

/// Where a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// Waiting for the worker (possibly until its next attempt time).
    Queued,
    /// Claimed; the server may have it.
    Sending,
    /// The server took it (final).
    Sent,
    /// Not sent and not retried automatically.
    Failed,
}

/// Something that happens to a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeEvent {
    /// The worker takes it, before contacting the server.
    Claim,
    /// The server took it.
    Accepted,
    /// Nothing reached the server; try later.
    RetryLater,
    /// Refused for good, retries exhausted, or outcome unknown.
    Fail,
    /// An operator queues it again.
    OperatorRetry,
}

/// An event the notice's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("notice in state {from:?} cannot {event:?}")]
pub struct IllegalNoticeTransition {
    /// The state it was in.
    pub from: NoticeState,
    /// The refused event.
    pub event: NoticeEvent,
}

impl NoticeState {
    /// Every state.
    pub const ALL: [NoticeState; 4] = [
        NoticeState::Queued,
        NoticeState::Sending,
        NoticeState::Sent,
        NoticeState::Failed,
    ];

    /// The one table of legal moves (see the module diagram).
    pub fn apply(self, event: NoticeEvent) -> Result<NoticeState, IllegalNoticeTransition> {
        use NoticeEvent as E;
        use NoticeState as S;
        match (self, event) {
            (S::Queued, E::Claim) => Ok(S::Sending),
            (S::Sending, E::Accepted) => Ok(S::Sent),
            (S::Sending, E::RetryLater) => Ok(S::Queued),
            (S::Queued | S::Sending, E::Fail) => Ok(S::Failed),
            (S::Failed, E::OperatorRetry) => Ok(S::Queued),
            _ => Err(IllegalNoticeTransition { from: self, event }),
        }
    }

    /// Stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Queued => "queued",
            NoticeState::Sending => "sending",
            NoticeState::Sent => "sent",
            NoticeState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<NoticeState> {
        NoticeState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for NoticeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a notice travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeMedium {
    /// SMS to the handler's mobile.
    Sms,
    /// E-mail to the handler's address.
    Email,
}

impl NoticeMedium {
    /// Both, in sending order.
    pub const ALL: [NoticeMedium; 2] = [NoticeMedium::Sms, NoticeMedium::Email];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeMedium::Sms => "sms",
            NoticeMedium::Email => "email",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<NoticeMedium> {
        NoticeMedium::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[cfg(test)]
mod tests;
