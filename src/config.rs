//! `station.toml`: the station's configuration.
//!
//! Versioned (`version = 1`) and strict: every table has `deny_unknown_fields`, so a misspelt key
//! is an error at start-up instead of a silently ignored setting. Relative paths are resolved
//! against `station.data_dir`, itself relative to the directory of the config file. No secret is
//! ever written in this file: secrets live in files it points to (`pkcs11.pin_file`, ...).

use crate::domain::PinPolicy;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config format this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The name of a station's configuration file in its directory (found there when no
/// `--config` is given).
pub const FILE_NAME: &str = "station.toml";

/// The example configuration that `keystation init` starts from.
pub const EXAMPLE: &str = include_str!("../hsm-config/station.example.toml");

/// Errors reading or checking the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown/mistyped key.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// What toml reported (names the key).
        message: String,
    },
    /// A value outside what the station supports.
    #[error("invalid config value {key}: {message}")]
    Value {
        /// The dotted key.
        key: &'static str,
        /// Why.
        message: String,
    },
    /// No config file was given, `KEYSTATION_CONFIG` is not set and the current directory has
    /// no `station.toml`.
    #[error(
        "no configuration: pass --config FILE, set KEYSTATION_CONFIG, or run from the station's \
         directory (./station.toml); create one with `keystation init --dir DIR`"
    )]
    Missing,
}

impl crate::error_code::Coded for ConfigError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            ConfigError::Read { .. } | ConfigError::Parse { .. } | ConfigError::Value { .. } => {
                ec::CONFIG_INVALID
            }
            ConfigError::Missing => ec::CONFIG_MISSING,
        }
    }
}

/// Key algorithms the station can generate on PKCS#11 tokens; one enum for the crate, in
/// `domain`.
pub use crate::domain::KeyAlgorithm;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; must be [`CONFIG_VERSION`].
    pub version: u32,
    /// This station.
    pub station: StationSection,
    /// Where orders, journal and audit live.
    pub database: DatabaseSection,
    /// The PKCS#11 module and the station's own token PIN.
    #[serde(default)]
    pub pkcs11: Pkcs11Section,
    /// The issuing CA.
    #[serde(default)]
    pub ca: CaSection,
    /// The vault token (SO PIN derivation, PIN sealing).
    #[serde(default)]
    pub vault: VaultSection,
    /// What goes onto customers' keys.
    #[serde(default)]
    pub product: ProductSection,
    /// User PIN policy.
    #[serde(default)]
    pub pin: PinPolicy,
    /// Electronic seals.
    #[serde(default)]
    pub seal: SealSection,
    /// PIN delivery: trigger, retries, SMS and bank channels.
    #[serde(default)]
    pub delivery: DeliverySection,
    /// Directory the config file is in (not a key of the file).
    #[serde(skip)]
    pub config_dir: PathBuf,
}

/// `[station]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSection {
    /// Name of this station in audit records and job leases.
    pub id: String,
    /// Data directory; relative paths elsewhere are resolved against it.
    #[serde(default = "dot")]
    pub data_dir: PathBuf,
    /// Seconds a job's lease holds unless renewed (renewed every third of it while the job
    /// runs): how long a crashed holder on another host keeps its order from the others.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

fn default_lease_secs() -> u64 {
    30
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://station.db` (relative to the data dir) or `postgres://...`.
    pub url: String,
}

/// `[pkcs11]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// Path of the PKCS#11 module; default: SoftHSM2 in its usual Debian locations.
    pub module: Option<PathBuf>,
    /// SoftHSM only: its configuration file (exported as `SOFTHSM2_CONF` for the module).
    pub softhsm2_conf: Option<PathBuf>,
    /// File holding the user PIN of the CA and vault tokens (mode 0600, see README "Secrets").
    #[serde(default = "default_pin_file")]
    pub pin_file: PathBuf,
    /// USB key models (vendor/product id -> model, module).
    #[serde(default = "default_usb_tokens")]
    pub usb_tokens: PathBuf,
}

impl Default for Pkcs11Section {
    fn default() -> Self {
        Pkcs11Section {
            module: None,
            softhsm2_conf: None,
            pin_file: default_pin_file(),
            usb_tokens: default_usb_tokens(),
        }
    }
}

