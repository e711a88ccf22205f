//! Which USB devices are reported, and as which model: catalogued ones, and with
//! [`UsbFilter::CatalogueAndCcid`] any other CCID-class device. Also what changed between two
//! looks at the bus ([`UsbEvent`]s), the same for the polling and the hotplug paths. Pure: no
//! libusb call is made here.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use super::catalogue::{UsbCatalog, UsbModel};

/// USB class code of smart-card readers (CCID). Most tokens declare it on an interface
/// rather than on the device.
pub const CCID_CLASS: u8 = 0x0b;

/// Longest serial kept. A USB string descriptor holds at most 126 UTF-16 units.
const MAX_SERIAL_CHARS: usize = 126;

/// Which devices [`super::list_usb_keys_filtered`] and [`super::watch_filtered`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsbFilter {
    /// Only devices whose vendor and product id are in the catalogue.
    #[default]
    CatalogueOnly,
    /// Catalogued devices, plus any other CCID-class device (reported with `model: None`).
    CatalogueAndCcid,
}

/// A USB key seen on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbKey {
    /// USB bus number.
    pub bus: u8,
    /// Device address on that bus. The kernel assigns a new one on every plug-in.
    pub address: u8,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// The catalogue entry, or `None` for an unlisted CCID device.
    pub model: Option<UsbModel>,
    /// iSerialNumber if it could be read without claiming the device, with unsafe characters
    /// removed. `None` when the device has no serial string or could not be opened.
    pub serial: Option<String>,
}

impl fmt::Display for UsbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bus {:03} address {:03} {:04x}:{:04x} ",
            self.bus, self.address, self.vendor_id, self.product_id
        )?;
        match &self.model {
            Some(model) => write!(f, "{} {}", model.vendor, model.model)?,
            None => f.write_str("unlisted CCID device")?,
        }
        if let Some(serial) = &self.serial {
            write!(f, " serial {serial}")?;
        }
        Ok(())
    }
}

/// A change on the bus, as sent by [`super::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsbEvent {
    /// A matching key was plugged in, or was already present when watching started.
    Arrived(UsbKey),
    /// A previously reported key was removed.
    Left {
        /// Bus it was on.
        bus: u8,
        /// Address it had.
        address: u8,
        /// idVendor.
        vendor_id: u16,
        /// idProduct.
        product_id: u16,
    },
}

/// Facts about one device, taken from its cached descriptors only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceFacts {
    pub(super) bus: u8,
    pub(super) address: u8,
    pub(super) vendor_id: u16,
    pub(super) product_id: u16,
    pub(super) device_class: u8,
    /// Class codes of all interface alternate settings. Collected only when the filter needs
    /// them.
    pub(super) interface_classes: Vec<u8>,
}

impl DeviceFacts {
    fn is_ccid(&self) -> bool {
        self.device_class == CCID_CLASS || self.interface_classes.contains(&CCID_CLASS)
    }
}

/// Decides whether a device is reported, and as which model. This function is pure: the
/// serial is filled in later, and only for devices that are reported.
pub(super) fn classify(
    catalog: &UsbCatalog,
    filter: UsbFilter,
    facts: &DeviceFacts,
) -> Option<UsbKey> {
    let model = catalog.lookup(facts.vendor_id, facts.product_id).cloned();
    let wanted = model.is_some() || (filter == UsbFilter::CatalogueAndCcid && facts.is_ccid());
    wanted.then_some(UsbKey {
        bus: facts.bus,
        address: facts.address,
        vendor_id: facts.vendor_id,
        product_id: facts.product_id,
        model,
        serial: None,
    })
}

