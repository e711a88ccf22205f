//! The vault token: secrets the station derives and seals inside an HSM.
//!
//! Keys (created by `keystation init`, never extractable, sensitive, private):
//! - `keystation:so-pin-hmac` — HMAC-SHA256 key: SO PIN = f(HMAC(key, "keystation/so-pin/v1" ‖
//!   identity)). The SO PIN of a customer's token is never stored and can always be re-derived
//!   from the token identity recorded with the order.
//! - `keystation:pin-seal-aes` — AES-256 key: a user PIN is sealed with AES-GCM (12-byte IV from
//!   the token's RNG, 128-bit tag); the additional data binds the sealed PIN to its order and
//!   token, so a sealed blob moved to another row fails to open.
//! - `keystation:receipt-hmac` — HMAC-SHA256 key: the MAC of a delivered message, kept as the
//!   receipt that proves what was sent without keeping the message.
//! - `keystation:audit-anchor` — ECDSA P-256 key pair: signs the head of the audit hash chain
//!   from time to time, so a rewritten trail (even one re-hashed end to end) no longer matches a
//!   signature only the HSM could make.
//!
//! The same AES key seals operators' TOTP secrets (AAD: the operator's name, [`totp_aad`]).
//!
//! Object (private `CKO_DATA`, application `keystation:audit`):
//! - `keystation:audit-anchor-held` — the latest anchored audit record (seq, hash, time). It
//!   lives here rather than in the database because a database writer could delete the last
//!   records together with their signed anchors; only a holder of the station PIN can change
//!   this object. It only moves forward ([`Vault::advance_held_anchor`]): a new object is written before the
//!   old one is destroyed, and of several the latest counts.
//!
//! # Security notes
//! The plaintext of a sealed PIN exists only in zeroizing memory between generation and sealing,
//! and between unsealing and sending; so does an escrowed encryption key's. Sealed blobs are safe to store: without the vault token and
//! the station PIN they reveal nothing.

use super::TokenError;
use super::backend::{AesGcm, DataObject, ObjectQuery, ObjectRef, SignMechanism};
use super::keys::SecretKeyKind;
use super::module::Token;
use super::objects::ObjectClassName;
use super::session::TokenSession;
use crate::config::KeyAlgorithm;
use crate::domain::totp::TotpSecret;
use crate::domain::{Pin, SoPin};
use std::sync::{Mutex, PoisonError};
use zeroize::Zeroizing;

const SO_PIN_KEY: &str = "keystation:so-pin-hmac";
const PIN_SEAL_KEY: &str = "keystation:pin-seal-aes";
const RECEIPT_KEY: &str = "keystation:receipt-hmac";
/// The label of the audit anchor key pair: on the vault token (ECDSA P-256), or for an SM2 CA on
/// the CA token (SM2; the vault token, SoftHSM, has no SM2).
pub const ANCHOR_KEY: &str = "keystation:audit-anchor";
const HELD_ANCHOR_APPLICATION: &str = "keystation:audit";
const HELD_ANCHOR_LABEL: &str = "keystation:audit-anchor-held";
const HELD_ANCHOR_MAGIC: &str = "keystation-held-anchor-v1";
const SEALED_MAGIC: &[u8; 4] = b"KSP1";
const IV_LEN: usize = 12;

/// The additional data a user PIN is sealed with ([`Vault::seal_pin`]): its order and the
/// token it opens, so a sealed blob moved to another order or token does not open. Provisioning
/// seals with it, delivery and `check` unseal with it: one definition for all three.
pub fn pin_aad(order_no: &str, token_serial: &str) -> Vec<u8> {
    format!("keystation/pin/v1|order={order_no}|token={token_serial}").into_bytes()
}

pub use crate::domain::pin::{SealedKey, SealedPin};

/// The additional data an escrowed encryption key is sealed with ([`Vault::seal_key`]): its
/// order and its certificate's serial. Another prefix than [`pin_aad`]'s, so a sealed PIN and a
/// sealed key can never stand in for each other.
pub fn escrow_aad(order_no: &str, cert_serial: &str) -> Vec<u8> {
    format!("keystation/escrow/v1|order={order_no}|certificate={cert_serial}").into_bytes()
}

/// The additional data an operator's TOTP secret is sealed with ([`Vault::seal_totp_secret`]):
/// the operator's name, so a sealed secret copied to another account's row does not open. Its
/// own prefix, like [`escrow_aad`]'s.
pub fn totp_aad(operator: &str) -> Vec<u8> {
    format!("keystation/totp/v1|operator={operator}").into_bytes()
}

/// The latest anchored audit record, as the vault holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldAnchor {
    /// The anchored record.
    pub seq: i64,
    /// Its hash (hex).
    pub head_hash: String,
    /// When it was anchored (RFC 3339 UTC).
    pub at: String,
}

