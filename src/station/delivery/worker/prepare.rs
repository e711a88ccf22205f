//! Preparing a message: the only place the PIN is in clear. The sealed PIN is opened in the
//! vault, the SMS or the transfer memo rendered into zeroizing memory, and its receipt HMAC
//! computed in the vault.

use super::*;

impl Worker<'_> {
    /// Unseals the order's PIN and hands it to `build` (inside the vault session). Errors of the
    /// vault itself (token missing, login) stop the run; a blob that does not open is the
    /// delivery's problem.
    pub(super) fn with_pin<T>(
        &self,
        order_no: &str,
        sealed: &StoredPin,
        build: impl FnOnce(&Vault, &str) -> Result<T, Unpreparable>,
    ) -> Result<Result<T, Unpreparable>, DeliveryError> {
        blocking(|| {
            let vault = self.hsm.vault()?;
            let aad = pin_aad(order_no, sealed.token_serial.as_str());
            let pin = match vault.unseal_pin(&sealed.sealed, &aad) {
                Ok(p) => p,
                Err(e @ TokenError::Unexpected { .. }) => {
                    return Ok(Err(Unpreparable(format!(
                        "the sealed PIN does not open: {e}"
                    ))));
                }
                Err(e) => return Err(DeliveryError::Token(e)),
            };
            // Exposed to render the one message that carries it; `pin` is zeroized on drop.
            Ok(build(&vault, pin.expose_secret()))
        })
    }

    pub(super) fn prepare_sms(
        &self,
        d: &DeliveryRecord,
        order: &Order,
        sealed: &StoredPin,
    ) -> Result<Result<PreparedSms, Unpreparable>, DeliveryError> {
        let template = &self.channels.template;
        self.with_pin(order.order_no.as_str(), sealed, |vault, pin| {
            let sms = OutgoingSms::new(
                &d.id,
                &order.legal_rep.mobile,
                order.order_no.as_str(),
                &order.company.name,
                pin,
                template,
            )
            .map_err(|e| Unpreparable(format!("the SMS cannot be built: {e}")))?;
            let mac = vault
                // Exposed to the vault's HMAC only: the receipt proves what was sent.
                .receipt_mac(sms.text().expose_secret().as_bytes())
                .map_err(|e| Unpreparable(format!("the receipt MAC failed: {e}")))?;
            Ok(PreparedSms { sms, mac })
        })
    }

    pub(super) fn prepare_transfer(
        &self,
        d: &DeliveryRecord,
        order: &Order,
        sealed: &StoredPin,
    ) -> Result<Result<PreparedTransfer, Unpreparable>, DeliveryError> {
        let bank = &self.channels.bank;
        let Some(account) = order.corporate_account.as_ref() else {
            return Ok(Err(Unpreparable(
                "the order has no corporate account".into(),
            )));
        };
        let Some(e2e) = d.end_to_end_id.clone() else {
            return Ok(Err(Unpreparable("the delivery has no EndToEndId".into())));
        };
        let reference = match order_reference(order.order_no.as_str(), bank.memo_order_ref_len) {
            Ok(r) => r,
            // Only a template with {order_ref} needs one.
            Err(_) if !bank.memo_template.contains("{order_ref}") => String::new(),
            Err(e) => {
                return Ok(Err(Unpreparable(format!(
                    "the memo cannot be rendered: {e}"
                ))));
            }
        };
        let agent_name = match &account.branch {
            Some(b) => format!("{}{}", account.bank_name, b),
            None => account.bank_name.clone(),
        };
        self.with_pin(order.order_no.as_str(), sealed, |vault, pin| {
            let memo = render_memo(&bank.memo_template, pin, &reference, bank.memo_max_bytes)
                .map_err(|e| Unpreparable(format!("the memo cannot be rendered: {e}")))?;
            let mac = vault
                .receipt_mac(memo.as_bytes())
                .map_err(|e| Unpreparable(format!("the receipt MAC failed: {e}")))?;
            Ok(PreparedTransfer {
                delivery: d.clone(),
                transfer: CreditTransfer {
                    instruction_id: e2e.clone(),
                    end_to_end_id: e2e,
                    amount_fen: 1,
                    creditor_name: account.account_name.clone(),
                    creditor_account: account.account_number.clone(),
                    creditor_agent: Agent {
                        bic: None,
                        name: Some(agent_name),
                    },
                    memo,
                },
                mac,
            })
        })
    }

    pub(super) fn batch(&self, message_id: &str, transfers: Vec<CreditTransfer>) -> PaymentBatch {
        let bank = &self.channels.bank;
        let now = self.now().to_offset(crate::clock::BEIJING);
        PaymentBatch {
            message_id: message_id.to_string(),
            created_at: now,
            initiating_party: bank
                .initiating_party
                .clone()
                .unwrap_or_else(|| bank.debtor_name.clone()),
            debtor_name: bank.debtor_name.clone(),
            debtor_account: bank.debtor_account.clone(),
            debtor_agent: Agent {
                bic: bank.debtor_agent_bic.clone(),
                name: bank.debtor_agent_name.clone(),
            },
            requested_execution_date: now.date(),
            payment_info_id: message_id.to_string(),
            transfers,
        }
    }
}
