//! The CA's certificate revocation lists: issuing one (`keystation ca crl`, after every
//! revocation, at `init`), keeping them current (`crl_tick`, called by the serving loop), and
//! handing the newest one to the distribution point.
//!
//! Issuing is ONE transaction: it takes the audit head, reads every revocation recorded, has the
//! store allocate the next CRL number, signs the CRL with the CA key in the HSM, records it and
//! its `crl.issued` audit event, and commits. Then the CRL is written into the publication
//! directory (`[crl] publish_dir`, at the path of `[ca] crl_url`). The database is the record:
//! a CRL that was committed but not written (a full disk) is written by the next `crl_tick`,
//! which also brings the CRLs another station issued into this station's directory.
//!
//! An SM2 CA's CRLs are signed with SM2-with-SM3 on its token, as its certificates are (see
//! [`crate::ca::crl`]).

mod publish;

use super::Station;
use super::hsm::{Hsm, HsmError, blocking};
use crate::audit::event::{AuditEvent, CrlIssued};
use crate::ca::CaError;
use crate::ca::crl::{RevokedEntry, build_crl, reason_from_name};
use crate::clock::{format_utc, parse_utc};
use crate::domain::Action;
use crate::domain::crl::{CrlDue, CrlSchedule, CrlUrlError, NewestCrl, publication_path};
/// A CRL as the history lists it.
pub use crate::store::CrlSummary;
use crate::store::{Actor, AuditEntry, CrlRecord, NewCrl, RevocationRecord, StoreError};
use crate::token::TokenError;
use std::path::PathBuf;
use time::OffsetDateTime;

/// Why no CRL was issued or published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// `[ca] crl_url` names no place in the publication directory.
    #[error("[ca] crl_url: {0}")]
    Url(#[from] CrlUrlError),
    /// A recorded revocation cannot be listed (a bug or tampering).
    #[error("revocation of certificate {serial}: {reason}")]
    Revocation {
        /// The certificate (hex serial).
        serial: String,
        /// What is wrong with the record.
        reason: String,
    },
    /// The HSM context could not be opened.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The CA token failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Building or signing the CRL failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CRL was issued and recorded but could not be written into the publication directory.
    #[error(
        "CRL {number} was issued but not written to {path}: {source}; the next `keystation ca crl` \
         or serving loop writes it"
    )]
    Publish {
        /// The CRL's number.
        number: i64,
        /// Where it was to go.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// A CRL that was issued.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrlReport {
    /// CRL number.
    pub number: i64,
    /// thisUpdate (RFC 3339 UTC).
    pub this_update: String,
    /// nextUpdate (RFC 3339 UTC).
    pub next_update: String,
    /// How many revoked certificates it lists.
    pub entries: i64,
    /// Where it was published.
    pub path: PathBuf,
    /// Where relying parties fetch it (`[ca] crl_url`).
    pub url: String,
    /// The signed CRL.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// The newest CRL, as the distribution point serves it.
#[derive(Debug, Clone)]
pub struct CurrentCrl {
    /// CRL number.
    pub number: i64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// The signed CRL.
    pub der: Vec<u8>,
}

/// What one `crl_tick` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CrlTick {
    /// Why a new CRL was due, and the CRL issued.
    pub issued: Option<(CrlDue, CrlReport)>,
    /// The newest CRL, issued elsewhere or earlier, written again into this station's
    /// publication directory.
    pub republished: Option<PathBuf>,
}

/// What became of the CRL a change asks for (a revocation, a new installation); the change
/// itself is committed either way.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum CrlOutcome {
    /// The new CRL lists the revocation.
    Issued(CrlReport),
    /// Issuing failed: the revocation stands, no CRL lists it yet.
    Failed {
        /// The error.
        error: String,
    },
}

impl Station {
    /// Issues the next CRL now (`ca crl`, see the module docs), as the operator the command
    /// proves (credential or mapped OS user) holding [`Action::ManageCa`]: refused before
    /// anything is signed otherwise. Its `crl.issued` record names that operator.
    pub async fn issue_crl(&self, hsm: &Hsm, now: OffsetDateTime) -> Result<CrlReport, CrlError> {
        let (_, actor) = self.acting_operator(None, Action::ManageCa).await?;
        match self.issue_if(hsm, now, "command", false, &actor).await? {
            Some(report) => Ok(report),
            // Without the re-check a CRL is always issued.
            None => unreachable!(),
        }
    }