/// `[ca]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Label of the token holding the CA key.
    #[serde(default = "default_ca_token")]
    pub token_label: String,
    /// Label (and CKA_LABEL) of the CA private key on that token.
    #[serde(default = "default_ca_key")]
    pub key_label: String,
    /// Algorithm of a CA key created by `init`.
    #[serde(default = "default_alg")]
    pub key_algorithm: KeyAlgorithm,
    /// CA certificate (PEM), written by `init` or provided for an existing CA.
    #[serde(default = "default_ca_cert")]
    pub certificate: PathBuf,
    /// Subject CN of a CA created by `init`.
    #[serde(default = "default_ca_cn")]
    pub common_name: String,
    /// Subject O of a CA created by `init`.
    #[serde(default = "default_ca_org")]
    pub organization: String,
    /// CRL distribution point put into issued certificates.
    #[serde(default = "default_crl_url")]
    pub crl_url: String,
    /// Validity of a CA certificate created by `init`, in years.
    #[serde(default = "default_ca_years")]
    pub validity_years: u8,
}

impl Default for CaSection {
    fn default() -> Self {
        CaSection {
            token_label: default_ca_token(),
            key_label: default_ca_key(),
            key_algorithm: default_alg(),
            certificate: default_ca_cert(),
            common_name: default_ca_cn(),
            organization: default_ca_org(),
            crl_url: default_crl_url(),
            validity_years: default_ca_years(),
        }
    }
}

/// `[vault]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Label of the vault token.
    #[serde(default = "default_vault_token")]
    pub token_label: String,
}

impl Default for VaultSection {
    fn default() -> Self {
        VaultSection {
            token_label: default_vault_token(),
        }
    }
}

/// `[product]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSection {
    /// Algorithm of the company key pair generated on the USB key.
    #[serde(default = "default_alg")]
    pub key_algorithm: KeyAlgorithm,
}

impl Default for ProductSection {
    fn default() -> Self {
        ProductSection {
            key_algorithm: default_alg(),
        }
    }
}

/// `[seal]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealSection {
    /// `vid` of the SES_Header (IA5, identifies the seal system vendor).
    #[serde(default = "default_vid")]
    pub vendor_id: String,
    /// Label of the seal-maker key on the CA token.
    #[serde(default = "default_maker_key")]
    pub maker_key_label: String,
    /// The seal maker's certificate (PEM), issued by the station's CA at `init`.
    #[serde(default = "default_maker_cert")]
    pub maker_certificate: PathBuf,
    /// Printed size of the company seal, millimetres (42 for joint-stock / state-owned).
    #[serde(default = "default_company_mm")]
    pub company_mm: (u32, u32),
    /// Printed size of the legal representative's seal, millimetres.
    #[serde(default = "default_legal_rep_mm")]
    pub legal_rep_mm: (u32, u32),
}

impl Default for SealSection {
    fn default() -> Self {
        SealSection {
            vendor_id: default_vid(),
            maker_key_label: default_maker_key(),
            maker_certificate: default_maker_cert(),
            company_mm: default_company_mm(),
            legal_rep_mm: default_legal_rep_mm(),
        }
    }
}

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
        }
    }
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

fn default_vid() -> String {
    "KEYSTATION".into()
}
fn default_maker_key() -> String {
    "seal-maker".into()
}
fn default_maker_cert() -> PathBuf {
    PathBuf::from("ca/seal-maker.pem")
}
fn default_company_mm() -> (u32, u32) {
    (40, 40)
}
fn default_legal_rep_mm() -> (u32, u32) {
    (20, 20)
}

