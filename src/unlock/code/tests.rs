#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn so(s: &str) -> SoPin {
    SoPin::from_secret(Zeroizing::new(s.to_string()))
}

fn secrets() -> UnlockSecrets {
    UnlockSecrets {
        current_so_pin: so("CurrentSoPin2345"),
        next_so_pin: so("NextSoPin6789abc"),
    }
}

#[test]
fn a_request_code_round_trips_and_a_typo_is_caught() {
    let (_k, r) = new_request("  0123abcd ").unwrap();
    assert_eq!(r.token_serial, "0123abcd");
    let text = r.encode();
    assert!(text.starts_with("KSUR1-"), "{text}");
    assert_eq!(UnlockRequestCode::decode(&format!(" {text}\n")).unwrap(), r);
    // Change one character of the body: the checksum catches it.
    let mut bytes = text.into_bytes();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        UnlockRequestCode::decode(&typo),
        Err(CodeError::Malformed { .. })
    ));
    assert!(UnlockRequestCode::decode("KSUA1-AAAA").is_err());
    assert!(new_request("").is_err());
    assert!(new_request("a b").is_err());
}

#[test]
fn only_the_requesting_key_opens_the_code_before_expiry() {
    let (key, req) = new_request("SERIAL1").unwrap();
    let code = seal_authorisation(&req, 1_000, &secrets()).unwrap();
    assert!(code.starts_with("KSUA1-"));
    assert!(!code.contains("CurrentSoPin"));
    // Wrapped by a mail client: still parses.
    let wrapped = format!("{}\n  {}", &code[..30], &code[30..]);
    let parsed = AuthorisationCode::decode(&wrapped).unwrap();
    assert_eq!(parsed.expires_at, 1_000);
    let opened = parsed.open(key, &req, 999).unwrap();
    assert_eq!(opened.current_so_pin.expose_secret(), "CurrentSoPin2345");
    assert_eq!(opened.next_so_pin.expose_secret(), "NextSoPin6789abc");

    // Another request (another tool run) cannot open it: a replay is refused.
    let (other_key, other_req) = new_request("SERIAL1").unwrap();
    assert_eq!(
        parsed.open(other_key, &other_req, 999).unwrap_err(),
        CodeError::NotForThisRequest
    );
    // The same key but another token serial or request nonce (the aad) fails.
    let (key, req) = new_request("SERIAL1").unwrap();
    let code =
        AuthorisationCode::decode(&seal_authorisation(&req, 1_000, &secrets()).unwrap()).unwrap();
    let mut lying = req.clone();
    lying.token_serial = "SERIAL2".into();
    assert_eq!(
        code.open(key, &lying, 999).unwrap_err(),
        CodeError::NotForThisRequest
    );
}

#[test]
fn an_expired_or_altered_code_is_refused() {
    let (key, req) = new_request("SERIAL1").unwrap();
    let code = seal_authorisation(&req, 1_000, &secrets()).unwrap();
    let parsed = AuthorisationCode::decode(&code).unwrap();
    assert_eq!(
        parsed.open(key, &req, 1_000).unwrap_err(),
        CodeError::Expired { expires_at: 1_000 }
    );
    // Pushing the expiry forward breaks the authentication.
    let (key, req) = new_request("SERIAL1").unwrap();
    let code = seal_authorisation(&req, 1_000, &secrets()).unwrap();
    let mut raw = URL_SAFE_NO_PAD
        .decode(code.strip_prefix(AUTH_PREFIX).unwrap())
        .unwrap();
    raw[7] += 1;
    let forged = format!("{AUTH_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let forged = AuthorisationCode::decode(&forged).unwrap();
    assert_eq!(forged.expires_at, 1_256);
    assert_eq!(
        forged.open(key, &req, 1_050).unwrap_err(),
        CodeError::NotForThisRequest
    );
    assert!(AuthorisationCode::decode("KSUA1-abc").is_err());
    assert!(AuthorisationCode::decode("hello").is_err());
}
