//! The channels a `deliver run` sends through, built once from `[delivery]`: the SMS channel
//! (spool, Aliyun, webhook) with its template, and the bank's outbound directory.

use super::*;

/// The configured channels, built once per `deliver run`.
#[derive(Debug)]
pub struct DeliveryChannels {
    pub(super) sms: SmsChannel,
    pub(super) sms_kind: SmsKind,
    pub(super) template: SmsTemplate,
    pub(super) aliyun_confirm: AliyunConfirm,
    pub(super) query_delay: Duration,
    pub(super) outbound_dir: PathBuf,
}

impl DeliveryChannels {
    /// Builds the channels from `[delivery]`: reads the credential files (mode 0600), checks the
    /// endpoints, creates the spool and bank directories. The templates were checked when the
    /// configuration was loaded.
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, DeliveryError> {
        let d = &config.delivery;
        let stamps = Arc::new(SystemStamps(clock));
        let sms = match d.sms.kind {
            SmsKind::Spool => {
                let dir = config.path(&d.sms.spool_dir);
                files::ensure_dir(&dir)?;
                SmsChannel::Spool(SpoolChannel::new(dir, stamps))
            }
            SmsKind::Aliyun => {
                let a = d.sms.aliyun.as_ref().ok_or(DeliveryError::Invalid {
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
                let w = d.sms.webhook.as_ref().ok_or(DeliveryError::Invalid {
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
        let outbound_dir = config.path(&d.bank.outbound_dir);
        files::ensure_dir(&outbound_dir)?;
        files::ensure_dir(&config.path(&d.bank.inbound_dir))?;
        Ok(DeliveryChannels {
            sms,
            sms_kind: d.sms.kind,
            template: SmsTemplate {
                sign_name: d.sms.sign_name.clone(),
                body: d.sms.template.clone(),
            },
            aliyun_confirm: d.sms.aliyun.as_ref().map(|a| a.confirm).unwrap_or_default(),
            query_delay: Duration::from_secs(d.sms.query_delay_secs),
            outbound_dir,
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
        match &self.sms {
            SmsChannel::Spool(s) => Some(s),
            _ => None,
        }
    }
}
