//! The station's OCSP responder: answers from the database's issuance and revocation records,
//! signed on the CA token by the installation's delegated OCSP signer (`super::ocsp_signer`),
//! encoded by [`crate::ca::ocsp`]. `keystation serve` puts it behind HTTP.
//!
//! HSM-friendly: the answer to a request without a nonce is kept and handed out again, unsigned
//! anew, until half of its validity (`ocsp.response_validity_secs`) has passed; a request with a
//! nonce gets an answer signed for it alone. Whatever an answer depends on — revocations,
//! issuances, the signer — has a cheap revision in the database ([`Store::status_revision`]);
//! [`OcspResponder::refresh`], called every second by the server, drops every kept answer when
//! it changes, also when another station sharing the database made the change. A status read
//! before such a change is never kept after it: answers carry the generation of the cache they
//! were computed in, and are dropped when it has moved on.
//!
//! Never an error to the caller: every failure is an OCSP error status (a store or HSM failure is
//! `tryLater`, and a revision that cannot be read drops the kept answers, so that a database out
//! of reach is never papered over with answers that may have gone stale).

use super::Station;
use super::hsm::{Hsm, HsmError, blocking};
use crate::ca::ocsp::asn1::ResponseStatus;
use crate::ca::ocsp::{
    IssuerHashes, OcspError, ParsedRequest, ResponderKey, Status, Validity, check_issuer,
    crl_reason, error_response, parse_request, response_data, serial_hex, signed_response,
};
use crate::clock::parse_utc;
use crate::domain::KeyAlgorithm;
use crate::store::{IssuedStatus, OcspSignerRecord, StatusRevision, Store, StoreError};
use crate::token::{TokenError, TokenSigner};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use time::OffsetDateTime;

/// How long one database read of a request may take before the answer is `tryLater`.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);
/// Most answers kept; past it the cache starts over (a flood of distinct serials cannot grow
/// the process without bound).
const MAX_CACHED: usize = 100_000;

/// Why the responder cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspStartError {
    /// The installation has no OCSP signer.
    #[error("the installation has no OCSP signer: make one with `keystation ca ocsp-signer`")]
    NoSigner,
    /// The signer or CA certificate cannot be used.
    #[error(transparent)]
    Ocsp(#[from] OcspError),
    /// The HSM context could not be opened.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The signer's key is not on the CA token (or does not match its certificate).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How an HTTP front may cache an answer (RFC 5019 §6): only answers to requests without a
/// nonce have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    /// thisUpdate (Last-Modified).
    pub this_update: OffsetDateTime,
    /// nextUpdate (Expires; max-age counts down to it).
    pub next_update: OffsetDateTime,
    /// A strong validator: SHA-256 of the DER answer, hex.
    pub etag: String,
}

/// The DER OCSPResponse for one request, and how it may be cached.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The DER OCSPResponse (an error status included).
    pub der: Arc<Vec<u8>>,
    /// Its responseStatus.
    pub status: ResponseStatus,
    /// Set for a successful answer to a request without a nonce.
    pub freshness: Option<Freshness>,
}

impl OcspAnswer {
    fn error(status: ResponseStatus) -> OcspAnswer {
        OcspAnswer {
            der: Arc::new(error_response(status)),
            status,
            freshness: None,
        }
    }
}

/// The signer in use: its certificate's key as answers name it, and logged-in sessions on its
/// key (one per concurrent signature).
struct ActiveSigner {
    key: ResponderKey,
    key_id: Vec<u8>,
    sessions: Mutex<Vec<TokenSigner>>,
}

struct Kept {
    answer: OcspAnswer,
    refresh_at: OffsetDateTime,
}

#[derive(Default)]
struct Cache {
    generation: u64,
    revision: Option<StatusRevision>,
    answers: HashMap<Vec<u8>, Kept>,
}

