//! Unit tests of the parent module (moved out to keep the production file short).

#![allow(clippy::unwrap_used)]
use super::*;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// Aliyun's own worked example from the SMS API signature documentation (signature v1.0,
/// AccessKeyId `testId`, AccessKeySecret `testSecret`, GET).
#[test]
fn aliyun_documented_signature_example() {
    let params = [
        ("AccessKeyId", "testId"),
        ("Action", "SendSms"),
        ("Format", "XML"),
        ("OutId", "123"),
        ("PhoneNumbers", "15300000001"),
        ("RegionId", "cn-hangzhou"),
        ("SignName", "阿里云短信测试专用"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
        ("SignatureVersion", "1.0"),
        ("TemplateCode", "SMS_71390007"),
        ("TemplateParam", "{\"customer\":\"test\"}"),
        ("Timestamp", "2017-07-12T02:42:19Z"),
        ("Version", "2017-05-25"),
    ];
    // Shuffle the input order: canonicalization must sort.
    let mut shuffled = params.to_vec();
    shuffled.reverse();
    let canonical = canonicalized_query(&shuffled);
    let sts = string_to_sign("GET", &canonical);
    assert_eq!(
        sts.as_str(),
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123\
         %26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF\
         %25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF\
         %2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce\
         %3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode\
         %3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D\
         %26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
    );
    assert_eq!(
        signature_v1("testSecret", &sts).unwrap(),
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    );
}

#[test]
fn percent_encoding_rules() {
    for (raw, encoded) in [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~-_.", "~-_."),
        ("+/=:&", "%2B%2F%3D%3A%26"),
        ("密", "%E5%AF%86"),
        ("\u{20000}", "%F0%A0%80%80"),
    ] {
        assert_eq!(percent_encode(raw), encoded, "{raw:?}");
    }
}

/// Cross-checks the HMAC step with openssl on a string with the awkward characters.
#[test]
fn signature_matches_openssl() {
    let params = [
        (
            "TemplateParam",
            "{\"pin\":\"a b*c~d+e/f\",\"company\":\"北京某公司\"}",
        ),
        ("Action", "SendSms"),
        ("Timestamp", "2024-01-02T03:04:05Z"),
    ];
    let sts = string_to_sign("POST", &canonicalized_query(&params));
    assert!(
        sts.contains("a%2520b%252Ac~d%252Be%252Ff"),
        "{}",
        sts.as_str()
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha1", "-hmac", "s3cr3t&", "-binary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sts.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let expected = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
    assert_eq!(signature_v1("s3cr3t", &sts).unwrap(), expected);
    assert_ne!(signature_v1("other", &sts).unwrap(), expected);
}

#[test]
fn signed_body_appends_encoded_signature() {
    let body = signed_form_body("POST", &[("B", "2"), ("A", "1 1")], "k").unwrap();
    let sig = signature_v1("k", &string_to_sign("POST", "A=1%201&B=2")).unwrap();
    assert_eq!(
        body.as_str(),
        format!("A=1%201&B=2&Signature={}", percent_encode(&sig))
    );
}

#[test]
fn timestamp_format_is_utc_iso8601() {
    let t = time::macros::datetime!(2024-03-05 08:09:10 +08:00);
    assert_eq!(format_timestamp(t).unwrap(), "2024-03-05T00:09:10Z");
}

#[test]
fn query_dates_use_beijing_time_and_cover_midnight() {
    let t = time::macros::datetime!(2024-03-05 15:00:00 UTC); // 23:00 in Beijing
    assert_eq!(query_dates(t, Duration::from_secs(15)), vec!["20240305"]);
    let t = time::macros::datetime!(2024-03-05 15:59:50 UTC); // 23:59:50 in Beijing
    assert_eq!(
        query_dates(t, Duration::from_secs(15)),
        vec!["20240305", "20240306"]
    );
    let t = time::macros::datetime!(2024-03-05 16:00:00 UTC); // 00:00 next day in Beijing
    assert_eq!(query_dates(t, Duration::from_secs(15)), vec!["20240306"]);
}

fn reason(o: &SendOutcome) -> &str {
    match o {
        SendOutcome::Accepted { provider_id } => provider_id,
        SendOutcome::Retryable { reason }
        | SendOutcome::Permanent { reason }
        | SendOutcome::Unknown { reason } => reason,
    }
}

#[test]
fn classify_send_answers() {
    let ok =
        br#"{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"F655A8D5"}"#;
    assert_eq!(
        classify_send_answer(200, ok),
        SendOutcome::Accepted {
            provider_id: "900619746936498440^0".to_owned()
        }
    );
    let retryable: &[&str] = &[
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "Throttling.User",
        "Throttling",
        "isp.SYSTEM_ERROR",
    ];
    let permanent: &[&str] = &[
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId.NotFound",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.AMOUNT_NOT_ENOUGH",
    ];
    for (status, request_id, expected, codes) in [
        (200, "R1", "retryable", retryable),
        (400, "R2", "permanent", permanent),
    ] {
        for code in codes {
            let body = format!(r#"{{"Code":"{code}","Message":"x","RequestId":"{request_id}"}}"#);
            let o = classify_send_answer(status, body.as_bytes());
            assert_eq!(o.name(), expected, "{code}: {o:?}");
            assert!(reason(&o).contains(code) && reason(&o).contains(request_id));
        }
    }
    let cases: [(u16, &[u8], &str); 6] = [
        (503, b"<html>busy</html>", "retryable"),
        (500, br#"{"Code":"Weird"}"#, "retryable"),
        (429, b"", "retryable"),
        (200, b"not json", "unknown"),
        (200, br#"{"Code":"OK"}"#, "unknown"),
        (404, b"nope", "permanent"),
    ];
    for (status, body, expected) in cases {
        let o = classify_send_answer(status, body);
        assert_eq!(o.name(), expected, "HTTP {status}: {o:?}");
    }
}

#[test]
fn classify_never_copies_the_message_field() {
    // Aliyun echoes its string to sign (with the encoded TemplateParam) in Message.
    let body = br#"{"Code":"SignatureDoesNotMatch","Message":"server string to sign is:POST&%2F&TemplateParam%3D%257B%2522pin%2522%253A%2522Ab3k9Qz7%2522%257D","RequestId":"R"}"#;
    let o = classify_send_answer(400, body);
    assert!(!reason(&o).contains("Ab3k9Qz7"), "{o:?}");
    assert!(reason(&o).contains("SignatureDoesNotMatch"));
}

#[test]
fn parse_query_pages() {
    let answer = r#"{"Code":"OK","Message":"OK","RequestId":"R","TotalCount":3,
        "SmsSendDetailDTOs":{"SmsSendDetailDTO":[
          {"PhoneNum":"13800138000","SendStatus":3,"ErrCode":"DELIVERED","OutId":"other","Content":"【CA】x"},
          {"PhoneNum":"13800138000","SendStatus":1,"ErrCode":"","OutId":"d1","Content":"【CA】PIN Ab3k9Qz7"},
          {"PhoneNum":"13800138000","SendStatus":2,"ErrCode":"MK:0001","OutId":"d2","Content":"x"}]}}"#
        .as_bytes();
    let p = parse_query_answer(200, answer, "d1").unwrap();
    assert_eq!(
        p.found,
        Some(QueryOutcome::Accepted {
            provider_id: "d1".to_owned()
        })
    );
    assert_eq!((p.items_on_page, p.total), (3, 3));
    let p = parse_query_answer(200, answer, "other").unwrap();
    assert!(matches!(p.found, Some(QueryOutcome::Delivered { .. })));
    let p = parse_query_answer(200, answer, "d2").unwrap();
    match p.found {
        Some(QueryOutcome::Undelivered { reason, .. }) => assert!(reason.contains("MK:0001")),
        other => panic!("{other:?}"),
    }
    assert_eq!(parse_query_answer(200, answer, "d9").unwrap().found, None);
    let empty = br#"{"Code":"OK","TotalCount":"0","SmsSendDetailDTOs":{"SmsSendDetailDTO":[]}}"#;
    assert_eq!(
        parse_query_answer(200, empty, "d1").unwrap().items_on_page,
        0
    );
    let refused = br#"{"Code":"isv.INVALID_PARAMETERS","RequestId":"R"}"#;
    assert!(
        parse_query_answer(400, refused, "d1")
            .unwrap_err()
            .contains("isv.INVALID_PARAMETERS")
    );
    assert!(parse_query_answer(200, b"<xml/>", "d1").is_err());
}

#[test]
fn credentials_debug_is_redacted() {
    let c = AliyunCredentials {
        access_key_id: "LTAIid".to_owned(),
        access_key_secret: Zeroizing::new("topsecretvalue".to_owned()),
    };
    let dbg = format!("{c:?}");
    assert!(
        dbg.contains("LTAIid") && !dbg.contains("topsecretvalue"),
        "{dbg}"
    );
}
