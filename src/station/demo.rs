//! `keystation demo`: the whole pipeline on one station, with the embedded fixture orders (or N
//! generated ones): import → approve → provision (batch) → ship → deliver PINs → the demo's
//! SIMULATED gateway agent sends the SMS and writes its receipts, the SIMULATED bank accepts the
//! transfers (pain.002 ACSC written into the inbound directory and imported, exactly as a real
//! bank's answer would be) → every order PinDelivered, the station's copies of the messages
//! removed.
//!
//! Everything runs through the same station code an operator uses; only the gateway and the bank
//! are played by the demo ([`peers`]). Re-running continues where a previous run stopped and says
//! when there is nothing left to do.

pub mod fleet;
pub mod peers;

use super::Station;
use super::batch::{BatchOptions, BatchProgress};
use super::hsm::Hsm;
use super::provision::{Phase, Progress, ProvisionReport, Step};
use crate::domain::{CertificateStatus, DeliveryChannel, DeliveryState, OrderNo, OrderState};
use crate::station::delivery::{DeliveryChannels, ShipRequest};
use crate::station::intake::ImportOptions;
use crate::store::DeliveryFilter;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The fixture orders and their pictures, embedded so the demo runs anywhere.
const FIXTURES: &[(&str, &[u8])] = &[
    (
        "0001_main-key_two-seals_legal-rep-phone.json",
        include_bytes!("../../fixtures/orders/valid/0001_main-key_two-seals_legal-rep-phone.json"),
    ),
    (
        "0002_main-key_company-seal_corporate-transfer.json",
        include_bytes!(
            "../../fixtures/orders/valid/0002_main-key_company-seal_corporate-transfer.json"
        ),
    ),
    (
        "0003_secondary-key_no-seals_legal-rep-bank-card.json",
        include_bytes!(
            "../../fixtures/orders/valid/0003_secondary-key_no-seals_legal-rep-bank-card.json"
        ),
    ),
];
const PICTURES: &[(&str, &[u8])] = &[
    (
        "docs/business_license.png",
        include_bytes!("../../fixtures/orders/valid/docs/business_license.png"),
    ),
    (
        "docs/handler_id_back.jpg",
        include_bytes!("../../fixtures/orders/valid/docs/handler_id_back.jpg"),
    ),
    (
        "docs/handler_id_front.jpg",
        include_bytes!("../../fixtures/orders/valid/docs/handler_id_front.jpg"),
    ),
    (
        "docs/power_of_attorney.png",
        include_bytes!("../../fixtures/orders/valid/docs/power_of_attorney.png"),
    ),
    (
        "docs/seal_collection_form.png",
        include_bytes!("../../fixtures/orders/valid/docs/seal_collection_form.png"),
    ),
    (
        "seals/company.png",
        include_bytes!("../../fixtures/orders/valid/seals/company.png"),
    ),
    (
        "seals/legal_rep.jpg",
        include_bytes!("../../fixtures/orders/valid/seals/legal_rep.jpg"),
    ),
];

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Writing the demo's files failed.
    #[error("demo files: {0}")]
    Io(#[from] std::io::Error),
    /// A station step failed.
    #[error("{step}: {message}")]
    Step {
        /// Which stage of the demo.
        step: &'static str,
        /// What failed.
        message: String,
    },
}

fn step_err(step: &'static str) -> impl Fn(String) -> DemoError {
    move |message| DemoError::Step { step, message }
}

/// Options of a demo run.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Generate this many valid orders instead of the three fixture orders.
    pub generated: Option<usize>,
    /// Provisioning workers.
    pub workers: usize,
}

/// One order in the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoRow {
    /// Order number.
    pub order_no: OrderNo,
    /// Company.
    pub company: String,
    /// Order state.
    pub state: OrderState,
    /// Token serial.
    pub token_serial: Option<String>,
    /// Certificate serial.
    pub certificate_serial: Option<String>,
    /// Seals on the key.
    pub seals: usize,
    /// PIN channel.
    pub channel: String,
    /// Delivery state.
    pub delivery: Option<String>,
    /// Where the PIN went (the intended message file).
    pub message_file: Option<PathBuf>,
}

/// The outcome of a demo run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    /// Orders of the demo.
    pub rows: Vec<DemoRow>,
    /// True when every order reached PinDelivered.
    pub complete: bool,
    /// True when a previous run had already finished everything.
    pub already_ran: bool,
}

/// Writes the fixture pictures (documents and seal pictures) the generated orders reference into
/// `dir` (`docs/…`, `seals/…`), leaving files that exist already alone.
pub fn write_fixture_pictures(dir: &Path) -> std::io::Result<()> {
    for (name, bytes) in PICTURES {
        let p = dir.join(name);
        if let Some(d) = p.parent() {
            crate::private_files::create_dir(d)?;
        }
        if !p.exists() {
            crate::private_files::write_file(&p, bytes)?;
        }
    }
    Ok(())
}

