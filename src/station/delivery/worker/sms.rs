//! SMS deliveries after their send (which is in `send`): resolve one in doubt by asking the
//! channel (never by sending again blindly), and confirm a sent one by the spool agent's
//! receipt or the carrier's delivery report.

use super::*;

/// What `deliver status` shows for a spool message gone without its receipt.
const TAKEN_WITHOUT_RECEIPT: &str = "the spool message is gone but the gateway agent wrote no \
     receipt: ask the agent whether it sent the SMS";

impl Worker<'_> {
    /// The provider has a message whose send outcome was unknown: it is never sent again.
    async fn found_in_tx(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        provider_id: &str,
        delivered: bool,
    ) -> Result<String, DeliveryError> {
        tx.attempt_record(&cur.id, "query", "found", Some(provider_id), None)
            .await?;
        let confirmed = delivered || self.channels.confirms_on_acceptance();
        self.accepted_in_tx(
            tx,
            cur,
            provider_id,
            confirmed,
            json!({"confirmed_by": "provider query after an unknown outcome", "delivered": delivered}),
        )
        .await?;
        Ok(format!(
            "the provider has it ({provider_id}); not sent again"
        ))
    }

    /// The carrier reported a message the provider had accepted as undelivered: journaled, and
    /// handed to an operator with `why` (returned), never sent again automatically.
    async fn undelivered_in_tx(
        &mut self,
        tx: &mut Tx,
        cur: &mut DeliveryRecord,
        provider_id: &str,
        reason: &str,
        why: String,
    ) -> Result<String, DeliveryError> {
        tx.attempt_record(
            &cur.id,
            "query",
            "undelivered",
            Some(provider_id),
            Some(reason),
        )
        .await?;
        self.escalate_in_tx(tx, cur, why.clone()).await?;
        Ok(why)
    }

    /// Asks the provider what became of `d`'s message, sent at the returned time (when it
    /// went `sending`). The message is prepared again for the question (the query names it) and
    /// dropped after; without a sealed PIN, or when it cannot be prepared, nobody is asked.
    async fn ask_provider(
        &mut self,
        d: &DeliveryRecord,
    ) -> Result<(Result<QueryOutcome, Unpreparable>, time::OffsetDateTime), DeliveryError> {
        let order = self.order_of(d).await?;
        let sealed = self.station.store.sealed_pin(&d.order_no).await?;
        let prepared = match &sealed {
            Some(sealed) => self.prepare_sms(d, &order.order, sealed)?,
            None => Err(Unpreparable("the order has no sealed PIN".into())),
        };
        let sent_at = d
            .sending_at
            .as_deref()
            .and_then(parse_utc)
            .unwrap_or_else(|| self.now());
        let query = match prepared {
            Ok(p) => Ok(self.channels.sms.query(&p.sms, sent_at).await),
            Err(u) => Err(u),
        };
        Ok((query, sent_at))
    }

    /// True when the webhook gateway still remembers the `Idempotency-Key` of `d` (its first
    /// send attempt began within `dedup_window_secs`), so sending it again under that key
    /// cannot deliver it twice.
    async fn gateway_still_deduplicates(&self, d: &DeliveryRecord) -> Result<bool, DeliveryError> {
        let window = self.channels.webhook_dedup_window;
        if window.is_zero() {
            return Ok(false);
        }
        let attempts = self.station.store.delivery_attempts(&d.id).await?;
        let Some(first) = attempts
            .iter()
            .filter(|a| a.kind == "send")
            .filter_map(|a| parse_utc(&a.started_at))
            .min()
        else {
            return Ok(false);
        };
        let window = time::Duration::try_from(window).unwrap_or(time::Duration::MAX);
        Ok(self.now() - first < window)
    }

    pub(super) async fn resolve_sms(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let from = d.state;
        let (query, sent_at) = self.ask_provider(&d).await?;
        let resend_is_safe = matches!(query, Ok(QueryOutcome::Unsupported))
            && self.gateway_still_deduplicates(&d).await?;
        let Some((mut tx, mut cur)) = self.still_in(&d, DeliveryState::Sending).await? else {
            return Ok(());
        };
        let query = match query {
            Ok(q) => q,
            Err(Unpreparable(reason)) => {
                let why = format!(
                    "outcome unknown and the provider cannot be asked: {reason}; an operator decides"
                );
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                tx.commit().await?;
                self.event(&cur, from, why);
                return Ok(());
            }
        };
        let age = tx.now() - sent_at;
        let note = match query {
            QueryOutcome::Delivered { provider_id } => {
                self.found_in_tx(&mut tx, &mut cur, &provider_id, true)
                    .await?
            }
            QueryOutcome::Accepted { provider_id } => {
                self.found_in_tx(&mut tx, &mut cur, &provider_id, false)
                    .await?
            }
            QueryOutcome::Undelivered {
                provider_id,
                reason,
            } => {
                cur.provider_id = Some(provider_id.clone());
                let why = format!(
                    "the provider accepted it ({provider_id}) but the carrier reported {reason}; \
                     it is not sent again automatically"
                );
                self.undelivered_in_tx(&mut tx, &mut cur, &provider_id, &reason, why)
                    .await?
            }
            QueryOutcome::NotFound if self.channels.sms_kind == SmsKind::Spool => {
                // The spool directory is the provider: no file means nothing was published.
                if let SmsChannel::Spool(spool) = &*self.channels.sms {
                    let removed = spool.remove_stale_temps(&cur.id);
                    if removed > 0 {
                        tracing::warn!(delivery = %cur.id, removed, "removed unpublished spool temp files of an interrupted send");
                    }
                }
                tx.attempt_record(&cur.id, "query", "not_found", None, None)
                    .await?;
                self.requeue_or_escalate(
                    &mut tx,
                    &mut cur,
                    "interrupted before the spool file was published",
                    false,
                )
                .await?;
                "no spool file: never published, queued again".to_string()
            }
            QueryOutcome::NotFound => {
                tx.attempt_record(&cur.id, "query", "not_found", None, None)
                    .await?;
                let delay = time::Duration::try_from(self.channels.query_delay)
                    .unwrap_or(time::Duration::MAX);
                if age >= delay {
                    let why = "outcome unknown and the provider has no record of it after its \
                               indexing delay; an operator decides (`deliver retry` sends it again)"
                        .to_string();
                    self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                    why
                } else {
                    tx.update_delivery(&self.actor, &mut cur, |d| {
                        d.next_attempt_at = format_utc(sent_at + delay);
                        d.last_error = Some(
                            "outcome unknown; the provider has no record yet, asking again after \
                             its indexing delay"
                                .into(),
                        );
                        None
                    })
                    .await?;
                    "not found yet; asking again later".to_string()
                }
            }
            QueryOutcome::Unsupported if resend_is_safe => {
                tx.attempt_record(&cur.id, "query", "unsupported", None, None)
                    .await?;
                self.requeue_or_escalate(
                    &mut tx,
                    &mut cur,
                    "outcome unknown; sent again under the same Idempotency-Key, which the \
                     gateway de-duplicates",
                    false,
                )
                .await?;
                "outcome unknown: queued again under the same Idempotency-Key (the gateway \
                 answers with the message it already has)"
                    .to_string()
            }
            QueryOutcome::Unsupported => {
                tx.attempt_record(&cur.id, "query", "unsupported", None, None)
                    .await?;
                let why = "outcome unknown and this channel cannot be asked; an operator decides \
                           (the webhook gateway de-duplicates on Idempotency-Key, so `deliver retry` \
                           cannot deliver it twice there)"
                    .to_string();
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                why
            }
            QueryOutcome::Failed { reason } => {
                tx.attempt_record(&cur.id, "query", "failed", None, Some(&reason))
                    .await?;
                let next_attempt_at = format_utc(tx.now() + self.channels.retry.initial);
                tx.update_delivery(&self.actor, &mut cur, |d| {
                    d.next_attempt_at = next_attempt_at;
                    d.last_error = Some(format!(
                        "outcome unknown; asking the provider failed: {reason}"
                    ));
                    None
                })
                .await?;
                format!("query failed: {reason}")
            }
        };
        self.poll_done(tx, &cur, from, note).await
    }

    /// A spool SMS in `sent`: confirmed once the gateway agent's receipt is there, then the
    /// station's copy of the message is removed. Nothing is unsealed to look.
    pub(super) async fn poll_spool_receipt(
        &mut self,
        d: DeliveryRecord,
    ) -> Result<(), DeliveryError> {
        let Some(spool) = self.channels.spool() else {
            return Ok(());
        };
        let state = match spool.state(&d.id) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(delivery = %d.id, error = %e, "cannot look for the spool receipt");
                return Ok(());
            }
        };
        // Looked at every pass: a waiting message, or a missing one already reported, costs a
        // file lookup and no write transaction.
        match &state {
            SpoolState::Waiting => return Ok(()),
            SpoolState::Missing if d.last_error.as_deref() == Some(TAKEN_WITHOUT_RECEIPT) => {
                return Ok(());
            }
            _ => {}
        }
        let Some((mut tx, mut cur)) = self.still_in(&d, DeliveryState::Sent).await? else {
            return Ok(());
        };
        let from = cur.state;
        let note = match state {
            SpoolState::Received { gateway_id } => {
                let receipt = format!("{}{}", cur.id, crate::delivery::sms::spool::RECEIPT_SUFFIX);
                tx.attempt_record(&cur.id, "receipt", "delivered", Some(&receipt), None)
                    .await?;
                let evidence = json!({"confirmed_by": "gateway agent receipt",
                                      "receipt": receipt, "gateway_id": gateway_id});
                self.confirm_in(&mut tx, &mut cur, evidence).await?;
                "the gateway agent's receipt is in the spool".to_string()
            }
            SpoolState::Waiting => return Ok(()),
            SpoolState::Missing => {
                // Taken without a receipt (yet): an agent writes the receipt before it removes
                // the message. Said once, for the operator; the receipt still confirms it.
                tx.update_delivery(&self.actor, &mut cur, |d| {
                    d.last_error = Some(TAKEN_WITHOUT_RECEIPT.to_string());
                    None
                })
                .await?;
                tx.commit().await?;
                tracing::warn!(delivery = %cur.id, "{TAKEN_WITHOUT_RECEIPT}");
                return Ok(());
            }
        };
        self.poll_done(tx, &cur, from, note).await
    }

    /// Aliyun with `confirm = "delivery_report"`: a sent SMS is confirmed by the carrier's
    /// receipt.
    pub(super) async fn poll_delivery_report(
        &mut self,
        d: DeliveryRecord,
    ) -> Result<(), DeliveryError> {
        let from = d.state;
        let (Ok(query), _) = self.ask_provider(&d).await? else {
            return Ok(());
        };
        let Some((mut tx, mut cur)) = self.still_in(&d, DeliveryState::Sent).await? else {
            return Ok(());
        };
        let note = match query {
            QueryOutcome::Delivered { provider_id } => {
                tx.attempt_record(&cur.id, "query", "delivered", Some(&provider_id), None)
                    .await?;
                let evidence = json!({"confirmed_by": "carrier delivery report"});
                self.confirm_in(&mut tx, &mut cur, evidence).await?;
                "carrier delivery report received".to_string()
            }
            QueryOutcome::Undelivered {
                provider_id,
                reason,
            } => {
                let why = format!(
                    "the carrier reported {reason}; the provider accepted it, so it is not sent again automatically"
                );
                self.undelivered_in_tx(&mut tx, &mut cur, &provider_id, &reason, why)
                    .await?
            }
            other => {
                let outcome = match &other {
                    QueryOutcome::Failed { reason } => format!("query failed: {reason}"),
                    _ => "no delivery report yet".to_string(),
                };
                let next_attempt_at = format_utc(tx.now() + self.channels.retry.initial);
                tx.update_delivery(&self.actor, &mut cur, |d| {
                    d.next_attempt_at = next_attempt_at;
                    None
                })
                .await?;
                tx.commit().await?;
                tracing::debug!(delivery = %cur.id, %outcome, "delivery report pending");
                return Ok(());
            }
        };
        self.poll_done(tx, &cur, from, note).await
    }

    /// The end of a poll that moved `cur` (from `from`): `tx` committed, then, if the SMS is
    /// confirmed and went through the spool, the station's copy of the message removed (the
    /// agent's receipt makes it redundant), and the move reported.
    async fn poll_done(
        &mut self,
        tx: Tx,
        cur: &DeliveryRecord,
        from: DeliveryState,
        note: String,
    ) -> Result<(), DeliveryError> {
        tx.commit().await?;
        if let (DeliveryState::Confirmed, Some(spool)) = (cur.state, self.channels.spool()) {
            remove_spool_message(spool, &cur.id);
        }
        self.event(cur, from, note);
        Ok(())
    }
}
