//! The CA's delegated OCSP signer: a key pair generated on the CA token, certified by the CA
//! (EKU OCSPSigning, id-pkix-ocsp-nocheck), recorded with the installation's material (its
//! certificate and the CKA_ID of its key) so that every station of the installation answers
//! with it, and written beside the CA certificate (`ocsp.signer_certificate`).
//!
//! `init` makes the first one; `keystation ca ocsp-signer` asks for one for an installation
//! without (made before this existed) or a renewal, and a second, different operator's
//! `ca approve ID` makes it (four-eyes, `super::four_eyes`). A renewal generates a new key pair under
//! the same label with a new CKA_ID; the responder finds the key by that id, never by label, so
//! the old key (left on the token: a key is never destroyed by a command that can be re-run)
//! signs nothing more once the new record is committed. Every issuance is audited
//! (`ca.ocsp_signer_issued`).
//!
//! The signer's key is of the CA's algorithm: an SM2 CA's signer is an SM2 key on its token,
//! certified SM2-with-SM3, and signs its answers SM2-with-SM3 (default distinguishing ID).

use super::Station;
use super::hsm::{HsmError, blocking, certificate_pem};
use super::init::InitError;
use crate::audit::event::{AuditEvent, OcspSignerIssued};
use crate::ca::issuance::{cert_summary, issue_ocsp_signer_cert, serial_from_random};
use crate::ca::profile::ocsp_signer_params;
use crate::clock::format_utc;
use crate::config::Config;
use crate::domain::CertSerial;
use crate::random::Random;
use crate::store::{AuditEntry, OcspSignerRecord, StoreError};
use crate::token::{TokenError, TokenSigner};
use time::OffsetDateTime;

/// Why no OCSP signer could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OcspSignerError {
    /// The station's HSM context could not be opened.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// A token operation failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Making the key or certificate failed.
    #[error(transparent)]
    Make(#[from] InitError),
    /// Recording it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `ca ocsp-signer` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OcspSignerReport {
    /// The new signer certificate's serial (hex).
    pub serial: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
    /// Its subject.
    pub subject: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// Where its PEM was written.
    pub certificate_file: String,
    /// The serial of the signer it replaces, if any.
    pub replaces: Option<String>,
}

/// Generates a signer key pair on the CA token (in `ca_signer`'s session) and has the CA
/// certify it, valid from `now` for `ocsp.signer_validity_days` but never past the CA's own
/// end; the certificate is stored on the token beside its key (blocking). The caller records
/// it, then writes it to `ocsp.signer_certificate` ([`write_signer_file`]).
pub(crate) fn issue_ocsp_signer(
    cfg: &Config,
    ca_signer: &TokenSigner,
    ca_cert_der: &[u8],
    now: OffsetDateTime,
    random: &dyn Random,
) -> Result<OcspSignerRecord, InitError> {
    let random16 = || {
        random
            .bytes::<16>()
            .map_err(|e| InitError::Random(e.to_string()))
    };
    let ca_end = cert_summary(ca_cert_der)?.not_after;
    let not_after =
        (now + time::Duration::days(i64::from(cfg.ocsp.signer_validity_days))).min(ca_end);
    let params = ocsp_signer_params(
        &cfg.ca.common_name,
        &cfg.ca.organization,
        now,
        not_after,
        &serial_from_random(random16()?),
    )?;
    let session = ca_signer.session();
    let key = session.generate_key_pair(
        cfg.ca.key_algorithm,
        &random16()?,
        &cfg.ocsp.signer_key_label,
    )?;
    let cert_der = issue_ocsp_signer_cert(&params, &key.spki_der, ca_cert_der, ca_signer)?;
    session.write_certificate(&key.id, &cfg.ocsp.signer_key_label, &cert_der)?;
    Ok(OcspSignerRecord {
        cert_der,
        key_id: key.id,
    })
}

/// Writes the signer certificate to `ocsp.signer_certificate` (replacing an older one).
pub(crate) fn write_signer_file(cfg: &Config, cert_der: &[u8]) -> Result<(), InitError> {
    let path = cfg.path(&cfg.ocsp.signer_certificate);
    let io = |source| InitError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::private_files::create_dir(dir).map_err(io)?;
    }
    if path.exists() {
        std::fs::remove_file(&path).map_err(io)?;
    }
    crate::private_files::write_file(&path, certificate_pem(cert_der).as_bytes()).map_err(io)
}