/// Writes `n` generated valid orders (one array file `generated-<n>.json`) into `dir`; returns
/// the file. Their documents are the fixture pictures ([`write_fixture_pictures`]) next to it.
pub fn generated_orders(dir: &Path, n: usize) -> Result<PathBuf, DemoError> {
    let auths = [
        "legal_rep_phone",
        "corporate_transfer",
        "legal_rep_bank_card",
    ];
    let services = ["company_and_legal_rep", "company", "none"];
    let mut orders = Vec::with_capacity(n);
    for i in 0..n {
        // A valid USCC per company: region 110108, organisation digits from the index.
        let first17 = format!("91110108{:09}", 100_000 + i);
        let check = crate::domain::ids::uscc_check_char(&first17).unwrap_or('0');
        let uscc = format!("{first17}{check}");
        let auth = auths[i % 3];
        let service = services[(i / 3) % 3];
        let mut docs = vec![
            json!({"kind": "business_license", "file": "docs/business_license.png"}),
            json!({"kind": "handler_id_front", "file": "docs/handler_id_front.jpg"}),
            json!({"kind": "handler_id_back", "file": "docs/handler_id_back.jpg"}),
            json!({"kind": "power_of_attorney", "file": "docs/power_of_attorney.png"}),
        ];
        let mut seals = vec![];
        if service != "none" {
            docs.push(
                json!({"kind": "seal_collection_form", "file": "docs/seal_collection_form.png"}),
            );
            seals.push(json!({"kind": "company", "picture": "seals/company.png"}));
        }
        if service == "company_and_legal_rep" {
            seals.push(json!({"kind": "legal_rep", "picture": "seals/legal_rep.jpg"}));
        }
        let mobile = format!("139{:08}", 10_000_000 + i);
        let mut o = json!({
            "order_no": format!("KS-GEN-{:05}", i + 1),
            "auth_method": auth,
            "company": {"name": format!("北京示例{}科技有限公司", i + 1), "uscc": uscc},
            "legal_rep": {"name": "王芳", "mobile": mobile, "id_type": "resident_id", "id_number": "440305198512310026"},
            "product": {"key_role": "main", "years": 1, "seal_service": service},
            "invoice": {"title": format!("北京示例{}科技有限公司", i + 1), "taxpayer_id": uscc},
            "handler": {"name": "赵磊", "mobile": "13600136000", "id_type": "resident_id", "id_number": "110108200001011237", "email": "ops@example.com"},
            "shipping": {"province": "北京市", "city": "北京市", "address": format!("海淀区示例路{}号", i + 1)},
            "documents": docs,
            "seals": seals,
        });
        if auth == "corporate_transfer" {
            o["corporate_account"] = json!({
                "account_name": format!("北京示例{}科技有限公司", i + 1),
                "account_number": format!("6222{:012}", 100_000 + i),
                "bank_name": "中国工商银行北京海淀支行",
            });
        }
        orders.push(o);
    }
    let file = dir.join(format!("generated-{n}.json"));
    crate::private_files::write_file(
        &file,
        &serde_json::to_vec_pretty(&Value::Array(orders)).unwrap_or_default(),
    )?;
    Ok(file)
}

/// One line per order on the given sink.
struct Lines(Arc<dyn Fn(&str) + Send + Sync>);

impl Progress for Lines {
    fn step(&self, _: &str, _: Step, _: Phase) {}
}

impl BatchProgress for Lines {
    fn begin(&self, total: usize) {
        (self.0)(&format!("provisioning {total} order(s)"));
    }

    fn finished(&self, order_no: &str, result: &Result<ProvisionReport, String>) {
        (self.0)(&match result {
            Ok(r) => format!(
                "  {order_no}: token {} certificate {} seals [{}]",
                r.token_serial,
                r.certificate_serial,
                r.seals.join(", ")
            ),
            Err(e) => format!("  {order_no}: FAILED {e}"),
        });
    }
}