/// The responder of one station process; shared by the server's tasks (`Arc`).
pub struct OcspResponder {
    station: Station,
    hsm: Hsm,
    issuer: IssuerHashes,
    algorithm: KeyAlgorithm,
    signer: RwLock<Arc<ActiveSigner>>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Station {
    /// The OCSP responder of this station: the CA certificate, the installation's OCSP signer
    /// (its key opened on the CA token and checked against its certificate).
    pub async fn ocsp_responder(&self) -> Result<OcspResponder, OcspStartError> {
        let algorithm = self.config.ca.key_algorithm;
        let hsm = self.open_hsm().await?;
        let issuer = IssuerHashes::of_ca(hsm.ca_cert_der())?;
        let record = self
            .store
            .ocsp_signer()
            .await?
            .ok_or(OcspStartError::NoSigner)?;
        let signer = blocking(|| open_signer(&hsm, &record, algorithm))?;
        let responder = OcspResponder {
            station: self.clone(),
            hsm,
            issuer,
            algorithm,
            signer: RwLock::new(Arc::new(signer)),
            cache: Mutex::default(),
        };
        responder.refresh().await?;
        Ok(responder)
    }
}

/// Opens the signer's key by its CKA_ID and checks it is its certificate's (blocking).
fn open_signer(
    hsm: &Hsm,
    record: &OcspSignerRecord,
    algorithm: KeyAlgorithm,
) -> Result<ActiveSigner, OcspStartError> {
    let key = ResponderKey::new(&record.cert_der, algorithm)?;
    let session = hsm.ca_token_signer_by_id(&record.key_id)?;
    let cert_spki = crate::x509::parse_certificate(&record.cert_der)
        .map(|c| c.public_key().raw.to_vec())
        .map_err(|e| OcspError::Responder(format!("OCSP signer certificate: {e}")))?;
    if cert_spki != session.public().spki_der {
        return Err(OcspError::Responder(format!(
            "the key with CKA_ID {} on the CA token is not the OCSP signer certificate's",
            hex::encode(&record.key_id)
        ))
        .into());
    }
    Ok(ActiveSigner {
        key,
        key_id: record.key_id.clone(),
        sessions: Mutex::new(vec![session]),
    })
}

impl OcspResponder {
    fn store(&self) -> &Store {
        &self.station.store
    }

    /// The station clock's now (the HTTP front counts `max-age` down from it).
    pub fn now(&self) -> OffsetDateTime {
        self.station.clock.now()
    }

