//! The two codes of a remote unlock, as text a person can paste: the request code the
//! customer's tool prints (`KSUR1-...`) and the authorisation code the station e-mails back
//! (`KSUA1-...`).
//!
//! Request code (public): version, the token's serial, the tool's ephemeral X25519 public key,
//! a 16-byte request nonce, and a 4-byte SHA-256 checksum against typing errors; base64url.
//!
//! Authorisation code: version, expiry (Unix seconds), the station's ephemeral X25519 public
//! key, a 12-byte nonce, and AES-256-GCM of {current SO PIN, next SO PIN}. The key is
//! HKDF-SHA256 of the X25519 agreement between the station's ephemeral key and the tool's,
//! salted with a fixed label and bound to both public keys; the additional data binds the
//! token's serial, the request nonce and the expiry. Only the tool process that printed the
//! request code holds the private half (in memory only), so only it opens the code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::SoPin;

/// Prefix of a request code.
pub const REQUEST_PREFIX: &str = "KSUR1-";
/// Prefix of an authorisation code.
pub const AUTH_PREFIX: &str = "KSUA1-";
const VERSION: u8 = 1;
const KEY_LEN: usize = 32;
/// Length of the request nonce.
pub const REQUEST_NONCE_LEN: usize = 16;
const CHECKSUM_LEN: usize = 4;
const SERIAL_MAX: usize = 64;
const HKDF_SALT: &[u8] = b"keystation/unlock/v1";

/// Why a code is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// Not a code of this kind, or mistyped (checksum, length).
    #[error("{what} is malformed: {why}")]
    Malformed {
        /// Which code.
        what: &'static str,
        /// Why.
        why: &'static str,
    },
    /// The authorisation code expired before it was used.
    #[error("the unlock authorisation code expired at {expires_at} (Unix time); ask for a new one")]
    Expired {
        /// When it expired (Unix seconds).
        expires_at: u64,
    },
    /// The code does not open with this request's key: another request's, altered, or replayed.
    #[error(
        "the unlock authorisation code does not belong to this request and token (another \
         request's code, a used one, or altered)"
    )]
    NotForThisRequest,
    /// The platform's cryptography failed.
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
}

fn malformed(what: &'static str, why: &'static str) -> CodeError {
    CodeError::Malformed { what, why }
}

/// What a request code carries (public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRequestCode {
    /// The token's serial (as `C_GetTokenInfo` gives it, trimmed).
    pub token_serial: String,
    /// The tool's ephemeral X25519 public key.
    pub ephemeral_public: [u8; KEY_LEN],
    /// Chosen by the tool for this request.
    pub request_nonce: [u8; REQUEST_NONCE_LEN],
}

impl UnlockRequestCode {
    /// The code text, `KSUR1-...`.
    pub fn encode(&self) -> String {
        let mut b = vec![VERSION, self.token_serial.len() as u8];
        b.extend_from_slice(self.token_serial.as_bytes());
        b.extend_from_slice(&self.ephemeral_public);
        b.extend_from_slice(&self.request_nonce);
        let sum = Sha256::digest(&b);
        b.extend_from_slice(&sum[..CHECKSUM_LEN]);
        format!("{REQUEST_PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
    }

    /// Parses a pasted code (surrounding whitespace ignored).
    pub fn decode(text: &str) -> Result<UnlockRequestCode, CodeError> {
        const W: &str = "the unlock request code";
        let body = text
            .trim()
            .strip_prefix(REQUEST_PREFIX)
            .ok_or_else(|| malformed(W, "it does not begin with KSUR1-"))?;
        let b = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| malformed(W, "not base64url"))?;
        if b.len() < 2 + KEY_LEN + REQUEST_NONCE_LEN + CHECKSUM_LEN {
            return Err(malformed(W, "too short"));
        }
        let (payload, sum) = b.split_at(b.len() - CHECKSUM_LEN);
        if Sha256::digest(payload)[..CHECKSUM_LEN] != *sum {
            return Err(malformed(W, "checksum mismatch (mistyped?)"));
        }
        if payload[0] != VERSION {
            return Err(malformed(W, "unknown version"));
        }
        let n = usize::from(payload[1]);
        if n == 0 || n > SERIAL_MAX || payload.len() != 2 + n + KEY_LEN + REQUEST_NONCE_LEN {
            return Err(malformed(W, "wrong length"));
        }
        let serial = std::str::from_utf8(&payload[2..2 + n])
            .map_err(|_| malformed(W, "the serial is not text"))?;
        if !serial.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(malformed(W, "the serial is not printable"));
        }
        let mut ephemeral_public = [0u8; KEY_LEN];
        ephemeral_public.copy_from_slice(&payload[2 + n..2 + n + KEY_LEN]);
        let mut request_nonce = [0u8; REQUEST_NONCE_LEN];
        request_nonce.copy_from_slice(&payload[2 + n + KEY_LEN..]);
        Ok(UnlockRequestCode {
            token_serial: serial.to_string(),
            ephemeral_public,
            request_nonce,
        })
    }
}