impl HeldAnchor {
    fn encode(&self) -> Vec<u8> {
        format!(
            "{HELD_ANCHOR_MAGIC}\nseq={}\nhash={}\nat={}\n",
            self.seq, self.head_hash, self.at
        )
        .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<HeldAnchor> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != HELD_ANCHOR_MAGIC {
            return None;
        }
        let seq = lines.next()?.strip_prefix("seq=")?.parse().ok()?;
        let head_hash = lines.next()?.strip_prefix("hash=")?;
        let at = lines.next()?.strip_prefix("at=")?;
        let well_formed = seq > 0
            && head_hash.len() == 64
            && head_hash.bytes().all(|b| b.is_ascii_hexdigit())
            && lines.next().is_none();
        well_formed.then(|| HeldAnchor {
            seq,
            head_hash: head_hash.to_string(),
            at: at.to_string(),
        })
    }
}

/// A logged-in session on the vault token.
#[derive(Debug)]
pub struct Vault {
    session: TokenSession,
    /// The secret keys' handles, each looked up once in this session: the keys are made at
    /// `init` and never replaced or destroyed.
    keys: Mutex<Vec<(&'static str, ObjectRef)>>,
}

impl Vault {
    /// Logs in to the vault token with the station's PIN.
    pub fn open(token: &mut Token, station_pin: &Pin) -> Result<Vault, TokenError> {
        Ok(Vault {
            session: token.login_user(station_pin)?,
            keys: Mutex::new(Vec::new()),
        })
    }

    /// The handle of the secret key `label`, looked up in the first call of this session.
    fn key(&self, label: &'static str) -> Result<ObjectRef, TokenError> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, key)) = keys.iter().find(|(l, _)| *l == label) {
            return Ok(*key);
        }
        let key = self.session.secret_key(label)?;
        keys.push((label, key));
        Ok(key)
    }

    /// True while the vault session is open and logged in.
    pub fn is_alive(&self) -> bool {
        self.session.is_user_session()
    }

    /// Creates the vault keys (at `keystation init`). Refuses if any exists already.
    pub fn create_keys(&self) -> Result<(), TokenError> {
        for label in [SO_PIN_KEY, PIN_SEAL_KEY, RECEIPT_KEY] {
            if self.session.secret_key(label).is_ok() {
                return Err(TokenError::Unexpected {
                    token: self.session.name(),
                    what: format!("vault key {label:?} already exists"),
                });
            }
        }
        self.session
            .generate_secret_key(SecretKeyKind::HmacSha256, SO_PIN_KEY)?;
        self.session
            .generate_secret_key(SecretKeyKind::Aes256, PIN_SEAL_KEY)?;
        self.session
            .generate_secret_key(SecretKeyKind::HmacSha256, RECEIPT_KEY)?;
        self.session.generate_key_pair(
            KeyAlgorithm::EcdsaP256,
            ANCHOR_KEY.as_bytes(),
            ANCHOR_KEY,
        )?;
        Ok(())
    }

    /// Every object on the vault token (for `keystation check`: each key's usages).
    pub fn inventory(&self) -> Result<Vec<super::TokenObject>, TokenError> {
        self.session.inventory()
    }

    /// The SubjectPublicKeyInfo of the audit anchor key (recorded at init, used by verifiers).
    pub fn anchor_public_key(&self) -> Result<Vec<u8>, TokenError> {
        Ok(self
            .session
            .public_key(ANCHOR_KEY.as_bytes(), KeyAlgorithm::EcdsaP256)?
            .spki_der)
    }

    /// Signs `msg` with the audit anchor key (ECDSA P-256 / SHA-256, DER signature).
    pub fn sign_anchor(&self, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self
            .session
            .find_private_key_by_label(ANCHOR_KEY)?
            .ok_or_else(|| TokenError::Unexpected {
                token: self.session.name(),
                what: format!("no private key labelled {ANCHOR_KEY:?}"),
            })?;
        self.session.sign_x509(key, KeyAlgorithm::EcdsaP256, msg)
    }

    /// The anchor the vault holds; `None` before the first anchor. Several copies (two stations
    /// creating it at once) resolve to the latest; an unreadable one is an error, never `None`.
    pub fn held_anchor(&self) -> Result<Option<HeldAnchor>, TokenError> {
        let mut latest: Option<HeldAnchor> = None;
        for (label, value) in self.session.data_objects(HELD_ANCHOR_APPLICATION)? {
            if label != HELD_ANCHOR_LABEL {
                continue;
            }
            let held = HeldAnchor::decode(&value).ok_or_else(|| TokenError::Unexpected {
                token: self.session.name(),
                what: format!("the held audit anchor {HELD_ANCHOR_LABEL:?} is malformed"),
            })?;
            if latest.as_ref().is_none_or(|l| held.seq > l.seq) {
                latest = Some(held);
            }
        }
        Ok(latest)
    }