    /// Reads the status revision; when it changed (or cannot be read) every kept answer is
    /// dropped, and a new OCSP signer is taken into use. The server calls it every second.
    pub async fn refresh(&self) -> Result<(), OcspStartError> {
        let revision = tokio::time::timeout(STORE_TIMEOUT, self.store().status_revision())
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Corrupt(
                    "the revocation revision did not come within the timeout".into(),
                ))
            });
        let revision = match revision {
            Ok(r) => r,
            Err(e) => {
                self.drop_answers(None);
                return Err(e.into());
            }
        };
        let changed = lock(&self.cache).revision.as_ref() != Some(&revision);
        if !changed {
            return Ok(());
        }
        let record = self.store().ocsp_signer().await?;
        let current = self.current_signer();
        if let Some(record) = record.filter(|r| r.key_id != current.key_id) {
            let algorithm = self.algorithm;
            let hsm = &self.hsm;
            let signer = blocking(|| open_signer(hsm, &record, algorithm))?;
            *self.signer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(signer);
            tracing::info!(key_id = %hex::encode(&record.key_id), "OCSP signer renewed: in use");
        }
        self.drop_answers(Some(revision));
        Ok(())
    }

    fn drop_answers(&self, revision: Option<StatusRevision>) {
        let mut cache = lock(&self.cache);
        cache.generation += 1;
        cache.answers.clear();
        cache.revision = revision;
    }

    fn current_signer(&self) -> Arc<ActiveSigner> {
        self.signer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The answer to the DER OCSPRequest `body`; see the module docs.
    pub async fn answer(&self, body: &[u8]) -> OcspAnswer {
        let request = match parse_request(body) {
            Ok(r) => r,
            Err(e) => return OcspAnswer::error(e.status()),
        };
        if let Err(e) = check_issuer(&request, &self.issuer) {
            return OcspAnswer::error(e.status());
        }
        let now = self.station.clock.now();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let key = request.cache_key();
        let generation = {
            let cache = lock(&self.cache);
            if let Some(kept) = key.as_ref().and_then(|k| cache.answers.get(k)) {
                if now < kept.refresh_at {
                    return kept.answer.clone();
                }
            }
            cache.generation
        };
        let statuses = match self.statuses(&request).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "OCSP: the certificates' status could not be read: tryLater");
                return OcspAnswer::error(ResponseStatus::TryLater);
            }
        };
        let validity_secs = self.station.config.ocsp.response_validity_secs;
        let validity = Validity {
            produced_at: now,
            this_update: now,
            next_update: now + Duration::from_secs(validity_secs),
        };
        let der = match self.sign(&request, &statuses, validity) {
            Ok(der) => Arc::new(der),
            Err(status) => return OcspAnswer::error(status),
        };
        let freshness = key.is_some().then(|| Freshness {
            this_update: validity.this_update,
            next_update: validity.next_update,
            etag: crate::x509::sha256_fingerprint(&der),
        });
        let answer = OcspAnswer {
            der,
            status: ResponseStatus::Successful,
            freshness,
        };
        if let Some(key) = key {
            let mut cache = lock(&self.cache);
            if cache.generation == generation {
                if cache.answers.len() >= MAX_CACHED {
                    cache.answers.clear();
                }
                cache.answers.insert(
                    key,
                    Kept {
                        answer: answer.clone(),
                        refresh_at: now + Duration::from_secs(validity_secs / 2),
                    },
                );
            }
        }
        answer
    }

    /// One status per CertID of `request`.
    async fn statuses(&self, request: &ParsedRequest) -> Result<Vec<Status>, StoreError> {
        let mut statuses = Vec::with_capacity(request.cert_ids.len());
        for id in &request.cert_ids {
            let serial = match serial_hex(id) {
                Some(s) if self.issuer.names(id) => s,
                _ => {
                    statuses.push(Status::Unknown);
                    continue;
                }
            };
            let found = tokio::time::timeout(STORE_TIMEOUT, self.store().issued_status(&serial))
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Corrupt(
                        "a certificate's status did not come within the timeout".into(),
                    ))
                })?;
            statuses.push(match found {
                None => Status::Unknown,
                Some(IssuedStatus::Live) => Status::Good,
                Some(IssuedStatus::Revoked { reason, revoked_at }) => Status::Revoked {
                    at: parse_utc(&revoked_at).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "revocation time {revoked_at:?} of certificate {serial}"
                        ))
                    })?,
                    reason: crl_reason(&reason),
                },
            });
        }
        Ok(statuses)
    }

    /// Encodes and signs the answer on the token (blocking the worker thread only).
    fn sign(
        &self,
        request: &ParsedRequest,
        statuses: &[Status],
        validity: Validity,
    ) -> Result<Vec<u8>, ResponseStatus> {
        let signer = self.current_signer();
        let tbs = response_data(&signer.key, request, statuses, validity).map_err(|e| {
            tracing::error!(error = %e, "OCSP: encoding an answer failed");
            ResponseStatus::InternalError
        })?;
        let signature = blocking(|| -> Result<Vec<u8>, TokenError> {
            let session = lock(&signer.sessions).pop();
            let session = match session {
                Some(s) if s.is_alive() => s,
                _ => self.hsm.ca_token_signer_by_id(&signer.key_id)?,
            };
            let signature = session.sign_message(&tbs);
            if signature.is_ok() {
                lock(&signer.sessions).push(session);
            }
            signature
        })
        .map_err(|e| {
            tracing::warn!(error = %e, "OCSP: the signer's token did not sign: tryLater");
            ResponseStatus::TryLater
        })?;
        signed_response(&signer.key, &tbs, &signature).map_err(|e| {
            tracing::error!(error = %e, "OCSP: encoding an answer failed");
            ResponseStatus::InternalError
        })
    }
}
