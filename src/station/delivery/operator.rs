//! The operator's actions on deliveries: retry a failed one, cancel one, and queue a new one
//! for an order whose deliveries were all cancelled (`deliver requeue`). Each keeps the
//! exactly-once rules of the module above: nothing a channel may have delivered is sent again
//! unless the operator states, after asking the gateway or the bank, that it was not.

use super::error::{DeliveryError, check_label};
use super::files::DeliveryPaths;
use super::outbox::{order_is_deliverable, queue_delivery, queue_pin_delivery};
use crate::audit::event::{AuditEvent, DeliveryCancelled, DeliveryRequeued, DeliveryRetried};
use crate::config::SmsKind;
use crate::domain::order::DeliveryChannel;
use crate::domain::{DeliveryEvent, DeliveryState, OrderNo};
use crate::station::Station;
use crate::station::argument::InvalidArgument;
use crate::store::{AuditEntry, DeliveryRecord};

/// What an operator's retry did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetryReport {
    /// The delivery now queued (a new one after `--force-new-transfer`).
    pub delivery_id: String,
    /// The delivery it replaces, after `--force-new-transfer`.
    pub superseded: Option<String>,
}

/// What `deliver requeue` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequeueReport {
    /// The order.
    pub order_no: OrderNo,
    /// The new delivery.
    pub delivery_id: String,
    /// The cancelled deliveries it follows.
    pub replaces: Vec<String>,
}

/// Attempt outcomes after which a message may have reached the customer: the channel took it,
/// or its answer was never known.
const MAY_HAVE_REACHED: [&str; 5] = ["accepted", "unknown", "found", "undelivered", "written"];

