//! `check` on one order's token: the binding and live certificate the database records, then
//! the token read back — every public object, and with the sealed PIN (the key not yet
//! delivered) every private one too — judged by [`super::token_content`].

use super::report::{CheckReport, Level};
use super::token_content::{Expected, ExpectedEncryption, Found, Verdict, judge};
use crate::config::KeyAlgorithm;
use crate::domain::{CertificateStatus, OrderNo, OrderState, TokenSerial};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::store::{StoreError, StoredPin};
use crate::token::vault::pin_aad;
use crate::token::{TokenError, TokenSelector};

/// What reading the token gave.
enum TokenRead {
    /// Not plugged in: noted, not judged.
    Absent,
    /// Read; `pin` holds what stopped a user login, if anything did.
    Read { found: Found, pin: Option<Verdict> },
}

/// What `check` needs to know of the station itself, read once per run.
pub(super) struct StationMaterial {
    /// The CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// The seal-maker certificate (DER), when readable.
    pub maker_der: Option<Vec<u8>>,
}

impl Station {
    pub(super) async fn check_token(
        &self,
        hsm: &Hsm,
        material: &StationMaterial,
        order: &OrderNo,
        state: OrderState,
        sealed: Option<StoredPin>,
        report: &mut CheckReport,
    ) -> Result<(), StoreError> {
        let no = order.as_str();
        let Some(b) = self.store.active_binding(order).await? else {
            if let Some(renewal) = self.superseding_renewal(order).await? {
                // Renewed at the desk on this order's own key: the renewal holds the key now.
                report.add(
                    Level::Note,
                    "renewed",
                    no,
                    format!("superseded by renewal order {renewal}, made on this order's key"),
                );
                return Ok(());
            }
            report.add(
                Level::Violation,
                "binding_missing",
                no,
                format!("order is {state} but bound to no token"),
            );
            return Ok(());
        };
        let (Some(serial), Some(key_id)) = (b.token_serial.clone(), b.key_id.clone()) else {
            report.add(
                Level::Violation,
                "binding_incomplete",
                no,
                "the binding has no token serial or key".into(),
            );
            return Ok(());
        };
        let live: Vec<_> = self
            .store
            .certificates_of_order(order)
            .await?
            .into_iter()
            .filter(|c| c.status == CertificateStatus::OnToken)
            .collect();
        // One live SIGNING certificate; a dual certificate's encryption one is beside it.
        let (live, encryption): (Vec<_>, Vec<_>) = live
            .into_iter()
            .partition(|c| c.purpose == crate::domain::CertificatePurpose::Signing);
        if live.is_empty() {
            if let Some(renewal) = self.superseding_renewal(order).await? {
                // Renewed: the commit that provisioned the renewal revoked this order's
                // certificate (superseded); its key keeps only that revoked certificate.
                report.add(
                    Level::Note,
                    "renewed",
                    no,
                    format!(
                        "superseded by renewal order {renewal}: its certificate is revoked; \
                         token {serial} not checked"
                    ),
                );
                return Ok(());
            }
        }
        let [cert] = live.as_slice() else {
            report.add(
                Level::Violation,
                "certificate_count",
                no,
                format!("{} live certificates (exactly one expected)", live.len()),
            );
            return Ok(());
        };
        let order = self.store.order(order).await?.map(|r| r.order);
        let key_id_bytes = hex::decode(&key_id).unwrap_or_default();
        let enc_key_id = crate::station::provision::encryption_key_id(&key_id_bytes);
        let alg = [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Sm2,
        ]
        .into_iter()
        .find(|a| a.as_str() == b.key_algorithm)
        .unwrap_or(self.config.product.key_algorithm);
        let read = crate::station::hsm::blocking(|| {
            read_token(hsm, no, &serial, &key_id_bytes, alg, sealed.as_ref())
        });
        let (found, pin) = match read {
            Ok(TokenRead::Absent) => {
                // Shipped keys are away by design; an unplugged provisioned key is not wrong
                // either: noted, not a violation.
                report.add(
                    Level::Note,
                    "token_absent",
                    no,
                    format!("token {serial} is not present (state {state}); not checked"),
                );
                return Ok(());
            }
            Ok(TokenRead::Read { found, pin }) => (found, pin),
            Err(e) => {
                report.add(Level::Violation, "token_unreadable", no, e.to_string());
                return Ok(());
            }
        };
        report.tokens_checked += 1;
        if let Some((level, rule, message)) = pin {
            report.add(level, rule, no, message);
        }
        let expected = Expected {
            serial: serial.as_str(),
            // The order number, or the original's on a key kept for its renewal.
            label: &b.token_label,
            key_id: &key_id_bytes,
            cert_serial: cert.serial.as_str(),
            cert_der: &cert.der,
            spki: b.public_key.as_deref(),
            seals: order.as_ref().map(|o| o.seals_on_key()).unwrap_or_default(),
            ca_der: &material.ca_der,
            maker_der: material.maker_der.as_deref(),
            now: self.clock.now(),
            encryption: match encryption.as_slice() {
                [] => None,
                [c] => Some(ExpectedEncryption {
                    key_id: &enc_key_id,
                    cert_serial: c.serial.as_str(),
                    cert_der: &c.der,
                }),
                more => {
                    report.add(
                        Level::Violation,
                        "certificate_count",
                        no,
                        format!(
                            "{} live encryption certificates (at most one expected)",
                            more.len()
                        ),
                    );
                    return Ok(());
                }
            },
        };
        for (level, rule, message) in judge(&expected, &found) {
            report.add(level, rule, no, message);
        }
        Ok(())
    }
}

