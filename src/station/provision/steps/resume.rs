//! What a run does before the steps: a new attempt revokes the certificates the last one left
//! off its token; a continued attempt reloads what the remaining steps need.

use super::super::error::StepError;
use super::super::job::{AtStep, Job, StepResult};
use super::super::journal::{Write, commit, revoked_entry, superseded};
use super::super::step::Step;
use super::super::token_access::blocking;
use crate::domain::CertificateStatus;
use crate::token::KeyPairInfo;
use crate::token::vault::pin_aad;

impl Job<'_> {
    /// Revokes the certificates of this order that a new attempt supersedes ([`superseded`]:
    /// reserved or issued but not on a token; with `token_started_over` also the one on it).
    pub(in super::super) async fn revoke_unwritten(
        &mut self,
        token_started_over: bool,
    ) -> Result<(), StepError> {
        let certs = self.station.store.certificates_of_order(self.no()).await?;
        for c in certs {
            let Some(detail) = superseded(c.status, token_started_over) else {
                continue;
            };
            let no = self.no().clone();
            let revoke = Write::RevokeCertificate {
                serial: c.serial.clone(),
                order_no: no.clone(),
                detail: detail.to_string(),
                by: self.actor.name.clone(),
            };
            let entry = Write::Audit(Box::new(revoked_entry(&c, detail)));
            commit(
                self.station,
                &self.actor,
                &[revoke, entry],
                self.fence(false),
            )
            .await?;
            self.revoked.push(c.serial);
        }
        Ok(())
    }

    /// Reloads what the steps after `write_certificate` need: the PIN (unsealed), the
    /// certificate on the token, the key pair.
    pub(in super::super) async fn load_for_continuation(&mut self) -> StepResult<()> {
        let step = Step::WriteSeals;
        let serial = self.token_serial().at(step)?;
        let stored = self
            .station
            .store
            .sealed_pin(self.no())
            .await
            .at(step)?
            .ok_or_else(|| StepError::Inconsistent("no sealed PIN for a provisioned token".into()))
            .at(step)?;
        if stored.token_serial != serial {
            return Err((
                step,
                StepError::Inconsistent("the sealed PIN belongs to another token".into()),
            ));
        }
        let aad = pin_aad(self.no().as_str(), &serial);
        let pin = blocking(|| {
            self.vault()?
                .unseal_pin(&stored.sealed, &aad)
                .map_err(StepError::from)
        })
        .at(step)?;
        self.pin = Some(pin);
        self.cert = self
            .station
            .store
            .certificates_of_order(self.no())
            .await
            .at(step)?
            .into_iter()
            .find(|c| {
                c.status == CertificateStatus::OnToken
                    && c.purpose == crate::domain::CertificatePurpose::Signing
            });
        let alg = self.station.config.product.key_algorithm;
        let key_id = self
            .binding
            .key_id
            .clone()
            .ok_or_else(|| StepError::Inconsistent("the binding has no key id".into()))
            .at(step)?;
        let id = hex::decode(&key_id)
            .map_err(|_| StepError::Inconsistent("stored key id is not hex".into()))
            .at(step)?;
        let key = blocking(|| -> Result<KeyPairInfo, StepError> {
            Ok(self.user_session()?.public_key(&id, alg)?)
        })
        .at(step)?;
        self.key = Some(key);
        Ok(())
    }
}
