//! Aliyun Dysmsapi channel: `SendSms` and `QuerySendDetails` (RPC style, API version 2017-05-25).
//!
//! Responsibility: send one PIN message through an Aliyun SMS template and, after an unknown
//! outcome, find out whether Aliyun accepted it.
//!
//! Invariants:
//! - Requests are signed with signature version 1.0 (HMAC-SHA1): the canonicalized query is the
//!   parameters sorted by name, names and values percent-encoded (RFC 3986 unreserved characters
//!   kept, everything else `%XX` upper-case over UTF-8, so space is `%20`, `*` is `%2A`, `~` stays),
//!   joined by `&`; `StringToSign = METHOD&%2F&pe(canonicalized)`;
//!   `Signature = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))`. The signer is pure
//!   ([`canonicalized_query`], [`string_to_sign`], [`signature_v1`]) and tested against Aliyun's
//!   documented example and against `openssl`.
//! - `OutId` is our `delivery_id`, so `QuerySendDetails` can find the message after a timeout.
//!   Aliyun does not de-duplicate: a timeout after sending is `Unknown`, never silently retried.
//! - Outcomes: `OK` → `Accepted{BizId}`; throttling and provider-side errors (`Throttling*`,
//!   `isv.BUSINESS_LIMIT_CONTROL`, `isv.DAY_LIMIT_CONTROL`, `isp.*`, HTTP 5xx) → `Retryable`; every
//!   other error code (bad number, bad signature or key, template or sign not approved, no balance)
//!   → `Permanent` naming the code; connection refused → `Retryable`; timeout or reset after
//!   sending, or an unreadable answer → `Unknown`.
//!
//! Security notes:
//! - Requests are POSTed as `application/x-www-form-urlencoded`, never GET: the PIN is a template
//!   parameter and must not end up in a URL (proxy and access logs, reqwest error messages).
//! - Aliyun's `Message` field is never copied into a reason: for `SignatureDoesNotMatch` it echoes
//!   the server's string to sign, which contains the (encoded) `TemplateParam`, i.e. the PIN.
//!   Reasons carry only the error `Code`, the HTTP status and the `RequestId`.
//! - `QuerySendDetails` answers include `Content`, the delivered text with the PIN: the answer is
//!   kept in a zeroizing buffer and `Content` is never deserialized.
//! - [`AliyunCredentials`] has a redacted `Debug`; the secret is zeroized on drop.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};
use zeroize::Zeroizing;

use super::http::{
    check_endpoint, check_signing_secret, error_chain, http_client, transport_outcome,
};
use super::{
    OutgoingSms, QueryOutcome, RequestStamps, SendOutcome, SmsError, json_escaped_bound, sanitize,
    to_json_zeroizing,
};

/// Aliyun's public Dysmsapi endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";
/// Dysmsapi API version used for both actions.
pub const API_VERSION: &str = "2017-05-25";
/// `QuerySendDetails` page size (Aliyun's maximum).
const QUERY_PAGE_SIZE: u32 = 50;
/// Aliyun limits one number to a handful of messages a day; more pages than this means a loop.
const MAX_QUERY_PAGES: u32 = 10;

/// Aliyun AccessKey pair, loaded by the caller from a file.
#[derive(Clone)]
pub struct AliyunCredentials {
    /// AccessKey id (not secret, appears in every request).
    pub access_key_id: String,
    /// AccessKey secret, the HMAC key.
    pub access_key_secret: Zeroizing<String>,
}

impl fmt::Debug for AliyunCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AliyunCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .finish()
    }
}

/// Aliyun channel configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliyunConfig {
    /// Endpoint URL, [`DEFAULT_ENDPOINT`] in production (https, or http to loopback for tests).
    pub endpoint: String,
    /// `RegionId` parameter.
    pub region_id: String,
    /// `SignName`: the approved signature, without 【】.
    pub sign_name: String,
    /// `TemplateCode` of the approved template using `${order_no}`, `${pin}`, `${company}`.
    pub template_code: String,
    /// Time allowed to establish the connection (nothing is sent before it succeeds).
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange; past it the outcome is `Unknown`.
    pub request_timeout: Duration,
}

