//! `keystation check`: the station's invariants, checked against the database and the tokens.
//!
//! - every active order's state agrees with its token: a provisioned order's token (when present)
//!   holds exactly what provisioning wrote and nothing else — its certificate, its key pair with
//!   exactly its usages and, while the PIN is still sealed so the station can log in, its valid
//!   seals (`token` reads the token, `token_content` judges it);
//! - every key on the station's CA and vault tokens has exactly its usages (`station_keys`);
//! - no token is bound to two orders;
//! - every certificate the CA signed is either on its token or revoked (a reserved or issued one
//!   may only exist while its order's job is unfinished, and is then revoked on resume);
//! - every undelivered PIN exists exactly once, sealed, and opens in the vault; no delivered PIN
//!   still exists;
//! - no bank transfer was emitted twice: no two pain.001 files in the outbound directory carry
//!   one EndToEndId, and no order has two live bank deliveries that each emitted a file.
//! - every order has a history in the audit trail (at least the record of its import).
//! - (note) a key whose SO PIN rotation by an unlock code is unconfirmed, with the way out.
//!
//! Findings are violations (the invariant is broken) or notes (work in progress, tokens shipped).

mod report;
mod station_keys;
mod token;
mod token_content;

pub use report::{CheckReport, Finding, Level};

use super::Station;
use super::hsm::{Hsm, read_certificate};
use crate::domain::{CertificateStatus, OrderNo, OrderState, StepStatus};
use crate::store::StoreError;
use std::collections::HashMap;
use token::StationMaterial;

impl Station {
    /// Checks every invariant (see the module docs).
    pub async fn check(&self, hsm: &Hsm) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        report.administrators = self
            .store
            .operators()
            .await?
            .into_iter()
            .filter(|o| o.is_active_administrator())
            .map(|o| o.name.to_string())
            .collect();
        report.operator_changes =
            if crate::domain::station_request::is_bootstrap(report.administrators.len()) {
                "bootstrap"
            } else {
                "four_eyes"
            };
        let orders = self.store.list_orders(None).await?;
        report.orders = orders.len();
        let bindings = self.store.active_bindings().await?;
        let mut by_serial: HashMap<&str, Vec<&str>> = HashMap::new();
        for b in &bindings {
            if let Some(s) = &b.token_serial {
                by_serial
                    .entry(s.as_str())
                    .or_default()
                    .push(b.order_no.as_str());
            }
        }
        for (serial, orders) in &by_serial {
            if orders.len() > 1 {
                report.add(
                    Level::Violation,
                    "token_bound_twice",
                    "",
                    format!("token {serial} is bound to orders {}", orders.join(", ")),
                );
            }
        }
        let states: HashMap<OrderNo, OrderState> = orders
            .iter()
            .map(|o| (o.order_no.clone(), o.state))
            .collect();

        for c in self.store.all_certificates().await? {
            let state = states.get(&c.order_no).copied();
            match c.status {
                CertificateStatus::Reserved | CertificateStatus::Issued
                    if state == Some(OrderState::Provisioning)
                        || state == Some(OrderState::Failed) =>
                {
                    report.add(
                        Level::Note,
                        "certificate_pending",
                        c.order_no.as_str(),
                        format!(
                            "certificate {} is {} but not on a token; the order's job is unfinished \
                             and revokes it when resumed",
                            c.serial, c.status
                        ),
                    );
                }
                CertificateStatus::Reserved | CertificateStatus::Issued => report.add(
                    Level::Violation,
                    "certificate_orphan",
                    c.order_no.as_str(),
                    format!(
                        "certificate {} is {} but neither on its token nor revoked",
                        c.serial, c.status
                    ),
                ),
                _ => {}
            }
        }

        self.check_transfers(&mut report).await?;
        self.check_unlocks(&mut report).await?;
        for no in self.store.orders_without_audit().await? {
            report.add(
                Level::Violation,
                "audit_history_missing",
                &no,
                "the order has no audit record (it had at least its import's): its history was \
                 removed from the trail"
                    .into(),
            );
        }
        for r in self
            .store
            .service_requests(&crate::store::ServiceRequestFilter::default())
            .await?
            .iter()
            .filter(|r| {
                matches!(
                    r.state,
                    crate::domain::RequestState::Executing | crate::domain::RequestState::Failed
                )
            })
        {
            report.add(
                Level::Note,
                "request_unfinished",
                r.order_no.as_str(),
                format!(
                    "{} request {} is {}: `keystation pin-reset run {}` finishes it",
                    r.kind, r.id, r.state, r.id
                ),
            );
        }
        self.check_station_keys(hsm, &mut report);
        let material = self.station_material(hsm, &mut report);

