//! The channels a `deliver run` sends through, built once from `[delivery]`: the directories
//! resolved against the data directory ([`DeliveryPaths`]), the SMS channel (spool, Aliyun,
//! webhook) with its template, the pain.001 settings, the SMTP server and the notices' texts,
//! and the retry policy. The worker reads
//! them from here, never from the configuration again.

use super::super::error::DeliveryError;
use super::super::files::{self, DeliveryPaths};
use crate::clock::Clock;
use crate::config::{AliyunConfirm, BankSection, Config, SmsKind};
use crate::delivery::email::{EmailChannel, EmailConfig};
use crate::delivery::sms::{
    AliyunChannel, AliyunConfig, AliyunCredentials, SmsChannel, SmsTemplate, SpoolChannel,
    SystemStamps, WebhookChannel, WebhookConfig,
};
use crate::domain::delivery::backoff;
use crate::domain::notification::NoticeTemplates;
use crate::domain::rate_limit::TokenBucket;
use crate::station::argument::InvalidArgument;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// When a send that failed without reaching its channel is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RetryPolicy {
    /// Sends before a delivery goes to the operator.
    pub max_attempts: u32,
    /// Delay after the first failure; also how long a sent message waits before its delivery
    /// report is asked for again.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay after `attempts` failed sends.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        backoff(attempts, self.initial, self.max)
    }
}

/// A channel's rate limit in real (monotonic) time: a send waits its turn here before it
/// starts. Shared by the concurrent sends of a run.
#[derive(Debug)]
pub(super) struct SendPace {
    started: tokio::time::Instant,
    bucket: std::sync::Mutex<TokenBucket>,
}

impl SendPace {
    fn new(per_second: NonZeroU32) -> Self {
        SendPace {
            started: tokio::time::Instant::now(),
            bucket: std::sync::Mutex::new(TokenBucket::new(per_second, NonZeroU32::MIN)),
        }
    }