    /// Keeps the published CRL current: issues one when it is due ([`CrlSchedule::due`]: none
    /// yet, a quarter of the newest one's validity left, a revocation it does not list), else
    /// writes the newest recorded CRL into the publication directory when the file there is
    /// missing or older. Called every few seconds by a serving process.
    pub async fn crl_tick(&self, hsm: &Hsm, now: OffsetDateTime) -> Result<CrlTick, CrlError> {
        let newest = self.store.newest_crl().await?;
        let revocations = self.store.revocation_count().await?;
        let state = newest.as_ref().map(newest_state).transpose()?;
        if let Some(due) = self.schedule().due(state.as_ref(), revocations, now) {
            let actor = self.station_actor();
            let report = self.issue_if(hsm, now, due_name(due), true, &actor).await?;
            return Ok(CrlTick {
                issued: report.map(|r| (due, r)),
                republished: None,
            });
        }
        let republished = match newest {
            Some(crl) => self.publish_if_stale(&crl)?,
            None => None,
        };
        Ok(CrlTick {
            issued: None,
            republished,
        })
    }

    /// The newest CRL recorded (issued by any station of the installation).
    pub async fn current_crl(&self) -> Result<Option<CurrentCrl>, CrlError> {
        let Some(crl) = self.store.newest_crl().await? else {
            return Ok(None);
        };
        let state = newest_state(&crl)?;
        Ok(Some(CurrentCrl {
            number: crl.number,
            this_update: state.this_update,
            next_update: state.next_update,
            der: crl.der,
        }))
    }

    /// The CRLs issued, newest first, at most `limit` (the history the `crls` table keeps).
    pub async fn crl_history(&self, limit: i64) -> Result<Vec<CrlSummary>, CrlError> {
        Ok(self.store.crl_history(limit).await?)
    }

    /// The URL path at which the CRL is served (`/unit-ca.crl`, from `[ca] crl_url`).
    pub fn crl_url_path(&self) -> Result<String, CrlError> {
        Ok(crate::domain::crl::crl_url_path(&self.config.ca.crl_url)?.to_string())
    }

    /// The CRL a committed change asks for (`trigger`: `revocation`, `init`): issued at once
    /// with the CA key (with `hsm`, else the HSM opened for it), or the reason it was not.
    /// Never an error: the change stands either way.
    pub(super) async fn crl_after(&self, hsm: Option<&Hsm>, trigger: &str) -> CrlOutcome {
        let issued = async {
            let now = self.clock.now();
            match hsm {
                Some(hsm) => self.issue(hsm, now, trigger).await,
                None => self.issue(&self.open_hsm().await?, now, trigger).await,
            }
        };
        match issued.await {
            Ok(report) => CrlOutcome::Issued(report),
            Err(e) => CrlOutcome::Failed {
                error: e.to_string(),
            },
        }
    }

    /// The schedule of `[crl]`.
    fn schedule(&self) -> CrlSchedule {
        CrlSchedule::hours(self.config.crl.validity_hours)
    }

    /// Issues a CRL (`trigger` goes into its audit record).
    pub(super) async fn issue(
        &self,
        hsm: &Hsm,
        now: OffsetDateTime,
        trigger: &str,
    ) -> Result<CrlReport, CrlError> {
        match self
            .issue_if(hsm, now, trigger, false, &self.station_actor())
            .await?
        {
            Some(report) => Ok(report),
            // Without the re-check a CRL is always issued.
            None => unreachable!(),
        }
    }