impl AliyunConfig {
    /// Production defaults: public endpoint, `cn-hangzhou`, 5 s to connect, 15 s in total.
    pub fn new(sign_name: &str, template_code: &str) -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            region_id: "cn-hangzhou".to_owned(),
            sign_name: sign_name.to_owned(),
            template_code: template_code.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Aliyun Dysmsapi channel.
#[derive(Debug)]
pub struct AliyunChannel {
    endpoint: reqwest::Url,
    config: AliyunConfig,
    credentials: AliyunCredentials,
    client: reqwest::Client,
    stamps: Arc<dyn RequestStamps>,
}

/// Fields of a Dysmsapi answer that we use. `Message` is deliberately absent (see module docs).
#[derive(Deserialize)]
struct PopAnswer {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "BizId")]
    biz_id: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct QueryAnswer {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    /// A number in Aliyun's answers, a string in some SDK examples: accept both.
    #[serde(rename = "TotalCount")]
    total_count: Option<serde_json::Value>,
    #[serde(rename = "SmsSendDetailDTOs")]
    details: Option<DetailList>,
}

#[derive(Deserialize)]
struct DetailList {
    #[serde(rename = "SmsSendDetailDTO", default)]
    items: Vec<SendDetail>,
}

/// One sent message. `Content` (the text, with the PIN) is not a field, so it is never copied.
#[derive(Deserialize)]
struct SendDetail {
    #[serde(rename = "OutId")]
    out_id: Option<String>,
    #[serde(rename = "SendStatus")]
    send_status: Option<i64>,
    #[serde(rename = "ErrCode")]
    err_code: Option<String>,
}

/// What one `QuerySendDetails` page told us.
#[derive(Debug, PartialEq, Eq)]
struct QueryPage {
    found: Option<QueryOutcome>,
    items_on_page: usize,
    total: u64,
}

/// Why a request got no answer: it could not be signed (nothing left the station), or the HTTP
/// exchange failed ([`transport_outcome`] tells whether it may have arrived).
enum Unsent {
    Unsigned(SmsError),
    Transport(reqwest::Error),
}

impl AliyunChannel {
    /// Checks the configuration and builds the HTTP client.
    pub fn new(
        config: AliyunConfig,
        credentials: AliyunCredentials,
        stamps: Arc<dyn RequestStamps>,
    ) -> Result<Self, SmsError> {
        let endpoint = check_endpoint("aliyun.endpoint", &config.endpoint)?;
        for (field, value) in [
            ("aliyun.region_id", &config.region_id),
            ("aliyun.sign_name", &config.sign_name),
            ("aliyun.template_code", &config.template_code),
            ("aliyun.access_key_id", &credentials.access_key_id),
        ] {
            if value.trim().is_empty() {
                return Err(SmsError::InvalidConfig {
                    field,
                    reason: "is empty".to_owned(),
                });
            }
        }
        check_signing_secret("aliyun.access_key_secret", &credentials.access_key_secret)?;
        let client = http_client(config.connect_timeout, config.request_timeout)?;
        Ok(Self {
            endpoint,
            config,
            credentials,
            client,
            stamps,
        })
    }

    pub(super) async fn send(&self, sms: &OutgoingSms) -> SendOutcome {
        let template_param = match template_param_json(sms) {
            Ok(p) => p,
            Err(e) => {
                return SendOutcome::Permanent {
                    reason: format!("aliyun: cannot encode TemplateParam: {e}"),
                };
            }
        };
        let action = [
            ("Action", "SendSms"),
            ("PhoneNumbers", sms.phone()),
            ("SignName", self.config.sign_name.as_str()),
            ("TemplateCode", self.config.template_code.as_str()),
            ("TemplateParam", template_param.as_str()),
            ("OutId", sms.delivery_id()),
        ];
        let response = match self.post(&action).await {
            Ok(r) => r,
            Err(Unsent::Unsigned(e)) => {
                return SendOutcome::Retryable {
                    reason: format!("aliyun: cannot sign the request: {e}"),
                };
            }
            Err(Unsent::Transport(e)) => return transport_outcome("aliyun", e),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(answer) => classify_send_answer(status, &answer),
            Err(e) => SendOutcome::Unknown {
                reason: format!(
                    "aliyun: HTTP {status} but the answer could not be read, the message may have been accepted: {}",
                    error_chain(&e.without_url())
                ),
            },
        }
    }

