//! Unit tests of the token judgment: inventories as a token would return them, one deviation at
//! a time. (Seals are judged with the seal verifier, covered by its own tests and by the
//! integration tests that tamper with real tokens.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::token::KeyKind;
use time::macros::datetime;

const KEY_ID: &[u8] = b"\x01\x02";
const CERT: &[u8] = b"the order's certificate";
const SPKI: &[u8] = b"the recorded public key";

fn expected() -> Expected<'static> {
    Expected {
        serial: "TOKEN-1",
        label: "O-1",
        key_id: KEY_ID,
        cert_serial: "4a01",
        cert_der: CERT,
        spki: Some(SPKI),
        seals: &[],
        ca_der: b"ca",
        maker_der: Some(b"maker"),
        now: datetime!(2026-01-01 00:00:00 UTC),
        encryption: None,
    }
}

fn object(kind: ObjectKind, label: &str, id: &[u8]) -> TokenObject {
    TokenObject::new(kind, label, id)
}

fn protected() -> PrivateKeyAttributes {
    PrivateKeyAttributes {
        token: true,
        private: true,
        sensitive: true,
        extractable: false,
        always_sensitive: true,
        never_extractable: true,
        local: true,
        sign: true,
    }
}

/// What provisioning leaves on a token of an order without seals.
fn provisioned() -> Vec<TokenObject> {
    let cert = TokenObject {
        value: Some(CERT.to_vec()),
        ..object(ObjectKind::Certificate, "O-1", KEY_ID)
    };
    let public = TokenObject {
        key_type: Some(KeyKind::Ec),
        usage: Some(KeyUsage::VERIFY),
        ..object(ObjectKind::PublicKey, "O-1", KEY_ID)
    };
    let private = TokenObject {
        private: true,
        key_type: Some(KeyKind::Ec),
        usage: Some(KeyUsage::SIGN),
        protection: Some(protected()),
        ..object(ObjectKind::PrivateKey, "O-1", KEY_ID)
    };
    vec![cert, public, private]
}

fn found(objects: Vec<TokenObject>) -> Found {
    Found {
        label: "O-1".into(),
        spki: Ok(SPKI.to_vec()),
        objects,
        logged_in: true,
    }
}

fn rules(f: &Found) -> Vec<&'static str> {
    judge(&expected(), f)
        .into_iter()
        .map(|(_, r, _)| r)
        .collect()
}

#[test]
fn a_token_as_provisioned_passes() {
    assert!(judge(&expected(), &found(provisioned())).is_empty());
}

#[test]
fn a_foreign_certificate_is_named() {
    let mut objects = provisioned();
    objects.push(TokenObject {
        value: Some(b"someone else's".to_vec()),
        ..object(ObjectKind::Certificate, "extra", b"\x09")
    });
    let verdicts = judge(&expected(), &found(objects));
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    let (level, rule, msg) = &verdicts[0];
    assert_eq!((*level, *rule), (Level::Violation, "token_certificate"));
    assert!(
        msg.contains("TOKEN-1") && msg.contains("\"extra\""),
        "{msg}"
    );
}

#[test]
fn the_certificate_replaced_under_the_same_id_is_found() {
    let mut objects = provisioned();
    objects[0].value = Some(b"a look-alike".to_vec());
    // The look-alike is named, and the order's own certificate is missing.
    assert_eq!(
        rules(&found(objects)),
        ["token_certificate", "token_certificate"]
    );
}

#[test]
fn an_empty_unlabelled_data_object_is_unexpected() {
    let mut objects = provisioned();
    objects.push(TokenObject {
        private: true,
        value: Some(Vec::new()),
        ..object(ObjectKind::Data, "", b"")
    });
    let verdicts = judge(&expected(), &found(objects));
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0].1, "token_unexpected_object");
    assert!(verdicts[0].2.contains("unlabelled"), "{}", verdicts[0].2);
}

#[test]
fn a_key_with_an_extra_usage_is_named_with_its_usages() {
    let mut objects = provisioned();
    objects[2].usage = Some(KeyUsage {
        unwrap: true,
        ..KeyUsage::SIGN
    });
    let verdicts = judge(&expected(), &found(objects));
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0].1, "token_key_usage");
    assert!(
        verdicts[0].2.contains("may sign, unwrap") && verdicts[0].2.contains("must be sign"),
        "{}",
        verdicts[0].2
    );
    // The public half too: a verifying key that may also encrypt and wrap.
    let mut objects = provisioned();
    objects[1].usage = Some(KeyUsage {
        encrypt: true,
        wrap: true,
        ..KeyUsage::VERIFY
    });
    assert_eq!(rules(&found(objects)), ["token_key_usage"]);
}

