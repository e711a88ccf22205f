//! Loopback fakes of the SMS providers, speaking the real protocols.
//!
//! - [`FakeAliyun`]: Dysmsapi `SendSms` + `QuerySendDetails` (RPC, form-encoded POST). It recomputes
//!   the signature v1 with its OWN implementation, written the way Aliyun documents it for Java
//!   (`URLEncoder.encode` then `+`→`%20`, `*`→`%2A`, `%7E`→`~`), not by calling the client's signer,
//!   so a bug in either is caught by the other. Wrong signature → HTTP 400
//!   `{"Code":"SignatureDoesNotMatch", "Message": "... server string to sign is:..."}` like Aliyun
//!   (whose message echoes the string to sign, PIN included). Accepted messages are recorded and
//!   can be queried back by `QuerySendDetails`, with pagination and the `Content` field.
//! - [`FakeWebhook`]: a gateway receiving the signed JSON webhook; it checks the HMAC with its own
//!   code and de-duplicates on `Idempotency-Key`. It counts the requests for each key, and the
//!   requests in flight (the most at once too); it can hold a run of requests (recorded, not yet
//!   answered) until the test releases them.
//!
//! Both can be scripted per request (throttle, 5xx, hang past the client timeout, invalid number).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use time::macros::{format_description, offset};
use time::{PrimitiveDateTime, UtcOffset};

/// What the fake Aliyun does with the next `SendSms` request.
#[derive(Debug, Clone, Copy)]
pub enum AliyunScript {
    /// Check, record, answer `OK`.
    Normal,
    /// Answer `isv.BUSINESS_LIMIT_CONTROL` (per-number flow control), record nothing.
    Throttle,
    /// Answer HTTP 500 with a non-JSON body, record nothing.
    ServerError,
    /// Record the message as accepted, then answer `OK` only after this long (past the client
    /// timeout): the unknown-outcome case.
    Hang(Duration),
    /// Answer `isv.MOBILE_NUMBER_ILLEGAL`, record nothing.
    InvalidNumber,
    /// Record nothing and answer only after this long (past the client timeout): the request
    /// was lost on the provider's side, the client cannot tell.
    Lost(Duration),
}

/// A message the fake Aliyun accepted.
#[derive(Debug, Clone)]
pub struct AliyunAccepted {
    pub phone: String,
    pub sign_name: String,
    pub template_code: String,
    pub params: BTreeMap<String, String>,
    pub out_id: Option<String>,
    pub biz_id: String,
    /// Beijing date, `yyyyMMdd`.
    pub send_date: String,
    pub send_time: String,
}

struct AliyunInner {
    access_key_id: String,
    access_key_secret: String,
    scripts: VecDeque<AliyunScript>,
    accepted: Vec<AliyunAccepted>,
    nonces: HashSet<String>,
    send_requests: usize,
    query_requests: usize,
    next_biz: u64,
}

type AliyunState = Arc<Mutex<AliyunInner>>;

/// A running fake Aliyun Dysmsapi endpoint.
pub struct FakeAliyun {
    pub endpoint: String,
    state: AliyunState,
}

impl FakeAliyun {
    pub async fn start(access_key_id: &str, access_key_secret: &str) -> Self {
        let state = Arc::new(Mutex::new(AliyunInner {
            access_key_id: access_key_id.to_owned(),
            access_key_secret: access_key_secret.to_owned(),
            scripts: VecDeque::new(),
            accepted: Vec::new(),
            nonces: HashSet::new(),
            send_requests: 0,
            query_requests: 0,
            next_biz: 900_619_746_936_498_440,
        }));
        let app = Router::new()
            .route("/", post(aliyun_rpc))
            .with_state(state.clone());
        let addr = serve(app).await;
        Self {
            endpoint: format!("http://{addr}/"),
            state,
        }
    }

    pub fn script(&self, script: AliyunScript) {
        self.state.lock().unwrap().scripts.push_back(script);
    }

    pub fn accepted(&self) -> Vec<AliyunAccepted> {
        self.state.lock().unwrap().accepted.clone()
    }

    pub fn send_requests(&self) -> usize {
        self.state.lock().unwrap().send_requests
    }

