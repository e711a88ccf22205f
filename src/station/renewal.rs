//! Renewal (证书更新, `keystation order renew ORDER`): a new order made from a delivered one, for
//! the same company, reviewed like any order (`order approve` / `order reject`) and provisioned
//! onto a new key like any order. See [`crate::domain::renewal`] for the window and numbering.
//!
//! Making it is one transaction: the original's live certificate is found (status `on_token`,
//! not expired) and its window checked, a renewal still open for the same original is refused,
//! the next `ROOT-R<n>` number is taken, the original's form is stored under it with
//! `renewal_of` set and the attachments carried over by hash, and `order.renewal_requested`
//! is audited. Provisioning the renewal revokes the original's live certificates as
//! `superseded` in the transaction that records the new certificate on its token and makes the
//! renewal Provisioned (the job's last commit, see `provision::steps::finish`); a CRL listing
//! them is issued right after. A crash before that commit leaves the old certificate valid and
//! the renewal resumable; after it, the revocation stands and the serving loop's CRL tick (or
//! `keystation ca crl`) lists it if the immediate CRL did not go out.

use super::Station;
use crate::audit::event::{AuditEvent, RenewalRequested};
use crate::clock::{format_utc, parse_utc};
use crate::domain::renewal::{
    MAX_RENEWALS, RenewalRefusal, renewal_order_no, renewal_root, renewal_window,
};
use crate::domain::{CertificateStatus, OrderNo, OrderState};
use crate::station::argument::InvalidArgument;
use crate::store::{AuditEntry, CertificateRecord, StoreError};

/// Why no renewal order was made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenewalError {
    /// The database failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument is unusable.
    #[error(transparent)]
    Invalid(#[from] InvalidArgument),
    /// The order has no live certificate to renew (none on a token, revoked, or expired).
    #[error("order {order_no} has no live certificate to renew: {why}")]
    NoLiveCertificate {
        /// The order.
        order_no: String,
        /// What it has instead, and what to do.
        why: String,
    },
    /// The renewal window has not opened yet.
    #[error(
        "order {order_no}: certificate {serial} expires on {not_after}; renewal opens on \
         {opens_at} (30 days before), not before"
    )]
    NotYetOpen {
        /// The order.
        order_no: String,
        /// Its live certificate.
        serial: String,
        /// When the window opens (RFC 3339 UTC).
        opens_at: String,
        /// The certificate's notAfter (RFC 3339 UTC).
        not_after: String,
    },
    /// A renewal of this order is open already.
    #[error(
        "order {order_no} has an open renewal order {renewal} ({state}): review, provision or \
         reject that one"
    )]
    Pending {
        /// The order.
        order_no: String,
        /// The open renewal.
        renewal: String,
        /// Its state.
        state: OrderState,
    },
    /// Every renewal number of the order's chain is taken, or its root is too long.
    #[error("order {order_no}: no renewal order number can be made: {why}")]
    Numbering {
        /// The order.
        order_no: String,
        /// Why.
        why: String,
    },
}

/// What `order renew` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenewalReport {
    /// The new (renewal) order, Submitted.
    pub order_no: String,
    /// The order it renews.
    pub renewal_of: String,
    /// The certificate it will supersede.
    pub certificate: String,
    /// That certificate's notAfter.
    pub not_after: String,
    /// Attachments carried over (by hash).
    pub attachments: usize,
}

/// The certificate a renewal supersedes: the latest-expiring one on the token, if any.
fn live_certificate(certs: &[CertificateRecord]) -> Option<&CertificateRecord> {
    certs
        .iter()
        .filter(|c| c.status == CertificateStatus::OnToken)
        // The signing certificate: a dual certificate's encryption one is renewed with it.
        .filter(|c| c.purpose == crate::domain::CertificatePurpose::Signing)
        .max_by(|a, b| a.not_after.cmp(&b.not_after))
}

/// Whether a renewal (or reissue) order in `state` is still under way (a new one is refused
/// beside it).
pub(crate) fn is_open(state: OrderState) -> bool {
    matches!(
        state,
        OrderState::Submitted
            | OrderState::Approved
            | OrderState::Provisioning
            | OrderState::Failed
    )
}