fn dot() -> PathBuf {
    PathBuf::from(".")
}
fn default_pin_file() -> PathBuf {
    PathBuf::from("secrets/station-hsm.pin")
}
fn default_usb_tokens() -> PathBuf {
    PathBuf::from("usb-tokens.toml")
}
fn default_ca_token() -> String {
    "keystation-ca".into()
}
fn default_ca_key() -> String {
    "issuing-ca".into()
}
fn default_alg() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}
fn default_ca_cert() -> PathBuf {
    PathBuf::from("ca/ca.pem")
}
fn default_ca_cn() -> String {
    "keystation Demo Unit Certificate CA".into()
}
fn default_ca_org() -> String {
    "keystation Demo CA".into()
}
fn default_crl_url() -> String {
    "http://crl.keystation.invalid/unit-ca.crl".into()
}
fn default_ca_years() -> u8 {
    10
}
fn default_vault_token() -> String {
    "keystation-vault".into()
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(dot);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Config::parse(&text, &dir).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text as if it were in `config_dir`.
    pub fn parse(text: &str, config_dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.config_dir = config_dir.to_path_buf();
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.version != CONFIG_VERSION {
            return Err(ConfigError::Value {
                key: "version",
                message: format!(
                    "this keystation reads config version {CONFIG_VERSION}, the file says {}",
                    self.version
                ),
            });
        }
        if self.station.id.trim().is_empty() {
            return Err(ConfigError::Value {
                key: "station.id",
                message: "must not be empty".into(),
            });
        }
        let leases = crate::domain::lease::MIN_LEASE_SECS..=crate::domain::lease::MAX_LEASE_SECS;
        if !leases.contains(&self.station.lease_secs) {
            return Err(ConfigError::Value {
                key: "station.lease_secs",
                message: format!("must be {} to {} seconds", leases.start(), leases.end()),
            });
        }
        if self.seal.vendor_id.is_empty() || !self.seal.vendor_id.is_ascii() {
            return Err(ConfigError::Value {
                key: "seal.vendor_id",
                message: "must be non-empty ASCII (an IA5String in the seal header)".into(),
            });
        }
        for (key, (w, h)) in [
            ("seal.company_mm", self.seal.company_mm),
            ("seal.legal_rep_mm", self.seal.legal_rep_mm),
        ] {
            if !(1..=200).contains(&w) || !(1..=200).contains(&h) {
                return Err(ConfigError::Value {
                    key,
                    message: format!("{w}x{h} mm is not a plausible seal size"),
                });
            }
        }
        self.pin.validate().map_err(|e| ConfigError::Value {
            key: "pin.length",
            message: e.to_string(),
        })?;
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Value {
                key: "database.url",
                message: "must start with sqlite: or postgres://".into(),
            });
        }
        self.check_delivery()?;
        for (key, label) in [
            ("ca.token_label", &self.ca.token_label),
            ("vault.token_label", &self.vault.token_label),
        ] {
            if label.is_empty() || label.len() > 32 {
                return Err(ConfigError::Value {
                    key,
                    message: "a PKCS#11 token label has 1 to 32 bytes".into(),
                });
            }
        }
        Ok(())
    }

    /// The `[delivery]` rules: a template that could ever exceed its bound is refused here, at
    /// start-up, not when a PIN is waiting to be sent.
    fn check_delivery(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        let value = |key: &'static str, message: String| ConfigError::Value { key, message };
        if !(1..=100).contains(&d.max_attempts) {
            return Err(value("delivery.max_attempts", "must be 1 to 100".into()));
        }
        if d.retry_initial_secs > d.retry_max_secs {
            return Err(value(
                "delivery.retry_initial_secs",
                "must not be larger than delivery.retry_max_secs".into(),
            ));
        }
        if d.poll_interval_secs == 0 {
            return Err(value(
                "delivery.poll_interval_secs",
                "must be at least 1".into(),
            ));
        }
        let sms = &d.sms;
        if sms.max_segments == 0 {
            return Err(value(
                "delivery.sms.max_segments",
                "must be at least 1".into(),
            ));
        }
        crate::delivery::sms::check_template(
            &sms.sign_name,
            &sms.template,
            self.pin.length,
            crate::domain::validate::MAX_ORDER_NO_LEN,
            crate::domain::validate::MAX_DN_NAME,
            sms.max_segments,
        )
        .map_err(|e| value("delivery.sms.template", e.to_string()))?;
        match sms.kind {
            SmsKind::Spool => {}
            SmsKind::Aliyun => {
                let a = sms.aliyun.as_ref().ok_or_else(|| {
                    value(
                        "delivery.sms.aliyun",
                        "kind = \"aliyun\" needs a [delivery.sms.aliyun] table".into(),
                    )
                })?;
                for (key, v) in [
                    ("delivery.sms.aliyun.access_key_id", &a.access_key_id),
                    ("delivery.sms.aliyun.template_code", &a.template_code),
                    ("delivery.sms.aliyun.region", &a.region),
                ] {
                    if v.trim().is_empty() {
                        return Err(value(key, "must not be empty".into()));
                    }
                }
                if a.connect_timeout_secs == 0 || a.request_timeout_secs == 0 {
                    return Err(value(
                        "delivery.sms.aliyun.request_timeout_secs",
                        "timeouts must be at least 1 second".into(),
                    ));
                }
            }
            SmsKind::Webhook => {
                let w = sms.webhook.as_ref().ok_or_else(|| {
                    value(
                        "delivery.sms.webhook",
                        "kind = \"webhook\" needs a [delivery.sms.webhook] table".into(),
                    )
                })?;
                if w.connect_timeout_secs == 0 || w.request_timeout_secs == 0 {
                    return Err(value(
                        "delivery.sms.webhook.request_timeout_secs",
                        "timeouts must be at least 1 second".into(),
                    ));
                }
            }
        }
        let bank = &d.bank;
        if !(1..=16).contains(&bank.memo_order_ref_len) {
            return Err(value(
                "delivery.bank.memo_order_ref_len",
                "must be 1 to 16".into(),
            ));
        }
        crate::delivery::bank::check_memo_template(
            &bank.memo_template,
            self.pin.length,
            bank.memo_order_ref_len,
            bank.memo_max_bytes,
        )
        .map_err(|e| value("delivery.bank.memo_template", e.to_string()))?;
        crate::delivery::bank::check_account("delivery.bank.debtor_account", &bank.debtor_account)
            .map_err(|e| value("delivery.bank.debtor_account", e.to_string()))?;
        if let Some(bic) = &bank.debtor_agent_bic {
            crate::delivery::bank::check_bic("delivery.bank.debtor_agent_bic", bic)
                .map_err(|e| value("delivery.bank.debtor_agent_bic", e.to_string()))?;
        }
        if bank.debtor_agent_bic.is_none() && bank.debtor_agent_name.is_none() {
            return Err(value(
                "delivery.bank.debtor_agent_name",
                "the debtor's bank needs a name or a BIC".into(),
            ));
        }
        for (key, v) in [
            ("delivery.bank.debtor_name", Some(&bank.debtor_name)),
            (
                "delivery.bank.initiating_party",
                bank.initiating_party.as_ref(),
            ),
            (
                "delivery.bank.debtor_agent_name",
                bank.debtor_agent_name.as_ref(),
            ),
        ] {
            if let Some(v) = v {
                crate::delivery::bank::check_text(key, v, 140)
                    .map_err(|e| value(key, e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The data directory, absolute.
    pub fn data_dir(&self) -> PathBuf {
        without_dot_components(&self.config_dir.join(&self.station.data_dir))
    }

    /// Resolves a path from the config against the data directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            without_dot_components(&self.data_dir().join(p))
        }
    }

    /// The database URL with a relative SQLite path made absolute.
    pub fn database_url(&self) -> String {
        let url = &self.database.url;
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            let path = path.trim_start_matches("//");
            if path == ":memory:" {
                return url.clone();
            }
            let abs = self.path(Path::new(path));
            let mut out = format!("sqlite://{}", abs.display());
            if let Some(q) = query {
                out.push('?');
                out.push_str(q);
            }
            out
        } else {
            url.clone()
        }
    }
}

/// Drops `.` components so printed paths (README hints, `SOFTHSM2_CONF=...`) read cleanly.
fn without_dot_components(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn example_config_parses() {
        let cfg = Config::parse(EXAMPLE, Path::new("/srv/ks")).unwrap();
        assert_eq!(cfg.version, 1);
        assert_eq!(cfg.database_url(), "sqlite:///srv/ks/station.db?mode=rwc");
        assert_eq!(cfg.pin, PinPolicy::default());
    }

    #[test]
    fn key_algorithm_spellings() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let v = serde_json::to_value(alg).unwrap();
            assert_eq!(v, alg.as_str());
            assert_eq!(serde_json::from_value::<KeyAlgorithm>(v).unwrap(), alg);
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = EXAMPLE.replace("[database]", "[database]\nurll = \"x\"");
        let err = Config::parse(&text, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
    }

    #[test]
    fn lease_length_defaults_to_thirty_seconds_and_is_bounded() {
        let minimal = "version = 1\n[station]\nid = \"s\"\n[database]\nurl = \"sqlite://x.db\"\n";
        let cfg = Config::parse(minimal, Path::new("/")).unwrap();
        assert_eq!(cfg.station.lease_secs, 30);
        assert_eq!(
            Config::parse(EXAMPLE, Path::new("/"))
                .unwrap()
                .station
                .lease_secs,
            30
        );
        for bad in ["2", "3601"] {
            let text = minimal.replace("id = \"s\"", &format!("id = \"s\"\nlease_secs = {bad}"));
            assert!(
                matches!(
                    Config::parse(&text, Path::new("/")),
                    Err(ConfigError::Value {
                        key: "station.lease_secs",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_version_is_an_error() {
        let text = EXAMPLE.replace("version = 1", "version = 2");
        assert!(matches!(
            Config::parse(&text, Path::new("/")),
            Err(ConfigError::Value { key: "version", .. })
        ));
    }

    #[test]
    fn delivery_defaults_and_example_agree() {
        let example = Config::parse(EXAMPLE, Path::new("/srv/ks")).unwrap();
        let minimal = Config::parse(
            "version = 1\n[station]\nid = \"s\"\n[database]\nurl = \"sqlite://x.db\"\n",
            Path::new("/srv/ks"),
        )
        .unwrap();
        for d in [&example.delivery, &minimal.delivery] {
            assert_eq!(d.trigger, DeliveryTrigger::OnShipped);
            assert_eq!(d.max_attempts, 5);
            assert_eq!(d.sms.kind, SmsKind::Spool);
            assert_eq!(d.sms.spool_dir, PathBuf::from("spool/sms"));
            assert_eq!(d.bank.memo_max_bytes, 40);
            assert!(!d.bank.batch);
        }
        assert_eq!(example.delivery.sms.template, minimal.delivery.sms.template);
        assert_eq!(
            example.delivery.bank.memo_template,
            minimal.delivery.bank.memo_template
        );
    }

    #[test]
    fn templates_that_cannot_fit_are_refused_at_load() {
        let long = EXAMPLE.replace(
            "template = \"贵单位数字证书",
            "template = \"这是一段很长很长很长的说明文字用来把短信撑到两条以上贵单位数字证书",
        );
        assert!(matches!(
            Config::parse(&long, Path::new("/")),
            Err(ConfigError::Value {
                key: "delivery.sms.template",
                ..
            })
        ));
        let two = long.replace("max_segments = 1", "max_segments = 2");
        assert!(Config::parse(&two, Path::new("/")).is_ok());
        let memo = EXAMPLE.replace("memo_max_bytes = 40", "memo_max_bytes = 30");
        let err = Config::parse(&memo, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("delivery.bank.memo_template"), "{err}");
        // A 16-character PIN does not fit the default memo either.
        let pin16 = EXAMPLE.replace("length = 8", "length = 16");
        assert!(Config::parse(&pin16, Path::new("/")).is_err());
        let no_pin = EXAMPLE.replace("PIN {pin} REF", "PIN REF");
        assert!(Config::parse(&no_pin, Path::new("/")).is_err());
    }

    #[test]
    fn channel_tables_are_required_and_strict() {
        let aliyun = EXAMPLE.replace("kind = \"spool\"", "kind = \"aliyun\"");
        let err = Config::parse(&aliyun, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("delivery.sms.aliyun"), "{err}");
        let with_table = format!(
            "{aliyun}\n[delivery.sms.aliyun]\naccess_key_id = \"LTAI\"\ntemplate_code = \"SMS_1\"\n"
        );
        let cfg = Config::parse(&with_table, Path::new("/")).unwrap();
        let a = cfg.delivery.sms.aliyun.unwrap();
        assert_eq!(a.confirm, AliyunConfirm::Acceptance);
        assert_eq!(
            a.access_key_secret_file,
            PathBuf::from("secrets/aliyun-access-key-secret")
        );
        let secret_inline = format!("{with_table}access_key_secret = \"oops\"\n");
        assert!(Config::parse(&secret_inline, Path::new("/")).is_err());
        let webhook = EXAMPLE.replace("kind = \"spool\"", "kind = \"webhook\"");
        assert!(Config::parse(&webhook, Path::new("/")).is_err());
        let bad_bic = EXAMPLE.replace("\"ICBKCNBJ\"", "\"icbk\"");
        assert!(Config::parse(&bad_bic, Path::new("/")).is_err());
        let trigger = EXAMPLE.replace("\"on_shipped\"", "\"on_provisioned\"");
        assert_eq!(
            Config::parse(&trigger, Path::new("/"))
                .unwrap()
                .delivery
                .trigger,
            DeliveryTrigger::OnProvisioned
        );
    }

    #[test]
    fn bad_pin_policy_is_an_error() {
        let text = format!("{EXAMPLE}\n");
        let text = text.replace("length = 8", "length = 4");
        assert!(matches!(
            Config::parse(&text, Path::new("/")),
            Err(ConfigError::Value {
                key: "pin.length",
                ..
            })
        ));
    }
}