impl Station {
    /// Runs (or continues) the demo in this station's data directory.
    pub async fn run_demo(
        &self,
        hsm: &Hsm,
        opts: DemoOptions,
        say: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<DemoReport, DemoError> {
        self.demo_operators()
            .await
            .map_err(|e| step_err("operators")(e.to_string()))?;
        let order_nos = self.demo_intake(opts.generated, &say).await?;
        let before: Vec<OrderState> = self.states(&order_nos).await?;
        let already_ran =
            !before.is_empty() && before.iter().all(|s| *s == OrderState::PinDelivered);

        // 3. Provisioning, each order onto its own fresh SoftHSM token. A secondary key is
        //    approved only once its company's main key is live: a second round reviews and
        //    provisions the ones the first round's main keys made possible.
        for round in 0..2 {
            let states = if round == 0 {
                before.clone()
            } else {
                if self.demo_review(&order_nos, &say).await? == 0 {
                    break;
                }
                self.states(&order_nos).await?
            };
            let waiting = states
                .iter()
                .any(|s| matches!(s, OrderState::Approved | OrderState::Provisioning));
            if waiting {
                let lines = Arc::new(Lines(say.clone()));
                let summary = self
                    .as_demo_operator("demo-desk")
                    .provision_batch(
                        hsm,
                        BatchOptions {
                            workers: opts.workers.max(1),
                            limit: None,
                        },
                        lines,
                        Arc::new(AtomicBool::new(false)),
                    )
                    .await
                    .map_err(|e| step_err("provision")(e.to_string()))?;
                say(&format!(
                    "provisioned {} order(s), {} failed",
                    summary.ok.len(),
                    summary.failed.len()
                ));
                let _ = self.anchor_audit(hsm).await;
            }
        }

        // 4. Shipping (queues each PIN delivery in the same transaction).
        for (i, no) in order_nos.iter().enumerate() {
            if self
                .store
                .order(no)
                .await
                .map_err(|e| step_err("ship")(e.to_string()))?
                .map(|r| r.state)
                == Some(OrderState::Provisioned)
            {
                self.as_demo_operator("demo-shipping")
                    .ship(&ShipRequest {
                        order_no: no.clone(),
                        tracking_no: format!("SF{:010}", 1_000_000 + i),
                        carrier: Some("SF Express (demo)".into()),
                        operator: Some("demo-shipping".into()),
                    })
                    .await
                    .map_err(|e| step_err("ship")(e.to_string()))?;
            }
        }

        // 5. PIN delivery: SMS into the spool, pain.001 files into the bank's outbound directory.
        let channels = DeliveryChannels::from_config(&self.config, self.clock.clone())
            .map_err(|e| step_err("deliver")(e.to_string()))?;
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let run = self
            .deliver_run(hsm, &channels, true, stop_rx)
            .await
            .map_err(|e| step_err("deliver")(e.to_string()))?;
        if !run.events.is_empty() {
            say(&format!(
                "delivery: {} message(s) handed to their channel",
                run.events.len()
            ));
        }

        // 6. The demo plays the gateway agent and the bank: the SMS go out with their receipts,
        //    every transfer is accepted; a second pass confirms the SMS by their receipts.
        self.simulated_gateway(&say).await?;
        self.simulated_bank(&say).await?;
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let confirmed = self
            .deliver_run(hsm, &channels, true, stop_rx)
            .await
            .map_err(|e| step_err("deliver")(e.to_string()))?;
        if !confirmed.events.is_empty() {
            say(&format!(
                "delivery: {} SMS confirmed by the gateway's receipts",
                confirmed.events.len()
            ));
        }
        let _ = self.anchor_audit(hsm).await;

        // 7. The summary.
        let mut rows = Vec::new();
        for no in &order_nos {
            rows.push(self.demo_row(no).await?);
        }
        let complete = rows.iter().all(|r| r.state == OrderState::PinDelivered);
        Ok(DemoReport {
            rows,
            complete,
            already_ran,
        })
    }

    /// The demo's intake and review: the fixture orders (or `generated` ones) imported — those
    /// already in are not imported again — and approved by the demo's reviewer. Returns the
    /// demo's order numbers.
    pub(super) async fn demo_intake(
        &self,
        generated: Option<usize>,
        say: &Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Vec<OrderNo>, DemoError> {
        let apps = self.config.data_dir().join("applications");
        write_fixture_pictures(&apps)?;
        let mut files = Vec::new();
        match generated {
            Some(n) => {
                let f = apps.join(format!("generated-{n}.json"));
                files.push(if f.exists() {
                    f
                } else {
                    generated_orders(&apps, n)?
                });
            }
            None => {
                for (name, bytes) in FIXTURES {
                    let p = apps.join(name);
                    if !p.exists() {
                        crate::private_files::write_file(&p, bytes)?;
                    }
                    files.push(p);
                }
            }
        }

        // 1. Intake: files whose orders are already in are not imported again.
        let mut order_nos = Vec::new();
        for f in &files {
            let value: Value =
                serde_json::from_slice(&std::fs::read(f)?).map_err(|e| DemoError::Step {
                    step: "import",
                    message: e.to_string(),
                })?;
            let numbers: Vec<String> = match &value {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|o| o["order_no"].as_str().map(str::to_string))
                    .collect(),
                o => o["order_no"]
                    .as_str()
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
            };
            let numbers = numbers
                .iter()
                .map(|n| OrderNo::parse(&crate::domain::normalize::order_no(n)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| step_err("import")(e.to_string()))?;
            let existing = self
                .store
                .existing_orders(&numbers)
                .await
                .map_err(|e| step_err("import")(e.to_string()))?;
            if existing.len() < numbers.len() {
                let r = self
                    .as_demo_operator("demo-intake")
                    .import_orders(
                        f,
                        &ImportOptions {
                            operator: Some("demo-intake".into()),
                            uscc_checksum_override: None,
                        },
                    )
                    .await
                    .map_err(|e| match e {
                        crate::station::intake::IntakeError::Invalid(vs) => step_err("import")(
                            vs.iter()
                                .map(|v| format!("{}: {}", v.field, v.message))
                                .collect::<Vec<_>>()
                                .join("; "),
                        ),
                        other => step_err("import")(other.to_string()),
                    })?;
                say(&format!(
                    "imported {} order(s) from {}",
                    r.imported.len(),
                    f.display()
                ));
            }
            order_nos.extend(numbers);
        }

        // 2. Review.
        self.demo_review(&order_nos, say).await?;
        Ok(order_nos)
    }

    /// The demo's review: every Submitted order approved by the demo's reviewer, except a
    /// secondary key whose main key is not live yet (left for the next round). Returns how many
    /// were approved.
    async fn demo_review(
        &self,
        order_nos: &[OrderNo],
        say: &Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<usize, DemoError> {
        let mut approved = 0;
        for no in order_nos {
            let state = self
                .store
                .order(no)
                .await
                .map_err(|e| step_err("review")(e.to_string()))?
                .map(|r| r.state);
            if state == Some(OrderState::Submitted) {
                match self
                    .as_demo_operator("demo-reviewer")
                    .approve_order(no, "demo-reviewer", Some("demo"))
                    .await
                {
                    Ok(_) => approved += 1,
                    Err(e @ crate::store::StoreError::MainKey { .. }) => {
                        say(&format!("review of {no} waits: {e}"));
                    }
                    Err(e) => return Err(step_err("review")(e.to_string())),
                }
            }
        }
        if approved > 0 {
            say(&format!(
                "approved {approved} order(s) (operator demo-reviewer)"
            ));
        }
        Ok(approved)
    }

    async fn states(&self, order_nos: &[OrderNo]) -> Result<Vec<OrderState>, DemoError> {
        let mut out = Vec::new();
        for no in order_nos {
            if let Some(r) = self
                .store
                .order(no)
                .await
                .map_err(|e| step_err("status")(e.to_string()))?
            {
                out.push(r.state);
            }
        }
        Ok(out)
    }

    async fn demo_row(&self, no: &OrderNo) -> Result<DemoRow, DemoError> {
        let err = step_err("summary");
        let rec = self
            .store
            .order(no)
            .await
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err(format!("no order {no}")))?;
        let binding = self
            .store
            .active_binding(no)
            .await
            .map_err(|e| err(e.to_string()))?;
        let cert = self
            .store
            .certificates_of_order(no)
            .await
            .map_err(|e| err(e.to_string()))?
            .into_iter()
            .find(|c| {
                c.status == CertificateStatus::OnToken
                    && c.purpose == crate::domain::CertificatePurpose::Signing
            });
        let delivery = self
            .store
            .deliveries(&DeliveryFilter {
                order_no: Some(no.clone()),
                state: None,
            })
            .await
            .map_err(|e| err(e.to_string()))?
            .into_iter()
            .rfind(|d| d.state != DeliveryState::Cancelled);
        // The message as the company received it: the simulated peers' copies.
        let message_file = delivery.as_ref().and_then(|d| match d.channel {
            DeliveryChannel::Sms => Some(self.demo_gateway_copy(&d.id)),
            DeliveryChannel::BankTransfer => d.bank_file.as_ref().map(|f| self.demo_bank_copy(f)),
        });
        Ok(DemoRow {
            order_no: no.clone(),
            company: rec.order.company.name.clone(),
            state: rec.state,
            token_serial: binding.and_then(|b| b.token_serial.map(String::from)),
            certificate_serial: cert.map(|c| c.serial.to_string()),
            seals: rec.order.seals_on_key().len(),
            channel: match rec.order.auth_method.delivery_channel() {
                DeliveryChannel::Sms => "SMS".into(),
                DeliveryChannel::BankTransfer => "bank transfer".into(),
            },
            delivery: delivery.map(|d| d.state.as_str().to_string()),
            message_file,
        })
    }
}
