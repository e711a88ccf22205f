//! The `[delivery]` tables of `station.toml` — when a PIN delivery is queued, its retries, the
//! SMS channels (spool, Aliyun, webhook), the bank transfer, the SMTP server of e-mail notices
//! and the notices' templates — and their defaults.

use serde::Deserialize;
use std::path::PathBuf;

/// When a PIN delivery is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryTrigger {
    /// When the key is handed to the courier (`keystation ship`): the PIN never travels before
    /// the key does.
    #[default]
    OnShipped,
    /// As soon as provisioning finishes (the PIN may arrive before the key).
    OnProvisioned,
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// When a delivery is queued (in the same transaction as the state change).
    #[serde(default)]
    pub trigger: DeliveryTrigger,
    /// Send attempts (transient failures) before a delivery goes to `needs_operator`.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay after the first transient failure, seconds; doubled after each further one.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_secs: u64,
    /// Longest delay between attempts, seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// `deliver run` without `--once`: seconds between passes over the queue.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// SMS channel (orders whose PIN goes to the legal representative's mobile).
    #[serde(default)]
    pub sms: SmsSection,
    /// Bank channel (orders whose PIN goes in the memo of a 0.01 CNY transfer).
    #[serde(default)]
    pub bank: BankSection,
    /// SMTP server for e-mail notices (none: e-mail notices are not queued).
    pub email: Option<EmailSection>,
    /// Notices to the applicant (`[delivery.notices]`).
    #[serde(default)]
    pub notices: NoticesSection,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            trigger: DeliveryTrigger::default(),
            max_attempts: default_max_attempts(),
            retry_initial_secs: default_retry_initial(),
            retry_max_secs: default_retry_max(),
            poll_interval_secs: default_poll_interval(),
            sms: SmsSection::default(),
            bank: BankSection::default(),
            email: None,
            notices: NoticesSection::default(),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with `STARTTLS` (required, never optional; port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: refused unless `host` is a loopback address (a local relay, tests).
    None,
}

/// `[delivery.email]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSection {
    /// SMTP server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Port (default: 587 for `starttls`, 465 for `tls`, 25 for `none`).
    pub port: Option<u16>,
    /// Connection protection.
    pub security: SmtpSecurity,
    /// User name for `AUTH` (none: no authentication).
    pub username: Option<String>,
    /// File holding the password (mode 0600; the password never goes in this file, nor in the
    /// environment). Required with `username`.
    pub password_file: Option<PathBuf>,
    /// `From:` address (and envelope sender).
    pub from: String,
    /// Extra PEM root certificate(s) to trust for the server (a private relay's CA).
    pub ca_file: Option<PathBuf>,
    /// Seconds for each SMTP command; past it the outcome is unknown.
    #[serde(default = "default_request_timeout")]
    pub timeout_secs: u64,
    /// The unlock e-mail's texts (`[delivery.email.templates]`, Chinese defaults; see
    /// `domain::unlock_mail`).
    #[serde(default)]
    pub templates: crate::domain::unlock_mail::UnlockMailTemplates,
}

impl EmailSection {
    /// The port, defaulted from the security mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

/// `[delivery.notices]`: what the applicant is told, and how.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesSection {
    /// Queue notices at all. Off by default: a station turns them on once its SMS gateway
    /// agent (or webhook) and SMTP server expect them, since they share the PIN's SMS channel.
    #[serde(default)]
    pub enabled: bool,
    /// The texts (Chinese defaults; see `domain::notification`).
    #[serde(default)]
    pub templates: crate::domain::notification::NoticeTemplates,
}

/// Which SMS channel carries PINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsKind {
    /// One JSON file per message in `spool_dir`, for a gateway agent.
    #[default]
    Spool,
    /// Aliyun Dysmsapi `SendSms` (`[delivery.sms.aliyun]`).
    Aliyun,
    /// Signed JSON webhook to an in-house gateway (`[delivery.sms.webhook]`).
    Webhook,
}