/// The audit entry of a new signer.
pub(crate) fn signer_issued(
    signer: &OcspSignerRecord,
    replaces: Option<String>,
    four_eyes: Option<crate::audit::event::FourEyes>,
) -> Result<AuditEntry, crate::ca::CaError> {
    let summary = cert_summary(&signer.cert_der)?;
    Ok(AuditEntry {
        cert_serial: Some(
            CertSerial::parse(&summary.serial_hex)
                .map_err(|e| crate::ca::CaError::CertificateMalformed(e.to_string()))?,
        ),
        ..AuditEntry::new(AuditEvent::OcspSignerIssued(OcspSignerIssued {
            serial: summary.serial_hex,
            fingerprint: summary.sha256_fingerprint,
            not_before: format_utc(summary.not_before),
            not_after: format_utc(summary.not_after),
            key_id: hex::encode(&signer.key_id),
            replaces,
            four_eyes,
        }))
    })
}

/// A signer made on the CA token, not yet recorded ([`Station::make_ocsp_signer`]).
#[derive(Debug)]
pub(crate) struct MadeSigner {
    /// The key's id and its certificate.
    pub signer: OcspSignerRecord,
    /// The serial of the signer it replaces, if any.
    pub replaces: Option<String>,
}

impl Station {
    /// Makes a new delegated OCSP signer on the CA token (the first, or a renewal), not yet
    /// recorded: [`Station::record_ocsp_signer_in`] records it in the transaction of the
    /// approval that allows it (`ca ocsp-signer` is four-eyes, see `super::four_eyes`).
    pub(crate) async fn make_ocsp_signer(&self) -> Result<MadeSigner, OcspSignerError> {
        let previous = self.store.ocsp_signer().await?;
        let replaces = previous
            .map(|p| cert_summary(&p.cert_der).map(|s| s.serial_hex))
            .transpose()
            .map_err(InitError::from)?;
        let hsm = self.open_hsm().await?;
        let now = self.clock.now();
        let random = self.random.clone();
        let config = self.config.clone();
        let signer = blocking(|| -> Result<OcspSignerRecord, OcspSignerError> {
            let ca = hsm.ca_signer()?;
            Ok(issue_ocsp_signer(
                &config,
                &ca,
                hsm.ca_cert_der(),
                now,
                random.as_ref(),
            )?)
        })?;
        Ok(MadeSigner { signer, replaces })
    }

    /// Records `made` in `tx`, audited as `actor` with the request it carries out.
    pub(crate) async fn record_ocsp_signer_in(
        tx: &mut crate::store::Tx,
        actor: &crate::store::Actor,
        made: &MadeSigner,
        four_eyes: crate::audit::event::FourEyes,
    ) -> Result<(), OcspSignerError> {
        let entry = signer_issued(&made.signer, made.replaces.clone(), Some(four_eyes))
            .map_err(InitError::from)?;
        tx.record_ocsp_signer(&made.signer).await?;
        tx.audit(actor, entry).await?;
        Ok(())
    }

    /// After the transaction that recorded `made` committed: its certificate file written, and
    /// what `ca ocsp-signer` prints.
    pub(crate) fn publish_ocsp_signer(
        &self,
        made: &MadeSigner,
    ) -> Result<OcspSignerReport, OcspSignerError> {
        write_signer_file(&self.config, &made.signer.cert_der)?;
        let summary = cert_summary(&made.signer.cert_der).map_err(InitError::from)?;
        Ok(OcspSignerReport {
            serial: summary.serial_hex,
            fingerprint: summary.sha256_fingerprint,
            subject: summary.subject,
            not_before: format_utc(summary.not_before),
            not_after: format_utc(summary.not_after),
            certificate_file: self
                .config
                .path(&self.config.ocsp.signer_certificate)
                .display()
                .to_string(),
            replaces: made.replaces.clone(),
        })
    }
}
