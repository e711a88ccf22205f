//! `keystation order ...` handlers.
//!
//! Human output never prints stored text raw: an order stored before today's intake rules may
//! hold a bidirectional override or an escape sequence, which a terminal would obey. Every value
//! that came from outside goes through [`escape_for_display`] (`\u{202E}`); `--json` output is
//! JSON-escaped by serde and left as stored.

use super::opts::OrderCmd;
use super::{CliError, order_no_arg, output};
use crate::domain::text::escape_for_display as shown;
use crate::domain::{KeyRole, OrderState};
use crate::station::intake::{ImportOptions, IntakeError};
use crate::station::{DeliveryRecord, Station};

pub(super) async fn run(station: &Station, cmd: OrderCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        OrderCmd::Import {
            file,
            operator,
            accept_uscc_checksum,
        } => {
            let opts = ImportOptions {
                operator,
                uscc_checksum_override: accept_uscc_checksum,
            };
            let report = station
                .import_orders(&file, &opts)
                .await
                .map_err(|e| match e {
                    IntakeError::Invalid(vs) => CliError::invalid(
                        format!("{} violation(s); nothing was imported", vs.len()),
                        vs,
                    ),
                    other => CliError::from(other),
                })?;
            if json {
                return output::json(&report);
            }
            for w in &report.warnings {
                eprintln!(
                    "warning: {}: {} [{}]",
                    shown(&w.field),
                    shown(&w.message),
                    w.code
                );
            }
            for no in &report.imported {
                println!("imported {no}");
            }
            Ok(())
        }
        OrderCmd::List { state } => {
            let states = OrderState::ALL.map(OrderState::as_str);
            let state = CliError::state_filter(state, OrderState::parse, "a state", &states)?;
            let orders = station.list_orders(state).await?;
            output::listing(
                &orders,
                json,
                &[
                    "ORDER",
                    "STATE",
                    "COMPANY",
                    "USCC",
                    "AUTH METHOD",
                    "SUBMITTED",
                ],
                |o| {
                    [
                        o.order_no.as_str(),
                        &o.state.to_string(),
                        &o.company_name,
                        &o.uscc,
                        &o.auth_method,
                        &o.submitted_at,
                    ]
                    .map(|cell| shown(cell).into_owned())
                    .to_vec()
                },
            )
        }
        OrderCmd::Show { order_no } => {
            let details = station.order_details(&order_no_arg(&order_no)?).await?;
            if json {
                return output::json(&details);
            }
            let rec = &details.record;
            let o = &rec.order;
            println!("order        {}", shown(o.order_no.as_str()));
            println!("state        {}", rec.state);
            println!(
                "company      {} ({})",
                shown(&o.company.name),
                shown(&o.company.uscc)
            );
            if let Some(reason) = &rec.uscc_override_reason {
                println!(
                    "             USCC checksum accepted by override: {}",
                    shown(reason)
                );
            }
            println!(
                "legal rep    {} {}",
                shown(&o.legal_rep.name),
                shown(&o.legal_rep.mobile)
            );
            println!(
                "handler      {} {} {}",
                shown(&o.handler.name),
                shown(&o.handler.mobile),
                shown(&o.handler.email)
            );
            println!(
                "product      {:?} key, {} year(s), seals: {:?}",
                o.product.key_role, o.product.years, o.product.seal_service
            );
            if let Some(main) = &o.product.main_order_no {
                println!("main key     order {main}");
            }
            println!("pin channel  {:?}", o.auth_method.delivery_channel());
            println!(
                "ship to      {} {} {}",
                shown(&o.shipping.province),
                shown(&o.shipping.city),
                shown(&o.shipping.address)
            );
            println!("submitted    {}", rec.submitted_at);
            if let Some(of) = &rec.renewal_of {
                println!("renewal of   {}", shown(of));
            }
            for r in &details.renewals {
                println!("renewed by   {} ({})", shown(&r.order_no), r.state);
            }
            if let Some(d) = &details.key_disposition {
                println!("key          {d}");
            }
            if let Some(of) = &details.reissue_of {
                println!("reissue of   {}", shown(of));
            }
            for r in &details.reissues {
                println!("reissued as  {} ({})", shown(&r.order_no), r.state);
            }
            if let Some(by) = &rec.reviewed_by {
                println!(
                    "reviewed     by {} at {} {}",
                    shown(by),
                    rec.reviewed_at.as_deref().unwrap_or("?"),
                    shown(rec.review_reason.as_deref().unwrap_or(""))
                );
            }
            if let Some(b) = &details.token {
                println!(
                    "token        serial {} (label {}), key {} CKA_ID {}",
                    shown(b.token_serial.as_deref().unwrap_or("(not yet initialised)")),
                    shown(&b.token_label),
                    b.key_algorithm,
                    b.key_id.as_deref().unwrap_or("-")
                );
            }
            for c in &details.certificates {
                println!(
                    "certificate  serial {} [{}] valid to {} sha256 {}",
                    c.serial, c.status, c.not_after, c.fingerprint_sha256
                );
            }
            for d in &details.deliveries {
                println!("{}", delivery_line(d));
            }
            for k in &details.company_keys {
                println!("{}", company_key_line(k));
            }
            for a in &rec.attachments {
                let (name, size) = (shown(&a.file_name), a.size);
                let kind = format!("{:<12} {}", a.role, a.kind);
                println!("{kind} {name} ({size} bytes, sha256 {})", a.sha256);
            }
            for r in &details.history {
                let actor = shown(&r.actor);
                println!("history      #{} {} {actor} {}", r.seq, r.at, r.action);
            }
            Ok(())
        }
        OrderCmd::Revoke {
            order_no,
            revocation: a,
        } => {
            let no = order_no_arg(&order_no)?;
            let r = station
                .request_order_revoke(&no, &a.reason, a.detail.as_deref(), &a.operator)
                .await?;
            super::at_approval::requested(&r, json)
        }
        OrderCmd::Lost {
            order_no,
            operator,
            detail,
            broken,
        } => {
            let detail = detail.as_deref();
            super::service_desk::lost(station, &order_no, &operator, detail, broken, json).await
        }
        OrderCmd::Reissue(args) => super::reissue::run(station, args, json).await,
        OrderCmd::Renew { order_no, operator } => {
            let report = station
                .renew_order(&order_no_arg(&order_no)?, &operator)
                .await?;
            if json {
                return output::json(&report);
            }
            println!(
                "{} Submitted: renewal of {} (certificate {} valid to {}), {} attachment(s) \
                 carried over; review it with `keystation order approve {}`",
                report.order_no,
                report.renewal_of,
                report.certificate,
                report.not_after,
                report.attachments,
                report.order_no
            );
            Ok(())
        }
        OrderCmd::Approve {
            order_no,
            operator,
            reason,
        } => review(station, &order_no, operator, reason, json).await,
        OrderCmd::Reject {
            order_no,
            operator,
            reason,
        } => {
            if reason.trim().is_empty() {
                return Err(CliError::invalid_argument(
                    "--reason",
                    "required",
                    "a rejection needs a reason",
                ));
            }
            let order_no = order_no_arg(&order_no)?;
            if operator.trim().is_empty() {
                return Err(CliError::usage(
                    "--operator must name the reviewing operator",
                ));
            }
            let report = station
                .reject_order(&order_no, operator.trim(), reason.trim())
                .await?;
            if json {
                return output::json(&report);
            }
            println!("{order_no} {} (was {})", report.state, report.from);
            for c in &report.certificates_revoked {
                println!(
                    "certificate  {c} revoked ({})",
                    crate::station::review::REJECTION_REVOCATION_REASON
                );
            }
            if let Some(b) = &report.binding_released {
                println!("token        binding {b} released");
            }
            if report.sealed_pin_destroyed {
                println!("sealed PIN   destroyed");
            }
            Ok(())
        }
    }
}