/// Reads the token with `serial` (blocking): logged in as the user when the sealed PIN opens
/// for this order and token, else what is public.
fn read_token(
    hsm: &Hsm,
    no: &str,
    serial: &TokenSerial,
    key_id: &[u8],
    alg: KeyAlgorithm,
    sealed: Option<&StoredPin>,
) -> Result<TokenRead, TokenError> {
    let mut t = match hsm.module().find(&[TokenSelector::Serial(serial.clone())]) {
        Ok(t) => t,
        Err(TokenError::NotFound(_)) => return Ok(TokenRead::Absent),
        Err(e) => return Err(e),
    };
    let label = t.info().label.clone();
    let pin = match sealed {
        None => Err((
            Level::Note,
            "token_private_unchecked",
            format!(
                "token {serial}: the PIN is delivered, so the objects behind it (private key, \
                 seals) were not checked"
            ),
        )),
        Some(stored) if stored.token_serial != *serial => Err((
            Level::Violation,
            "pin_token",
            "the sealed PIN belongs to another token".into(),
        )),
        Some(stored) => hsm
            .vault()?
            .unseal_pin(&stored.sealed, &pin_aad(no, serial))
            .map_err(|_| {
                (
                    Level::Violation,
                    "pin_unseal",
                    "the sealed PIN does not open for this order and token".to_string(),
                )
            }),
    };
    let (session, pin) = match pin {
        Ok(pin) => (t.login_user(&pin)?, None),
        Err(finding) => (t.open()?, Some(finding)),
    };
    let found = Found {
        label,
        spki: session
            .public_key(key_id, alg)
            .map(|k| k.spki_der)
            .map_err(|e| e.to_string()),
        objects: session.inventory()?,
        logged_in: pin.is_none(),
    };
    Ok(TokenRead::Read { found, pin })
}

impl Station {
    /// The renewal order of `no` that has been provisioned (and so superseded `no`'s
    /// certificates), if any.
    async fn superseding_renewal(&self, no: &OrderNo) -> Result<Option<OrderNo>, StoreError> {
        Ok(self
            .store
            .renewals_of(no)
            .await?
            .into_iter()
            .find(|r| {
                matches!(
                    r.state,
                    OrderState::Provisioned
                        | OrderState::Shipped
                        | OrderState::PinDelivered
                        | OrderState::Revoked
                )
            })
            .map(|r| r.order_no))
    }
}
