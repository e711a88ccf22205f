//! Judging what is on a customer's token against what the database says must be there.
//!
//! Pure: the token was read already ([`Found`]), the expectation comes from the database
//! ([`Expected`]). A provisioned token holds exactly:
//! - one certificate, the order's live one, under the key's `CKA_ID`;
//! - one public key with that `CKA_ID` (the recorded one), which may only verify;
//! - behind the PIN: one private key with that `CKA_ID`, which may only sign, sensitive, never
//!   extractable and generated on the token; and one private data object per seal of the order,
//!   labelled `seal:<kind>`, each a valid seal of this station's seal maker, of its kind, bound
//!   to the token's certificate;
//! - with an SM2 dual certificate, beside them under the encryption key's `CKA_ID`: its
//!   encryption certificate, its public key (which may only encrypt and wrap) and, behind the
//!   PIN, its private key (which may only decrypt and unwrap; sensitive, never extractable, and
//!   imported: made by the station, not on the token);
//! - nothing else: any other object (a foreign certificate, an extra key, an empty data object
//!   left by a failed write) is a violation naming it.

use super::report::Level;
use crate::domain::SealKind;
use crate::seal::{SEAL_APPLICATION, SealType, verify_seal};
use crate::station::seals::seal_label;
use crate::token::{KeyUsage, ObjectKind, PrivateKeyAttributes, TokenObject};
use time::OffsetDateTime;

/// What the database says the token must hold.
#[derive(Debug)]
pub(super) struct Expected<'a> {
    /// The token's serial (for messages).
    pub serial: &'a str,
    /// Its label: the order number.
    pub label: &'a str,
    /// `CKA_ID` of the key pair.
    pub key_id: &'a [u8],
    /// The live certificate's serial (hex) and DER.
    pub cert_serial: &'a str,
    pub cert_der: &'a [u8],
    /// The recorded SubjectPublicKeyInfo.
    pub spki: Option<&'a [u8]>,
    /// The seals the order puts on the key.
    pub seals: &'a [SealKind],
    /// The station's CA certificate and seal-maker certificate (None: unreadable, reported
    /// once by the caller).
    pub ca_der: &'a [u8],
    pub maker_der: Option<&'a [u8]>,
    /// The station's clock.
    pub now: OffsetDateTime,
    /// The dual certificate's encryption half, if the order has one.
    pub encryption: Option<ExpectedEncryption<'a>>,
}

/// The encryption half of an SM2 dual certificate the token must hold.
#[derive(Debug)]
pub(super) struct ExpectedEncryption<'a> {
    /// `CKA_ID` of the encryption key pair.
    pub key_id: &'a [u8],
    /// The encryption certificate's serial (hex) and DER.
    pub cert_serial: &'a str,
    pub cert_der: &'a [u8],
}

/// The usages of a dual certificate's encryption public key and private key.
pub(super) const ENCRYPT: KeyUsage = KeyUsage {
    encrypt: true,
    wrap: true,
    ..KeyUsage::NONE
};
pub(super) const DECRYPT: KeyUsage = KeyUsage {
    decrypt: true,
    unwrap: true,
    ..KeyUsage::NONE
};

/// What was read off the token.
#[derive(Debug)]
pub(super) struct Found {
    /// The token's label.
    pub label: String,
    /// The public key with the expected `CKA_ID`, as SPKI, or why it could not be read.
    pub spki: Result<Vec<u8>, String>,
    /// Every object the session saw.
    pub objects: Vec<TokenObject>,
    /// True when the session was logged in as the user: private objects were visible.
    pub logged_in: bool,
}

