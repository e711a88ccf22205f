//! Bank deliveries: one pain.001 per delivery (or per pass with `bank.batch`), its name
//! recorded before it is written, never written twice; one found in doubt is recovered from the
//! outbound directory or left to the operator.

use super::*;

impl Worker<'_> {
    /// Emits one pain.001 for `due` (one delivery, or all of them with `bank.batch`).
    pub(super) async fn send_bank(
        &mut self,
        due: Vec<DeliveryRecord>,
    ) -> Result<(), DeliveryError> {
        let mut prepared = Vec::new();
        for (d, order, sealed) in self.load(due).await? {
            match self.prepare_transfer(&d, &order, &sealed)? {
                Ok(p) => {
                    // Checked alone first, so one unusable transfer never blocks a batch.
                    let probe = self.batch(&end_to_end_id(&d.id), vec![p.transfer.clone()]);
                    match write_pain001(&probe) {
                        Ok(_) => prepared.push(p),
                        Err(e) => {
                            self.fail_queued(
                                &d,
                                format!("the transfer is not valid ISO 20022: {e}"),
                            )
                            .await?
                        }
                    }
                }
                Err(Unpreparable(reason)) => self.fail_queued(&d, reason).await?,
            }
        }
        if prepared.is_empty() {
            return Ok(());
        }
        let message_id = if prepared.len() == 1 && !self.channels.bank.batch {
            prepared[0].transfer.end_to_end_id.clone()
        } else {
            format!("KB{}", uuid::Uuid::new_v4().simple()).to_uppercase()
        };
        let file_name = format!("{message_id}.xml");

        // Record `sending` and the file name BEFORE the file exists, under one sender lease.
        let lease_id = uuid::Uuid::new_v4().to_string();
        let mut claimed = Vec::new();
        let mut tx = self.station.store.begin_write(self.now()).await?;
        for p in prepared {
            if let Some((cur, seq)) = self
                .claim_in_tx(
                    &mut tx,
                    &p.delivery,
                    &p.mac,
                    "file",
                    Some((&file_name, &message_id)),
                    &lease_id,
                )
                .await?
            {
                claimed.push((cur, seq, p.transfer));
            }
        }
        tx.commit().await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let kept = self.keep_senders(
            claimed.iter().map(|(c, _, _)| c.id.clone()).collect(),
            &lease_id,
        );
        let batch = self.batch(
            &message_id,
            claimed.iter().map(|(_, _, t)| t.clone()).collect(),
        );
        let document = write_pain001(&batch);
        drop(batch);
        crate::failpoint!("deliver.bank.before_write");
        let published = match &document {
            Ok(doc) => {
                let dir = self.channels.paths.outbound_dir.clone();
                blocking(|| files::publish_new_file(&dir, &file_name, doc.as_bytes())).map_err(
                    |e| match e {
                        PublishError::NotPublished(e) => {
                            format!("the file could not be written: {e}")
                        }
                        PublishError::AlreadyExists => "a file of that name already exists in the \
                             outbound directory; nothing was written over it"
                            .to_string(),
                    },
                )
            }
            Err(e) => Err(format!("the pain.001 could not be built: {e}")),
        };
        let already_exists = matches!(&published, Err(m) if m.contains("already exists"));
        drop(document);
        crate::failpoint!("deliver.bank.after_write");
        kept.stop_renewing();

        let mut tx = self.station.store.begin_write(self.now()).await?;
        let mut events = Vec::new();
        for (claimed_row, seq, _) in claimed {
            if !self
                .release_sender(&mut tx, &claimed_row.id, &lease_id)
                .await?
            {
                continue;
            }
            let mut cur = tx.delivery(&claimed_row.id).await?;
            let from = cur.state;
            if from != DeliveryState::Sending {
                // Settled meanwhile (a bank report imported while the file was written).
                let outcome = if published.is_ok() {
                    "written"
                } else {
                    "not_written"
                };
                tx.attempt_finished(&cur.id, seq, outcome, Some(&file_name), None)
                    .await?;
                continue;
            }
            match &published {
                Ok(()) => {
                    tx.attempt_finished(&cur.id, seq, "written", Some(&file_name), None)
                        .await?;
                    let evidence = json!({"bank_file": file_name, "message_id": message_id,
                                          "end_to_end_id": cur.end_to_end_id});
                    self.accepted_in_tx(&mut tx, &mut cur, &file_name, false, evidence)
                        .await?;
                    events.push((cur, from, format!("pain.001 {file_name} emitted")));
                }
                Err(reason) if already_exists => {
                    // Someone else's file under our deterministic name: never overwrite, never
                    // guess.
                    tx.attempt_finished(&cur.id, seq, "refused", None, Some(reason))
                        .await?;
                    self.escalate_in_tx(&mut tx, &mut cur, reason.clone())
                        .await?;
                    events.push((cur, from, reason.clone()));
                }
                Err(reason) => {
                    // Nothing was published: the file never existed, so sending it later is
                    // not a second transfer.
                    tx.attempt_finished(&cur.id, seq, "retryable", None, Some(reason))
                        .await?;
                    cur.bank_file = None;
                    cur.bank_message_id = None;
                    self.retry_or_escalate(&mut tx, &mut cur, reason).await?;
                    events.push((cur, from, reason.clone()));
                }
            }
        }
        tx.commit().await?;
        for (cur, from, note) in events {
            self.event(&cur, from, note);
        }
        Ok(())
    }

    /// A bank delivery found in `sending`: the file name was recorded before the file was
    /// written. Present -> emitted (`sent`); absent -> nobody can tell whether it was never
    /// written or already collected by the bank's agent: the operator asks the bank. Never a
    /// second file.
    pub(super) async fn resolve_bank(&mut self, d: DeliveryRecord) -> Result<(), DeliveryError> {
        let from = d.state;
        let dir = self.channels.paths.outbound_dir.clone();
        let present = d
            .bank_file
            .as_ref()
            .map(|f| {
                let removed = files::remove_stale_temp(&dir, f);
                if removed {
                    tracing::warn!(delivery = %d.id, file = %f, "removed an unpublished temp file of an interrupted attempt");
                }
                dir.join(f).is_file()
            });
        let Some((mut tx, mut cur)) = self.still_in(&d, DeliveryState::Sending).await? else {
            return Ok(());
        };
        let note = match (present, cur.bank_file.clone()) {
            (Some(true), Some(file)) => {
                tx.attempt_record(&cur.id, "recover", "found", Some(&file), None)
                    .await?;
                let evidence = json!({"bank_file": file, "recovered": true,
                                      "message_id": cur.bank_message_id,
                                      "end_to_end_id": cur.end_to_end_id});
                self.accepted_in_tx(&mut tx, &mut cur, &file, false, evidence)
                    .await?;
                format!(
                    "pain.001 {file} found after an interruption: emitted once, not written again"
                )
            }
            (Some(false), Some(file)) => {
                tx.attempt_record(&cur.id, "recover", "not_found", Some(&file), None)
                    .await?;
                let why = format!(
                    "interrupted while emitting {file}, which is not in the outbound directory: it \
                     was either never written or already collected by the bank's agent. Ask the \
                     bank about EndToEndId {}; then `bank import` its status, or `deliver retry \
                     --force-new-transfer` if no transfer happened",
                    cur.end_to_end_id.as_deref().unwrap_or("?")
                );
                self.escalate_in_tx(&mut tx, &mut cur, why.clone()).await?;
                why
            }
            _ => {
                tx.attempt_record(&cur.id, "recover", "no_file_recorded", None, None)
                    .await?;
                self.requeue_or_escalate(
                    &mut tx,
                    &mut cur,
                    "interrupted before a file was chosen",
                    false,
                )
                .await?;
                "no file was recorded: nothing emitted, queued again".to_string()
            }
        };
        tx.commit().await?;
        self.event(&cur, from, note);
        Ok(())
    }
}