    pub(super) async fn query(&self, sms: &OutgoingSms, sent_at: OffsetDateTime) -> QueryOutcome {
        for date in query_dates(sent_at, self.config.request_timeout) {
            for page in 1..=MAX_QUERY_PAGES {
                let page_size = QUERY_PAGE_SIZE.to_string();
                let current_page = page.to_string();
                let action = [
                    ("Action", "QuerySendDetails"),
                    ("PhoneNumber", sms.phone()),
                    ("SendDate", date.as_str()),
                    ("PageSize", page_size.as_str()),
                    ("CurrentPage", current_page.as_str()),
                ];
                let response = match self.post(&action).await {
                    Ok(r) => r,
                    Err(Unsent::Unsigned(e)) => {
                        return QueryOutcome::Failed {
                            reason: format!("aliyun: cannot sign the query: {e}"),
                        };
                    }
                    Err(Unsent::Transport(e)) => {
                        return QueryOutcome::Failed {
                            reason: format!(
                                "aliyun: QuerySendDetails failed: {}",
                                error_chain(&e.without_url())
                            ),
                        };
                    }
                };
                let status = response.status().as_u16();
                // The answer contains the delivered text (with the PIN): keep it in a zeroizing buffer.
                let answer = match response.bytes().await {
                    Ok(b) => Zeroizing::new(b.to_vec()),
                    Err(e) => {
                        return QueryOutcome::Failed {
                            reason: format!(
                                "aliyun: QuerySendDetails answer unreadable: {}",
                                error_chain(&e.without_url())
                            ),
                        };
                    }
                };
                let page_result = match parse_query_answer(status, &answer, sms.delivery_id()) {
                    Ok(p) => p,
                    Err(reason) => return QueryOutcome::Failed { reason },
                };
                if let Some(found) = page_result.found {
                    return found;
                }
                let seen = u64::from(page) * u64::from(QUERY_PAGE_SIZE);
                if page_result.items_on_page == 0 || seen >= page_result.total {
                    break;
                }
            }
        }
        QueryOutcome::NotFound
    }

    /// Signs `action` and POSTs it.
    async fn post(&self, action: &[(&str, &str)]) -> Result<reqwest::Response, Unsent> {
        let body = self.signed_body(action).map_err(Unsent::Unsigned)?;
        self.client
            .post(self.endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            // reqwest needs an owned body; this copy is outside our zeroizing control (module docs).
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(Unsent::Transport)
    }

    /// Adds the common parameters to an action's and returns the signed form body.
    fn signed_body(&self, action: &[(&str, &str)]) -> Result<Zeroizing<String>, SmsError> {
        let timestamp = format_timestamp(self.stamps.now())?;
        let nonce = self.stamps.nonce()?;
        let mut params: Vec<(&str, &str)> = vec![
            ("AccessKeyId", self.credentials.access_key_id.as_str()),
            ("Format", "JSON"),
            ("RegionId", self.config.region_id.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce.as_str()),
            ("SignatureVersion", "1.0"),
            ("Timestamp", timestamp.as_str()),
            ("Version", API_VERSION),
        ];
        params.extend_from_slice(action);
        signed_form_body("POST", &params, &self.credentials.access_key_secret)
    }
}

/// `{"company":..,"order_no":..,"pin":..}` in a zeroizing buffer.
fn template_param_json(sms: &OutgoingSms) -> Result<Zeroizing<String>, serde_json::Error> {
    let map: BTreeMap<&str, &str> = sms
        .template_params()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let capacity = 2 + map
        .iter()
        .map(|(k, v)| json_escaped_bound(k) + json_escaped_bound(v) + 2)
        .sum::<usize>();
    let mut bytes = to_json_zeroizing(&map, capacity)?;
    // Move the buffer (no copy) into a String; serde_json only writes UTF-8.
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(<serde_json::Error as serde::ser::Error>::custom(
                "TemplateParam is not UTF-8",
            ))
        }
    }
}

