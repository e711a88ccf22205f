//! SMS delivery of a token's user PIN to the company's legal representative (domain doc §1 step 7, §6).
//!
//! Responsibility: the channel side only. The async delivery worker builds an [`OutgoingSms`] (the
//! rendered text, see [`message`]), hands it to the configured [`SmsChannel`] and records the
//! [`SendOutcome`]. Channels: a spool directory (one file per message, for a gateway agent), Aliyun
//! Dysmsapi `SendSms`, and a generic signed webhook.
//!
//! Invariants:
//! - Every message carries a stable `delivery_id`; each channel uses it for idempotency or lookup
//!   (spool file name, Aliyun `OutId`, webhook `Idempotency-Key`).
//! - [`SendOutcome::Unknown`] means the request may have reached the provider. The caller must not
//!   send again blindly: it calls [`SmsChannel::query`] first (Aliyun does not de-duplicate, so a
//!   blind resend can deliver the PIN twice). Only for the webhook, whose gateway de-duplicates on
//!   `Idempotency-Key`, is resending the same `delivery_id` safe; its `query` is `Unsupported`.
//! - A reason string never contains the PIN or the text: channels build reasons only from status
//!   codes, provider error codes and IO errors, and [`SmsChannel`] scrubs every reason against the
//!   PIN and the text before returning it, as a second line of defence.
//!
//! Security notes:
//! - The PIN and the text are zeroized types; [`OutgoingSms`] has a hand-written, redacted `Debug`
//!   (`Zeroizing`'s own `Debug` would print the PIN).
//! - Once a request body is handed to the HTTP stack (reqwest/hyper), its copies are outside our
//!   control and are not zeroized; we keep our own copies in zeroizing buffers and never put the PIN
//!   in a URL (Aliyun requests are POSTed), so it cannot reach access logs or error messages.
//! - Time and nonces come from an injected [`RequestStamps`], so tests fix them.

pub mod aliyun;
mod http;
pub mod message;
pub mod spool;
pub mod webhook;

use std::fmt;

use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use aliyun::{AliyunChannel, AliyunConfig, AliyunCredentials};
pub(crate) use http::{error_chain, http_client, install_ring_tls_provider};
pub use message::{SmsText, check_template, render, segments};
pub use spool::{SpoolChannel, SpoolState};
pub use webhook::{WebhookChannel, WebhookConfig, verify_webhook_signature};

/// Longest reason string handed back to the caller; provider answers can be arbitrarily long.
const MAX_REASON_CHARS: usize = 300;

/// Errors of the SMS module (configuration, templates, message construction).
///
/// Send failures are not errors but [`SendOutcome`]s, because the caller's decision (retry, give up,
/// query) depends on which kind of failure it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmsError {
    /// The template has no `{pin}` placeholder, so the message would not deliver the PIN.
    #[error("SMS template: has no {{pin}} placeholder")]
    TemplateMissingPin,
    /// The template uses a placeholder other than `{order_no}`, `{pin}`, `{company}`.
    #[error(
        "SMS template: unknown placeholder {{{name}}} (allowed: {{order_no}}, {{pin}}, {{company}})"
    )]
    TemplateUnknownPlaceholder {
        /// The placeholder name found between the braces.
        name: String,
    },
    /// The template has a `{` or `}` that does not belong to a placeholder.
    #[error("SMS template: unmatched brace at byte offset {offset}")]
    TemplateStrayBrace {
        /// Byte offset of the offending brace in the template.
        offset: usize,
    },
    /// The worst-case rendering of the template is longer than the configured segment limit.
    #[error(
        "SMS template: worst-case text is {units} UTF-16 units = {segments} segments, more than the allowed {max_segments}"
    )]
    TemplateTooLong {
        /// Worst-case length in UTF-16 code units, sign included.
        units: usize,
        /// Segments that length needs.
        segments: usize,
        /// The configured maximum.
        max_segments: usize,
    },
    /// The sign name (rendered as `【sign】`) is unusable.
    #[error("SMS sign_name: {reason}")]
    InvalidSignName {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Rendering was asked with an empty PIN.
    #[error("SMS pin: is empty")]
    EmptyPin,
    /// The delivery id is not 1-64 characters of `[A-Za-z0-9_-]` (it names a spool file and is sent
    /// to providers as `OutId`, so it must be path- and header-safe).
    #[error("SMS delivery_id {delivery_id:?}: must be 1-64 characters of A-Z a-z 0-9 _ -")]
    InvalidDeliveryId {
        /// The offending id (not secret).
        delivery_id: String,
    },
    /// The phone number is not a normalized mainland China mobile number.
    #[error("SMS phone: not a normalized 11-digit mainland China mobile number (1[3-9]xxxxxxxxx)")]
    InvalidPhone,
    /// A channel configuration value is unusable.
    #[error("SMS channel config {field}: {reason}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("SMS channel HTTP client: {reason}")]
    HttpClient {
        /// The underlying error.
        reason: String,
    },
    /// The operating system's random generator failed while making a request nonce.
    #[error("SMS request nonce: OS random generator failed: {reason}")]
    Randomness {
        /// The underlying error.
        reason: String,
    },
}