/// One finding: level, rule, message.
pub(super) type Verdict = (Level, &'static str, String);

fn violation(rule: &'static str, message: String) -> Verdict {
    (Level::Violation, rule, message)
}

/// Judges the token (see the module docs).
pub(super) fn judge(e: &Expected<'_>, f: &Found) -> Vec<Verdict> {
    let t = e.serial;
    let mut out = Vec::new();
    if f.label != e.label {
        out.push(violation(
            "token_label",
            format!("token {t} is labelled {:?}", f.label),
        ));
    }
    let mut certs = 0;
    let mut public_keys = Vec::new();
    let mut private_keys = Vec::new();
    let mut seals: Vec<(&SealKind, Vec<&[u8]>)> = e.seals.iter().map(|k| (k, Vec::new())).collect();
    let mut encryption: Vec<&TokenObject> = Vec::new();
    for o in &f.objects {
        let ours = o.id == e.key_id;
        if e.encryption.as_ref().is_some_and(|x| o.id == x.key_id) {
            encryption.push(o);
            continue;
        }
        match o.kind {
            ObjectKind::Certificate if ours && o.value.as_deref() == Some(e.cert_der) => certs += 1,
            ObjectKind::Certificate => out.push(violation(
                "token_certificate",
                format!(
                    "token {t} holds {}, which is not certificate {} of this order{}",
                    o.describe(),
                    e.cert_serial,
                    certificate_identity(o.value.as_deref())
                ),
            )),
            ObjectKind::PublicKey if ours => public_keys.push(o),
            ObjectKind::PrivateKey if ours => private_keys.push(o),
            ObjectKind::Data if o.private && o.application.as_deref() == Some(SEAL_APPLICATION) => {
                match seals.iter_mut().find(|(k, _)| seal_label(**k) == o.label) {
                    Some((_, found)) => found.push(o.value.as_deref().unwrap_or_default()),
                    None => out.push(unexpected(t, o)),
                }
            }
            _ => out.push(unexpected(t, o)),
        }
    }
    if certs != 1 {
        out.push(violation(
            "token_certificate",
            format!(
                "token {t} holds certificate {} {certs} times under CKA_ID {} (exactly once expected)",
                e.cert_serial,
                hex::encode(e.key_id)
            ),
        ));
    }
    match (&f.spki, public_keys.len()) {
        (_, 0) | (Err(_), _) => out.push(violation(
            "token_key",
            format!("token {t} holds no public key {}", hex::encode(e.key_id)),
        )),
        (Ok(spki), 1) if Some(spki.as_slice()) == e.spki => {}
        (Ok(_), 1) => out.push(violation(
            "token_key",
            format!("token {t}'s public key is not the recorded one"),
        )),
        (Ok(_), n) => out.push(violation(
            "token_key",
            format!("token {t} holds {n} public keys {}", hex::encode(e.key_id)),
        )),
    }
    for key in public_keys.iter().chain(&private_keys) {
        if let Some(msg) = usage_violation(key) {
            out.push(violation("token_key_usage", format!("token {t}: {msg}")));
        }
    }
    if let Some(x) = &e.encryption {
        out.extend(judge_encryption(t, x, &encryption, f.logged_in));
    } else {
        debug_assert!(encryption.is_empty());
    }
    if !f.logged_in {
        return out;
    }
    match private_keys.as_slice() {
        [] => out.push(violation(
            "token_private_key",
            format!("token {t} lost its private key"),
        )),
        [key] => {
            if let Some(msg) = protection_violation(key) {
                out.push(violation("token_private_key", format!("token {t}: {msg}")));
            }
        }
        more => out.push(violation(
            "token_private_key",
            format!(
                "token {t} holds {} private keys {}",
                more.len(),
                hex::encode(e.key_id)
            ),
        )),
    }
    for (kind, found) in &seals {
        let label = seal_label(**kind);
        match found.as_slice() {
            [] => out.push(violation(
                "token_seals",
                format!("token {t} lacks its seal {label:?}"),
            )),
            [der] => {
                if let Some(msg) = seal_violation(e, **kind, der) {
                    out.push(violation(
                        "token_seal_invalid",
                        format!("token {t}: seal {label:?} {msg}"),
                    ));
                }
            }
            more => out.push(violation(
                "token_seals",
                format!("token {t} holds {} seals labelled {label:?}", more.len()),
            )),
        }
    }
    out
}

/// The encryption half of a dual certificate: exactly its certificate, its public key and
/// (logged in) its private key under its `CKA_ID`, each with exactly its usages.
fn judge_encryption(
    t: &str,
    x: &ExpectedEncryption<'_>,
    objects: &[&TokenObject],
    logged_in: bool,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    let (mut certs, mut publics, mut privates) = (0, 0, 0);
    for o in objects {
        let (want, count) = match o.kind {
            ObjectKind::Certificate if o.value.as_deref() == Some(x.cert_der) => {
                certs += 1;
                continue;
            }
            ObjectKind::PublicKey => (ENCRYPT, &mut publics),
            ObjectKind::PrivateKey => (DECRYPT, &mut privates),
            _ => {
                out.push(unexpected(t, o));
                continue;
            }
        };
        *count += 1;
        let found = o.usage.unwrap_or(KeyUsage::NONE);
        if found != want {
            out.push(violation(
                "token_key_usage",
                format!(
                    "token {t}: {} may {}; its only usage must be {}",
                    o.describe(),
                    list(&found.names()),
                    list(&want.names())
                ),
            ));
        }
        if o.kind == ObjectKind::PrivateKey {
            let protected = o
                .protection
                .is_some_and(|p| p.token && p.private && p.sensitive && !p.extractable && !p.sign);
            if !protected {
                out.push(violation(
                    "token_private_key",
                    format!(
                        "token {t}: {} is not a private, sensitive, unextractable, non-signing token key",
                        o.describe()
                    ),
                ));
            }
        }
    }
    let id = hex::encode(x.key_id);
    for (n, what, needed) in [
        (certs, "encryption certificate", true),
        (publics, "encryption public key", true),
        (privates, "encryption private key", logged_in),
    ] {
        if needed && n != 1 {
            out.push(violation(
                "token_encryption_key",
                format!(
                    "token {t} holds {n} {what}s under CKA_ID {id} (exactly one expected; certificate {})",
                    x.cert_serial
                ),
            ));
        }
    }
    out
}

fn unexpected(t: &str, o: &TokenObject) -> Verdict {
    violation(
        "token_unexpected_object",
        format!(
            "token {t} holds {}, which provisioning never writes",
            o.describe()
        ),
    )
}

/// `: subject ..., serial ...` of a certificate found where it does not belong.
fn certificate_identity(der: Option<&[u8]>) -> String {
    der.and_then(|d| x509_parser::parse_x509_certificate(d).ok())
        .map(|(_, c)| {
            format!(
                " (subject {}, serial {})",
                c.subject(),
                hex::encode(c.raw_serial())
            )
        })
        .unwrap_or_default()
}

/// Why a key's usages are not exactly those the station gives keys of its kind, if they are not.
/// Shared with the station keys' check.
pub(super) fn usage_violation(key: &TokenObject) -> Option<String> {
    let found = key.usage.unwrap_or(KeyUsage::NONE);
    match key.required_usage() {
        Some(required) if required == found => None,
        Some(required) => Some(format!(
            "{} may {}; its only usage must be {}",
            key.describe(),
            list(&found.names()),
            list(&required.names())
        )),
        None => Some(format!(
            "{} is of a type the station never makes ({:?})",
            key.describe(),
            key.key_type
        )),
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// Why a private key is not protected as the station generates them, if it is not. Shared with
/// the station keys' check.
pub(super) fn protection_violation(key: &TokenObject) -> Option<String> {
    let Some(p) = key.protection else {
        return Some(format!("{}: protection unreadable", key.describe()));
    };
    let PrivateKeyAttributes {
        token,
        private,
        sensitive,
        extractable,
        always_sensitive,
        never_extractable,
        local,
        sign: _,
    } = p;
    let broken: Vec<&str> = [
        (!token, "not a token object"),
        (!private, "not private"),
        (!sensitive || !always_sensitive, "not always sensitive"),
        (
            extractable || !never_extractable,
            "extractable (now or once)",
        ),
        (!local, "not generated on the token"),
    ]
    .into_iter()
    .filter_map(|(bad, what)| bad.then_some(what))
    .collect();
    (!broken.is_empty()).then(|| format!("{} is {}", key.describe(), broken.join(", ")))
}

/// Why a seal on the token is not this order's seal of `kind`, if it is not.
fn seal_violation(e: &Expected<'_>, kind: SealKind, der: &[u8]) -> Option<String> {
    let report = verify_seal(der, e.ca_der, Some(e.cert_der), e.now);
    let mut wrong: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} ({})", c.name, c.detail))
        .collect();
    if let Some(seal) = &report.seal {
        if let Some(maker) = e.maker_der
            && seal.cert.as_bytes() != maker
        {
            wrong.push("was not made by this station's seal maker".into());
        }
        let expected_type = match kind {
            SealKind::Company => SealType::Organisation,
            SealKind::LegalRep => SealType::Personal,
        };
        if seal.e_seal_info.property.seal_type != expected_type.code() {
            wrong.push(format!(
                "is of type {} where a {} seal is type {}",
                seal.e_seal_info.property.seal_type,
                kind.as_str(),
                expected_type.code()
            ));
        }
    }
    (!wrong.is_empty()).then(|| format!("is not valid: {}", wrong.join("; ")))
}

#[cfg(test)]
mod tests;
