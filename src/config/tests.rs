//! Unit tests of the configuration: the example file, defaults, and each rule of `check`.

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
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Sm2,
    ] {
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

#[test]
fn a_password_in_a_database_url_is_never_shown() {
    assert_eq!(
        redacted_url("postgres://ks:s3cr%40t@db.example:5432/ks?sslmode=require"),
        "postgres://ks:***@db.example:5432/ks?sslmode=require"
    );
    assert_eq!(
        redacted_url("postgres://ks:p@ss@db/ks"),
        "postgres://ks:***@db/ks"
    );
    for plain in [
        "postgres:///ks?host=/var/run/postgresql",
        "postgres://ks@db/ks",
        "sqlite:///tmp/station.db",
        "not a url",
    ] {
        assert_eq!(redacted_url(plain), plain);
    }
}

#[test]
fn email_and_notices_rules() {
    // Off and absent by default.
    let cfg = Config::parse(EXAMPLE, Path::new("/")).unwrap();
    assert!(!cfg.delivery.notices.enabled);
    assert!(cfg.delivery.email.is_none());
    let err = |extra: &str| {
        Config::parse(&format!("{EXAMPLE}\n{extra}"), Path::new("/"))
            .unwrap_err()
            .to_string()
    };
    let ok = |extra: &str| Config::parse(&format!("{EXAMPLE}\n{extra}"), Path::new("/")).unwrap();
    let base = "[delivery.email]\nfrom = \"ca@example.com\"\n";
    let e = ok(&format!(
        "{base}host = \"smtp.example.com\"\nsecurity = \"starttls\"\n"
    ))
    .delivery
    .email
    .unwrap();
    assert_eq!(e.port(), 587);
    let e = ok(&format!(
        "{base}host = \"smtp.example.com\"\nsecurity = \"tls\"\n"
    ))
    .delivery
    .email
    .unwrap();
    assert_eq!(e.port(), 465);
    assert_eq!(
        ok(&format!(
            "{base}host = \"localhost\"\nsecurity = \"none\"\n"
        ))
        .delivery
        .email
        .unwrap()
        .port(),
        25
    );
    let m = err(&format!(
        "{base}host = \"smtp.example.com\"\nsecurity = \"none\"\n"
    ));
    assert!(m.contains("delivery.email.security"), "{m}");
    let m = err(&format!(
        "{base}host = \"smtp.example.com\"\nsecurity = \"tls\"\nusername = \"u\"\n"
    ));
    assert!(m.contains("delivery.email.password_file"), "{m}");
    // A password is never a value of this file.
    let m = err(&format!(
        "{base}host = \"smtp.example.com\"\nsecurity = \"tls\"\npassword = \"oops\"\n"
    ));
    assert!(m.contains("password"), "{m}");
    let m = err("[delivery.email]\nfrom = \"not an address\"\nhost = \"h\"\nsecurity = \"tls\"\n");
    assert!(m.contains("delivery.email.from"), "{m}");
    let m = err(
        "[delivery.notices]\nenabled = true\n[delivery.notices.templates]\napproved = \"{pin}\"\n",
    );
    assert!(
        m.contains("delivery.notices.templates") && m.contains("{pin}"),
        "{m}"
    );
    let m = err("[delivery.notices.templates]\nrevoked = \"{tracking_no}\"\n");
    assert!(m.contains("tracking_no"), "{m}");
    // The unlock e-mail's texts: only its own placeholders.
    let m = err(&format!(
        "{base}host = \"127.0.0.1\"\nsecurity = \"none\"\n[delivery.email.templates]\n\
         unlock_body = \"{{code}} {{so_pin}}\"\n"
    ));
    assert!(
        m.contains("delivery.email.templates") && m.contains("{so_pin}"),
        "{m}"
    );
}

#[test]
fn dual_certificates_are_off_by_default_and_refused_for_a_non_sm2_product() {
    let minimal = "version = 1\n[station]\nid = \"s\"\n[database]\nurl = \"sqlite://x.db\"\n";
    let cfg = Config::parse(minimal, Path::new("/")).unwrap();
    assert!(!cfg.product.dual_certificate);
    let sm2 = format!("{minimal}[product]\nkey_algorithm = \"sm2\"\ndual_certificate = true\n");
    assert!(
        Config::parse(&sm2, Path::new("/"))
            .unwrap()
            .product
            .dual_certificate
    );
    let p256 = format!("{minimal}[product]\ndual_certificate = true\n");
    let err = Config::parse(&p256, Path::new("/"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("product.dual_certificate") && err.contains("ecdsa-p256"),
        "{err}"
    );
}

#[test]
fn the_api_webhook_needs_https_or_loopback_http_and_bounded_values() {
    let minimal = "version = 1\n[station]\nid = \"s\"\n[database]\nurl = \"sqlite://x.db\"\n";
    let cfg = Config::parse(minimal, Path::new("/")).unwrap();
    assert!(cfg.api.webhook.is_none());
    let with =
        |table: &str| Config::parse(&format!("{minimal}[api.webhook]\n{table}"), Path::new("/"));
    let key = "secret_file = \"secrets/webhook.key\"\n";
    for ok in [
        "https://portal.example/hook",
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]:8080/hook",
    ] {
        let cfg = with(&format!("url = \"{ok}\"\n{key}")).unwrap();
        let w = cfg.api.webhook.unwrap();
        assert_eq!(w.endpoint().unwrap().as_str(), ok);
        assert_eq!(
            (w.timeout_secs, w.max_attempts, w.retry_initial_secs),
            (10, 5, 30)
        );
    }
    for (table, named) in [
        (
            format!("url = \"http://portal.example/hook\"\n{key}"),
            "api.webhook.url",
        ),
        (
            format!("url = \"http://10.0.0.1/hook\"\n{key}"),
            "api.webhook.url",
        ),
        (
            format!("url = \"ftp://127.0.0.1/hook\"\n{key}"),
            "api.webhook.url",
        ),
        (
            format!("url = \"https://u:p@portal.example/\"\n{key}"),
            "api.webhook.url",
        ),
        (format!("url = \"not a url\"\n{key}"), "api.webhook.url"),
        (
            "url = \"https://p.example/\"\nsecret_file = \"\"\n".to_string(),
            "api.webhook.secret_file",
        ),
        (
            format!("url = \"https://p.example/\"\n{key}timeout_secs = 0\n"),
            "api.webhook.timeout_secs",
        ),
        (
            format!("url = \"https://p.example/\"\n{key}max_attempts = 0\n"),
            "api.webhook.max_attempts",
        ),
        (
            format!("url = \"https://p.example/\"\n{key}retry_initial_secs = 0\n"),
            "api.webhook.retry_initial_secs",
        ),
    ] {
        let err = with(&table).unwrap_err().to_string();
        assert!(err.contains(named), "{table}: {err}");
    }
    // The key itself is not a key of the file.
    let err = with(&format!(
        "url = \"https://p.example/\"\n{key}secret = \"k\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("secret"), "{err}");
    // The password of a refused URL is not shown.
    let err = with(&format!(
        "url = \"http://u:hunter2@portal.example/\"\n{key}"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("api.webhook.url") && !err.contains("hunter2"),
        "{err}"
    );
}
