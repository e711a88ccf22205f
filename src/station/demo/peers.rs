//! The demo's SIMULATED peers of the station: the SMS gateway agent and the bank. Each speaks
//! the station's real interface — the spool's message files and receipts, pain.001 in and
//! pain.002 out through the inbound directory — and keeps its copy of what it received in its
//! own directory of the demo (`simulated-sms-gateway/`, `simulated-bank/`): those copies are
//! what the company would read on its phone or its bank statement, and where the demo's user
//! finds each PIN. The station's own copies are removed once the deliveries are confirmed.

use super::{DemoError, step_err};
use crate::delivery::bank::{
    Pain002Report, PaymentInfoStatus, TxStatus, TxStatusCode, write_pain002,
};
use crate::delivery::sms::spool::RECEIPT_SUFFIX;
use crate::domain::{DeliveryChannel, DeliveryState};
use crate::private_files;
use crate::station::Station;
use crate::store::{DeliveryFilter, DeliveryRecord};
use std::path::PathBuf;
use std::sync::Arc;

/// Directory of the simulated gateway's copies (the phones' inbox), in the data directory.
pub const GATEWAY_DIR: &str = "simulated-sms-gateway";
/// Directory of the simulated bank's copies of the pain.001 it received.
pub const BANK_DIR: &str = "simulated-bank";

type Say = Arc<dyn Fn(&str) + Send + Sync>;

impl Station {
    /// Where the simulated gateway keeps the message of delivery `id`.
    pub fn demo_gateway_copy(&self, id: &str) -> PathBuf {
        self.config
            .data_dir()
            .join(GATEWAY_DIR)
            .join(format!("{id}.json"))
    }

    /// Where the simulated bank keeps the pain.001 `file`.
    pub fn demo_bank_copy(&self, file: &str) -> PathBuf {
        self.config.data_dir().join(BANK_DIR).join(file)
    }

    /// The deliveries in `sent`, which the simulated peers answer; a failure is the demo's
    /// `step`.
    async fn sent_deliveries(&self, step: &'static str) -> Result<Vec<DeliveryRecord>, DemoError> {
        self.store
            .deliveries(&DeliveryFilter {
                order_no: None,
                state: Some(DeliveryState::Sent),
            })
            .await
            .map_err(|e| step_err(step)(e.to_string()))
    }

    /// Plays the gateway agent: each spool message without a receipt is "sent" (kept in the
    /// gateway's directory), then acknowledged with its receipt, as the agent contract says.
    pub(super) async fn simulated_gateway(&self, say: &Say) -> Result<(), DemoError> {
        let spool = self.config.path(&self.config.delivery.sms.spool_dir);
        let sent = self.sent_deliveries("gateway").await?;
        let mut n = 0;
        for d in sent.iter().filter(|d| d.channel == DeliveryChannel::Sms) {
            let message = spool.join(format!("{}.json", d.id));
            let receipt = spool.join(format!("{}{RECEIPT_SUFFIX}", d.id));
            if receipt.exists() || !message.exists() {
                continue;
            }
            let copy = self.demo_gateway_copy(&d.id);
            if let Some(dir) = copy.parent() {
                private_files::create_dir(dir)?;
            }
            private_files::write_file(&copy, &std::fs::read(&message)?)?;
            let temp = spool.join(format!(".{}{RECEIPT_SUFFIX}.tmp", d.id));
            private_files::write_file(
                &temp,
                format!(
                    "{{\"gateway_id\": \"DEMO-GW-{}\"}}\n",
                    &d.id[..8.min(d.id.len())]
                )
                .as_bytes(),
            )?;
            std::fs::rename(&temp, &receipt)?;
            n += 1;
        }
        if n > 0 {
            say(&format!(
                "[simulated SMS gateway] sent {n} message(s), receipts written into the spool; \
                 the phones' copies are in {}",
                self.config.data_dir().join(GATEWAY_DIR).display()
            ));
        }
        Ok(())
    }

    /// Plays the bank: for every pain.001 the station sent and nobody answered yet, keeps the
    /// bank's copy, writes the bank's pain.002 acceptance (ACSC) into the inbound directory and
    /// imports it.
    pub(super) async fn simulated_bank(&self, say: &Say) -> Result<(), DemoError> {
        let sent = self.sent_deliveries("bank").await?;
        let mut by_message: std::collections::BTreeMap<String, (String, Vec<String>)> =
            Default::default();
        for d in sent
            .iter()
            .filter(|d| d.channel == DeliveryChannel::BankTransfer)
        {
            if let (Some(msg), Some(e2e), Some(file)) =
                (&d.bank_message_id, &d.end_to_end_id, &d.bank_file)
            {
                by_message
                    .entry(msg.clone())
                    .or_insert_with(|| (file.clone(), Vec::new()))
                    .1
                    .push(e2e.clone());
            }
        }
        let inbound = self.config.path(&self.config.delivery.bank.inbound_dir);
        let outbound = self.config.path(&self.config.delivery.bank.outbound_dir);
        private_files::create_dir(&inbound)?;
        for (msg, (file, e2es)) in by_message {
            // The bank's agent collected the file: the bank keeps its copy.
            let copy = self.demo_bank_copy(&file);
            if let Some(dir) = copy.parent() {
                private_files::create_dir(dir)?;
            }
            if let Ok(bytes) = std::fs::read(outbound.join(&file)) {
                private_files::write_file(&copy, &bytes)?;
            }
            let report = Pain002Report {
                message_id: format!("DEMOBANK-{}", &msg[..msg.len().min(20)]),
                original_message_id: msg.clone(),
                group_status: None,
                group_reason_code: None,
                group_reason_text: None,
                payment_infos: vec![PaymentInfoStatus {
                    original_payment_info_id: msg.clone(),
                    status: None,
                    reason_code: None,
                    reason_text: None,
                }],
                transactions: e2es
                    .iter()
                    .map(|e| TxStatus {
                        original_payment_info_id: msg.clone(),
                        original_instruction_id: Some(e.clone()),
                        original_end_to_end_id: Some(e.clone()),
                        status: TxStatusCode::Acsc,
                        reason_code: None,
                        reason_text: None,
                    })
                    .collect(),
            };
            let xml = write_pain002(&report, self.clock.now())
                .map_err(|e| step_err("bank")(e.to_string()))?;
            let answer = inbound.join(format!("demo-simulated-bank-{msg}.pain002.xml"));
            private_files::write_file(&answer, xml.as_bytes())?;
            say(&format!(
                "[simulated bank] received {file} (kept in {}), accepted {} transfer(s): {}",
                copy.display(),
                e2es.len(),
                answer.display()
            ));
            self.as_demo_operator("demo-simulated-bank")
                .bank_import(&answer, Some("demo-simulated-bank"))
                .await
                .map_err(|e| step_err("bank")(e.to_string()))?;
        }
        Ok(())
    }
}