/// `[delivery.sms]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSection {
    /// The channel.
    #[serde(default)]
    pub kind: SmsKind,
    /// Signature shown as `【sign_name】` (Aliyun: the approved `SignName`).
    #[serde(default = "default_sms_sign")]
    pub sign_name: String,
    /// Message body with `{order_no}`, `{pin}` (required) and `{company}`. For Aliyun it must
    /// mirror the approved template (it bounds the length and is what the receipt MAC covers).
    #[serde(default = "default_sms_template")]
    pub template: String,
    /// Largest number of billed segments a message may need (worst case, checked at load).
    #[serde(default = "default_max_segments")]
    pub max_segments: usize,
    /// Spool directory (kind `spool`).
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Seconds after a send before a provider's "no such message" is believed (Aliyun indexes
    /// with a delay); until then an in-doubt delivery waits.
    #[serde(default = "default_query_delay")]
    pub query_delay_secs: u64,
    /// Messages sent at once (1 to 1,024): the worker claims this many due deliveries in one
    /// transaction, sends them concurrently, and records their outcomes in one transaction.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The provider's rate limit, messages a second (0: none). Sends start at most this
    /// often (a token bucket with a burst of one), whatever `max_in_flight` allows.
    #[serde(default)]
    pub rate_limit_per_sec: u32,
    /// Aliyun settings (kind `aliyun`).
    pub aliyun: Option<AliyunSection>,
    /// Webhook settings (kind `webhook`).
    pub webhook: Option<WebhookSection>,
}

impl Default for SmsSection {
    fn default() -> Self {
        SmsSection {
            kind: SmsKind::default(),
            sign_name: default_sms_sign(),
            template: default_sms_template(),
            max_segments: default_max_segments(),
            spool_dir: default_spool_dir(),
            query_delay_secs: default_query_delay(),
            max_in_flight: default_max_in_flight(),
            rate_limit_per_sec: 0,
            aliyun: None,
            webhook: None,
        }
    }
}

/// When an Aliyun message counts as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AliyunConfirm {
    /// When Aliyun accepts it (`Code = OK`).
    #[default]
    Acceptance,
    /// When `QuerySendDetails` reports the carrier's delivery receipt (`SendStatus = 3`).
    DeliveryReport,
}

/// `[delivery.sms.aliyun]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunSection {
    /// Dysmsapi endpoint (https; plain http only to loopback).
    #[serde(default = "default_aliyun_endpoint")]
    pub endpoint: String,
    /// `RegionId`.
    #[serde(default = "default_aliyun_region")]
    pub region: String,
    /// AccessKey id (not secret).
    pub access_key_id: String,
    /// File holding the AccessKey secret (mode 0600); the secret never goes in this file.
    #[serde(default = "default_aliyun_secret_file")]
    pub access_key_secret_file: PathBuf,
    /// `TemplateCode` of the approved template using `${order_no}`, `${pin}`, `${company}`.
    pub template_code: String,
    /// When a message counts as delivered.
    #[serde(default)]
    pub confirm: AliyunConfirm,
    /// Seconds to establish the connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds for the whole exchange; past it the outcome is unknown and the provider is asked.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

/// `[delivery.sms.webhook]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Gateway URL (https; plain http only to loopback).
    pub url: String,
    /// File holding the HMAC secret (mode 0600).
    #[serde(default = "default_webhook_secret_file")]
    pub secret_file: PathBuf,
    /// Seconds to establish the connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds for the whole exchange.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Seconds the gateway keeps an `Idempotency-Key` (0: the station does not rely on it). A
    /// message whose outcome is unknown (a timeout, a killed worker) and whose first attempt is
    /// younger than this is sent again under the same key, and the gateway answers with the
    /// message it already has; an older one goes to an operator.
    #[serde(default = "default_webhook_dedup_window")]
    pub dedup_window_secs: u64,
}