    /// Moves the held anchor forward to `next`, never backwards: when the vault already holds a
    /// later record (another station sharing this vault anchored after us), it is kept. The same
    /// seq with another hash is refused (two trails claim one record). Returns what the vault
    /// holds afterwards.
    ///
    /// Callers serialise this read-compare-write (the station holds the database's audit head
    /// lock around it); the comparison keeps the anchor monotonic even if one did not.
    pub fn advance_held_anchor(&self, next: &HeldAnchor) -> Result<HeldAnchor, TokenError> {
        match self.held_anchor()? {
            Some(held) if held.seq > next.seq => Ok(held),
            Some(held) if held.seq == next.seq => {
                if held.head_hash == next.head_hash {
                    Ok(held)
                } else {
                    Err(TokenError::Unexpected {
                        token: self.session.name(),
                        what: format!(
                            "the vault holds another hash for audit record {}; refusing to \
                             replace it",
                            held.seq
                        ),
                    })
                }
            }
            _ => {
                // New object first, then the old ones go: interrupted in between, the vault holds
                // both and [`Vault::held_anchor`] reads the later, so it never goes back.
                let value = next.encode();
                // Every station reads this vault: no process reads it half-written.
                let _writing = self.session.writing_store();
                self.session.write_data(&DataObject::private(
                    HELD_ANCHOR_APPLICATION,
                    HELD_ANCHOR_LABEL,
                    &value,
                ))?;
                self.destroy_held_anchors_except(&value)?;
                Ok(next.clone())
            }
        }
    }

    /// Destroys every held-anchor object but one holding `keep`. Modules may refuse to change
    /// `CKA_VALUE` in place (SoftHSM does), so the held anchor is replaced, not updated.
    fn destroy_held_anchors_except(&self, keep: &[u8]) -> Result<(), TokenError> {
        let s = &self.session;
        let handles = s.backend.find(
            &ObjectQuery::class(ObjectClassName::Data)
                .application(HELD_ANCHOR_APPLICATION)
                .label(HELD_ANCHOR_LABEL),
        )?;
        let mut kept = false;
        for h in handles {
            let holds_keep = s.backend.object(h)?.value.as_deref() == Some(keep);
            if holds_keep && !kept {
                kept = true;
            } else {
                s.backend.destroy(h)?;
            }
        }
        Ok(())
    }

    fn hmac(&self, key_label: &'static str, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self.key(key_label)?;
        self.session
            .backend
            .sign(key, SignMechanism::Sha256Hmac, data)
    }

    /// Derives the SO PIN of the token with `identity` (see the provisioning docs for what the
    /// identity is). Deterministic: the same identity always gives the same SO PIN.
    pub fn derive_so_pin(&self, identity: &str) -> Result<SoPin, TokenError> {
        let mut input = b"keystation/so-pin/v1\0".to_vec();
        input.extend_from_slice(identity.as_bytes());
        let mac = Zeroizing::new(self.hmac(SO_PIN_KEY, &input)?);
        SoPin::from_mac(&mac).ok_or_else(|| TokenError::Unexpected {
            token: self.session.name(),
            what: "the HMAC is too short for an SO PIN".into(),
        })
    }

    /// The SO PIN of generation `generation` of the token with `identity`: generation 0 is
    /// [`Self::derive_so_pin`] (every token provisioned before SO PIN rotation), a later one
    /// mixes the generation in. Callers go through `station::service_desk::so_pin`, which knows
    /// a binding's current generation.
    pub fn derive_so_pin_generation(
        &self,
        identity: &str,
        generation: u32,
    ) -> Result<SoPin, TokenError> {
        if generation == 0 {
            return self.derive_so_pin(identity);
        }
        self.derive_so_pin(&format!("{identity}\0generation={generation}"))
    }

    /// MAC of a delivered message under the receipt key (hex).
    pub fn receipt_mac(&self, data: &[u8]) -> Result<String, TokenError> {
        let mut input = b"keystation/receipt/v1\0".to_vec();
        input.extend_from_slice(data);
        Ok(hex::encode(self.hmac(RECEIPT_KEY, &input)?))
    }