    /// Issues a CRL; with `recheck`, only if one is still due inside the transaction (another
    /// station may have issued it meanwhile): `None` then.
    async fn issue_if(
        &self,
        hsm: &Hsm,
        now: OffsetDateTime,
        trigger: &str,
        recheck: bool,
        actor: &Actor,
    ) -> Result<Option<CrlReport>, CrlError> {
        let relative = publication_path(&self.config.ca.crl_url)?;
        // Whole seconds: what the CRL's UTCTime holds is what is recorded.
        let this_update = now.replace_nanosecond(0).unwrap_or(now);
        let next_update = self.schedule().next_update(this_update);
        let mut tx = self.store.begin_write(this_update).await?;
        let revocations = tx.all_revocations().await?;
        if recheck {
            let state = match tx.newest_crl_times().await? {
                Some((this, next, entries)) => Some(newest_state_of(&this, &next, entries)?),
                None => None,
            };
            let count = i64::try_from(revocations.len()).unwrap_or(i64::MAX);
            if self.schedule().due(state.as_ref(), count, now).is_none() {
                return Ok(None);
            }
        }
        let entries = revocations
            .iter()
            .map(revoked_entry)
            .collect::<Result<Vec<_>, _>>()?;
        let ca_cert = hsm.ca_cert_der();
        let record = tx
            .record_crl(&self.config.station.id, |number| {
                let der = blocking(|| -> Result<Vec<u8>, CrlError> {
                    let ca = hsm.ca_signer()?;
                    Ok(build_crl(
                        ca_cert,
                        &*ca,
                        &entries,
                        u64::try_from(number).unwrap_or(0),
                        this_update,
                        next_update,
                    )?)
                })?;
                Ok::<_, CrlError>(NewCrl {
                    this_update,
                    next_update,
                    der,
                    entries: i64::try_from(entries.len()).unwrap_or(i64::MAX),
                })
            })
            .await?;
        tx.audit(
            actor,
            AuditEntry::new(AuditEvent::CrlIssued(CrlIssued {
                number: record.number,
                this_update: record.this_update.clone(),
                next_update: record.next_update.clone(),
                entries: record.entries,
                sha256: crate::x509::sha256_fingerprint(&record.der),
                trigger: trigger.to_string(),
            })),
        )
        .await?;
        tx.commit().await?;
        let path = self.publication_file(relative);
        blocking(|| publish::write_atomically(&path, &record.der)).map_err(|source| {
            CrlError::Publish {
                number: record.number,
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(Some(CrlReport {
            number: record.number,
            this_update: format_utc(this_update),
            next_update: format_utc(next_update),
            entries: record.entries,
            path,
            url: self.config.ca.crl_url.clone(),
            der: record.der,
        }))
    }

    /// The published file for `relative` (from [`publication_path`]).
    fn publication_file(&self, relative: PathBuf) -> PathBuf {
        self.config
            .path(&self.config.crl.publish_dir)
            .join(relative)
    }

    /// Writes `crl` into the publication directory unless the file there is that CRL or a
    /// newer one.
    fn publish_if_stale(&self, crl: &CrlRecord) -> Result<Option<PathBuf>, CrlError> {
        let path = self.publication_file(publication_path(&self.config.ca.crl_url)?);
        let published = std::fs::read(&path).ok();
        let fresh = published.as_deref().is_some_and(|bytes| {
            bytes == crl.der.as_slice() || crl_number(bytes).is_some_and(|n| n >= crl.number)
        });
        if fresh {
            return Ok(None);
        }
        blocking(|| publish::write_atomically(&path, &crl.der)).map_err(|source| {
            CrlError::Publish {
                number: crl.number,
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(Some(path))
    }
}

/// The audit trigger name of a due CRL.
fn due_name(due: CrlDue) -> &'static str {
    match due {
        CrlDue::First => "first",
        CrlDue::Renewal => "renewal",
        CrlDue::NewRevocation => "new_revocation",
    }
}

/// The CRL number of a DER CRL, if it parses and has one that fits.
fn crl_number(der: &[u8]) -> Option<i64> {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).ok()?;
    let bytes = crl.crl_number()?.to_bytes_be();
    if bytes.len() > 8 {
        return None;
    }
    i64::try_from(bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b))).ok()
}

fn newest_state(crl: &CrlRecord) -> Result<NewestCrl, CrlError> {
    newest_state_of(&crl.this_update, &crl.next_update, crl.entries)
}

fn newest_state_of(this: &str, next: &str, entries: i64) -> Result<NewestCrl, CrlError> {
    let time = |s: &str| {
        parse_utc(s).ok_or_else(|| {
            CrlError::Store(StoreError::Corrupt(format!(
                "a CRL's time {s:?} does not parse"
            )))
        })
    };
    Ok(NewestCrl {
        this_update: time(this)?,
        next_update: time(next)?,
        entries,
    })
}

/// A recorded revocation as the CRL lists it.
fn revoked_entry(r: &RevocationRecord) -> Result<RevokedEntry, CrlError> {
    let refuse = |reason: String| CrlError::Revocation {
        serial: r.serial.to_string(),
        reason,
    };
    // Serials are stored as the hex of their minimal bytes; an odd length gets its leading zero.
    let hex_text = if r.serial.as_str().len() % 2 == 1 {
        format!("0{}", r.serial)
    } else {
        r.serial.to_string()
    };
    let serial = hex::decode(&hex_text).map_err(|e| refuse(format!("serial is not hex: {e}")))?;
    let reason = reason_from_name(&r.reason)
        .ok_or_else(|| refuse(format!("{:?} is not an RFC 5280 reason", r.reason)))?;
    let revoked_at = parse_utc(&r.revoked_at)
        .ok_or_else(|| refuse(format!("revocation time {:?} does not parse", r.revoked_at)))?;
    Ok(RevokedEntry {
        serial,
        revoked_at,
        reason,
    })
}