/// `[delivery.bank]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankSection {
    /// Where pain.001 files are written for the bank's host-to-host agent (`*.xml`; hidden
    /// `.*.tmp` files are work in progress and must be ignored by the agent).
    #[serde(default = "default_outbound_dir")]
    pub outbound_dir: PathBuf,
    /// Where the bank's pain.002 / camt.054 files arrive; imported ones move to `processed/`.
    #[serde(default = "default_inbound_dir")]
    pub inbound_dir: PathBuf,
    /// `InitgPty/Nm`; default: the debtor name.
    pub initiating_party: Option<String>,
    /// `Dbtr/Nm`: holder of the account paying the cents.
    #[serde(default = "default_debtor_name")]
    pub debtor_name: String,
    /// `DbtrAcct/Id/Othr/Id`.
    #[serde(default = "default_debtor_account")]
    pub debtor_account: String,
    /// `DbtrAgt/FinInstnId/Nm`: the station's bank and branch.
    #[serde(default = "default_debtor_agent_name")]
    pub debtor_agent_name: Option<String>,
    /// `DbtrAgt/FinInstnId/BICFI`.
    #[serde(default = "default_debtor_agent_bic")]
    pub debtor_agent_bic: Option<String>,
    /// Memo with `{pin}` and optionally `{order_ref}` (the last `memo_order_ref_len` digits of
    /// the order number, digits only: see `delivery::bank::memo`).
    #[serde(default = "default_memo_template")]
    pub memo_template: String,
    /// Bound of a rendered memo in UTF-8 bytes (Chinese banks: about 40).
    #[serde(default = "default_memo_max_bytes")]
    pub memo_max_bytes: usize,
    /// Digits of the order number shown as `{order_ref}` (1..=16).
    #[serde(default = "default_memo_order_ref_len")]
    pub memo_order_ref_len: usize,
    /// false: one pain.001 per delivery; true: one per `deliver run` pass.
    #[serde(default)]
    pub batch: bool,
}

impl Default for BankSection {
    fn default() -> Self {
        BankSection {
            outbound_dir: default_outbound_dir(),
            inbound_dir: default_inbound_dir(),
            initiating_party: None,
            debtor_name: default_debtor_name(),
            debtor_account: default_debtor_account(),
            debtor_agent_name: default_debtor_agent_name(),
            debtor_agent_bic: default_debtor_agent_bic(),
            memo_template: default_memo_template(),
            memo_max_bytes: default_memo_max_bytes(),
            memo_order_ref_len: default_memo_order_ref_len(),
            batch: false,
        }
    }
}

fn default_max_attempts() -> u32 {
    5
}
fn default_retry_initial() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}
fn default_poll_interval() -> u64 {
    10
}
fn default_sms_sign() -> String {
    "北京CA".into()
}
fn default_sms_template() -> String {
    crate::delivery::sms::message::DEFAULT_BODY_TEMPLATE.into()
}
fn default_max_segments() -> usize {
    1
}
fn default_spool_dir() -> PathBuf {
    PathBuf::from("spool/sms")
}
fn default_query_delay() -> u64 {
    300
}
fn default_max_in_flight() -> usize {
    32
}
fn default_webhook_dedup_window() -> u64 {
    3600
}
fn default_aliyun_endpoint() -> String {
    crate::delivery::sms::aliyun::DEFAULT_ENDPOINT.into()
}
fn default_aliyun_region() -> String {
    "cn-hangzhou".into()
}
fn default_aliyun_secret_file() -> PathBuf {
    PathBuf::from("secrets/aliyun-access-key-secret")
}
fn default_webhook_secret_file() -> PathBuf {
    PathBuf::from("secrets/sms-webhook.secret")
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_request_timeout() -> u64 {
    15
}
fn default_outbound_dir() -> PathBuf {
    PathBuf::from("bank/outbound")
}
fn default_inbound_dir() -> PathBuf {
    PathBuf::from("bank/inbound")
}
fn default_debtor_name() -> String {
    "keystation Demo CA".into()
}
fn default_debtor_account() -> String {
    "0200004509089131550".into()
}
fn default_debtor_agent_name() -> Option<String> {
    Some("中国工商银行北京分行".into())
}
fn default_debtor_agent_bic() -> Option<String> {
    Some("ICBKCNBJ".into())
}
fn default_memo_template() -> String {
    crate::delivery::bank::DEFAULT_MEMO_TEMPLATE.into()
}
fn default_memo_max_bytes() -> usize {
    crate::delivery::bank::DEFAULT_MAX_MEMO_BYTES
}
fn default_memo_order_ref_len() -> usize {
    5
}