    /// Seals `plain` with AES-GCM inside the vault: `KSP1 ‖ IV ‖ ciphertext ‖ tag`.
    fn seal_bytes(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, TokenError> {
        let key = self.key(PIN_SEAL_KEY)?;
        let iv = self.session.random(IV_LEN)?;
        let ct = self
            .session
            .backend
            .encrypt(key, AesGcm { iv: &iv, aad }, plain)?;
        let mut out = SEALED_MAGIC.to_vec();
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what [`Vault::seal_bytes`] sealed; `what` names it in the error.
    fn unseal_bytes(
        &self,
        blob: &[u8],
        aad: &[u8],
        what: &str,
    ) -> Result<Zeroizing<Vec<u8>>, TokenError> {
        let bad = || TokenError::Unexpected {
            token: self.session.name(),
            what: format!("{what} is malformed or does not belong to this order"),
        };
        if blob.len() < SEALED_MAGIC.len() + IV_LEN + 16 || !blob.starts_with(SEALED_MAGIC) {
            return Err(bad());
        }
        let iv = &blob[4..4 + IV_LEN];
        let ct = &blob[4 + IV_LEN..];
        let key = self.key(PIN_SEAL_KEY)?;
        Ok(Zeroizing::new(
            self.session
                .backend
                .decrypt(key, AesGcm { iv, aad }, ct)
                .map_err(|_| bad())?,
        ))
    }

    /// Seals `pin` with AES-GCM inside the vault; `aad` binds it to its order and token.
    pub fn seal_pin(&self, pin: &Pin, aad: &[u8]) -> Result<SealedPin, TokenError> {
        // Exposed to the vault's AES-GCM only: sealing is what makes storing it acceptable.
        Ok(SealedPin(
            self.seal_bytes(pin.expose_secret().as_bytes(), aad)?,
        ))
    }

    /// Opens a sealed PIN; fails if the blob or `aad` was altered.
    pub fn unseal_pin(&self, sealed: &SealedPin, aad: &[u8]) -> Result<Pin, TokenError> {
        let what = "sealed PIN (of this order and token)";
        let plain = self.unseal_bytes(&sealed.0, aad, what)?;
        let text = std::str::from_utf8(&plain).map_err(|_| TokenError::Unexpected {
            token: self.session.name(),
            what: format!("{what} is malformed"),
        })?;
        Ok(Pin::from_secret(Zeroizing::new(text.to_string())))
    }

    /// Seals the escrow copy of a dual certificate's encryption private key (the raw scalar)
    /// with AES-GCM inside the vault; `aad` ([`escrow_aad`]) binds it to its order and
    /// certificate.
    pub fn seal_key(&self, secret: &[u8], aad: &[u8]) -> Result<SealedKey, TokenError> {
        Ok(SealedKey(self.seal_bytes(secret, aad)?))
    }

    /// Opens an escrowed key; fails if the blob or `aad` was altered.
    pub fn unseal_key(
        &self,
        sealed: &SealedKey,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TokenError> {
        self.unseal_bytes(
            &sealed.0,
            aad,
            "escrowed key (of this order and certificate)",
        )
    }

    /// Seals an operator's TOTP secret with AES-GCM inside the vault, like a PIN or an escrowed
    /// key; `aad` ([`totp_aad`]) binds it to the operator.
    pub fn seal_totp_secret(
        &self,
        secret: &TotpSecret,
        aad: &[u8],
    ) -> Result<SealedKey, TokenError> {
        // Exposed to the vault's AES-GCM only: sealing is what makes storing it acceptable.
        Ok(SealedKey(self.seal_bytes(secret.expose_secret(), aad)?))
    }

    /// Opens an operator's sealed TOTP secret; fails if the blob or `aad` was altered.
    pub fn unseal_totp_secret(
        &self,
        sealed: &SealedKey,
        aad: &[u8],
    ) -> Result<TotpSecret, TokenError> {
        let plain = self.unseal_bytes(&sealed.0, aad, "sealed TOTP secret (of this operator)")?;
        Ok(TotpSecret::from_bytes(plain))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn held() -> HeldAnchor {
        HeldAnchor {
            seq: 42,
            head_hash: "ab".repeat(32),
            at: "2026-11-24T05:00:00.000000Z".into(),
        }
    }

    #[test]
    fn held_anchor_round_trips() {
        assert_eq!(HeldAnchor::decode(&held().encode()), Some(held()));
    }

    #[test]
    fn malformed_held_anchors_are_refused() {
        let good = String::from_utf8(held().encode()).unwrap();
        for bad in [
            good.replace(HELD_ANCHOR_MAGIC, "keystation-held-anchor-v0"),
            good.replace("seq=42", "seq=-1"),
            good.replace("seq=42", "seq=x"),
            good.replace(&"ab".repeat(32), "abcd"),
            good.replace(&"ab".repeat(32), &"zz".repeat(32)),
            format!("{good}extra\n"),
            String::new(),
        ] {
            assert_eq!(HeldAnchor::decode(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