async fn review(
    station: &Station,
    order_no: &str,
    operator: String,
    reason: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let order_no = &order_no_arg(order_no)?;
    if operator.trim().is_empty() {
        return Err(CliError::usage(
            "--operator must name the reviewing operator",
        ));
    }
    let state = station
        .approve_order(order_no, &operator, reason.as_deref())
        .await?;
    if json {
        return output::json(&serde_json::json!({ "order_no": order_no, "state": state }));
    }
    println!("{order_no} {state}");
    Ok(())
}

/// One delivery of an order, for `order show`: where its PIN went (or is going) and what an
/// operator can read about it (provider reference, cancel reason, last error).
fn delivery_line(d: &DeliveryRecord) -> String {
    let mut line = format!(
        "delivery     {} {} {} to {} (attempts {}, updated {})",
        d.id,
        crate::domain::delivery::channel_name(d.channel),
        d.state,
        d.destination_masked,
        d.attempts,
        d.updated_at
    );
    for (label, value) in [
        ("provider id", &d.provider_id),
        ("EndToEndId", &d.end_to_end_id),
        ("cancelled", &d.cancel_reason),
        ("superseded by", &d.superseded_by),
        ("last error", &d.last_error),
    ] {
        if let Some(v) = value {
            line.push_str(&format!("; {label}: {}", shown(v)));
        }
    }
    line
}

/// One of the company's keys in `order show`: role, order, state, token and certificates.
fn company_key_line(k: &crate::station::queries::CompanyKeyView) -> String {
    let role = match k.key_role {
        KeyRole::Main => "main".to_string(),
        KeyRole::Secondary => format!(
            "secondary of {}",
            shown(k.main_order_no.as_deref().unwrap_or("?"))
        ),
    };
    let certs: Vec<String> = k
        .certificates
        .iter()
        .map(|c| format!("{} [{}]", c.serial, c.status))
        .collect();
    format!(
        "company key  {} ({role}) {} token {} certificates {}",
        shown(&k.order_no),
        k.state,
        shown(k.token_serial.as_deref().unwrap_or("-")),
        if certs.is_empty() {
            "-".to_string()
        } else {
            certs.join(", ")
        }
    )
}
