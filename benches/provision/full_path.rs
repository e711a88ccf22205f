//! The full path of one order (issue 19 item 1), beside the provisioning rows of the same run:
//! for each order in turn, its application file imported (validation, documents, seal pictures
//! normalised and kept), approved, provisioned (the batch job, 1 worker, as the keystation row),
//! shipped (its PIN delivery queued), and delivered by SMS to a loopback webhook gateway (the
//! integration tests' fake, which checks the signature; its answer confirms the delivery), until
//! the order is PinDelivered. Per order = the sum of the five stages; each stage's median is
//! reported as a step. Orders are the provisioning rows' (two seals), all on an SMS channel.

use super::fake_sms_gateway::FakeWebhook;
use super::{BoxError, Plan, Samples, bench_orders, median, rss_kib};
use keystation::config::Config;
use keystation::domain::{OrderNo, OrderState};
use keystation::station::Station;
use keystation::station::batch::{BatchOptions, BatchProgress};
use keystation::station::delivery::ShipRequest;
use keystation::station::intake::ImportOptions;
use keystation::station::provision::{Phase, Progress, ProvisionReport, Step};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const WEBHOOK_SECRET: &str = "bench-webhook-shared-secret";
const STAGES: [&str; 5] = ["import", "approve", "provision", "ship", "deliver"];

struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str, _: Step, _: Phase) {}
}

impl BatchProgress for Quiet {
    fn begin(&self, _: usize) {}
    fn finished(&self, _: &str, _: &Result<ProvisionReport, String>) {}
}

/// One application file per order (as orders arrive), each on an SMS channel.
fn order_files(dir: &Path, n: usize) -> Result<Vec<(OrderNo, PathBuf)>, BoxError> {
    let all: Value = serde_json::from_slice(&std::fs::read(bench_orders(dir, n)?)?)?;
    let mut files = Vec::new();
    for mut o in all.as_array().ok_or("orders")?.iter().cloned() {
        if o["auth_method"] == "corporate_transfer" {
            o["auth_method"] = json!("legal_rep_phone");
            o.as_object_mut()
                .ok_or("order")?
                .remove("corporate_account");
        }
        let no: OrderNo = o["order_no"].as_str().ok_or("order_no")?.parse()?;
        let file = dir.join(format!("{no}.json"));
        std::fs::write(&file, serde_json::to_vec(&o)?)?;
        files.push((no, file));
    }
    Ok(files)
}

/// The child of a full-path plan.
pub(super) fn child_full_path(plan: &Plan, dir: &Path) -> Result<Samples, BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let fake = FakeWebhook::start(WEBHOOK_SECRET.as_bytes()).await;
        let config = dir.join("station.toml");
        super::figures::use_webhook(&config, &fake.url, WEBHOOK_SECRET);
        let station = Station::open(
            Config::load(&config)?,
            Arc::new(keystation::clock::SystemClock),
        )
        .await?;
        // Each step acts as its registered operator, by the credential the bench registered.
        let as_operator = |name| {
            station
                .clone()
                .with_credential(Some(super::figures::credential(&config, name)))
        };
        let (intake_desk, reviewer) = (as_operator("bench-intake"), as_operator("bench-reviewer"));
        let hsm = station.open_hsm().await?;
        let channels = station.delivery_channels()?;
        let files = order_files(&dir.join("applications"), plan.tokens)?;
        let intake = ImportOptions {
            operator: Some("bench-intake".into()),
            uscc_checksum_override: None,
        };
        let mut stages: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
        let mut per_order_ms = Vec::new();
        let all = Instant::now();
        for (i, (no, file)) in files.iter().enumerate() {
            let mut t = Instant::now();
            let mut lap = |stage: usize| {
                let now = Instant::now();
                stages[stage].push((now - t).as_secs_f64() * 1e3);
                t = now;
            };
            let imported = intake_desk.import_orders(file, &intake).await?;
            if imported.imported != [no.clone()] {
                return Err(format!("{no}: imported {:?}", imported.imported).into());
            }
            lap(0);
            reviewer
                .approve_order(no, "bench-reviewer", Some("benchmark"))
                .await?;
            lap(1);
            let done = reviewer
                .provision_batch(
                    &hsm,
                    BatchOptions {
                        workers: plan.workers,
                        limit: Some(1),
                    },
                    Arc::new(Quiet),
                    Arc::new(AtomicBool::new(false)),
                )
                .await?;
            if done.ok.len() != 1 {
                return Err(format!("{no}: not provisioned ({:?})", done.failed).into());
            }
            lap(2);
            let shipped = reviewer
                .ship(&ShipRequest {
                    order_no: no.clone(),
                    tracking_no: format!("SF{:010}", i + 1),
                    carrier: None,
                    operator: Some("bench-reviewer".into()),
                })
                .await?;
            if shipped.delivery_id.is_none() {
                return Err(format!("{no}: no delivery queued").into());
            }
            lap(3);
            let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            station.deliver_run(&hsm, &channels, true, stop_rx).await?;
            lap(4);
            per_order_ms.push(stages.iter().map(|s| s[i]).sum());
        }
        let wall_s = all.elapsed().as_secs_f64();

        // Correctness: every order delivered, every message at the gateway exactly once.
        let delivered = station.list_orders(Some(OrderState::PinDelivered)).await?;
        if delivered.len() != files.len() || fake.requests() != files.len() {
            return Err(format!(
                "{} of {} orders PinDelivered, {} requests at the gateway",
                delivered.len(),
                files.len(),
                fake.requests()
            )
            .into());
        }
        if fake.rejected_signatures() != 0 {
            return Err("the gateway refused a signature".into());
        }
        station.close().await;
        Ok(Samples {
            per_token_ms: per_order_ms,
            wall_s,
            peak_rss_kib: rss_kib("VmHWM:"),
            step_median_ms: STAGES
                .iter()
                .zip(&mut stages)
                .map(|(name, v)| (name.to_string(), median(v)))
                .collect(),
            ..Samples::default()
        })
    })
}