/// `Timestamp` parameter: ISO 8601 UTC, `YYYY-MM-DDThh:mm:ssZ`.
fn format_timestamp(now: OffsetDateTime) -> Result<String, SmsError> {
    now.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .map_err(|e| SmsError::InvalidConfig {
            field: "clock",
            reason: format!("cannot format the request timestamp: {e}"),
        })
}

/// `SendDate` values to search: Aliyun files messages under their Beijing-time (UTC+8) date, and
/// a message sent just before midnight may be recorded on the next day.
fn query_dates(sent_at: OffsetDateTime, request_timeout: Duration) -> Vec<String> {
    let fmt = format_description!("[year][month][day]");
    let beijing = offset!(+8);
    let latest = sent_at + request_timeout + Duration::from_secs(60);
    let mut dates = Vec::with_capacity(2);
    for t in [sent_at, latest] {
        if let Ok(d) = t.to_offset(beijing).format(fmt)
            && !dates.contains(&d)
        {
            dates.push(d);
        }
    }
    dates
}

/// Appends `s` percent-encoded per Aliyun POP rules: RFC 3986 unreserved bytes
/// (`A-Z a-z 0-9 - _ . ~`) as is, every other UTF-8 byte as `%XX` with upper-case hex.
fn percent_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Percent-encodes per Aliyun POP rules: RFC 3986 unreserved bytes kept, every other UTF-8 byte
/// `%XX` (upper-case hex); so space is `%20`, `*` is `%2A`, `~` stays.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    percent_encode_into(&mut out, s);
    out
}

/// Canonicalized query string: parameters sorted by name, each name and value percent-encoded,
/// `name=value` joined by `&`. Values include the PIN, hence the zeroizing, pre-sized buffer.
pub fn canonicalized_query(params: &[(&str, &str)]) -> Zeroizing<String> {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let capacity = sorted
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

/// `METHOD + "&" + pe("/") + "&" + pe(canonicalized_query)`.
pub fn string_to_sign(method: &str, canonicalized_query: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(
        method.len() + 5 + 3 * canonicalized_query.len(),
    ));
    out.push_str(method);
    out.push('&');
    percent_encode_into(&mut out, "/");
    out.push('&');
    percent_encode_into(&mut out, canonicalized_query);
    out
}

