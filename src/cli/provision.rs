//! `keystation provision` handler: one order, or a concurrent batch.

use super::opts::ProvisionArgs;
use super::signals::stop_on_ctrl_c;
use super::{CliError, output};
use crate::domain::OrderNo;
use crate::station::Station;
use crate::station::batch::{BatchOptions, BatchProgress};
use crate::station::error_code as ec;
use crate::station::hsm::Hsm;
use crate::station::provision::{Phase, Progress, ProvisionReport, ProvisionRequest, Step};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One line per step on stderr (stdout stays for the result).
struct StepLines;

impl Progress for StepLines {
    fn step(&self, order_no: &str, step: Step, phase: Phase) {
        let what = match phase {
            Phase::Started => "...",
            Phase::Done => "done",
            Phase::Skipped => "already done",
            Phase::Failed => "FAILED",
        };
        eprintln!("[{order_no}] {step:<18} {what}");
    }
}

/// Batch progress: an indicatif bar on a terminal, a line per order otherwise.
struct BatchLines {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicUsize,
    total: AtomicUsize,
}

impl Progress for BatchLines {
    fn step(&self, order_no: &str, step: Step, phase: Phase) {
        if let (Some(bar), Phase::Started) = (&self.bar, phase) {
            bar.set_message(format!("{order_no}: {step}"));
        }
    }
}

impl BatchProgress for BatchLines {
    fn begin(&self, total: usize) {
        self.total.store(total, Ordering::SeqCst);
        match &self.bar {
            Some(bar) => bar.set_length(total as u64),
            None => eprintln!("provisioning {total} order(s)"),
        }
    }

    fn skipped(&self, order_no: &str, why: &str) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let total = self.total.load(Ordering::SeqCst);
        let line = format!("[{n}/{total}] {order_no} skipped: {why}");
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn finished(&self, order_no: &str, result: &Result<ProvisionReport, String>) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let total = self.total.load(Ordering::SeqCst);
        let line = match result {
            Ok(r) => format!(
                "[{n}/{total}] {order_no} ok: token {} certificate {}",
                r.token_serial, r.certificate_serial
            ),
            Err(e) => format!("[{n}/{total}] {order_no} FAILED: {e}"),
        };
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if result.is_err() {
                    bar.println(line);
                }
            }
            None => eprintln!("{line}"),
        }
    }
}

pub(super) async fn run(
    station: &Station,
    args: &ProvisionArgs,
    json: bool,
) -> Result<(), CliError> {
    let hsm = station.open_hsm().await?;
    if args.all_approved {
        return batch(station, &hsm, args, json).await;
    }
    let order_no = args
        .order_no
        .as_deref()
        .ok_or_else(|| CliError::usage("give an ORDER_NO or --all-approved"))?;
    let req = ProvisionRequest {
        order_no: super::order_no_arg(order_no)?,
        token: args.token.clone(),
        reinit: args.reinit,
    };
    let report = station.provision(&hsm, &req, &StepLines).await?;
    if json {
        return output::json(&report);
    }
    println!("order        {}", report.order_no);
    println!(
        "token        serial {} (label {})",
        report.token_serial, report.token_label
    );
    println!(
        "key          {} CKA_ID {}",
        report.key_algorithm, report.key_id
    );
    println!(
        "certificate  serial {} valid to {}",
        report.certificate_serial, report.not_after
    );
    println!("             sha256 {}", report.certificate_fingerprint);
    if !report.seals.is_empty() {
        println!("seals        {}", report.seals.join(", "));
    }
    for r in &report.revoked {
        println!("revoked      {r} (issued in an interrupted attempt, never on a token)");
    }
    Ok(())
}

async fn batch(
    station: &Station,
    hsm: &Hsm,
    args: &ProvisionArgs,
    json: bool,
) -> Result<(), CliError> {
    if args.workers == 0 {
        return Err(CliError::usage("--workers must be at least 1"));
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let progress = Arc::new(BatchLines {
        bar,
        done: AtomicUsize::new(0),
        total: AtomicUsize::new(0),
    });
    let stop = stop_on_ctrl_c("finishing the orders in flight, taking no new ones");
    let summary = station
        .provision_batch(
            hsm,
            BatchOptions {
                workers: args.workers,
                limit: args.limit,
            },
            progress.clone(),
            stop,
        )
        .await?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    if json {
        output::json(&summary)?;
    } else {
        println!(
            "provisioned {} order(s), {} failed, {} skipped, {} not started{}",
            summary.ok.len(),
            summary.failed.len(),
            summary.skipped.len(),
            summary.not_started.len(),
            if summary.stopped { " (stopped)" } else { "" }
        );
        for (no, why) in &summary.failed {
            println!("  FAILED {no}: {why}");
        }
        for (no, why) in &summary.skipped {
            println!("  skipped {no}: {why}");
        }
        if !summary.not_started.is_empty() && !summary.stopped {
            println!(
                "  not started (no blank token left): {}",
                summary
                    .not_started
                    .iter()
                    .map(OrderNo::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::verdict(
            ec::PROVISION_BATCH,
            format!(
                "{} order(s) failed; each is kept and resumable with `keystation provision ORDER`",
                summary.failed.len()
            ),
        ))
    }
}