impl crate::error_code::Coded for SmsError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            SmsError::TemplateMissingPin
            | SmsError::TemplateUnknownPlaceholder { .. }
            | SmsError::TemplateStrayBrace { .. }
            | SmsError::TemplateTooLong { .. }
            | SmsError::InvalidSignName { .. }
            | SmsError::InvalidConfig { .. } => ec::SMS_CHANNEL,
            SmsError::EmptyPin | SmsError::InvalidDeliveryId { .. } | SmsError::InvalidPhone => {
                ec::SMS_MESSAGE
            }
            SmsError::HttpClient { .. } => ec::SMS_CLIENT,
            SmsError::Randomness { .. } => ec::RANDOM,
        }
    }
}

/// Where channels get the current time and per-request nonces. Injected so tests control them
/// (the house rule: time and randomness are parameters).
pub trait RequestStamps: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
    /// A fresh, unpredictable nonce made of `[0-9a-f]`, unique per call.
    fn nonce(&self) -> Result<String, SmsError>;
}

/// Production [`RequestStamps`]: the station's clock and 128 bits from the OS random generator.
#[derive(Debug, Clone)]
pub struct SystemStamps(pub std::sync::Arc<dyn crate::clock::Clock>);

impl Default for SystemStamps {
    fn default() -> Self {
        SystemStamps(std::sync::Arc::new(crate::clock::SystemClock))
    }
}

impl RequestStamps for SystemStamps {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }

    fn nonce(&self) -> Result<String, SmsError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| SmsError::Randomness {
            reason: e.to_string(),
        })?;
        Ok(hex::encode(bytes))
    }
}

/// The template configuration a station uses for PIN messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsTemplate {
    /// Sign name, rendered as `【sign_name】` (spool, webhook) or sent as Aliyun `SignName`.
    pub sign_name: String,
    /// Body with `{order_no}`, `{pin}`, `{company}` placeholders.
    pub body: String,
}

impl SmsTemplate {
    /// A template with [`message::DEFAULT_BODY_TEMPLATE`].
    pub fn with_default_body(sign_name: &str) -> Self {
        Self {
            sign_name: sign_name.to_owned(),
            body: message::DEFAULT_BODY_TEMPLATE.to_owned(),
        }
    }
}

/// Names of the template parameters sent to template-based providers (the provider-side template,
/// e.g. Aliyun's `TemplateCode`, must use `${order_no}`, `${pin}`, `${company}`).
pub const PARAM_ORDER_NO: &str = "order_no";
/// See [`PARAM_ORDER_NO`].
pub const PARAM_PIN: &str = "pin";
/// See [`PARAM_ORDER_NO`].
pub const PARAM_COMPANY: &str = "company";

/// One PIN message, ready for any channel.
pub struct OutgoingSms {
    /// Stable id of this delivery, used for idempotency (spool file name, `OutId`, `Idempotency-Key`).
    delivery_id: String,
    /// Normalized 11-digit mainland mobile number.
    phone: String,
    order_no: String,
    /// Full rendered text including `【sign】`.
    text: SmsText,
    /// For template-based providers: `order_no`, `pin`, `company`.
    template_params: Vec<(String, Zeroizing<String>)>,
}

impl OutgoingSms {
    /// Renders the message and checks the identifiers.
    pub fn new(
        delivery_id: &str,
        phone: &str,
        order_no: &str,
        company: &str,
        pin: &str,
        template: &SmsTemplate,
    ) -> Result<Self, SmsError> {
        check_ids(delivery_id, phone)?;
        let text = render(&template.sign_name, &template.body, order_no, company, pin)?;
        let template_params = vec![
            (
                PARAM_ORDER_NO.to_owned(),
                Zeroizing::new(order_no.to_owned()),
            ),
            (PARAM_PIN.to_owned(), Zeroizing::new(pin.to_owned())),
            (PARAM_COMPANY.to_owned(), Zeroizing::new(company.to_owned())),
        ];
        Ok(Self {
            delivery_id: delivery_id.to_owned(),
            phone: phone.to_owned(),
            order_no: order_no.to_owned(),
            text,
            template_params,
        })
    }