/// Keeps printable ASCII only and trims it. Returns `None` when nothing is left.
pub(super) fn sanitize_serial(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_SERIAL_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// The keys on the bus now, and what changed since the previous look. The polling and the
/// hotplug paths both use it, so they report the same events. It does no I/O.
#[derive(Debug, Default)]
pub(super) struct KeyTracker {
    /// Keyed by (bus, address). At any moment only one device holds an address on a bus.
    present: BTreeMap<(u8, u8), UsbKey>,
}

impl KeyTracker {
    /// Compares a full scan with what is known and returns `Left` events first, then
    /// `Arrived` ones. `enrich` runs only on keys that are new, so the serial is read once
    /// per plug-in rather than on every scan.
    pub(super) fn reconcile(
        &mut self,
        current: Vec<UsbKey>,
        mut enrich: impl FnMut(&mut UsbKey),
    ) -> Vec<UsbEvent> {
        let current: BTreeMap<(u8, u8), UsbKey> = current
            .into_iter()
            .map(|key| ((key.bus, key.address), key))
            .collect();
        let gone: Vec<(u8, u8)> = self
            .present
            .iter()
            .filter(|(slot, known)| {
                current
                    .get(*slot)
                    .is_none_or(|now| !same_device(known, now))
            })
            .map(|(slot, _)| *slot)
            .collect();
        let mut events = Vec::new();
        for slot in gone {
            if let Some(old) = self.present.remove(&slot) {
                events.push(left_event(&old));
            }
        }
        for (slot, mut key) in current {
            if let Entry::Vacant(vacant) = self.present.entry(slot) {
                enrich(&mut key);
                events.push(UsbEvent::Arrived(key.clone()));
                vacant.insert(key);
            }
        }
        events
    }

    /// Records a hotplug arrival. The same device reported twice (enumeration racing a real
    /// arrival) gives no second event. A different device at a known address first retires
    /// the old one.
    pub(super) fn arrived(&mut self, key: UsbKey) -> Vec<UsbEvent> {
        let slot = (key.bus, key.address);
        let mut events = Vec::new();
        match self.present.get(&slot) {
            Some(known) if same_device(known, &key) => return events,
            Some(known) => events.push(left_event(known)),
            None => {}
        }
        events.push(UsbEvent::Arrived(key.clone()));
        self.present.insert(slot, key);
        events
    }

    /// Records a hotplug departure. Devices never reported (not matched) give no event.
    pub(super) fn left(&mut self, bus: u8, address: u8) -> Option<UsbEvent> {
        self.present
            .remove(&(bus, address))
            .map(|old| left_event(&old))
    }
}

fn same_device(a: &UsbKey, b: &UsbKey) -> bool {
    a.vendor_id == b.vendor_id && a.product_id == b.product_id
}

fn left_event(key: &UsbKey) -> UsbEvent {
    UsbEvent::Left {
        bus: key.bus,
        address: key.address,
        vendor_id: key.vendor_id,
        product_id: key.product_id,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::usb::testkit::{catalog, facts, key, left};

    #[test]
    fn catalogued_device_matches_with_its_model() {
        let key = classify(
            &catalog(),
            UsbFilter::CatalogueOnly,
            &facts(1, 4, 0x096e, 0x0807, &[]),
        )
        .expect("matched");
        assert_eq!(key.model.as_ref().map(|m| m.model.as_str()), Some("M"));
        assert_eq!((key.bus, key.address), (1, 4));
    }

    #[test]
    fn unlisted_devices_are_ignored_unless_ccid_is_asked_for() {
        let ccid_reader = facts(1, 5, 0x072f, 0x90cc, &[CCID_CLASS]);
        let keyboard = facts(1, 6, 0x046d, 0xc31c, &[0x03]);
        let catalog = catalog();
        assert_eq!(
            classify(&catalog, UsbFilter::CatalogueOnly, &ccid_reader),
            None
        );
        let shown = classify(&catalog, UsbFilter::CatalogueAndCcid, &ccid_reader).unwrap();
        assert_eq!(shown.model, None);
        assert_eq!(
            classify(&catalog, UsbFilter::CatalogueAndCcid, &keyboard),
            None
        );
    }

    #[test]
    fn ccid_is_recognised_on_device_or_interface() {
        let mut on_device = facts(1, 2, 1, 1, &[]);
        on_device.device_class = CCID_CLASS;
        assert!(on_device.is_ccid());
        assert!(facts(1, 2, 1, 1, &[0x03, CCID_CLASS]).is_ccid());
        assert!(!facts(1, 2, 1, 1, &[0x03, 0x08]).is_ccid());
    }

    #[test]
    fn serials_are_stripped_of_control_characters() {
        assert_eq!(sanitize_serial(" 2003A1B2 "), Some("2003A1B2".to_owned()));
        assert_eq!(
            sanitize_serial("AB\u{1b}[31mCD\n"),
            Some("AB[31mCD".to_owned())
        );
        assert_eq!(sanitize_serial("\u{7}\u{0}"), None);
        assert_eq!(sanitize_serial("序列"), None);
        assert_eq!(
            sanitize_serial(&"X".repeat(500)).map(|s| s.len()),
            Some(MAX_SERIAL_CHARS)
        );
    }

    #[test]
    fn display_names_the_model_or_says_unlisted() {
        let mut shown = key(1, 4, 0x096e, 0x0807);
        assert_eq!(
            shown.to_string(),
            "bus 001 address 004 096e:0807 unlisted CCID device"
        );
        shown.model = catalog().lookup(0x096e, 0x0807).cloned();
        shown.serial = Some("S1".to_owned());
        assert_eq!(
            shown.to_string(),
            "bus 001 address 004 096e:0807 V M serial S1"
        );
    }

    #[test]
    fn first_scan_reports_present_keys_as_arrived_and_reads_serials_once() {
        let mut tracker = KeyTracker::default();
        let mut enriched = Vec::new();
        let events = tracker.reconcile(
            vec![key(2, 9, 0x1050, 0x0407), key(1, 4, 0x096e, 0x0807)],
            |k| {
                enriched.push((k.bus, k.address));
                k.serial = Some(format!("S{}", k.address));
            },
        );
        let mut expected_first = key(1, 4, 0x096e, 0x0807);
        expected_first.serial = Some("S4".to_owned());
        let mut expected_second = key(2, 9, 0x1050, 0x0407);
        expected_second.serial = Some("S9".to_owned());
        assert_eq!(
            events,
            vec![
                UsbEvent::Arrived(expected_first),
                UsbEvent::Arrived(expected_second)
            ]
        );
        assert_eq!(enriched, vec![(1, 4), (2, 9)]);

        // The same list again: nothing new happens and no serial is read again.
        enriched.clear();
        let again = tracker.reconcile(
            vec![key(1, 4, 0x096e, 0x0807), key(2, 9, 0x1050, 0x0407)],
            |k| enriched.push((k.bus, k.address)),
        );
        assert!(again.is_empty());
        assert!(enriched.is_empty());
    }

    #[test]
    fn removal_is_reported_once_with_the_old_identity() {
        let mut tracker = KeyTracker::default();
        tracker.reconcile(
            vec![key(1, 4, 0x096e, 0x0807), key(1, 5, 0x163c, 0x0407)],
            |_| {},
        );
        let events = tracker.reconcile(vec![key(1, 5, 0x163c, 0x0407)], |_| {});
        assert_eq!(events, vec![left(1, 4, 0x096e, 0x0807)]);
        assert!(
            tracker
                .reconcile(vec![key(1, 5, 0x163c, 0x0407)], |_| {})
                .is_empty()
        );
        assert_eq!(
            tracker.reconcile(Vec::new(), |_| {}),
            vec![left(1, 5, 0x163c, 0x0407)]
        );
    }

    /// A replug at a new address, and an address reused by another model between two scans:
    /// either way the old key left and a new one arrived.
    #[test]
    fn a_changed_key_between_scans_is_left_then_arrived() {
        for now in [key(1, 7, 0x096e, 0x0807), key(1, 4, 0x1050, 0x0407)] {
            let mut tracker = KeyTracker::default();
            tracker.reconcile(vec![key(1, 4, 0x096e, 0x0807)], |_| {});
            let events = tracker.reconcile(vec![now.clone()], |_| {});
            assert_eq!(
                events,
                vec![left(1, 4, 0x096e, 0x0807), UsbEvent::Arrived(now)]
            );
        }
    }

    #[test]
    fn hotplug_path_ignores_duplicates_and_unknown_departures() {
        let mut tracker = KeyTracker::default();
        assert_eq!(
            tracker.arrived(key(1, 4, 0x096e, 0x0807)),
            vec![UsbEvent::Arrived(key(1, 4, 0x096e, 0x0807))]
        );
        assert!(tracker.arrived(key(1, 4, 0x096e, 0x0807)).is_empty());
        // A device that was never reported (e.g. a mouse) leaving gives no event.
        assert_eq!(tracker.left(1, 9), None);
        assert_eq!(tracker.left(1, 4), Some(left(1, 4, 0x096e, 0x0807)));
        assert_eq!(tracker.left(1, 4), None);
    }

    #[test]
    fn hotplug_arrival_over_a_stale_address_retires_the_old_key_first() {
        let mut tracker = KeyTracker::default();
        tracker.arrived(key(1, 4, 0x096e, 0x0807));
        assert_eq!(
            tracker.arrived(key(1, 4, 0x1050, 0x0404)),
            vec![
                left(1, 4, 0x096e, 0x0807),
                UsbEvent::Arrived(key(1, 4, 0x1050, 0x0404))
            ]
        );
    }
}
