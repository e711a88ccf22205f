//! Workstation mode: an operator at a desk plugs in USB keys; the station notices, offers the
//! next approved order, provisions it with live step output, and says when the key may go.
//!
//! The logic is driven by two small interfaces, so it runs the same against the real world and in
//! tests: [`DeskEvents`] (tokens and USB keys appearing and leaving — real: PKCS#11 polling, since
//! SoftHSM and many modules have no slot events, plus USB hotplug through rusb) and [`Desk`] (what
//! the operator sees and answers — real: the terminal).

use super::Station;
use super::hsm::Hsm;
use super::provision::{Phase, Progress, ProvisionRequest, Step};
use crate::domain::{OrderNo, OrderState, TokenSerial};
use crate::store::StoreError;
use crate::token::{Pkcs11Module, TokenInfo};
use crate::usb::{UsbCatalog, UsbEvent, UsbKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Something that happened at the desk.
#[derive(Debug, Clone)]
pub enum DeskEvent {
    /// A PKCS#11 token appeared (or was present at start).
    TokenInserted(TokenInfo),
    /// A PKCS#11 token went away.
    TokenRemoved(TokenInfo),
    /// A USB device matching a known key model arrived.
    UsbArrived(UsbKey),
    /// A USB device left.
    UsbLeft {
        /// Vendor id.
        vendor_id: u16,
        /// Product id.
        product_id: u16,
    },
}

/// Where desk events come from.
pub trait DeskEvents: Send {
    /// The next events, waiting at most `timeout`; empty when nothing happened.
    fn poll(&mut self, timeout: Duration) -> Vec<DeskEvent>;
}

/// The operator.
pub trait Desk: Send + Sync {
    /// Shows a line.
    fn say(&self, line: &str);
    /// Asks a yes/no question.
    fn confirm(&self, question: &str) -> bool;
}

/// Real events: PKCS#11 token polling merged with USB hotplug events.
pub struct PolledDesk {
    module: Pkcs11Module,
    known: HashMap<(u64, String), TokenInfo>,
    usb: Option<Receiver<UsbEvent>>,
}

impl std::fmt::Debug for PolledDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolledDesk")
            .field("tokens", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl PolledDesk {
    /// Polls `module`'s tokens; merges `usb` events when USB watching could start.
    pub fn new(module: Pkcs11Module, usb: Option<Receiver<UsbEvent>>) -> PolledDesk {
        PolledDesk {
            module,
            known: HashMap::new(),
            usb,
        }
    }
}

impl DeskEvents for PolledDesk {
    fn poll(&mut self, timeout: Duration) -> Vec<DeskEvent> {
        let mut events = Vec::new();
        if let Some(rx) = &self.usb {
            match rx.recv_timeout(timeout) {
                Ok(ev) => events.push(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.usb = None,
            }
            if let Some(rx) = &self.usb {
                events.extend(rx.try_iter());
            }
        } else {
            std::thread::sleep(timeout);
        }
        let mut out: Vec<DeskEvent> = events
            .into_iter()
            .map(|e| match e {
                UsbEvent::Arrived(k) => DeskEvent::UsbArrived(k),
                UsbEvent::Left {
                    vendor_id,
                    product_id,
                    ..
                } => DeskEvent::UsbLeft {
                    vendor_id,
                    product_id,
                },
            })
            .collect();
        let Ok(tokens) = self.module.tokens() else {
            return out;
        };
        let now: HashMap<(u64, String), TokenInfo> = tokens
            .into_iter()
            .map(|t| {
                (
                    (t.info().slot_id, t.info().serial.clone()),
                    t.info().clone(),
                )
            })
            .collect();
        for (k, info) in &now {
            if !self.known.contains_key(k) {
                out.push(DeskEvent::TokenInserted(info.clone()));
            }
        }
        for (k, info) in &self.known {
            if !now.contains_key(k) {
                out.push(DeskEvent::TokenRemoved(info.clone()));
            }
        }
        self.known = now;
        out
    }
}

/// Options of a watch session.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Provision this order on the next blank key instead of the FIFO choice.
    pub order: Option<OrderNo>,
    /// Stop after one key was handled.
    pub once: bool,
    /// How long one poll waits.
    pub poll_interval: Duration,
}

/// Live step output to the desk.
struct DeskProgress<'a>(&'a dyn Desk);

impl Progress for DeskProgress<'_> {
    fn step(&self, order_no: &str, step: Step, phase: Phase) {
        let what = match phase {
            Phase::Started => return self.0.say(&format!("  {order_no}: {step} ...")),
            Phase::Done => "done",
            Phase::Skipped => "already done",
            Phase::Failed => "FAILED",
        };
        self.0.say(&format!("  {order_no}: {step} {what}"));
    }
}