    pub fn query_requests(&self) -> usize {
        self.state.lock().unwrap().query_requests
    }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`: keeps `a-z A-Z 0-9 . - * _`, space becomes `+`,
/// every other UTF-8 byte `%XX`.
fn java_url_encode(s: &str) -> String {
    let mut out = String::new();
    for byte in s.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Aliyun's documented recipe on top of `URLEncoder`.
fn aliyun_special_url_encode(s: &str) -> String {
    java_url_encode(s)
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

fn server_string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    let sorted_query = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| {
            format!(
                "{}={}",
                aliyun_special_url_encode(k),
                aliyun_special_url_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{method}&{}&{}",
        aliyun_special_url_encode("/"),
        aliyun_special_url_encode(&sorted_query)
    )
}

fn server_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn pop_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "RequestId": "FAKE-REQ-ERR",
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": code,
            "Message": message,
            "Recommend": "https://api.aliyun.com/troubleshoot",
        })),
    )
        .into_response()
}

fn ok_json(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Checks the common parameters and the signature the way Aliyun's gateway does; `Some` is the
/// error answer.
fn check_common(inner: &mut AliyunInner, p: &BTreeMap<String, String>) -> Option<Response> {
    let bad = |code: &str, msg: &str| Some(pop_error(StatusCode::BAD_REQUEST, code, msg));
    for required in [
        "AccessKeyId",
        "Action",
        "Format",
        "SignatureMethod",
        "SignatureNonce",
        "SignatureVersion",
        "Timestamp",
        "Version",
        "Signature",
    ] {
        if p.get(required).is_none_or(|v| v.is_empty()) {
            return bad(
                &format!("Missing{required}"),
                &format!("{required} is mandatory for this action."),
            );
        }
    }
    if p["AccessKeyId"] != inner.access_key_id {
        return Some(pop_error(
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    if p["Format"] != "JSON" {
        return bad("InvalidParameter", "Format must be JSON in this fake.");
    }
    if p["SignatureMethod"] != "HMAC-SHA1" || p["SignatureVersion"] != "1.0" {
        return bad(
            "InvalidParameter",
            "SignatureMethod/SignatureVersion not supported.",
        );
    }
    if p["Version"] != "2017-05-25" {
        return bad(
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        );
    }
    let ts_format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    if PrimitiveDateTime::parse(&p["Timestamp"], ts_format).is_err() {
        return bad(
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        );
    }
    let string_to_sign = server_string_to_sign("POST", p);
    let expected = server_signature(&inner.access_key_secret, &string_to_sign);
    if p["Signature"] != expected {
        // Like Aliyun, echo the server's string to sign (it contains every parameter).
        return bad(
            "SignatureDoesNotMatch",
            &format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        );
    }
    if !inner.nonces.insert(p["SignatureNonce"].clone()) {
        return bad(
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        );
    }
    None
}

async fn aliyun_rpc(
    State(state): State<AliyunState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let mut params = BTreeMap::new();
    for (k, v) in pairs {
        if params.insert(k.clone(), v).is_some() {
            return pop_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                &format!("duplicate {k}"),
            );
        }
    }
    let hang = {
        let mut inner = state.lock().unwrap();
        if let Some(response) = check_common(&mut inner, &params) {
            if params.get("Action").map(String::as_str) == Some("SendSms") {
                inner.send_requests += 1;
            }
            return response;
        }
        match params["Action"].as_str() {
            "SendSms" => {
                inner.send_requests += 1;
                match send_sms(&mut inner, &params) {
                    SendResult::Now(r) => return r,
                    SendResult::After(d, r) => (d, r),
                }
            }
            "QuerySendDetails" => {
                inner.query_requests += 1;
                return query_send_details(&inner, &params);
            }
            other => {
                return pop_error(
                    StatusCode::NOT_FOUND,
                    "InvalidAction.NotFound",
                    &format!("Specified api {other} is not found."),
                );
            }
        }
    };
    tokio::time::sleep(hang.0).await;
    hang.1
}

enum SendResult {
    Now(Response),
    After(Duration, Response),
}

fn send_sms(inner: &mut AliyunInner, p: &BTreeMap<String, String>) -> SendResult {
    for required in ["PhoneNumbers", "SignName", "TemplateCode", "TemplateParam"] {
        if p.get(required).is_none_or(|v| v.is_empty()) {
            return SendResult::Now(pop_error(
                StatusCode::BAD_REQUEST,
                &format!("Missing{required}"),
                &format!("{required} is mandatory for this action."),
            ));
        }
    }
    let template_params: BTreeMap<String, String> = match serde_json::from_str(&p["TemplateParam"])
    {
        Ok(m) => m,
        Err(_) => {
            return SendResult::Now(ok_json(json!({
                "Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法，只接受字符串值",
                "RequestId": "FAKE-REQ"
            })));
        }
    };
    let script = inner.scripts.pop_front().unwrap_or(AliyunScript::Normal);
    let phone = &p["PhoneNumbers"];
    let phone_ok =
        phone.len() == 11 && phone.bytes().all(|b| b.is_ascii_digit()) && phone.starts_with('1');
    let refusal = |code: &str, msg: &str| {
        SendResult::Now(ok_json(json!({
            "Code": code, "Message": msg, "RequestId": "FAKE-REQ"
        })))
    };
    match script {
        AliyunScript::Throttle => {
            return refusal("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10");
        }
        AliyunScript::InvalidNumber => return refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
        AliyunScript::ServerError => {
            return SendResult::Now(
                (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
            );
        }
        AliyunScript::Lost(d) => {
            return SendResult::After(
                d,
                (StatusCode::GATEWAY_TIMEOUT, "upstream lost it").into_response(),
            );
        }
        AliyunScript::Normal | AliyunScript::Hang(_) => {}
    }
    if !phone_ok {
        return refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号");
    }
    // Aliyun files messages under the Beijing date of their arrival; the request timestamp stands in
    // for the arrival time so that tests with a fixed clock are deterministic.
    let ts = PrimitiveDateTime::parse(
        &p["Timestamp"],
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
    .unwrap()
    .assume_offset(UtcOffset::UTC)
    .to_offset(offset!(+8));
    inner.next_biz += 1;
    let biz_id = format!("{}^0", inner.next_biz);
    inner.accepted.push(AliyunAccepted {
        phone: phone.clone(),
        sign_name: p["SignName"].clone(),
        template_code: p["TemplateCode"].clone(),
        params: template_params,
        out_id: p.get("OutId").cloned(),
        biz_id: biz_id.clone(),
        send_date: ts
            .format(format_description!("[year][month][day]"))
            .unwrap(),
        send_time: ts
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .unwrap(),
    });
    let ok = ok_json(json!({
        "Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "FAKE-REQ-OK"
    }));
    match script {
        AliyunScript::Hang(d) => SendResult::After(d, ok),
        _ => SendResult::Now(ok),
    }
}

fn query_send_details(inner: &AliyunInner, p: &BTreeMap<String, String>) -> Response {
    let invalid = |what: &str| {
        pop_error(
            StatusCode::BAD_REQUEST,
            "isv.INVALID_PARAMETERS",
            &format!("{what} is invalid"),
        )
    };
    let Some(phone) = p.get("PhoneNumber") else {
        return invalid("PhoneNumber");
    };
    let Some(date) = p
        .get("SendDate")
        .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
    else {
        return invalid("SendDate");
    };
    let Some(page_size) = p
        .get("PageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| (1..=50).contains(n))
    else {
        return invalid("PageSize");
    };
    let Some(current_page) = p
        .get("CurrentPage")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n >= 1)
    else {
        return invalid("CurrentPage");
    };
    let matching: Vec<&AliyunAccepted> = inner
        .accepted
        .iter()
        .filter(|a| &a.phone == phone && &a.send_date == date)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip((current_page - 1) * page_size)
        .take(page_size)
        .map(|a| {
            json!({
                "PhoneNum": a.phone,
                "SendStatus": 3,
                "ErrCode": "DELIVERED",
                "TemplateCode": a.template_code,
                // Like Aliyun: the delivered text, PIN included.
                "Content": format!("【{}】{}", a.sign_name, serde_json::to_string(&a.params).unwrap()),
                "SendDate": a.send_time,
                "ReceiveDate": a.send_time,
                "OutId": a.out_id.clone().unwrap_or_default(),
            })
        })
        .collect();
    ok_json(json!({
        "Code": "OK",
        "Message": "OK",
        "RequestId": "FAKE-REQ-Q",
        "TotalCount": matching.len(),
        "SmsSendDetailDTOs": { "SmsSendDetailDTO": page },
    }))
}

/// What the fake webhook gateway does with the next (correctly signed) request.
#[derive(Debug, Clone, Copy)]
pub enum WebhookScript {
    /// Record (de-duplicating on `Idempotency-Key`) and answer `{"id": ...}`.
    Normal,
    /// Answer this HTTP status without recording.
    Status(u16),
    /// Record, then answer only after this long.
    Hang(Duration),
}

/// A message the fake webhook gateway received with a valid signature.
#[derive(Debug, Clone)]
pub struct WebhookReceived {
    pub id: String,
    pub idempotency_key: String,
    pub body: Value,
    pub raw_body: Vec<u8>,
    pub timestamp: String,
    pub signature: String,
}

struct WebhookInner {
    secret: Vec<u8>,
    scripts: VecDeque<WebhookScript>,
    received: Vec<WebhookReceived>,
    rejected_signatures: usize,
    requests: usize,
    requests_per_key: BTreeMap<String, usize>,
    in_flight: usize,
    max_in_flight: usize,
    /// Requests number `held.0 + 1 ..= held.0 + held.1` (in arrival order) wait for `release`.
    held: (usize, usize),
    release: tokio::sync::watch::Sender<bool>,
    /// Requests waiting for `release` now.
    waiting: usize,
}

/// Counts a request out of the gateway's in-flight ones when its handler ends, however it ends.
struct InFlight(WebhookState);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.0.lock() {
            inner.in_flight -= 1;
        }
    }
}

type WebhookState = Arc<Mutex<WebhookInner>>;

/// A running fake webhook SMS gateway.
pub struct FakeWebhook {
    pub url: String,
    state: WebhookState,
}

impl FakeWebhook {
    pub async fn start(secret: &[u8]) -> Self {
        let state = Arc::new(Mutex::new(WebhookInner {
            secret: secret.to_vec(),
            scripts: VecDeque::new(),
            received: Vec::new(),
            rejected_signatures: 0,
            requests: 0,
            requests_per_key: BTreeMap::new(),
            in_flight: 0,
            max_in_flight: 0,
            held: (0, 0),
            release: tokio::sync::watch::channel(false).0,
            waiting: 0,
        }));
        let app = Router::new()
            .route("/sms", post(webhook_receive))
            .with_state(state.clone());
        let addr = serve(app).await;
        Self {
            url: format!("http://{addr}/sms"),
            state,
        }
    }

    pub fn script(&self, script: WebhookScript) {
        self.state.lock().unwrap().scripts.push_back(script);
    }

    pub fn received(&self) -> Vec<WebhookReceived> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn rejected_signatures(&self) -> usize {
        self.state.lock().unwrap().rejected_signatures
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// Correctly signed requests per `Idempotency-Key`, re-sends included.
    pub fn requests_per_key(&self) -> BTreeMap<String, usize> {
        self.state.lock().unwrap().requests_per_key.clone()
    }

    /// The most requests ever handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// Holds the `count` requests after the first `after` (recorded like any other, answered
    /// only after [`FakeWebhook::release`]).
    pub fn hold(&self, after: usize, count: usize) {
        let mut inner = self.state.lock().unwrap();
        inner.held = (after, count);
        inner.release.send_replace(false);
    }

    /// Answers the held requests (and holds no more).
    pub fn release(&self) {
        self.state.lock().unwrap().release.send_replace(true);
    }

    /// Waits (up to a minute) until `n` requests are held at once; false if they never are.
    pub async fn wait_held(&self, n: usize) -> bool {
        for _ in 0..6000 {
            if self.state.lock().unwrap().waiting >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

/// The receiver's own check: hex HMAC-SHA256 over `timestamp + "." + body`, compared by the MAC
/// library in constant time.
fn receiver_signature_ok(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.strip_prefix("v1=") else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_part) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

async fn webhook_receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp = header("x-keystation-timestamp");
    let signature = header("x-keystation-signature");
    let idempotency_key = header("idempotency-key");
    let _in_flight = {
        let mut inner = state.lock().unwrap();
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        InFlight(state.clone())
    };
    let (hang, mut hold) = {
        let mut inner = state.lock().unwrap();
        inner.requests += 1;
        let (after, count) = inner.held;
        let hold = (inner.requests > after && inner.requests <= after + count)
            .then(|| inner.release.subscribe());
        if header("content-type") != "application/json"
            || timestamp.parse::<i64>().is_err()
            || !receiver_signature_ok(&inner.secret, &timestamp, &body, &signature)
        {
            inner.rejected_signatures += 1;
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "bad signature"})),
            )
                .into_response();
        }
        let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "bad json").into_response();
        };
        if idempotency_key.is_empty() || parsed["delivery_id"] != idempotency_key.as_str() {
            return (
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must equal delivery_id",
            )
                .into_response();
        }
        *inner
            .requests_per_key
            .entry(idempotency_key.clone())
            .or_default() += 1;
        let script = inner.scripts.pop_front().unwrap_or(WebhookScript::Normal);
        if let WebhookScript::Status(code) = script {
            return StatusCode::from_u16(code).unwrap().into_response();
        }
        let existing = inner
            .received
            .iter()
            .find(|r| r.idempotency_key == idempotency_key)
            .map(|r| r.id.clone());
        let id = match existing {
            Some(id) => id,
            None => {
                let id = format!("wh-{}", inner.received.len() + 1);
                inner.received.push(WebhookReceived {
                    id: id.clone(),
                    idempotency_key,
                    body: parsed,
                    raw_body: body.to_vec(),
                    timestamp,
                    signature,
                });
                id
            }
        };
        let delay = match script {
            WebhookScript::Hang(d) => d,
            _ => Duration::ZERO,
        };
        (
            (delay, axum::Json(json!({ "id": id })).into_response()),
            hold,
        )
    };
    if let Some(release) = hold.as_mut() {
        state.lock().unwrap().waiting += 1;
        let _ = release.wait_for(|released| *released).await;
        state.lock().unwrap().waiting -= 1;
    }
    tokio::time::sleep(hang.0).await;
    hang.1
}