impl Station {
    /// Makes the renewal order of `original` (see the module docs).
    pub async fn renew_order(
        &self,
        original: &OrderNo,
        operator: &str,
    ) -> Result<RenewalReport, RenewalError> {
        if operator.trim().is_empty() {
            return Err(RenewalError::Invalid(InvalidArgument {
                field: "--operator",
                message: "must name the operator".into(),
            }));
        }
        let actor = self
            .operator_actor(operator, crate::domain::Action::RenewOrder)
            .await?;
        let now = self.clock.now();
        let no = original;
        let certs = self.store.certificates_of_order(no).await?;
        let mut tx = self.store.begin_write(now).await?;
        let state = tx.order_state(no).await?;
        let Some(cert) = live_certificate(&certs).cloned() else {
            return Err(RenewalError::NoLiveCertificate {
                order_no: no.to_string(),
                why: format!(
                    "the order is {state} and none of its {} certificate(s) is on its token; \
                     a company without a live certificate makes a new order",
                    certs.len()
                ),
            });
        };
        if state == OrderState::Revoked {
            return Err(RenewalError::NoLiveCertificate {
                order_no: no.to_string(),
                why: "the order is revoked".into(),
            });
        }
        let not_after = parse_utc(&cert.not_after).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "certificate {} has notAfter {:?}",
                cert.serial, cert.not_after
            ))
        })?;
        match renewal_window(not_after, now) {
            Ok(()) => {}
            Err(RenewalRefusal::NotYetOpen { opens_at, .. }) => {
                return Err(RenewalError::NotYetOpen {
                    order_no: no.to_string(),
                    serial: cert.serial.to_string(),
                    opens_at: format_utc(opens_at),
                    not_after: cert.not_after,
                });
            }
            Err(e @ RenewalRefusal::Expired { .. }) => {
                return Err(RenewalError::NoLiveCertificate {
                    order_no: no.to_string(),
                    why: format!("certificate {}: {e}", cert.serial),
                });
            }
        }
        if let Some(open) = tx
            .renewals_in_tx(original)
            .await?
            .into_iter()
            .find(|r| is_open(r.state))
        {
            return Err(RenewalError::Pending {
                order_no: no.to_string(),
                renewal: open.order_no.to_string(),
                state: open.state,
            });
        }
        let is_renewal = tx.renewal_of_in_tx(original).await?.is_some();
        let root = renewal_root(original, is_renewal).to_string();
        let mut new_no = None;
        for n in 1..=MAX_RENEWALS {
            let candidate = renewal_order_no(&root, n).map_err(|e| RenewalError::Numbering {
                order_no: no.to_string(),
                why: e.to_string(),
            })?;
            if !tx.order_exists(&candidate).await? {
                new_no = Some(candidate);
                break;
            }
        }
        let new_no = new_no.ok_or_else(|| RenewalError::Numbering {
            order_no: no.to_string(),
            why: format!("every renewal number {root}-R1 .. -R{MAX_RENEWALS} is taken"),
        })?;
        let mut order = tx.order_in_tx(no).await?;
        order.order_no = new_no.clone();
        let attachments = tx.insert_renewal_order(original, &order).await?;
        let count = attachments.len();
        tx.audit(
            &actor,
            AuditEntry {
                cert_serial: Some(cert.serial.clone()),
                ..AuditEntry::order(
                    &new_no,
                    AuditEvent::RenewalRequested(RenewalRequested {
                        original: no.to_string(),
                        certificate: cert.serial.to_string(),
                        not_after: cert.not_after.clone(),
                        operator: operator.to_string(),
                        attachments,
                    }),
                )
            },
        )
        .await?;
        tx.commit().await?;
        Ok(RenewalReport {
            order_no: new_no.to_string(),
            renewal_of: no.to_string(),
            certificate: cert.serial.to_string(),
            not_after: cert.not_after,
            attachments: count,
        })
    }
}