/// What a watch session did.
#[derive(Debug, Clone, Default)]
pub struct WatchSummary {
    /// Orders provisioned.
    pub provisioned: Vec<OrderNo>,
    /// Orders interrupted (resumable).
    pub interrupted: Vec<OrderNo>,
}

impl Station {
    /// The next order a blank key should get: the requested one, else the oldest approved.
    async fn next_order(&self, wanted: Option<&OrderNo>) -> Result<Option<OrderNo>, StoreError> {
        if let Some(no) = wanted {
            let approved = self
                .store
                .order(no)
                .await?
                .is_some_and(|r| r.state == OrderState::Approved);
            return Ok(approved.then(|| no.clone()));
        }
        Ok(self
            .store
            .list_orders(Some(OrderState::Approved))
            .await?
            .into_iter()
            .next()
            .map(|o| o.order_no))
    }

    /// Runs the desk until `stop` (or after one key with `once`).
    pub async fn watch(
        &self,
        hsm: &Hsm,
        events: &mut dyn DeskEvents,
        desk: &dyn Desk,
        opts: &WatchOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<WatchSummary, StoreError> {
        let mut summary = WatchSummary::default();
        desk.say("waiting for USB keys (Ctrl-C to stop)");
        while !stop.load(Ordering::SeqCst) {
            let batch = crate::station::hsm::blocking(|| events.poll(opts.poll_interval));
            for ev in batch {
                let handled = self.handle(hsm, ev, desk, opts, &mut summary).await?;
                if handled && opts.once {
                    return Ok(summary);
                }
            }
        }
        Ok(summary)
    }

    /// Handles one event; true when a key was dealt with (provisioned, resumed or refused).
    async fn handle(
        &self,
        hsm: &Hsm,
        ev: DeskEvent,
        desk: &dyn Desk,
        opts: &WatchOptions,
        summary: &mut WatchSummary,
    ) -> Result<bool, StoreError> {
        let cfg = &self.config;
        match ev {
            DeskEvent::UsbArrived(k) => {
                desk.say(&format!(
                    "USB key plugged in: {k}; waiting for its PKCS#11 token"
                ));
                Ok(false)
            }
            DeskEvent::UsbLeft {
                vendor_id,
                product_id,
            } => {
                desk.say(&format!(
                    "USB device {vendor_id:04x}:{product_id:04x} unplugged"
                ));
                Ok(false)
            }
            DeskEvent::TokenRemoved(info) => {
                if !info.is_blank() {
                    desk.say(&format!("key {} removed", info.display_name()));
                }
                Ok(false)
            }
            DeskEvent::TokenInserted(info)
                if info.initialized
                    && (info.label == cfg.ca.token_label
                        || info.label == cfg.vault.token_label) =>
            {
                Ok(false)
            }
            DeskEvent::TokenInserted(info) if info.is_blank() => {
                let Some(order_no) = self.next_order(opts.order.as_ref()).await? else {
                    desk.say(&format!(
                        "blank key {} present, but no approved order is waiting{}",
                        info.display_name(),
                        opts.order
                            .as_ref()
                            .map(|o| format!(" (order {o} is not approved)"))
                            .unwrap_or_default()
                    ));
                    return Ok(false);
                };
                let Some(rec) = self.store.order(&order_no).await? else {
                    return Ok(false);
                };
                let o = &rec.order;
                desk.say(&format!(
                    "blank key {} — next order {}: {} (USCC {}), {:?} key, seals {:?}, PIN by {:?}",
                    info.display_name(),
                    o.order_no,
                    o.company.name,
                    o.company.uscc,
                    o.product.key_role,
                    o.product.seal_service,
                    o.auth_method.delivery_channel()
                ));
                if !desk.confirm(&format!("provision order {} onto this key?", o.order_no)) {
                    desk.say("skipped; the order stays approved");
                    return Ok(true);
                }
                let token = (!info.serial.is_empty()).then(|| info.serial.clone());
                self.provision_at_desk(hsm, &order_no, token, desk, summary)
                    .await;
                Ok(true)
            }
            DeskEvent::TokenInserted(info) => {
                let bound = match TokenSerial::parse(&info.serial) {
                    Ok(serial) => self.store.binding_of_token(&serial).await?,
                    Err(_) => None,
                };
                match bound {
                    Some(b) => {
                        let state = self.store.order(&b.order_no).await?.map(|r| r.state);
                        if matches!(state, Some(OrderState::Failed | OrderState::Provisioning)) {
                            desk.say(&format!(
                                "key {} belongs to order {}, whose provisioning was interrupted",
                                info.display_name(),
                                b.order_no
                            ));
                            if desk.confirm(&format!("resume order {}?", b.order_no)) {
                                self.provision_at_desk(hsm, &b.order_no, Some(info.serial.clone()), desk, summary)
                                    .await;
                            }
                        } else {
                            desk.say(&format!(
                                "key {} holds order {} ({}); nothing to do — it may be removed",
                                info.display_name(),
                                b.order_no,
                                state.map(|s| s.to_string()).unwrap_or_default()
                            ));
                        }
                    }
                    None => desk.say(&format!(
                        "key {} is not blank and was not made by this station; it is left untouched \
                         — remove it",
                        info.display_name()
                    )),
                }
                Ok(true)
            }
        }
    }

    async fn provision_at_desk(
        &self,
        hsm: &Hsm,
        order_no: &OrderNo,
        token: Option<String>,
        desk: &dyn Desk,
        summary: &mut WatchSummary,
    ) {
        let req = ProvisionRequest {
            order_no: order_no.clone(),
            token,
            reinit: false,
        };
        match self.provision(hsm, &req, &DeskProgress(desk)).await {
            Ok(r) => {
                desk.say(&format!(
                    "order {order_no} is on key {} (certificate {}{}). You may remove the key now.",
                    r.token_serial,
                    r.certificate_serial,
                    if r.seals.is_empty() {
                        String::new()
                    } else {
                        format!(", seals {}", r.seals.join(", "))
                    }
                ));
                summary.provisioned.push(order_no.clone());
            }
            Err(e) if e.token_removed() => {
                desk.say(&format!(
                    "the key was removed during provisioning ({e}). Order {order_no} is kept and \
                     resumable: plug the same key back in and confirm, or run `keystation \
                     provision {order_no}`."
                ));
                summary.interrupted.push(order_no.clone());
            }
            Err(e) => {
                desk.say(&format!(
                    "provisioning of order {order_no} stopped: {e}. The order is kept and \
                     resumable (`keystation provision {order_no}`); do not hand out this key."
                ));
                summary.interrupted.push(order_no.clone());
            }
        }
        self.anchor_if_needed(hsm).await;
    }
}

impl Station {
    /// The desk's real events: `hsm`'s PKCS#11 tokens polled, merged with USB hotplug events
    /// of the key models in the station's catalogue until `stop`. When USB cannot be watched,
    /// the second value says why (the desk then watches PKCS#11 tokens only).
    pub fn desk_events(&self, hsm: &Hsm, stop: Arc<AtomicBool>) -> (PolledDesk, Option<String>) {
        let catalog = self.config.path(&self.config.pkcs11.usb_tokens);
        let (usb, unavailable) = match start_usb_watch(&catalog, stop) {
            Ok(rx) => (Some(rx), None),
            Err(why) => (None, Some(why)),
        };
        (PolledDesk::new(hsm.module().clone(), usb), unavailable)
    }
}

/// Starts USB hotplug watching; `Err` text for the operator when USB is unavailable.
pub fn start_usb_watch(
    catalog_path: &std::path::Path,
    stop: Arc<AtomicBool>,
) -> Result<Receiver<UsbEvent>, String> {
    let catalog = UsbCatalog::load(catalog_path).map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    crate::usb::watch(catalog, tx, stop).map_err(|e| e.to_string())?;
    Ok(rx)
}
