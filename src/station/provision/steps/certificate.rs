//! The certificate's steps: `issue_certificate` (the serial reserved before the CA signs, a CSR
//! signed on the token and checked, the certificate issued by the CA key) and
//! `write_certificate` (onto the token, beside its key).

use super::super::error::StepError;
use super::super::job::Job;
use super::super::journal::Write;
use super::super::step::Step;
use super::super::token_access::blocking;
use super::random_bytes;
use crate::audit::event::{AuditEvent, CertificateIssued, CertificateWritten, StepOutcome};
use crate::ca::csr::{signed_request, verify_csr};
use crate::ca::issuance::{CertSummary, cert_summary, issue_unit_certificate, serial_from_random};
use crate::ca::profile::StatusUrls;
use crate::domain::{CertSerial, CertificatePurpose, CertificateStatus};
use crate::store::{AuditEntry, CertificateRecord};
use crate::token::TokenSigner;

/// How the CA issues a certificate of the order for a public key (SPKI DER): the unit
/// (signing) certificate, or a dual certificate's encryption half.
pub(super) type Issue = fn(
    &crate::domain::Order,
    &[u8],
    &[u8],
    &TokenSigner,
    &[u8],
    time::OffsetDateTime,
    StatusUrls<'_>,
) -> Result<Vec<u8>, crate::ca::CaError>;

impl Job<'_> {
    /// A new serial for a certificate of `purpose`, reserved (recorded and audited) before the
    /// CA signs anything with it: its bytes and the reserved record.
    pub(super) async fn reserve_serial(
        &mut self,
        purpose: CertificatePurpose,
    ) -> Result<([u8; 16], CertificateRecord), StepError> {
        let serial_bytes = serial_from_random(random_bytes::<16>(self.station.random.as_ref())?);
        let serial = CertSerial::parse(&hex::encode(serial_bytes))
            .map_err(|e| StepError::Inconsistent(e.to_string()))?;
        let reserved = CertificateRecord {
            serial: serial.clone(),
            order_no: self.no().clone(),
            binding_id: self.binding.binding_id.clone(),
            token_serial: Some(self.token_serial()?),
            der: Vec::new(),
            fingerprint_sha256: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            status: CertificateStatus::Reserved,
            issued_at: crate::clock::format_utc(self.station.clock.now()),
            purpose,
        };
        let entry = AuditEntry {
            cert_serial: Some(serial),
            ..self.entry(AuditEvent::SerialReserved)
        };
        let write = Write::InsertCertificate(Box::new(reserved.clone()));
        self.flush(vec![write, Write::Audit(Box::new(entry))])
            .await?;
        Ok((serial_bytes, reserved))
    }

    /// The certificate `issue` makes for `spki_der` under the reserved `serial_bytes`, signed
    /// by the CA key on its token now: `reserved` filled in as Issued, and its summary.
    pub(super) fn issued_record(
        &self,
        issue: Issue,
        spki_der: &[u8],
        serial_bytes: &[u8],
        reserved: CertificateRecord,
    ) -> Result<(CertificateRecord, CertSummary), StepError> {
        let now = self.station.clock.now();
        let config = &self.station.config;
        let urls = StatusUrls {
            crl: &config.ca.crl_url,
            ocsp: &config.ocsp.url,
        };
        let cert_der = blocking(|| -> Result<Vec<u8>, StepError> {
            let ca = self.hsm.ca_signer()?;
            Ok(issue(
                &self.order,
                spki_der,
                self.hsm.ca_cert_der(),
                &ca,
                serial_bytes,
                now,
                urls,
            )?)
        })?;
        let summary = cert_summary(&cert_der)?;
        let mut rec = reserved;
        rec.der = cert_der;
        rec.fingerprint_sha256 = summary.sha256_fingerprint.clone();
        rec.not_before = crate::clock::format_utc(summary.not_before);
        rec.not_after = crate::clock::format_utc(summary.not_after);
        rec.status = CertificateStatus::Issued;
        Ok((rec, summary))
    }

    pub(in super::super) async fn issue_certificate(&mut self) -> Result<(), StepError> {
        let (serial_bytes, reserved) = self.reserve_serial(CertificatePurpose::Signing).await?;
        let key = self
            .key
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no key pair".into()))?;
        let company = self.order.company.name.clone();
        let csr_der = blocking(|| -> Result<Vec<u8>, StepError> {
            self.user_session()?;
            let s = self
                .session
                .take()
                .ok_or_else(|| StepError::Inconsistent("token session missing".into()))?;
            let signer = TokenSigner::new(s, key.clone())?;
            let csr = signed_request(&company, &signer, &key.spki_der);
            self.session = Some(signer.into_session());
            csr.map_err(|e| StepError::Inconsistent(format!("CSR on the token: {e}")))
        })?;
        let csr = verify_csr(&csr_der)?;
        if csr.spki_der != key.spki_der {
            return Err(StepError::Inconsistent(
                "the CSR's public key is not the token key's".into(),
            ));
        }
        let (rec, summary) = self.issued_record(
            issue_unit_certificate,
            &csr.spki_der,
            &serial_bytes,
            reserved,
        )?;
        self.cert = Some(rec.clone());
        self.done(
            Step::IssueCertificate,
            StepOutcome::IssueCertificate(CertificateIssued {
                serial: rec.serial.to_string(),
                fingerprint_sha256: rec.fingerprint_sha256.clone(),
                not_before: rec.not_before.clone(),
                not_after: rec.not_after.clone(),
                subject: summary.subject.clone(),
            }),
            Some(Write::CertificateIssued(Box::new(rec))),
        )
        .await
    }

    pub(in super::super) async fn write_certificate(&mut self) -> Result<(), StepError> {
        let cert = self
            .cert
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no certificate".into()))?;
        let key = self
            .key
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no key pair".into()))?;
        let label = self.order.order_no.clone();
        blocking(|| -> Result<(), StepError> {
            self.user_session()?
                .write_certificate(&key.id, label.as_str(), &cert.der)?;
            Ok(())
        })?;
        let serial = cert.serial.clone();
        if let Some(c) = self.cert.as_mut() {
            c.status = CertificateStatus::OnToken;
        }
        self.done(
            Step::WriteCertificate,
            StepOutcome::WriteCertificate(CertificateWritten {
                serial: serial.to_string(),
                key_id: hex::encode(&key.id),
            }),
            Some(Write::CertificateOnToken(serial)),
        )
        .await
    }
}