    /// Returns when a send may start (and counts it).
    pub(super) async fn wait_turn(&self) {
        loop {
            let wait = {
                // A poisoned lock still holds a consistent bucket: `take` cannot panic midway.
                let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
                bucket.take(self.started.elapsed())
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

/// The configured channels, built once per `deliver run`.
#[derive(Debug)]
pub struct DeliveryChannels {
    /// Shared with the concurrent sends of a group.
    pub(super) sms: Arc<SmsChannel>,
    pub(super) sms_kind: SmsKind,
    /// SMS sent at once, and claimed together (`delivery.sms.max_in_flight`).
    pub(super) max_in_flight: usize,
    /// The SMS provider's rate limit (`delivery.sms.rate_limit_per_sec`), kept across the
    /// groups and passes of a run.
    pub(super) sms_pace: Option<Arc<SendPace>>,
    /// How long the webhook gateway remembers an `Idempotency-Key` (zero for other channels,
    /// and when the station must not rely on it).
    pub(super) webhook_dedup_window: Duration,
    pub(super) template: SmsTemplate,
    pub(super) aliyun_confirm: AliyunConfirm,
    pub(super) query_delay: Duration,
    /// The spool, outbound and inbound directories, resolved.
    pub(super) paths: DeliveryPaths,
    /// What a pain.001 says about the debtor and the memo, and whether a pass batches (its
    /// directories are in `paths`).
    pub(super) bank: BankSection,
    pub(super) retry: RetryPolicy,
    /// Between two passes of a long-running worker.
    pub(super) poll_interval: Duration,
    /// The SMTP server of e-mail notices (`[delivery.email]`).
    pub(super) email: Option<EmailChannel>,
    /// The notices' texts.
    pub(super) notices: NoticeTemplates,
}

impl DeliveryChannels {
    /// Builds the channels from `[delivery]`: resolves the directories, reads the credential
    /// files (mode 0600), checks the endpoints, creates the spool and bank directories. The
    /// templates were checked when the configuration was loaded.
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, DeliveryError> {
        let d = &config.delivery;
        let paths = DeliveryPaths::resolve(config);
        let stamps = Arc::new(SystemStamps(clock));
        let sms = match d.sms.kind {
            SmsKind::Spool => {
                files::ensure_dir(&paths.spool_dir)?;
                SmsChannel::Spool(SpoolChannel::new(paths.spool_dir.clone(), stamps))
            }
            SmsKind::Aliyun => {
                let a = d.sms.aliyun.as_ref().ok_or(InvalidArgument {
                    field: "delivery.sms.aliyun",
                    message: "missing".into(),
                })?;
                let secret = files::read_secret_file(&config.path(&a.access_key_secret_file))?;
                let mut c = AliyunConfig::new(&d.sms.sign_name, &a.template_code);
                c.endpoint = a.endpoint.clone();
                c.region_id = a.region.clone();
                c.connect_timeout = Duration::from_secs(a.connect_timeout_secs);
                c.request_timeout = Duration::from_secs(a.request_timeout_secs);
                let creds = AliyunCredentials {
                    access_key_id: a.access_key_id.clone(),
                    access_key_secret: secret,
                };
                SmsChannel::Aliyun(AliyunChannel::new(c, creds, stamps)?)
            }
            SmsKind::Webhook => {
                let w = d.sms.webhook.as_ref().ok_or(InvalidArgument {
                    field: "delivery.sms.webhook",
                    message: "missing".into(),
                })?;
                let secret = files::read_secret_file(&config.path(&w.secret_file))?;
                let mut c = WebhookConfig::new(&w.url, secret);
                c.connect_timeout = Duration::from_secs(w.connect_timeout_secs);
                c.request_timeout = Duration::from_secs(w.request_timeout_secs);
                SmsChannel::Webhook(WebhookChannel::new(c, stamps)?)
            }
        };
        files::ensure_dir(&paths.outbound_dir)?;
        files::ensure_dir(&paths.inbound_dir)?;
        let email = email_channel(config)?;
        Ok(DeliveryChannels {
            email,
            notices: d.notices.templates.clone(),
            sms: Arc::new(sms),
            sms_kind: d.sms.kind,
            max_in_flight: d.sms.max_in_flight.max(1),
            sms_pace: NonZeroU32::new(d.sms.rate_limit_per_sec)
                .map(|per_second| Arc::new(SendPace::new(per_second))),
            webhook_dedup_window: match (d.sms.kind, &d.sms.webhook) {
                (SmsKind::Webhook, Some(w)) => Duration::from_secs(w.dedup_window_secs),
                _ => Duration::ZERO,
            },
            template: SmsTemplate {
                sign_name: d.sms.sign_name.clone(),
                body: d.sms.template.clone(),
            },
            aliyun_confirm: d.sms.aliyun.as_ref().map(|a| a.confirm).unwrap_or_default(),
            query_delay: Duration::from_secs(d.sms.query_delay_secs),
            paths,
            bank: d.bank.clone(),
            retry: RetryPolicy {
                max_attempts: d.max_attempts,
                initial: Duration::from_secs(d.retry_initial_secs),
                max: Duration::from_secs(d.retry_max_secs),
            },
            poll_interval: Duration::from_secs(d.poll_interval_secs),
        })
    }

    pub(super) fn confirms_on_acceptance(&self) -> bool {
        match self.sms_kind {
            SmsKind::Webhook => true,
            SmsKind::Spool => false,
            SmsKind::Aliyun => self.aliyun_confirm != AliyunConfirm::DeliveryReport,
        }
    }

    /// The spool channel, when SMS go through one.
    pub fn spool(&self) -> Option<&SpoolChannel> {
        match &*self.sms {
            SmsChannel::Spool(s) => Some(s),
            _ => None,
        }
    }
}

/// The SMTP server of `[delivery.email]`, or `None` when none is configured: the one builder of
/// it, for the worker's notices and the service desk's unlock codes.
pub fn email_channel(config: &Config) -> Result<Option<EmailChannel>, DeliveryError> {
    let d = &config.delivery;
    Ok(match &d.email {
        Some(e) => {
            let credentials = match (&e.username, &e.password_file) {
                (Some(user), Some(file)) => {
                    Some((user.clone(), files::read_secret_file(&config.path(file))?))
                }
                _ => None,
            };
            let extra_roots_pem = match &e.ca_file {
                Some(f) => {
                    let path = config.path(f);
                    Some(std::fs::read(&path).map_err(|source| DeliveryError::Io {
                        what: "reading delivery.email.ca_file",
                        path: path.display().to_string(),
                        source,
                    })?)
                }
                None => None,
            };
            Some(EmailChannel::new(EmailConfig {
                host: e.host.clone(),
                port: e.port(),
                security: e.security,
                credentials,
                from: e.from.clone(),
                extra_roots_pem,
                timeout: Duration::from_secs(e.timeout_secs),
            })?)
        }
        None => None,
    })
}