    /// A notice to the applicant (no PIN): `【sign_name】body` to `phone`. Template-based
    /// providers (Aliyun) need an approved template per notice and are not offered notices.
    pub fn notice(
        notice_id: &str,
        phone: &str,
        order_no: &str,
        sign_name: &str,
        body: &str,
    ) -> Result<Self, SmsError> {
        check_ids(notice_id, phone)?;
        Ok(Self {
            delivery_id: notice_id.to_owned(),
            phone: phone.to_owned(),
            order_no: order_no.to_owned(),
            text: message::notice_text(sign_name, body)?,
            template_params: Vec::new(),
        })
    }

    /// Stable id of this delivery.
    pub fn delivery_id(&self) -> &str {
        &self.delivery_id
    }

    /// Recipient, normalized 11-digit mainland mobile number.
    pub fn phone(&self) -> &str {
        &self.phone
    }

    /// The order this PIN belongs to.
    pub fn order_no(&self) -> &str {
        &self.order_no
    }

    /// The full rendered text (contains the PIN).
    pub fn text(&self) -> &SmsText {
        &self.text
    }

    /// Template parameters for template-based providers (the `pin` value is the PIN).
    pub fn template_params(&self) -> &[(String, Zeroizing<String>)] {
        &self.template_params
    }

    /// The secrets a reason string must never contain: the PIN and the text.
    /// The text comes first: it contains the PIN, so scrubbing the PIN first would hide the text.
    fn secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.text.expose_secret())
            .chain(
                self.template_params
                    .iter()
                    .filter(|(k, _)| k == PARAM_PIN)
                    .map(|(_, v)| v.as_str()),
            )
            .filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for OutgoingSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let param_names: Vec<&str> = self
            .template_params
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("OutgoingSms")
            .field("delivery_id", &self.delivery_id)
            .field("phone", &self.phone)
            .field("order_no", &self.order_no)
            .field("text", &self.text)
            .field("template_params", &param_names)
            .finish()
    }
}

/// The id names a spool file and goes to providers; the phone is a normalized mainland mobile.
fn check_ids(delivery_id: &str, phone: &str) -> Result<(), SmsError> {
    let id_ok = (1..=64).contains(&delivery_id.len())
        && delivery_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(SmsError::InvalidDeliveryId {
            delivery_id: delivery_id.to_owned(),
        });
    }
    let phone_bytes = phone.as_bytes();
    let phone_ok = phone_bytes.len() == 11
        && phone_bytes.iter().all(u8::is_ascii_digit)
        && phone_bytes[0] == b'1'
        && (b'3'..=b'9').contains(&phone_bytes[1]);
    if !phone_ok {
        return Err(SmsError::InvalidPhone);
    }
    Ok(())
}

/// What happened to one send attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider took the message; `provider_id` is its reference (Aliyun `BizId`, gateway id,
    /// spool file name).
    Accepted {
        /// The provider's reference for the message.
        provider_id: String,
    },
    /// The provider did not take the message and a later attempt may succeed (throttling, 5xx,
    /// connection refused, disk full).
    Retryable {
        /// Why, without the PIN or text.
        reason: String,
    },
    /// The provider refused the message for a reason retrying cannot fix (bad number, bad
    /// credentials, template not approved...). Needs an operator.
    Permanent {
        /// Why (names the provider error code), without the PIN or text.
        reason: String,
    },
    /// The request may have reached the provider (timeout or connection reset after sending, or an
    /// unreadable answer). Call [`SmsChannel::query`] before any resend.
    Unknown {
        /// Why, without the PIN or text.
        reason: String,
    },
}

impl SendOutcome {
    /// The outcome's name without its details (`accepted`, `retryable`, `permanent`,
    /// `unknown`), as a delivery attempt is recorded.
    pub fn name(&self) -> &'static str {
        match self {
            SendOutcome::Accepted { .. } => "accepted",
            SendOutcome::Retryable { .. } => "retryable",
            SendOutcome::Permanent { .. } => "permanent",
            SendOutcome::Unknown { .. } => "unknown",
        }
    }
}

/// What the provider knows about a message whose send outcome was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryOutcome {
    /// The provider has the message and the carrier confirmed delivery to the handset.
    Delivered {
        /// The provider's reference (for Aliyun `QuerySendDetails`, which does not report the
        /// `BizId`, this is the `OutId` it echoes back, i.e. our delivery id).
        provider_id: String,
    },
    /// The provider has the message (delivery receipt pending, or the channel has no receipts).
    Accepted {
        /// See [`QueryOutcome::Delivered::provider_id`].
        provider_id: String,
    },
    /// The provider has the message but the carrier reported that delivery failed; a new send is
    /// then a deliberate decision, not a blind resend.
    Undelivered {
        /// See [`QueryOutcome::Delivered::provider_id`].
        provider_id: String,
        /// The carrier's error code.
        reason: String,
    },
    /// The provider has no record of the message. Providers index with some delay: trust this only
    /// some minutes after the attempt.
    NotFound,
    /// The channel cannot be queried (webhook: its gateway de-duplicates on `Idempotency-Key`).
    Unsupported,
    /// The query itself failed; the send outcome is still unknown.
    Failed {
        /// Why, without the PIN or text.
        reason: String,
    },
}

