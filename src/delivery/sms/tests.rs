//! Unit tests of the parent module (moved out to keep the production file short).

#![allow(clippy::unwrap_used)]
use super::http::check_endpoint;
use super::*;

fn template() -> SmsTemplate {
    SmsTemplate::with_default_body("北京CA")
}

#[test]
fn outgoing_sms_checks_ids() {
    assert!(
        OutgoingSms::new(
            "d-1_A",
            "13800138000",
            "O1",
            "公司",
            "Ab3k9Qz7",
            &template()
        )
        .is_ok()
    );
    for bad in ["", "../x", "a/b", "a.json", "a b", &"x".repeat(65)] {
        assert!(matches!(
            OutgoingSms::new(bad, "13800138000", "O1", "公司", "Ab3k9Qz7", &template()),
            Err(SmsError::InvalidDeliveryId { .. })
        ));
    }
    for bad in [
        "",
        "1380013800",
        "+8613800138000",
        "12800138000",
        "23800138000",
        "1380013800x",
    ] {
        assert!(matches!(
            OutgoingSms::new("d1", bad, "O1", "公司", "Ab3k9Qz7", &template()),
            Err(SmsError::InvalidPhone)
        ));
    }
}

#[test]
fn outgoing_sms_debug_is_redacted() {
    let sms = OutgoingSms::new("d1", "13800138000", "O1", "公司", "Ab3k9Qz7", &template()).unwrap();
    let dbg = format!("{sms:?}");
    assert!(!dbg.contains("Ab3k9Qz7"), "{dbg}");
    assert!(dbg.contains("d1") && dbg.contains("pin"));
    assert_eq!(
        sms.text().expose_secret(),
        "【北京CA】贵单位数字证书(订单O1)密码:Ab3k9Qz7，请首次使用时修改。"
    );
}

#[test]
fn scrub_removes_pin_and_text_and_bounds_length() {
    let sms = OutgoingSms::new("d1", "13800138000", "O1", "公司", "Ab3k9Qz7", &template()).unwrap();
    let s = scrub(
        format!("echo {} and Ab3k9Qz7", sms.text().expose_secret()),
        &sms,
    );
    assert!(!s.contains("Ab3k9Qz7"), "{s}");
    assert!(!s.contains("请首次使用时修改"), "{s}");
    assert_eq!(
        scrub("x".repeat(1000), &sms).chars().count(),
        MAX_REASON_CHARS + 1
    );
}

#[test]
fn endpoints_must_be_https_unless_loopback() {
    for (url, allowed) in [
        ("https://dysmsapi.aliyuncs.com/", true),
        ("http://127.0.0.1:8080/", true),
        ("http://[::1]:8080/", true),
        ("http://localhost/", true),
        ("http://dysmsapi.aliyuncs.com/", false),
        ("ftp://127.0.0.1/", false),
        ("not a url", false),
    ] {
        assert_eq!(check_endpoint("endpoint", url).is_ok(), allowed, "{url}");
    }
}

#[test]
fn system_nonces_are_hex_and_distinct() {
    let a = SystemStamps::default().nonce().unwrap();
    let b = SystemStamps::default().nonce().unwrap();
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
