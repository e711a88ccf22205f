//! `dual_certificate`, for SM2 orders of a station with `[product] dual_certificate = true`:
//! the encryption half of a dual certificate (双证书). The station's key management makes the
//! encryption key pair, the vault seals its escrow copy, the pair reaches the token as an
//! `SM2EnvelopedKey` to the token's SIGNING key and is imported there with the module's unwrap
//! mechanism, the CA issues the encryption certificate (keyEncipherment + dataEncipherment, the
//! signing certificate's subject) and it is written beside its key.
//!
//! Journaled like `issue_certificate`: the serial is reserved (durably) before the CA signs; the
//! certificate, its `on_token` status and the sealed escrow copy commit with the step's done
//! record, together. The step lies before `write_certificate`, so a run that stops anywhere in
//! it starts a new attempt: the token is wiped and the reserved or issued encryption
//! certificate revoked (superseded) like the signing one.
//!
//! # Security notes
//! The private scalar exists in the station only inside [`EncryptionKeyPair`] (zeroized), on
//! its way to the vault's AES-GCM and into the envelope; the database sees it only sealed, the
//! audit trail only its public key's fingerprint.

use super::super::error::StepError;
use super::super::job::Job;
use super::super::journal::Write;
use super::super::step::Step;
use super::super::token_access::blocking;
use crate::audit::event::{DualCertificateIssued, StepOutcome};
use crate::ca::issuance::issue_encryption_certificate;
use crate::ca::sm2_envelope::EncryptionKeyPair;
use crate::domain::{CertificatePurpose, KeyAlgorithm};
use crate::token::KeyPairInfo;
use crate::token::vault::escrow_aad;
use sha2::{Digest, Sha256};

/// The `CKA_ID` of the encryption key pair: the signing key's, marked.
pub(crate) fn encryption_key_id(signing_id: &[u8]) -> Vec<u8> {
    [signing_id, b"-enc"].concat()
}

impl Job<'_> {
    pub(in super::super) async fn dual_certificate(&mut self) -> Result<(), StepError> {
        let signing = self
            .key
            .clone()
            .ok_or_else(|| StepError::Inconsistent("no key pair".into()))?;
        if signing.algorithm != KeyAlgorithm::Sm2 {
            return Err(StepError::Inconsistent(
                "a dual certificate needs an SM2 signing key".into(),
            ));
        }
        let (serial_bytes, reserved) = self.reserve_serial(CertificatePurpose::Encryption).await?;
        let serial = reserved.serial.clone();

        // Key management: the pair, its escrow copy sealed by the vault, the envelope.
        let pair = EncryptionKeyPair::generate(self.station.random.as_ref())?;
        let aad = escrow_aad(self.no().as_str(), serial.as_str());
        let sealed = blocking(|| {
            self.vault()?
                .seal_key(pair.expose_secret_for_escrow(), &aad)
                .map_err(StepError::from)
        })?;
        let envelope = pair.envelope_to(&signing.public_raw, self.station.random.as_ref())?;
        let enc_id = encryption_key_id(&signing.id);
        let label = self.order.order_no.clone();
        let imported = blocking(|| -> Result<KeyPairInfo, StepError> {
            Ok(self.user_session()?.import_sm2_envelope(
                &signing.id,
                &envelope,
                &enc_id,
                label.as_str(),
            )?)
        })?;
        if imported.public_raw != pair.public_point() {
            return Err(StepError::Inconsistent(
                "the token's imported encryption key is not the one enveloped".into(),
            ));
        }
        let public_point_hex = hex::encode(pair.public_point());
        drop(pair);
        self.failpoint("provision.dual_certificate.imported")?;

        let (rec, _) = self.issued_record(
            issue_encryption_certificate,
            &imported.spki_der,
            &serial_bytes,
            reserved,
        )?;
        blocking(|| -> Result<(), StepError> {
            self.user_session()?
                .write_certificate(&enc_id, label.as_str(), &rec.der)?;
            Ok(())
        })?;
        let outcome = DualCertificateIssued {
            serial: serial.to_string(),
            fingerprint_sha256: rec.fingerprint_sha256.clone(),
            key_id: hex::encode(&enc_id),
            public_key_sha256: hex::encode(Sha256::digest(&imported.public_raw)),
            enveloped_to: hex::encode(&signing.id),
        };
        self.pending.extend([
            Write::CertificateIssued(Box::new(rec)),
            Write::CertificateOnToken(serial.clone()),
            Write::EscrowKey {
                serial,
                order_no: self.no().clone(),
                public_point_hex,
                sealed,
            },
        ]);
        self.done(
            Step::DualCertificate,
            StepOutcome::DualCertificate(outcome),
            None,
        )
        .await
    }
}