/// A configured SMS channel.
#[derive(Debug)]
pub enum SmsChannel {
    /// Files in a spool directory, picked up by a gateway agent.
    Spool(SpoolChannel),
    /// Aliyun Dysmsapi `SendSms`.
    Aliyun(AliyunChannel),
    /// Generic signed JSON webhook.
    Webhook(WebhookChannel),
}

impl SmsChannel {
    /// Sends one message. Never panics, never returns the PIN or the text inside a reason.
    pub async fn send(&self, sms: &OutgoingSms) -> SendOutcome {
        let outcome = match self {
            SmsChannel::Spool(c) => c.send(sms).await,
            SmsChannel::Aliyun(c) => c.send(sms).await,
            SmsChannel::Webhook(c) => c.send(sms).await,
        };
        match outcome {
            SendOutcome::Accepted { provider_id } => SendOutcome::Accepted {
                provider_id: scrub(provider_id, sms),
            },
            SendOutcome::Retryable { reason } => SendOutcome::Retryable {
                reason: scrub(reason, sms),
            },
            SendOutcome::Permanent { reason } => SendOutcome::Permanent {
                reason: scrub(reason, sms),
            },
            SendOutcome::Unknown { reason } => SendOutcome::Unknown {
                reason: scrub(reason, sms),
            },
        }
    }

    /// Asks the provider whether `sms`, attempted at `sent_at`, was accepted. Used after
    /// [`SendOutcome::Unknown`] so that the caller never resends blindly.
    pub async fn query(&self, sms: &OutgoingSms, sent_at: OffsetDateTime) -> QueryOutcome {
        let outcome = match self {
            SmsChannel::Spool(c) => c.query(sms).await,
            SmsChannel::Aliyun(c) => c.query(sms, sent_at).await,
            SmsChannel::Webhook(_) => QueryOutcome::Unsupported,
        };
        match outcome {
            QueryOutcome::Delivered { provider_id } => QueryOutcome::Delivered {
                provider_id: scrub(provider_id, sms),
            },
            QueryOutcome::Accepted { provider_id } => QueryOutcome::Accepted {
                provider_id: scrub(provider_id, sms),
            },
            QueryOutcome::Undelivered {
                provider_id,
                reason,
            } => QueryOutcome::Undelivered {
                provider_id: scrub(provider_id, sms),
                reason: scrub(reason, sms),
            },
            QueryOutcome::Failed { reason } => QueryOutcome::Failed {
                reason: scrub(reason, sms),
            },
            other @ (QueryOutcome::NotFound | QueryOutcome::Unsupported) => other,
        }
    }
}

/// Second line of defence: removes the PIN and the text from a provider-derived string and bounds
/// its length. Channels already build reasons without them; this catches a provider echoing input.
fn scrub(reason: String, sms: &OutgoingSms) -> String {
    let mut reason = reason;
    for secret in sms.secrets() {
        if reason.contains(secret) {
            reason = reason.replace(secret, "<redacted>");
        }
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        reason = reason.chars().take(MAX_REASON_CHARS).collect::<String>() + "…";
    }
    reason
}

/// Keeps a provider-supplied identifier (error code, request id, message id) printable and short
/// before it goes into an outcome.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(80)
        .collect()
}

/// Serializes a JSON document that contains the PIN into a zeroizing buffer sized up front
/// (`capacity` must be an upper bound), so no reallocation leaves a copy behind.
fn to_json_zeroizing<T: serde::Serialize>(
    value: &T,
    capacity: usize,
) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *out, value)?;
    Ok(out)
}

/// Serializes a message document (spool record, webhook body) whose string values are `fields`,
/// the text with the PIN among them, into a buffer sized up front. It cannot succeed on a second
/// try, so a failure is `Permanent`.
fn message_json<T: serde::Serialize>(
    channel: &str,
    what: &str,
    message: &T,
    fields: &[&str],
) -> Result<Zeroizing<Vec<u8>>, SendOutcome> {
    // 128: the keys and punctuation of either document.
    let capacity = 128 + fields.iter().map(|f| json_escaped_bound(f)).sum::<usize>();
    to_json_zeroizing(message, capacity).map_err(|e| SendOutcome::Permanent {
        reason: format!("{channel}: cannot serialize the {what}: {e}"),
    })
}

/// Upper bound of the JSON-escaped size of a string: at worst every byte becomes `\u00XX`.
fn json_escaped_bound(s: &str) -> usize {
    s.len() * 6 + 2
}

#[cfg(test)]
mod tests;
