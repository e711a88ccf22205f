//! `keystation ship`, `keystation deliver ...`, `keystation bank import` handlers.

use super::opts::{BankCmd, DeliverCmd, ShipArgs};
use super::signals::wait_for_stop_signal;
use super::{CliError, order_no_arg, output};
use crate::domain::DeliveryState;
use crate::station::delivery::ShipRequest;
use crate::station::error_code as ec;
use crate::station::{DeliveryFilter, Station};

pub(super) async fn ship(station: &Station, args: &ShipArgs, json: bool) -> Result<(), CliError> {
    let report = station
        .ship(&ShipRequest {
            order_no: order_no_arg(&args.order_no)?,
            tracking_no: args.tracking.clone(),
            carrier: args.carrier.clone(),
            operator: args.operator.clone(),
        })
        .await?;
    if json {
        return output::json(&report);
    }
    println!(
        "{} {} (tracking {}{})",
        report.order_no,
        report.state,
        report.shipment.tracking_no,
        report
            .shipment
            .carrier
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default()
    );
    if let Some(id) = &report.delivery_id {
        println!("PIN delivery {id} queued");
    }
    Ok(())
}

/// The columns of `deliver status`.
const DELIVERY_COLUMNS: [&str; 8] = [
    "ID",
    "ORDER",
    "CHANNEL",
    "STATE",
    "TO",
    "ATTEMPTS",
    "NEXT / UPDATED",
    "PROVIDER ID / NOTE",
];

/// The columns of `deliver notices`.
const NOTICE_COLUMNS: [&str; 8] = [
    "ID",
    "ORDER",
    "KIND",
    "MEDIUM",
    "STATE",
    "TO",
    "ATTEMPTS",
    "PROVIDER ID / NOTE",
];

/// The tables' last column: the first of `texts` there is, cut to 100 characters.
fn note<const N: usize>(texts: [&Option<String>; N]) -> String {
    let first = texts.into_iter().flatten().next();
    first
        .map(|t| t.chars().take(100).collect())
        .unwrap_or_default()
}

pub(super) async fn run(station: &Station, cmd: DeliverCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        DeliverCmd::Run { once } => {
            let hsm = station.open_hsm().await?;
            let channels = station.delivery_channels()?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            if !once {
                tokio::spawn(async move {
                    wait_for_stop_signal().await;
                    eprintln!("stopping after the current delivery...");
                    let _ = stop_tx.send(true);
                });
            }
            let report = station.deliver_run(&hsm, &channels, once, stop_rx).await?;
            if json {
                output::json(&report)?;
            } else {
                for e in &report.events {
                    println!(
                        "{} {} {:<4} {} -> {}: {}",
                        e.delivery_id, e.order_no, e.channel, e.from, e.to, e.note
                    );
                }
                for n in &report.notices {
                    println!(
                        "notice {} {} {} {} -> {}: {}",
                        n.notification_id, n.order_no, n.kind, n.medium, n.to, n.note
                    );
                }
                if report.events.is_empty() && report.notices.is_empty() {
                    eprintln!("nothing was due");
                }
            }
            // `--once` is what scripts and timers run: its exit code says whether everything
            // that was due reached its channel (0) or something is left (1).
            if once && !report.unfinished.is_empty() {
                let left: Vec<String> = report
                    .unfinished
                    .iter()
                    .map(|e| format!("{} ({}, {})", e.delivery_id, e.order_no, e.to))
                    .collect();
                return Err(CliError::verdict(
                    ec::DELIVERY_UNSENT,
                    format!(
                        "{} delivery(ies) not sent: {}; see `keystation deliver status`",
                        left.len(),
                        left.join(", ")
                    ),
                ));
            }
            Ok(())
        }
        DeliverCmd::Status { order, state } => {
            let states = DeliveryState::ALL.map(DeliveryState::as_str);
            let state =
                CliError::state_filter(state, DeliveryState::parse, "a delivery state", &states)?;
            let list = station
                .delivery_status(&DeliveryFilter {
                    order_no: order.as_deref().map(order_no_arg).transpose()?,
                    state,
                })
                .await?;
            output::listing(&list, json, &DELIVERY_COLUMNS, |s| {
                let d = &s.delivery;
                vec![
                    d.id.clone(),
                    d.order_no.to_string(),
                    crate::domain::delivery::channel_name(d.channel).to_string(),
                    d.state.to_string(),
                    d.destination_masked.clone(),
                    d.attempts.to_string(),
                    match d.state {
                        DeliveryState::Queued | DeliveryState::Sending => d.next_attempt_at.clone(),
                        _ => d.updated_at.clone(),
                    },
                    note([&d.provider_id, &d.cancel_reason, &d.last_error]),
                ]
            })
        }
        DeliverCmd::Notices { order } => {
            let order = order.as_deref().map(order_no_arg).transpose()?;
            let list = station.notice_status(order.as_ref()).await?;
            output::listing(&list, json, &NOTICE_COLUMNS, |s| {
                let n = &s.notice;
                vec![
                    n.id.clone(),
                    n.order_no.to_string(),
                    n.kind.to_string(),
                    n.medium.as_str().to_string(),
                    n.state.to_string(),
                    n.destination_masked.clone(),
                    n.attempts.to_string(),
                    note([&n.provider_id, &n.last_error]),
                ]
            })
        }
        DeliverCmd::Retry {
            id,
            operator,
            force_new_transfer,
        } => {
            let report = station
                .retry_delivery(&id, &operator, force_new_transfer)
                .await?;
            if json {
                return output::json(&report);
            }
            match &report.superseded {
                Some(old) => println!(
                    "delivery {old} cancelled (superseded); new transfer {} queued",
                    report.delivery_id
                ),
                None => println!("delivery {} queued", report.delivery_id),
            }
            Ok(())
        }
        DeliverCmd::Requeue {
            order_no,
            operator,
            not_delivered,
        } => {
            let report = station
                .requeue_delivery(&order_no_arg(&order_no)?, &operator, not_delivered)
                .await?;
            if json {
                return output::json(&report);
            }
            println!(
                "delivery {} queued for {} (after cancelled {})",
                report.delivery_id,
                report.order_no,
                report.replaces.join(", ")
            );
            Ok(())
        }
        DeliverCmd::Cancel {
            id,
            reason,
            operator,
        } => {
            let d = station.cancel_delivery(&id, &reason, &operator).await?;
            if json {
                return output::json(&d);
            }
            println!("delivery {} {}", d.id, d.state);
            Ok(())
        }
    }
}

pub(super) async fn bank(station: &Station, cmd: BankCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        BankCmd::Import { file, operator } => {
            let report = station.bank_import(&file, operator.as_deref()).await?;
            if json {
                return output::json(&report);
            }
            println!(
                "{} {} {} (sha256 {})",
                report.kind,
                report.message_id,
                report.file.display(),
                report.sha256
            );
            for c in &report.changes {
                println!(
                    "{} {} {} -> {} ({})",
                    c.delivery_id,
                    c.end_to_end_id.as_deref().unwrap_or("-"),
                    c.from,
                    c.to,
                    c.code
                );
            }
            for p in &report.pending {
                println!("pending  {}: {}", p.reference, p.note);
            }
            for p in &report.problems {
                eprintln!("warning: {}: {}", p.reference, p.note);
            }
            if let Some(to) = &report.moved_to {
                println!("moved to {}", to.display());
            }
            for f in &report.removed_bank_files {
                println!("removed the station's copy of {f} (every transfer in it is settled)");
            }
            Ok(())
        }
    }
}