#[test]
fn an_extractable_or_imported_private_key_is_a_violation() {
    let mut objects = provisioned();
    objects[2].protection = Some(PrivateKeyAttributes {
        extractable: true,
        never_extractable: false,
        local: false,
        ..protected()
    });
    let verdicts = judge(&expected(), &found(objects));
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0].1, "token_private_key");
    assert!(verdicts[0].2.contains("extractable"), "{}", verdicts[0].2);
    assert!(verdicts[0].2.contains("not generated on the token"));
}

#[test]
fn missing_keys_and_a_changed_public_key_are_found() {
    let mut f = found(provisioned().into_iter().take(1).collect());
    assert_eq!(rules(&f), ["token_key", "token_private_key"]);
    f = found(provisioned());
    f.spki = Ok(b"another key".to_vec());
    assert_eq!(rules(&f), ["token_key"]);
}

#[test]
fn without_a_login_only_the_public_objects_are_judged() {
    let mut objects = provisioned();
    objects.pop(); // the private key is invisible without a login
    let mut f = found(objects);
    f.logged_in = false;
    assert!(judge(&expected(), &f).is_empty());
}

#[test]
fn a_missing_seal_and_a_seal_of_another_kind_are_found() {
    let mut e = expected();
    e.seals = &[SealKind::Company];
    let mut objects = provisioned();
    objects.push(TokenObject {
        private: true,
        application: Some(SEAL_APPLICATION.into()),
        value: Some(b"a seal".to_vec()),
        ..object(ObjectKind::Data, "seal:legal_rep", b"")
    });
    let verdicts: Vec<_> = judge(&e, &found(objects))
        .into_iter()
        .map(|(_, r, m)| (r, m))
        .collect();
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert_eq!(verdicts[0].0, "token_unexpected_object");
    assert!(verdicts[0].1.contains("seal:legal_rep"));
    assert_eq!(verdicts[1].0, "token_seals");
    assert!(verdicts[1].1.contains("lacks its seal \"seal:company\""));
}

#[test]
fn a_wrong_label_is_reported() {
    let mut f = found(provisioned());
    f.label = "O-2".into();
    assert_eq!(rules(&f), ["token_label"]);
}

const ENC_ID: &[u8] = b"\x01\x02-enc";
const ENC_CERT: &[u8] = b"the order's encryption certificate";

/// The encryption half of a dual certificate as provisioning leaves it.
fn dual_objects() -> Vec<TokenObject> {
    let cert = TokenObject {
        value: Some(ENC_CERT.to_vec()),
        ..object(ObjectKind::Certificate, "O-1", ENC_ID)
    };
    let public = TokenObject {
        usage: Some(ENCRYPT),
        ..object(ObjectKind::PublicKey, "O-1", ENC_ID)
    };
    let private = TokenObject {
        private: true,
        usage: Some(DECRYPT),
        protection: Some(PrivateKeyAttributes {
            always_sensitive: false,
            never_extractable: false,
            local: false,
            sign: false,
            ..protected()
        }),
        ..object(ObjectKind::PrivateKey, "O-1", ENC_ID)
    };
    vec![cert, public, private]
}

#[test]
fn a_dual_certificate_token_passes_and_its_encryption_key_is_held_to_its_usages() {
    let dual = Expected {
        encryption: Some(ExpectedEncryption {
            key_id: ENC_ID,
            cert_serial: "4a02",
            cert_der: ENC_CERT,
        }),
        ..expected()
    };
    let mut objects = provisioned();
    objects.extend(dual_objects());
    assert!(judge(&dual, &found(objects.clone())).is_empty());
    // Without the expectation the same objects are foreign.
    assert!(!judge(&expected(), &found(objects.clone())).is_empty());
    // An encryption private key that may sign is named, and a missing encryption certificate.
    let n = objects.len();
    if let Some(u) = objects[n - 1].usage.as_mut() {
        u.sign = true;
    }
    objects.remove(n - 3);
    let rules: Vec<&str> = judge(&dual, &found(objects))
        .into_iter()
        .map(|(_, r, _)| r)
        .collect();
    assert_eq!(rules, ["token_key_usage", "token_encryption_key"]);
}