/// The secrets an authorisation code carries.
#[derive(Debug)]
pub struct UnlockSecrets {
    /// The token's SO PIN now.
    pub current_so_pin: SoPin,
    /// The SO PIN the tool rotates it to.
    pub next_so_pin: SoPin,
}

fn aad(serial: &str, request_nonce: &[u8], expires_at: u64) -> Vec<u8> {
    format!(
        "keystation/unlock/v1|serial={serial}|request={}|expires={expires_at}",
        hex::encode(request_nonce)
    )
    .into_bytes()
}

fn aead_key(
    shared: &[u8],
    tool_public: &[u8],
    station_public: &[u8],
) -> Result<LessSafeKey, CodeError> {
    let info = [tool_public, station_public];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(shared);
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .map_err(|_| CodeError::Crypto("HKDF"))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// A fresh X25519 key pair for one agreement, and its public half.
fn ephemeral_key(
    rng: &SystemRandom,
) -> Result<(EphemeralPrivateKey, agreement::PublicKey), CodeError> {
    let private =
        EphemeralPrivateKey::generate(&X25519, rng).map_err(|_| CodeError::Crypto("X25519"))?;
    let public = private
        .compute_public_key()
        .map_err(|_| CodeError::Crypto("X25519"))?;
    Ok((private, public))
}

fn push_secret(out: &mut Zeroizing<Vec<u8>>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn take_secret(b: &[u8]) -> Option<(SoPin, &[u8])> {
    let (&n, rest) = b.split_first()?;
    let n = usize::from(n);
    if rest.len() < n {
        return None;
    }
    let text = std::str::from_utf8(&rest[..n]).ok()?;
    Some((
        SoPin::from_secret(Zeroizing::new(text.to_string())),
        &rest[n..],
    ))
}

/// The station's side: the authorisation code for `request`, expiring at `expires_at` (Unix
/// seconds), carrying `secrets`. A fresh station key per code.
pub fn seal_authorisation(
    request: &UnlockRequestCode,
    expires_at: u64,
    secrets: &UnlockSecrets,
) -> Result<String, CodeError> {
    let rng = SystemRandom::new();
    let (private, public) = ephemeral_key(&rng)?;
    let station_public = public.as_ref().to_vec();
    let peer = UnparsedPublicKey::new(&X25519, request.ephemeral_public);
    let key = agreement::agree_ephemeral(private, &peer, |shared| {
        aead_key(shared, &request.ephemeral_public, &station_public)
    })
    .map_err(|_| CodeError::Crypto("X25519 agreement"))??;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce)
        .map_err(|_| CodeError::Crypto("random"))?;
    let mut buf = Zeroizing::new(Vec::new());
    push_secret(&mut buf, secrets.current_so_pin.expose_secret());
    push_secret(&mut buf, secrets.next_so_pin.expose_secret());
    // Room for the tag up front: no reallocation leaves a copy of the plaintext behind.
    let mut ct = Vec::with_capacity(buf.len() + AES_256_GCM.tag_len());
    ct.extend_from_slice(&buf);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(
            &request.token_serial,
            &request.request_nonce,
            expires_at,
        )),
        &mut ct,
    )
    .map_err(|_| CodeError::Crypto("AES-GCM"))?;
    let mut out = vec![VERSION];
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(&station_public);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(format!("{AUTH_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// An authorisation code parsed, not yet opened.
#[derive(Debug, Clone)]
pub struct AuthorisationCode {
    /// When it expires (Unix seconds).
    pub expires_at: u64,
    station_public: [u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl AuthorisationCode {
    /// Parses a pasted code (whitespace anywhere ignored: mail clients wrap long lines).
    pub fn decode(text: &str) -> Result<AuthorisationCode, CodeError> {
        const W: &str = "the unlock authorisation code";
        let compact: String = text.split_whitespace().collect();
        let body = compact
            .strip_prefix(AUTH_PREFIX)
            .ok_or_else(|| malformed(W, "it does not begin with KSUA1-"))?;
        let b = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| malformed(W, "not base64url"))?;
        let head = 1 + 8 + KEY_LEN + NONCE_LEN;
        if b.len() < head + 16 {
            return Err(malformed(W, "too short"));
        }
        if b[0] != VERSION {
            return Err(malformed(W, "unknown version"));
        }
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&b[1..9]);
        let mut station_public = [0u8; KEY_LEN];
        station_public.copy_from_slice(&b[9..9 + KEY_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[9 + KEY_LEN..head]);
        Ok(AuthorisationCode {
            expires_at: u64::from_be_bytes(exp),
            station_public,
            nonce,
            ciphertext: b[head..].to_vec(),
        })
    }

    /// Refuses the code if it expired at `now` (Unix seconds).
    pub fn check_expiry(&self, now: u64) -> Result<(), CodeError> {
        if now >= self.expires_at {
            return Err(CodeError::Expired {
                expires_at: self.expires_at,
            });
        }
        Ok(())
    }

    /// The tool's side: opens the code with the private key of `request` (consumed: one try).
    /// Checks the expiry against `now` first.
    pub fn open(
        &self,
        private: EphemeralPrivateKey,
        request: &UnlockRequestCode,
        now: u64,
    ) -> Result<UnlockSecrets, CodeError> {
        self.check_expiry(now)?;
        let peer = UnparsedPublicKey::new(&X25519, self.station_public);
        let key = agreement::agree_ephemeral(private, &peer, |shared| {
            aead_key(shared, &request.ephemeral_public, &self.station_public)
        })
        .map_err(|_| CodeError::NotForThisRequest)??;
        let mut buf = Zeroizing::new(self.ciphertext.clone());
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(aad(
                    &request.token_serial,
                    &request.request_nonce,
                    self.expires_at,
                )),
                &mut buf,
            )
            .map_err(|_| CodeError::NotForThisRequest)?;
        let bad = CodeError::NotForThisRequest;
        let (current_so_pin, rest) = take_secret(plain).ok_or(bad.clone())?;
        let (next_so_pin, rest) = take_secret(rest).ok_or(bad.clone())?;
        if !rest.is_empty() {
            return Err(bad);
        }
        Ok(UnlockSecrets {
            current_so_pin,
            next_so_pin,
        })
    }
}

/// A new request: an ephemeral key pair (the private half returned, to stay in memory) and the
/// request code for `token_serial`.
pub fn new_request(
    token_serial: &str,
) -> Result<(EphemeralPrivateKey, UnlockRequestCode), CodeError> {
    let serial = token_serial.trim();
    if serial.is_empty()
        || serial.len() > SERIAL_MAX
        || !serial.bytes().all(|c| c.is_ascii_graphic())
    {
        return Err(malformed(
            "the token serial",
            "empty, too long or not printable",
        ));
    }
    let rng = SystemRandom::new();
    let (private, public) = ephemeral_key(&rng)?;
    let mut ephemeral_public = [0u8; KEY_LEN];
    ephemeral_public.copy_from_slice(public.as_ref());
    let mut request_nonce = [0u8; REQUEST_NONCE_LEN];
    rng.fill(&mut request_nonce)
        .map_err(|_| CodeError::Crypto("random"))?;
    Ok((
        private,
        UnlockRequestCode {
            token_serial: serial.to_string(),
            ephemeral_public,
            request_nonce,
        },
    ))
}

#[cfg(test)]
mod tests;
