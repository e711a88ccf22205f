//! The token's own steps: `init_token` (label and derived SO PIN), `init_pin` (a fresh user PIN,
//! sealed in the vault) and `generate_key` (the key pair, made on the token).

use super::super::error::StepError;
use super::super::job::Job;
use super::super::journal::Write;
use super::super::step::Step;
use super::super::token_access::{blank_tokens, blocking};
use super::random_bytes;
use crate::audit::event::{KeyGenerated, PinInitialized, StepOutcome, TokenInitialized};
use crate::domain::{Pin, TokenSerial};
use crate::token::vault::pin_aad;
use crate::token::{KeyPairInfo, TokenError, TokenInfo, TokenSelector};

impl Job<'_> {
    pub(in super::super) async fn init_token(&mut self) -> Result<(), StepError> {
        // The blank token the claim reserved, if any: taken below when a blank one is wanted,
        // released now otherwise.
        let wants_blank = self.binding.kept_from.is_none()
            && self.binding.token_serial.is_none()
            && self.token.is_none();
        let claimed_blank = self.blank.take().filter(|_| wants_blank);
        if self.binding.kept_from.is_some() {
            return self.keep_token().await;
        }
        // The SO PIN of the binding's identity is derived before a token is chosen, so that
        // no other worker waits for it (a key with a factory serial, or a retired one, brings
        // its own identity below, and its SO PIN is derived again).
        self.so_pin().await?;
        // The token chosen is reserved until C_InitToken has made it ours (labelled, no longer
        // blank): no other worker of this process takes it, and workers on other keys go on.
        let tokens = blank_tokens();
        let reserved = match (&self.binding.token_serial, &self.token) {
            (Some(_), _) => tokens.hold(self.bound_token()?.clone()).await,
            (None, Some(t)) => tokens.hold(t.clone()).await,
            (None, None) => {
                // Only an earlier attempt can have left our label on a token (a crash inside
                // C_InitToken); the first attempt need not read every token's label.
                let mine = if self.attempt > 1 {
                    blocking(|| {
                        self.hsm
                            .module()
                            .find(&[TokenSelector::Label(self.order.order_no.to_string())])
                    })
                } else {
                    Err(TokenError::NotFound(self.order.order_no.to_string()))
                };
                match mine {
                    // A crash inside C_InitToken left our label on a token: it is ours, and the
                    // blank one the claim reserved is not wanted.
                    Ok(t) => {
                        drop(claimed_blank);
                        tokens.hold(t).await
                    }
                    Err(TokenError::NotFound(_)) => match claimed_blank {
                        Some(reserved) => reserved,
                        None => tokens.reserve(self.hsm.module()).await?.ok_or_else(|| {
                            StepError::Token(TokenError::NotFound(
                                "a blank token (insert a blank USB key)".into(),
                            ))
                        })?,
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let token = reserved.token().clone();
        self.station
            .check_token_usable(&token, self.no(), Some(&self.binding))
            .await
            .map_err(|e| StepError::Inconsistent(e.to_string()))?;
        // A retired key (wiped at the desk): its SO PIN is still the one derived from the SO
        // identity it had; the binding adopts that identity (and takes the key, once) BEFORE
        // the token is touched.
        if self.binding.token_serial.is_none() && !token.info().is_blank() {
            let serial = serial_of(token.info())?;
            if let Some(retired) = self.station.store.available_retired_token(&serial).await? {
                let writes = vec![
                    Write::BindingSerial {
                        binding_id: self.binding.binding_id.clone(),
                        serial: serial.clone(),
                        identity: Some(retired.so_identity.clone()),
                    },
                    Write::ReuseRetiredToken {
                        binding_id: self.binding.binding_id.clone(),
                        serial: serial.clone(),
                    },
                ];
                self.flush(writes).await?;
                self.binding.so_identity = retired.so_identity;
                self.binding.token_serial = Some(serial);
                self.so_pin = None;
            }
        }
        // A blank token with a factory serial: the SO PIN derives from that serial. Recorded
        // BEFORE the token is touched, so a crash inside C_InitToken can still re-derive it.
        if self.binding.token_serial.is_none()
            && !token.info().serial.is_empty()
            && token.info().is_blank()
        {
            let serial = serial_of(token.info())?;
            let identity = format!("serial:{serial}");
            let write = Write::BindingSerial {
                binding_id: self.binding.binding_id.clone(),
                serial: serial.clone(),
                identity: Some(identity.clone()),
            };
            self.flush(vec![write]).await?;
            self.binding.so_identity = identity;
            self.binding.token_serial = Some(serial);
            self.so_pin = None;
        }
        self.token = Some(token);
        self.so_pin().await?;
        self.failpoint("provision.init_token.before_init")?;
        let label = self.order.order_no.clone();
        let result = self
            .with_so_pin(|job, so| -> Result<TokenSerial, StepError> {
                let t = job.bound_token()?;
                t.init_token(so, label.as_str())?;
                serial_of(t.info())
            })
            .await;
        drop(reserved);
        let serial = result?;
        let binding_id = self.binding.binding_id.clone();
        self.binding.token_serial = Some(serial.clone());
        self.done(
            Step::InitToken,
            StepOutcome::InitToken(TokenInitialized {
                token_serial: serial.to_string(),
                label: label.to_string(),
                so_identity: self.binding.so_identity.clone(),
            }),
            Some(Write::BindingSerial {
                binding_id,
                serial,
                identity: None,
            }),
        )
        .await
    }

    /// `init_token` of a renewal onto the company's existing key: the key is NOT re-initialised
    /// (its certificate stays valid and on it until the renewal's is written); the step checks
    /// that it is the key bound and that its SO PIN (re-derived from the inherited identity)
    /// still opens it, and is journaled done under the key's own label.
    async fn keep_token(&mut self) -> Result<(), StepError> {
        let serial = self.token_serial()?;
        self.with_so_pin(|job, so| -> Result<(), StepError> {
            drop(job.bound_token()?.login_so(so)?);
            Ok(())
        })
        .await?;
        self.done(
            Step::InitToken,
            StepOutcome::InitToken(TokenInitialized {
                token_serial: serial.to_string(),
                label: self.binding.token_label.clone(),
                so_identity: self.binding.so_identity.clone(),
            }),
            None,
        )
        .await
    }

    pub(in super::super) async fn init_pin(&mut self) -> Result<(), StepError> {
        let serial = self.token_serial()?;
        let policy = self.station.config.pin;
        let pin = Pin::generate(&policy, &mut self.station.random.rng());
        self.with_so_pin(|job, so| -> Result<(), StepError> {
            let t = job.bound_token()?;
            let s = t.login_so(so)?;
            s.init_user_pin(&pin)?;
            Ok(())
        })
        .await?;
        let aad = pin_aad(self.no().as_str(), &serial);
        let sealed = blocking(|| self.vault()?.seal_pin(&pin, &aad).map_err(StepError::from))?;
        self.pin = Some(pin);
        let no = self.no().clone();
        self.done(
            Step::InitPin,
            StepOutcome::InitPin(PinInitialized {
                pin_length: policy.length,
                alphabet: policy.alphabet,
                sealed_bytes: sealed.0.len(),
            }),
            Some(Write::SealedPin {
                order_no: no,
                serial,
                sealed,
            }),
        )
        .await
    }

    pub(in super::super) async fn generate_key(&mut self) -> Result<(), StepError> {
        let alg = self.station.config.product.key_algorithm;
        let id = random_bytes::<16>(self.station.random.as_ref())?.to_vec();
        let label = self.order.order_no.clone();
        let key = blocking(|| -> Result<KeyPairInfo, StepError> {
            Ok(self
                .user_session()?
                .generate_key_pair(alg, &id, label.as_str())?)
        })?;
        let binding_id = self.binding.binding_id.clone();
        let id_hex = hex::encode(&key.id);
        let spki = key.spki_der.clone();
        self.binding.key_id = Some(id_hex.clone());
        self.binding.public_key = Some(spki.clone());
        self.key = Some(key);
        self.done(
            Step::GenerateKey,
            StepOutcome::GenerateKey(KeyGenerated {
                algorithm: alg.as_str().to_string(),
                key_id: id_hex.clone(),
                extractable: false,
                sensitive: true,
            }),
            Some(Write::BindingKey {
                binding_id,
                key_id_hex: id_hex,
                spki,
            }),
        )
        .await
    }
}

/// The serial `info` reports, as the station records it: a token whose serial is blank or not
/// printable ASCII cannot be bound (its SO PIN derives from the serial).
fn serial_of(info: &TokenInfo) -> Result<TokenSerial, StepError> {
    TokenSerial::parse(&info.serial)
        .map_err(|e| StepError::Inconsistent(format!("token {}: {e}", info.display_name())))
}
