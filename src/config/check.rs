//! The rules a loaded `station.toml` must meet, checked once at start-up: a value that would
//! fail later (a seal size, a lease, a template that could outgrow an SMS or a memo, a bank
//! account) is refused here, naming its key.

use super::{CONFIG_VERSION, Config, ConfigError, SmsKind};

/// The longest CRL validity accepted: 31 days (relying parties cache a CRL until nextUpdate, so
/// a revocation could go unseen for that long if the station stopped issuing).
const MAX_CRL_HOURS: u32 = 31 * 24;

impl Config {
    /// Every rule; the first broken one is the error.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
        if self.product.dual_certificate
            && self.product.key_algorithm != crate::domain::KeyAlgorithm::Sm2
        {
            return Err(ConfigError::Value {
                key: "product.dual_certificate",
                message: format!(
                    "dual certificates (双证书) are SM2's: product.key_algorithm is {}, not sm2",
                    self.product.key_algorithm.as_str()
                ),
            });
        }
        self.ocsp.check()?;
        self.serve.check()?;
        self.console.check()?;
        self.api.check()?;
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
        self.check_notices()?;
        crate::domain::crl::crl_url_path(&self.ca.crl_url).map_err(|e| ConfigError::Value {
            key: "ca.crl_url",
            message: e.to_string(),
        })?;
        if !(1..=MAX_CRL_HOURS).contains(&self.crl.validity_hours) {
            return Err(ConfigError::Value {
                key: "crl.validity_hours",
                message: format!("must be 1 to {MAX_CRL_HOURS} hours"),
            });
        }
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
        if !(1..=1024).contains(&sms.max_in_flight) {
            return Err(value(
                "delivery.sms.max_in_flight",
                "must be 1 to 1024".into(),
            ));
        }
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

    /// `[delivery.email]` and `[delivery.notices]`: templates checked (no placeholder but the
    /// kind's own, so never a PIN), an SMTP connection in clear only to a loopback host, a
    /// password only from a file and only with a user name.
    fn check_notices(&self) -> Result<(), ConfigError> {
        let value = |key: &'static str, message: String| ConfigError::Value { key, message };
        self.delivery
            .notices
            .templates
            .check()
            .map_err(|e| value("delivery.notices.templates", e.to_string()))?;
        let Some(e) = &self.delivery.email else {
            return Ok(());
        };
        e.templates
            .check()
            .map_err(|err| value("delivery.email.templates", err.to_string()))?;
        if e.host.trim().is_empty() {
            return Err(value("delivery.email.host", "is empty".into()));
        }
        let loopback = e.host == "localhost"
            || e.host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if e.security == super::SmtpSecurity::None && !loopback {
            return Err(value(
                "delivery.email.security",
                "\"none\" (no TLS) is only allowed to a loopback host; use \"starttls\" or \"tls\""
                    .into(),
            ));
        }
        if e.username.is_some() != e.password_file.is_some() {
            return Err(value(
                "delivery.email.password_file",
                "username and password_file go together".into(),
            ));
        }
        if e.port() == 0 {
            return Err(value("delivery.email.port", "must be 1 to 65535".into()));
        }
        if e.timeout_secs == 0 {
            return Err(value(
                "delivery.email.timeout_secs",
                "must be at least 1 second".into(),
            ));
        }
        e.from.parse::<lettre::message::Mailbox>().map_err(|err| {
            value(
                "delivery.email.from",
                format!("not an e-mail address ({err})"),
            )
        })?;
        Ok(())
    }
}