impl Station {
    /// `keystation deliver requeue ORDER`: a new delivery for an order whose deliveries were all
    /// cancelled while it still waits for its PIN (Provisioned or Shipped, sealed PIN present).
    ///
    /// Exactly once: if a cancelled delivery may have reached the customer (a provider or the
    /// bank took it, a file was emitted, or an attempt's outcome was never known), the operator
    /// must first ask the gateway or the bank and pass `not_delivered` to state that it did not
    /// arrive; the statement is recorded in the audit trail. A delivery superseded by
    /// `deliver retry --force-new-transfer` was already declared so.
    pub async fn requeue_delivery(
        &self,
        order_no: &OrderNo,
        operator: &str,
        not_delivered: bool,
    ) -> Result<RequeueReport, DeliveryError> {
        let no = order_no;
        check_label("--operator", operator, 64)?;
        let actor = self
            .operator_actor(operator, crate::domain::Action::ManageDelivery)
            .await?;
        let all = self
            .store
            .deliveries(&crate::store::DeliveryFilter {
                order_no: Some(no.clone()),
                state: None,
            })
            .await?;
        let mut reached = Vec::new();
        for d in all.iter().filter(|d| d.superseded_by.is_none()) {
            let attempts = self.store.delivery_attempts(&d.id).await?;
            let took_it = d.provider_id.is_some() || d.bank_file.is_some() || d.sent_at.is_some();
            let in_doubt = attempts.iter().any(|a| {
                a.outcome
                    .as_deref()
                    .is_none_or(|o| MAY_HAVE_REACHED.contains(&o))
            });
            if took_it || in_doubt {
                reached.push(d.id.clone());
            }
        }
        let mut tx = self.begin_write().await?;
        let order_state = tx.order_state(order_no).await?;
        // Requeue is for the PIN set at provisioning; a PIN reset's delivery is retried.
        if !order_is_deliverable(order_state, 0) {
            return Err(DeliveryError::Refused(format!(
                "order {order_no} is {order_state}: only a Provisioned or Shipped order waits for \
                 its PIN"
            )));
        }
        if !tx.has_sealed_pin(order_no).await? {
            return Err(DeliveryError::Refused(format!(
                "order {order_no} has no sealed PIN any more: nothing can be sent"
            )));
        }
        let mut replaces = Vec::new();
        let mut station_id = None;
        for d in &all {
            // Re-read in the transaction: a delivery revived meanwhile is live.
            let cur = tx.delivery(&d.id).await?;
            if cur.state != DeliveryState::Cancelled {
                return Err(DeliveryError::Refused(format!(
                    "order {order_no} has delivery {} in state {}: `deliver retry` or \
                     `deliver cancel` it; requeue is for an order whose deliveries were all \
                     cancelled",
                    cur.id, cur.state
                )));
            }
            replaces.push(cur.id.clone());
            station_id = Some(cur.station_id.clone());
        }
        let Some(station_id) = station_id else {
            return Err(DeliveryError::Refused(format!(
                "order {order_no} has no delivery yet: `keystation ship` queues its first one"
            )));
        };
        if !reached.is_empty() && !not_delivered {
            return Err(DeliveryError::Refused(format!(
                "order {order_no}: cancelled delivery {} may have reached the customer (a channel \
                 took it, or its outcome was never known). Ask the SMS gateway or the bank; if it \
                 did not arrive, run again with --not-delivered",
                reached.join(", ")
            )));
        }
        let order = tx.order_in_tx(order_no).await?;
        let id = queue_delivery(&mut tx, &actor, &order, &station_id).await?;
        tx.audit(
            &actor,
            AuditEntry::order(
                order_no,
                AuditEvent::DeliveryRequeued(DeliveryRequeued {
                    delivery_id: id.clone(),
                    replaces: replaces.clone(),
                    declared_not_delivered: if not_delivered {
                        reached.clone()
                    } else {
                        Vec::new()
                    },
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(RequeueReport {
            order_no: order_no.clone(),
            delivery_id: id,
            replaces,
        })
    }

    /// `keystation deliver retry`: puts a `failed` / `needs_operator` delivery back in the
    /// queue with a fresh attempt budget.
    ///
    /// - SMS: only if no provider ever accepted the message (then it is never sent again
    ///   automatically; cancel it instead).
    /// - Bank: only if no pain.001 was ever emitted for it. Otherwise only with
    ///   `force_new_transfer`, which the operator gives after the bank confirmed that no
    ///   transfer happened: the delivery is cancelled as superseded and a NEW delivery (new
    ///   `EndToEndId`, new file) is queued, so no file name or reference is ever reused.
    pub async fn retry_delivery(
        &self,
        id: &str,
        operator: &str,
        force_new_transfer: bool,
    ) -> Result<RetryReport, DeliveryError> {
        check_label("--operator", operator, 64)?;
        let actor = self
            .operator_actor(operator, crate::domain::Action::ManageDelivery)
            .await?;
        let attempts = self.store.delivery_attempts(id).await?;
        let mut tx = self.begin_write().await?;
        let mut d = tx.delivery(id).await?;
        let before = d.state;
        if !matches!(before, DeliveryState::Failed | DeliveryState::NeedsOperator) {
            return Err(DeliveryError::Refused(format!(
                "delivery {id} is {before}: only a failed or needs_operator delivery can be retried"
            )));
        }
        let order_state = tx.order_state(&d.order_no).await?;
        if !order_is_deliverable(order_state, d.pin_generation) {
            return Err(DeliveryError::Refused(format!(
                "order {} is {order_state}: its PIN is not delivered any more; cancel the delivery",
                d.order_no
            )));
        }
        if !tx.has_sealed_pin(&d.order_no).await? {
            return Err(DeliveryError::Refused(format!(
                "order {} has no sealed PIN any more: nothing can be sent",
                d.order_no
            )));
        }
        let now = crate::clock::format_utc(tx.now());
        // The one record of the operator's retry; on the superseded path it also stands for the
        // old delivery's cancellation (written in the same transaction).
        let retried = |queued: &str, superseded: Option<&str>| {
            AuditEvent::DeliveryRetried(DeliveryRetried {
                delivery_id: id.to_string(),
                from: before,
                force_new_transfer,
                queued: queued.to_string(),
                superseded: superseded.map(str::to_string),
            })
        };
        let requeue = |d: &mut DeliveryRecord| {
            d.attempts = 0;
            d.next_attempt_at = now.clone();
            d.last_error = None;
            d.bank_file = None;
            d.bank_message_id = None;
            Some(retried(&d.id, None))
        };
        let report = match d.channel {
            DeliveryChannel::Sms => {
                let accepted = d.provider_id.is_some()
                    || attempts
                        .iter()
                        .any(|a| matches!(a.outcome.as_deref(), Some("accepted" | "found")));
                if accepted {
                    return Err(DeliveryError::Refused(format!(
                        "delivery {id}: the SMS provider accepted this message ({}); a message \
                         accepted by a provider is never sent again: cancel it instead",
                        d.provider_id.as_deref().unwrap_or("provider id unknown")
                    )));
                }
                if force_new_transfer {
                    return Err(DeliveryError::Invalid(InvalidArgument {
                        field: "--force-new-transfer",
                        message: "only applies to bank deliveries".into(),
                    }));
                }
                tx.transition_delivery(&actor, &mut d, DeliveryEvent::OperatorRetry, requeue)
                    .await?;
                RetryReport {
                    delivery_id: d.id.clone(),
                    superseded: None,
                }
            }
            DeliveryChannel::BankTransfer => match (&d.bank_file, force_new_transfer) {
                (None, _) => {
                    tx.transition_delivery(&actor, &mut d, DeliveryEvent::OperatorRetry, requeue)
                        .await?;
                    RetryReport {
                        delivery_id: d.id.clone(),
                        superseded: None,
                    }
                }
                (Some(file), false) => {
                    return Err(DeliveryError::Refused(format!(
                        "delivery {id}: the pain.001 file {file} was emitted (or may have been); \
                         a transfer is sent at most once. Ask the bank whether transfer {} \
                         happened; if it did not, re-run with --force-new-transfer",
                        d.end_to_end_id.as_deref().unwrap_or("?")
                    )));
                }
                (Some(_), true) => {
                    let order = tx.order_in_tx(&d.order_no).await?;
                    // The old row must stop being live before the new one is inserted; the
                    // `delivery.retried` record below, naming both, is this move's record.
                    tx.transition_delivery(&actor, &mut d, DeliveryEvent::Cancel, |d| {
                        d.cancel_reason = Some(format!(
                            "superseded on {operator}'s confirmation that the bank made no \
                             transfer"
                        ));
                        None
                    })
                    .await?;
                    let new_id = queue_pin_delivery(
                        &mut tx,
                        &actor,
                        &order,
                        &d.station_id,
                        d.pin_generation,
                    )
                    .await?;
                    tx.update_delivery(&actor, &mut d, |d| {
                        d.superseded_by = Some(new_id.clone());
                        Some(retried(&new_id, Some(id)))
                    })
                    .await?;
                    RetryReport {
                        delivery_id: new_id,
                        superseded: Some(id.to_string()),
                    }
                }
            },
        };
        tx.commit().await?;
        Ok(report)
    }

    /// `keystation deliver cancel`: abandons a queued, failed or needs_operator delivery.
    pub async fn cancel_delivery(
        &self,
        id: &str,
        reason: &str,
        operator: &str,
    ) -> Result<DeliveryRecord, DeliveryError> {
        check_label("--reason", reason, 500)?;
        check_label("--operator", operator, 64)?;
        let actor = self
            .operator_actor(operator, crate::domain::Action::ManageDelivery)
            .await?;
        let mut tx = self.begin_write().await?;
        let mut d = tx.delivery(id).await?;
        let before = d.state;
        if before.apply(DeliveryEvent::Cancel).is_err() {
            return Err(DeliveryError::Refused(format!(
                "delivery {id} is {before}: only a queued, failed or needs_operator delivery can be \
                 cancelled (a sent one waits for its confirmation or rejection)"
            )));
        }
        tx.transition_delivery(&actor, &mut d, DeliveryEvent::Cancel, |d| {
            d.cancel_reason = Some(reason.trim().to_string());
            Some(AuditEvent::DeliveryCancelled(DeliveryCancelled {
                delivery_id: id.to_string(),
                from: before,
                reason: d.cancel_reason.clone(),
            }))
        })
        .await?;
        tx.commit().await?;
        // A message still waiting in the spool is withdrawn, so a requeued delivery cannot be
        // doubled by this one (see station_copies).
        if d.channel == DeliveryChannel::Sms && self.config.delivery.sms.kind == SmsKind::Spool {
            let spool = crate::delivery::sms::SpoolChannel::new(
                DeliveryPaths::resolve(&self.config).spool_dir,
                std::sync::Arc::new(crate::delivery::sms::SystemStamps(self.clock.clone())),
            );
            super::station_copies::remove_spool_message(&spool, &d.id);
        }
        Ok(d)
    }
}