/// `base64(HMAC-SHA1(access_key_secret + "&", string_to_sign))`.
pub fn signature_v1(access_key_secret: &str, string_to_sign: &str) -> Result<String, SmsError> {
    let mut key = Zeroizing::new(String::with_capacity(access_key_secret.len() + 1));
    key.push_str(access_key_secret);
    key.push('&');
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).map_err(|_| SmsError::InvalidConfig {
            field: "aliyun.access_key_secret",
            reason: "rejected as an HMAC key".to_owned(),
        })?;
    mac.update(string_to_sign.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// The complete signed form body: canonicalized query + `&Signature=` + pe(signature).
pub fn signed_form_body(
    method: &str,
    params: &[(&str, &str)],
    access_key_secret: &str,
) -> Result<Zeroizing<String>, SmsError> {
    let canonical = canonicalized_query(params);
    let signature = signature_v1(access_key_secret, &string_to_sign(method, &canonical))?;
    let mut body = Zeroizing::new(String::with_capacity(
        canonical.len() + "&Signature=".len() + 3 * signature.len(),
    ));
    body.push_str(&canonical);
    body.push_str("&Signature=");
    percent_encode_into(&mut body, &signature);
    Ok(body)
}

/// Codes after which a later attempt can succeed: flow control and provider-side failures.
fn is_retryable_code(code: &str) -> bool {
    code.starts_with("Throttling")
        || code.starts_with("isp.")
        || matches!(
            code,
            "isv.BUSINESS_LIMIT_CONTROL"
                | "isv.DAY_LIMIT_CONTROL"
                | "isv.MONTH_LIMIT_CONTROL"
                | "ServiceUnavailable"
                | "InternalError"
                | "SignatureNonceUsed"
        )
}

/// Maps a `SendSms` HTTP answer to an outcome. Pure, so every branch is unit-tested.
fn classify_send_answer(status: u16, answer: &[u8]) -> SendOutcome {
    let parsed: Option<PopAnswer> = serde_json::from_slice(answer).ok();
    let request_id = parsed
        .as_ref()
        .and_then(|p| p.request_id.as_deref())
        .map(sanitize)
        .unwrap_or_else(|| "-".to_owned());
    let code = parsed
        .as_ref()
        .and_then(|p| p.code.as_deref())
        .map(sanitize);
    match code.as_deref() {
        Some("OK") => match parsed.and_then(|p| p.biz_id).filter(|b| !b.is_empty()) {
            Some(biz_id) => SendOutcome::Accepted {
                provider_id: sanitize(&biz_id),
            },
            None => SendOutcome::Unknown {
                reason: format!(
                    "aliyun: Code OK without BizId (HTTP {status}, RequestId {request_id})"
                ),
            },
        },
        Some(code) if is_retryable_code(code) || status >= 500 => SendOutcome::Retryable {
            reason: format!("aliyun: {code}, retry later (HTTP {status}, RequestId {request_id})"),
        },
        Some(code) => SendOutcome::Permanent {
            reason: format!(
                "aliyun refused the message: {code} (HTTP {status}, RequestId {request_id})"
            ),
        },
        None if status == 429 || status >= 500 => SendOutcome::Retryable {
            reason: format!("aliyun: HTTP {status} without an error code, retry later"),
        },
        // A 2xx we cannot read may well be an acceptance: only a query can tell.
        None if (200..300).contains(&status) => SendOutcome::Unknown {
            reason: format!("aliyun: HTTP {status} with an unreadable answer"),
        },
        None => SendOutcome::Permanent {
            reason: format!("aliyun: HTTP {status} without an error code"),
        },
    }
}

/// Parses one `QuerySendDetails` page and looks for our `OutId`.
fn parse_query_answer(status: u16, answer: &[u8], out_id: &str) -> Result<QueryPage, String> {
    let parsed: QueryAnswer = serde_json::from_slice(answer).map_err(|e| {
        format!("aliyun: QuerySendDetails answer (HTTP {status}) is not the expected JSON: {e}")
    })?;
    let request_id = parsed
        .request_id
        .as_deref()
        .map(sanitize)
        .unwrap_or_else(|| "-".to_owned());
    match parsed.code.as_deref() {
        Some("OK") => {}
        Some(code) => {
            return Err(format!(
                "aliyun: QuerySendDetails refused: {} (HTTP {status}, RequestId {request_id})",
                sanitize(code)
            ));
        }
        None => {
            return Err(format!(
                "aliyun: QuerySendDetails answer (HTTP {status}) has no Code"
            ));
        }
    }
    let items = parsed.details.map(|d| d.items).unwrap_or_default();
    let total = match parsed.total_count {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let found = items
        .iter()
        .find(|d| d.out_id.as_deref() == Some(out_id))
        .map(|d| {
            let provider_id = out_id.to_owned();
            match d.send_status {
                Some(3) => QueryOutcome::Delivered { provider_id },
                Some(2) => QueryOutcome::Undelivered {
                    provider_id,
                    reason: format!(
                        "carrier error {}",
                        d.err_code
                            .as_deref()
                            .map(sanitize)
                            .unwrap_or_else(|| "-".to_owned())
                    ),
                },
                // 1 = waiting for the carrier's receipt.
                _ => QueryOutcome::Accepted { provider_id },
            }
        });
    Ok(QueryPage {
        found,
        items_on_page: items.len(),
        total,
    })
}

#[cfg(test)]
mod tests;