        for o in &orders {
            let no = &o.order_no;
            let sealed = self.store.sealed_pin(no).await?;
            let delivered_or_closed = matches!(
                o.state,
                OrderState::PinDelivered | OrderState::Revoked | OrderState::Rejected
            );
            // A PIN reset's new PIN stays sealed, on a PinDelivered order, until its own
            // delivery is settled.
            let reset_pin_in_delivery = o.state == OrderState::PinDelivered
                && sealed.is_some()
                && self
                    .store
                    .deliveries(&crate::store::DeliveryFilter {
                        order_no: Some(no.clone()),
                        state: None,
                    })
                    .await?
                    .iter()
                    .any(|d| d.pin_generation > 0 && !d.state.is_final());
            if delivered_or_closed && sealed.is_some() && !reset_pin_in_delivery {
                report.add(
                    Level::Violation,
                    "pin_not_destroyed",
                    no.as_str(),
                    format!("order is {} but its sealed PIN still exists", o.state),
                );
            }
            match o.state {
                OrderState::Provisioning | OrderState::Failed => {
                    let (_, journal) = self.store.journal(no).await?;
                    let last = journal
                        .iter()
                        .rev()
                        .find(|s| s.status != StepStatus::Done)
                        .or(journal.last())
                        .map(|s| format!("{} ({})", s.step, s.status))
                        .unwrap_or_else(|| "claim".into());
                    report.add(
                        Level::Note,
                        "job_unfinished",
                        no.as_str(),
                        format!(
                            "provisioning stopped at {last}; `keystation provision {no}` resumes it"
                        ),
                    );
                }
                OrderState::Provisioned | OrderState::Shipped | OrderState::PinDelivered => {
                    let needs_pin = o.state != OrderState::PinDelivered;
                    if needs_pin && sealed.is_none() {
                        report.add(
                            Level::Violation,
                            "pin_missing",
                            no.as_str(),
                            "the PIN is not delivered yet but no sealed PIN exists".into(),
                        );
                    }
                    self.check_token(hsm, &material, no, o.state, sealed, &mut report)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(report)
    }

    /// No bank transfer emitted twice (see the module docs).
    /// A key whose SO PIN rotation by an unlock code is unconfirmed: nothing logs in on it as
    /// SO until the desk confirms (see [`super::service_desk::so_pin`]).
    async fn check_unlocks(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        let now = crate::clock::format_utc(self.clock.now());
        for p in self.store.pending_unlocks().await? {
            let expiry = match &p.expires_at {
                Some(t) if *t <= now => format!("its code expired at {t}"),
                Some(t) => format!("its code is valid to {t}"),
                None => "its code is not sent yet".to_string(),
            };
            report.add(
                Level::Note,
                "unlock_unconfirmed",
                &p.order_no,
                format!(
                    "key {}: unlock request {} rotates its SO PIN and its use is not confirmed \
                     ({expiry}); PIN reset, retire, renewal at the desk and --reinit are refused \
                     on it until `keystation unlock confirm {} --operator NAME` once the \
                     customer's tool reported success (an unused code: a new unlock request \
                     carries the same next SO PIN)",
                    p.token_serial, p.request_id, p.request_id
                ),
            );
        }
        Ok(())
    }

    async fn check_transfers(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        use crate::domain::{DeliveryChannel, DeliveryState};
        let deliveries = self
            .store
            .deliveries(&crate::store::DeliveryFilter::default())
            .await?;
        // One transfer per PIN: a PIN reset's new PIN (a later generation) has its own.
        let mut emitted: HashMap<(&str, i64), usize> = HashMap::new();
        for d in &deliveries {
            if d.channel == DeliveryChannel::BankTransfer
                && d.bank_file.is_some()
                && d.state != DeliveryState::Cancelled
            {
                *emitted
                    .entry((d.order_no.as_str(), d.pin_generation))
                    .or_default() += 1;
            }
        }
        for ((order, generation), n) in emitted {
            if n > 1 {
                report.add(
                    Level::Violation,
                    "transfer_twice",
                    order,
                    format!(
                        "{n} live bank deliveries emitted a transfer for this order's PIN \
                         (generation {generation})"
                    ),
                );
            }
        }
        let outbound = crate::station::delivery::DeliveryPaths::resolve(&self.config).outbound_dir;
        let files: Vec<Vec<u8>> = std::fs::read_dir(&outbound)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                    .filter_map(|p| std::fs::read(p).ok())
                    .collect()
            })
            .unwrap_or_default();
        for d in &deliveries {
            let Some(e2e) = &d.end_to_end_id else {
                continue;
            };
            let tag = format!("<EndToEndId>{e2e}</EndToEndId>");
            let copies = files
                .iter()
                .filter(|f| f.windows(tag.len()).any(|w| w == tag.as_bytes()))
                .count();
            if copies > 1 {
                report.add(
                    Level::Violation,
                    "transfer_twice",
                    d.order_no.as_str(),
                    format!(
                        "{copies} pain.001 files in {} carry EndToEndId {e2e}",
                        outbound.display()
                    ),
                );
            }
        }
        Ok(())
    }

    /// The CA and seal-maker certificates the tokens' contents are judged against.
    fn station_material(&self, hsm: &Hsm, report: &mut CheckReport) -> StationMaterial {
        let maker_path = self.config.path(&self.config.seal.maker_certificate);
        let maker_der = read_certificate(&maker_path)
            .map_err(|e| {
                report.add(
                    Level::Violation,
                    "station_maker_certificate",
                    "",
                    format!("{e}: seals cannot be checked against their maker"),
                );
            })
            .ok();
        StationMaterial {
            ca_der: hsm.ca_cert_der().to_vec(),
            maker_der,
        }
    }
}
