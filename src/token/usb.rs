//! USB keys on the bus: which catalogued key models are plugged in now, and when one
//! arrives or leaves.
//!
//! This module tells the operator's station that a key is present. It does not provision
//! keys. A [`UsbCatalog`] (from `hsm-config/usb-tokens.toml`) maps USB vendor and product ids
//! to a model and to the PKCS#11 module that drives it. [`list_usb_keys`] is a snapshot of the
//! matching devices, used by `keystation token list`. [`watch`] runs a thread that sends
//! [`UsbEvent`]s for workstation mode.
//!
//! # Invariants
//! - libusb is only used through an explicit [`rusb::Context`] owned by the caller (list) or
//!   by the watcher thread, never through rusb's global context. That context panics if
//!   libusb cannot start.
//! - When USB cannot be used (no `/dev/bus/usb`, a container or a VM without USB, or libusb
//!   failing to start), the functions return [`UsbError::Unavailable`]. They never panic.
//!   Callers show `USB unavailable: <reason>` and carry on with PKCS#11 polling.
//! - Only devices that match the catalogue are reported. With [`UsbFilter::CatalogueAndCcid`],
//!   unlisted CCID-class (0x0B) devices are reported too, with `model: None`.
//! - A device is identified by (bus, address, vendor id, product id). The kernel hands out
//!   addresses in turn, so a key that is unplugged and plugged back in reads as
//!   [`UsbEvent::Left`] for the old address, then [`UsbEvent::Arrived`] at a new address.
//!   A `Left` always comes before the `Arrived` that replaces it.
//! - Keys that are already plugged in when [`watch`] starts are reported as `Arrived`.
//!   This holds for both the hotplug path and the polling path.
//!
//! # Event source and tests
//! The watcher's only output is a `std::sync::mpsc::Sender<UsbEvent>`. Workstation logic
//! should consume a `Receiver<UsbEvent>` and must not call [`watch`] itself. A test then
//! injects its own event source: it creates a channel, sends the `Arrived` and `Left` values
//! it needs (every field of [`UsbKey`] is public), and hands the receiver to the logic under
//! test. No trait is needed. The watcher stops when its `stop` flag is set, or at its next
//! event once the receiver has been dropped.
//!
//! # Security notes
//! - The module never claims an interface and never writes to a device. To read
//!   `iSerialNumber` it opens the device and sends one standard GET_DESCRIPTOR control
//!   request on endpoint 0. A middleware such as pcscd may hold the device meanwhile.
//!   Without permission to open the device node, `serial` is `None`.
//! - The USB serial comes from the device and is untrusted. Control and non-ASCII characters
//!   are stripped, so a device cannot write terminal escape sequences into operator output.
//!   The serial is for display only: tokens are bound to orders by their PKCS#11 token serial.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusb::{Context, Device, Hotplug, HotplugBuilder, UsbContext};
use serde::Deserialize;

/// The catalogue format version this build understands.
pub const CATALOG_VERSION: u32 = 1;

/// USB class code of smart-card readers (CCID). Most tokens declare it on an interface
/// rather than on the device.
pub const CCID_CLASS: u8 = 0x0b;

/// Longest serial kept. A USB string descriptor holds at most 126 UTF-16 units.
const MAX_SERIAL_CHARS: usize = 126;

/// How long one `handle_events` call may block. It bounds the time [`watch`] takes to see
/// its stop flag.
const HOTPLUG_WAIT: Duration = Duration::from_millis(250);

/// Interval between device-list scans when libusb has no hotplug support.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Granularity at which the polling thread checks its stop flag while it waits.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Errors of the USB module.
#[derive(Debug, thiserror::Error)]
pub enum UsbError {
    /// The catalogue file could not be read.
    #[error("cannot read USB token catalogue {path}: {source}")]
    CatalogRead {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The catalogue is not valid TOML, or it does not fit the schema: an unknown key, a
    /// missing field or a wrong type. The TOML error names the key and the line.
    #[error("USB token catalogue {origin} is malformed: {source}")]
    CatalogSyntax {
        /// The file path, or `<string>` for [`UsbCatalog::from_toml_str`].
        origin: String,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// The catalogue declares a `version` this build does not understand.
    #[error("USB token catalogue {origin}: version {found} is not supported (expected {expected})")]
    UnsupportedVersion {
        /// The file path, or `<string>`.
        origin: String,
        /// The `version` found in the file.
        found: u32,
        /// The version this build reads ([`CATALOG_VERSION`]).
        expected: u32,
    },
    /// A `vendor_id` or `product_id` is not a 16-bit hex id written like `"0x096e"`.
    #[error(
        "USB token catalogue {origin}: model #{index} ({model}): field `{field}` = {value:?} is not a USB id like \"0x096e\""
    )]
    BadId {
        /// The file path, or `<string>`.
        origin: String,
        /// 1-based position of the `[[model]]` entry.
        index: usize,
        /// The entry's `model` name.
        model: String,
        /// `vendor_id` or `product_id`.
        field: &'static str,
        /// The rejected text.
        value: String,
    },
    /// A required text field is empty or only whitespace.
    #[error("USB token catalogue {origin}: model #{index}: field `{field}` must not be empty")]
    EmptyField {
        /// The file path, or `<string>`.
        origin: String,
        /// 1-based position of the `[[model]]` entry.
        index: usize,
        /// `model`, `vendor` or `pkcs11_module`.
        field: &'static str,
    },
    /// Two entries claim the same vendor and product id, so a plugged-in device would be
    /// ambiguous.
    #[error(
        "USB token catalogue {origin}: models #{first} and #{second} both claim {vendor_id:04x}:{product_id:04x}"
    )]
    DuplicateId {
        /// The file path, or `<string>`.
        origin: String,
        /// 1-based position of the first entry with this id.
        first: usize,
        /// 1-based position of the repeated entry.
        second: usize,
        /// The shared vendor id.
        vendor_id: u16,
        /// The shared product id.
        product_id: u16,
    },
    /// USB cannot be used on this machine: libusb failed to start or could not list devices.
    #[error("USB unavailable: {reason}")]
    Unavailable {
        /// What failed. Shown to the operator as it is.
        reason: String,
    },
    /// The OS refused to start the watcher thread.
    #[error("cannot start the USB watcher thread: {source}")]
    WatchThread {
        /// The spawn failure.
        #[source]
        source: std::io::Error,
    },
}

/// One catalogued key model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbModel {
    /// USB vendor id (idVendor).
    pub vendor_id: u16,
    /// USB product id (idProduct).
    pub product_id: u16,
    /// Display name of the model, e.g. `ePass2003`.
    pub model: String,
    /// Display name of the maker.
    pub vendor: String,
    /// PKCS#11 library that drives the key: a bare name for the loader's search path, or an
    /// absolute path.
    pub pkcs11_module: PathBuf,
    /// Provenance and caveats, e.g. "product id unverified".
    pub notes: Option<String>,
}

/// The validated catalogue of USB key models (`hsm-config/usb-tokens.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbCatalog {
    /// In file order. No two entries share (vendor_id, product_id).
    models: Vec<UsbModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    version: u32,
    #[serde(default)]
    model: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    vendor_id: String,
    product_id: String,
    model: String,
    vendor: String,
    pkcs11_module: String,
    notes: Option<String>,
}

impl UsbCatalog {
    /// Reads and validates a catalogue file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, UsbError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| UsbError::CatalogRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Validates catalogue text, e.g. one embedded in the binary or written by a test.
    pub fn from_toml_str(text: &str) -> Result<Self, UsbError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, UsbError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|source| UsbError::CatalogSyntax {
            origin: origin.to_owned(),
            source,
        })?;
        if raw.version != CATALOG_VERSION {
            return Err(UsbError::UnsupportedVersion {
                origin: origin.to_owned(),
                found: raw.version,
                expected: CATALOG_VERSION,
            });
        }
        let mut models: Vec<UsbModel> = Vec::with_capacity(raw.model.len());
        for (position, entry) in raw.model.into_iter().enumerate() {
            let index = position + 1;
            let model = validate_entry(entry, index, origin)?;
            if let Some(first) = models
                .iter()
                .position(|m| m.vendor_id == model.vendor_id && m.product_id == model.product_id)
            {
                return Err(UsbError::DuplicateId {
                    origin: origin.to_owned(),
                    first: first + 1,
                    second: index,
                    vendor_id: model.vendor_id,
                    product_id: model.product_id,
                });
            }
            models.push(model);
        }
        Ok(Self { models })
    }

    /// The model with this vendor and product id, if catalogued.
    pub fn lookup(&self, vendor_id: u16, product_id: u16) -> Option<&UsbModel> {
        self.models
            .iter()
            .find(|m| m.vendor_id == vendor_id && m.product_id == product_id)
    }

    /// All entries, in file order.
    pub fn models(&self) -> &[UsbModel] {
        &self.models
    }
}

fn validate_entry(entry: RawModel, index: usize, origin: &str) -> Result<UsbModel, UsbError> {
    for (field, value) in [
        ("model", &entry.model),
        ("vendor", &entry.vendor),
        ("pkcs11_module", &entry.pkcs11_module),
    ] {
        if value.trim().is_empty() {
            return Err(UsbError::EmptyField {
                origin: origin.to_owned(),
                index,
                field,
            });
        }
    }
    let id = |field: &'static str, value: &str| {
        parse_usb_id(value).ok_or_else(|| UsbError::BadId {
            origin: origin.to_owned(),
            index,
            model: entry.model.clone(),
            field,
            value: value.to_owned(),
        })
    };
    let vendor_id = id("vendor_id", &entry.vendor_id)?;
    let product_id = id("product_id", &entry.product_id)?;
    Ok(UsbModel {
        vendor_id,
        product_id,
        model: entry.model,
        vendor: entry.vendor,
        pkcs11_module: PathBuf::from(entry.pkcs11_module),
        notes: entry.notes,
    })
}

/// Parses `0x` followed by one to four hex digits. The digits are checked explicitly
/// because `from_str_radix` would also accept a sign.
fn parse_usb_id(text: &str) -> Option<u16> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// Which devices [`list_usb_keys_filtered`] and [`watch_filtered`] report.
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

/// A change on the bus, as sent by [`watch`].
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
struct DeviceFacts {
    bus: u8,
    address: u8,
    vendor_id: u16,
    product_id: u16,
    device_class: u8,
    /// Class codes of all interface alternate settings. Collected only when the filter needs
    /// them.
    interface_classes: Vec<u8>,
}

impl DeviceFacts {
    fn is_ccid(&self) -> bool {
        self.device_class == CCID_CLASS || self.interface_classes.contains(&CCID_CLASS)
    }
}

/// Decides whether a device is reported, and as which model. This function is pure: the
/// serial is filled in later, and only for devices that are reported.
fn classify(catalog: &UsbCatalog, filter: UsbFilter, facts: &DeviceFacts) -> Option<UsbKey> {
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
fn sanitize_serial(raw: &str) -> Option<String> {
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
struct KeyTracker {
    /// Keyed by (bus, address). At any moment only one device holds an address on a bus.
    present: BTreeMap<(u8, u8), UsbKey>,
}

impl KeyTracker {
    /// Compares a full scan with what is known and returns `Left` events first, then
    /// `Arrived` ones. `enrich` runs only on keys that are new, so the serial is read once
    /// per plug-in rather than on every scan.
    fn reconcile(
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
    fn arrived(&mut self, key: UsbKey) -> Vec<UsbEvent> {
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
    fn left(&mut self, bus: u8, address: u8) -> Option<UsbEvent> {
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

/// Where Linux exposes USB devices to libusb (usbfs).
const LINUX_USBFS: &str = "/dev/bus/usb";

/// Checks that the USB bus is visible to this process. Every USB host controller puts at
/// least its root hub in usbfs, so a missing usbfs means there is no usable USB. A
/// udev-enabled libusb still starts in that case and reports an empty bus, and the operator
/// would wrongly read that as "no key plugged in".
fn check_usb_bus(usbfs: &Path) -> Result<(), UsbError> {
    if usbfs.is_dir() {
        Ok(())
    } else {
        Err(UsbError::Unavailable {
            reason: format!(
                "{} does not exist: no USB controller is visible (a VM without USB, or a \
                 container without the USB bus passed through)",
                usbfs.display()
            ),
        })
    }
}

/// Opens a private libusb context after checking that there is a USB bus to look at.
fn open_context() -> Result<Context, UsbError> {
    if cfg!(target_os = "linux") {
        check_usb_bus(Path::new(LINUX_USBFS))?;
    }
    Context::new().map_err(|error| UsbError::Unavailable {
        reason: format!("libusb could not initialise: {error}"),
    })
}

/// Reads the facts [`classify`] needs. Descriptor reads come from libusb's cache, so no
/// transfer is made. Returns `None` if the device descriptor cannot be read, e.g. because
/// the device disappeared in the meantime.
fn describe<T: UsbContext>(device: &Device<T>, filter: UsbFilter) -> Option<DeviceFacts> {
    let descriptor = device.device_descriptor().ok()?;
    let interface_classes = if filter == UsbFilter::CatalogueAndCcid {
        device
            .active_config_descriptor()
            .or_else(|_| device.config_descriptor(0))
            .map(|config| {
                config
                    .interfaces()
                    .flat_map(|interface| {
                        interface
                            .descriptors()
                            .map(|setting| setting.class_code())
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Some(DeviceFacts {
        bus: device.bus_number(),
        address: device.address(),
        vendor_id: descriptor.vendor_id(),
        product_id: descriptor.product_id(),
        device_class: descriptor.class_code(),
        interface_classes,
    })
}

/// Reads iSerialNumber with one control transfer. It needs an open handle, but no claimed
/// interface. Every failure (no permission, no serial string, device gone) gives `None`.
fn read_serial<T: UsbContext>(device: &Device<T>) -> Option<String> {
    let descriptor = device.device_descriptor().ok()?;
    descriptor.serial_number_string_index()?;
    let handle = device.open().ok()?;
    let raw = handle.read_serial_number_string_ascii(&descriptor).ok()?;
    sanitize_serial(&raw)
}

/// The catalogued USB keys plugged in now, ordered by bus and address.
pub fn list_usb_keys(catalog: &UsbCatalog) -> Result<Vec<UsbKey>, UsbError> {
    list_usb_keys_filtered(catalog, UsbFilter::CatalogueOnly)
}

/// Like [`list_usb_keys`], with a choice of which devices to report.
pub fn list_usb_keys_filtered(
    catalog: &UsbCatalog,
    filter: UsbFilter,
) -> Result<Vec<UsbKey>, UsbError> {
    list_with_context(&open_context()?, catalog, filter)
}

fn list_with_context<T: UsbContext>(
    context: &T,
    catalog: &UsbCatalog,
    filter: UsbFilter,
) -> Result<Vec<UsbKey>, UsbError> {
    let devices = context.devices().map_err(|error| UsbError::Unavailable {
        reason: format!("cannot list USB devices: {error}"),
    })?;
    let mut keys = Vec::new();
    for device in devices.iter() {
        let Some(facts) = describe(&device, filter) else {
            continue;
        };
        if let Some(mut key) = classify(catalog, filter, &facts) {
            key.serial = read_serial(&device);
            keys.push(key);
        }
    }
    keys.sort_by_key(|key| (key.bus, key.address));
    Ok(keys)
}

/// Starts a thread that sends an event when a catalogued key arrives or leaves. See
/// [`watch_filtered`].
pub fn watch(
    catalog: UsbCatalog,
    sender: Sender<UsbEvent>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, UsbError> {
    watch_filtered(catalog, UsbFilter::CatalogueOnly, sender, stop)
}

/// Starts the watcher thread with its own libusb context. If libusb supports hotplug, the
/// thread uses hotplug callbacks. Otherwise, or if registering the callback fails, it
/// scans the device list every second. The thread ends within about a quarter of a second
/// of `stop` being set, or at its next event once the receiver of `sender` has been dropped.
///
/// The context is created before the thread starts, so a machine without USB gets
/// [`UsbError::Unavailable`] from this call rather than a thread that dies silently.
pub fn watch_filtered(
    catalog: UsbCatalog,
    filter: UsbFilter,
    sender: Sender<UsbEvent>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, UsbError> {
    start_watcher(open_context()?, catalog, filter, sender, stop)
}

fn start_watcher(
    context: Context,
    catalog: UsbCatalog,
    filter: UsbFilter,
    sender: Sender<UsbEvent>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, UsbError> {
    let watcher = Watcher {
        context,
        catalog,
        filter,
        sender,
        stop,
    };
    thread::Builder::new()
        .name("usb-watch".to_owned())
        .spawn(move || watcher.run())
        .map_err(|source| UsbError::WatchThread { source })
}

/// What a hotplug callback hands to the watcher loop. Descriptor reads that need a
/// transfer (the serial) are not allowed inside libusb callbacks, so the callback only
/// queues the device.
enum RawHotplug {
    Arrived(Device<Context>),
    Left { bus: u8, address: u8 },
}

struct Forwarder {
    queue: Sender<RawHotplug>,
}

impl Hotplug<Context> for Forwarder {
    fn device_arrived(&mut self, device: Device<Context>) {
        // The send only fails once the watcher loop has ended, and then nobody is
        // listening any more.
        let _ = self.queue.send(RawHotplug::Arrived(device));
    }

    fn device_left(&mut self, device: Device<Context>) {
        // The send fails only after the loop has ended (see device_arrived).
        let _ = self.queue.send(RawHotplug::Left {
            bus: device.bus_number(),
            address: device.address(),
        });
    }
}

struct Watcher {
    context: Context,
    catalog: UsbCatalog,
    filter: UsbFilter,
    sender: Sender<UsbEvent>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    fn run(self) {
        if rusb::has_hotplug() {
            let (queue, raw_events) = mpsc::channel();
            let registration = HotplugBuilder::new()
                .enumerate(true)
                .register(&self.context, Box::new(Forwarder { queue }));
            if let Ok(registration) = registration {
                self.run_hotplug(&raw_events);
                drop(registration);
                return;
            }
            // Registration can fail when libusb has no udev or netlink access. Polling
            // still works in that case.
        }
        self.run_polling();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sends the events and reports whether anyone is still listening.
    fn emit(&self, events: Vec<UsbEvent>) -> bool {
        events
            .into_iter()
            .all(|event| self.sender.send(event).is_ok())
    }

    fn run_hotplug(&self, raw_events: &mpsc::Receiver<RawHotplug>) {
        let mut tracker = KeyTracker::default();
        while !self.stopped() {
            // The arrivals from `enumerate(true)` are already queued before the first call.
            // Errors here (e.g. an interrupted system call) are transient. A short sleep keeps
            // a persistent error from spinning.
            if self.context.handle_events(Some(HOTPLUG_WAIT)).is_err() {
                thread::sleep(STOP_CHECK);
            }
            while let Ok(raw) = raw_events.try_recv() {
                let events = match raw {
                    RawHotplug::Arrived(device) => describe(&device, self.filter)
                        .and_then(|facts| classify(&self.catalog, self.filter, &facts))
                        .map(|mut key| {
                            key.serial = read_serial(&device);
                            tracker.arrived(key)
                        })
                        .unwrap_or_default(),
                    RawHotplug::Left { bus, address } => {
                        tracker.left(bus, address).into_iter().collect()
                    }
                };
                if !self.emit(events) {
                    return;
                }
            }
        }
    }

    fn run_polling(&self) {
        let mut tracker = KeyTracker::default();
        while !self.stopped() {
            // A failed scan is skipped rather than treated as "every key left", which would
            // send the operator false removals.
            if let Ok(list) = self.context.devices() {
                let mut devices = BTreeMap::new();
                let mut current = Vec::new();
                for device in list.iter() {
                    let Some(facts) = describe(&device, self.filter) else {
                        continue;
                    };
                    if let Some(key) = classify(&self.catalog, self.filter, &facts) {
                        devices.insert((key.bus, key.address), device);
                        current.push(key);
                    }
                }
                let events = tracker.reconcile(current, |key| {
                    key.serial = devices.get(&(key.bus, key.address)).and_then(read_serial);
                });
                if !self.emit(events) {
                    return;
                }
            }
            let next_scan = Instant::now() + POLL_INTERVAL;
            while !self.stopped() && Instant::now() < next_scan {
                thread::sleep(STOP_CHECK);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hsm-config/usb-tokens.toml");

    fn one_model(vendor_id: &str, product_id: &str) -> String {
        format!(
            "version = 1\n[[model]]\nvendor_id = \"{vendor_id}\"\nproduct_id = \"{product_id}\"\n\
             model = \"M\"\nvendor = \"V\"\npkcs11_module = \"libm.so\"\n"
        )
    }

    fn catalog() -> UsbCatalog {
        UsbCatalog::from_toml_str(&one_model("0x096e", "0x0807")).unwrap()
    }

    fn facts(bus: u8, address: u8, vid: u16, pid: u16, interface_classes: &[u8]) -> DeviceFacts {
        DeviceFacts {
            bus,
            address,
            vendor_id: vid,
            product_id: pid,
            device_class: 0,
            interface_classes: interface_classes.to_vec(),
        }
    }

    fn key(bus: u8, address: u8, vid: u16, pid: u16) -> UsbKey {
        UsbKey {
            bus,
            address,
            vendor_id: vid,
            product_id: pid,
            model: None,
            serial: None,
        }
    }

    fn left(bus: u8, address: u8, vendor_id: u16, product_id: u16) -> UsbEvent {
        UsbEvent::Left {
            bus,
            address,
            vendor_id,
            product_id,
        }
    }

    // ---- catalogue ----

    #[test]
    fn shipped_catalogue_loads_and_knows_the_epass2003() {
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        let count = catalog.models().len();
        assert!((6..=10).contains(&count), "{count} entries");
        let epass = catalog.lookup(0x096e, 0x0807).expect("ePass2003 listed");
        assert_eq!(epass.model, "ePass2003");
        assert_eq!(epass.pkcs11_module, PathBuf::from("libcastle.so.1.0.0"));
        assert_eq!(
            catalog.lookup(0x20a0, 0x4230).map(|m| m.model.as_str()),
            Some("Nitrokey HSM")
        );
        assert!(catalog.lookup(0x096e, 0xffff).is_none());
        // The Longmai product id is only partly sourced, so its note must say so.
        let longmai = catalog.lookup(0x4c4d, 0x8b15).expect("Longmai listed");
        assert!(
            longmai
                .notes
                .as_deref()
                .is_some_and(|n| n.contains("Product id unverified"))
        );
    }

    #[test]
    fn shipped_opensc_path_exists_on_this_debian_machine() {
        // The catalogue names OpenSC by its absolute Debian path. opensc-pkcs11 is installed
        // here, so a typo in that path shows up now.
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        for model in catalog.models() {
            if model.pkcs11_module.is_absolute() {
                assert!(
                    model.pkcs11_module.exists(),
                    "{} names missing {}",
                    model.model,
                    model.pkcs11_module.display()
                );
            }
        }
    }

    #[test]
    fn load_names_the_missing_file() {
        let error = UsbCatalog::load("/nonexistent/usb-tokens.toml").unwrap_err();
        assert!(matches!(error, UsbError::CatalogRead { .. }));
        assert!(error.to_string().contains("/nonexistent/usb-tokens.toml"));
    }

    #[test]
    fn hex_ids_parse_strictly() {
        assert_eq!(parse_usb_id("0x096e"), Some(0x096e));
        assert_eq!(parse_usb_id("0X096E"), Some(0x096e));
        assert_eq!(parse_usb_id("0xffff"), Some(0xffff));
        assert_eq!(parse_usb_id("0x1"), Some(1));
        for bad in [
            "096e", "0x", "0x12345", "0xzz", "0x+1", "+0x1", " 0x096e", "0x096e ", "",
        ] {
            assert_eq!(parse_usb_id(bad), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn bad_id_error_names_field_value_and_entry() {
        let error = UsbCatalog::from_toml_str(&one_model("0x096e", "0807")).unwrap_err();
        match &error {
            UsbError::BadId {
                index,
                field,
                value,
                ..
            } => {
                assert_eq!((*index, *field, value.as_str()), (1, "product_id", "0807"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains("product_id") && message.contains("\"0807\""),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let top = format!("{}colour = \"red\"\n", "version = 1\n");
        assert!(matches!(
            UsbCatalog::from_toml_str(&top),
            Err(UsbError::CatalogSyntax { .. })
        ));
        let inner = format!("{}serial_prefix = \"FT\"\n", one_model("0x096e", "0x0807"));
        let error = UsbCatalog::from_toml_str(&inner).unwrap_err();
        assert!(error.to_string().contains("serial_prefix"), "{error}");
    }

    #[test]
    fn version_is_required_and_checked() {
        assert!(matches!(
            UsbCatalog::from_toml_str("[[model]]\n"),
            Err(UsbError::CatalogSyntax { .. })
        ));
        let v2 = one_model("0x096e", "0x0807").replace("version = 1", "version = 2");
        assert!(matches!(
            UsbCatalog::from_toml_str(&v2),
            Err(UsbError::UnsupportedVersion {
                found: 2,
                expected: 1,
                ..
            })
        ));
    }

    #[test]
    fn empty_catalogue_is_valid() {
        let catalog = UsbCatalog::from_toml_str("version = 1\n").unwrap();
        assert!(catalog.models().is_empty());
    }

    #[test]
    fn missing_and_empty_fields_are_rejected() {
        let no_module = one_model("0x096e", "0x0807").replace("pkcs11_module = \"libm.so\"\n", "");
        assert!(matches!(
            UsbCatalog::from_toml_str(&no_module),
            Err(UsbError::CatalogSyntax { .. })
        ));
        let blank_vendor =
            one_model("0x096e", "0x0807").replace("vendor = \"V\"", "vendor = \"  \"");
        assert!(matches!(
            UsbCatalog::from_toml_str(&blank_vendor),
            Err(UsbError::EmptyField {
                field: "vendor",
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn duplicates_are_rejected_even_when_spelled_differently() {
        let second = one_model("0x096E", "0x807").replace("version = 1\n", "");
        let text = format!("{}{second}", one_model("0x096e", "0x0807"));
        let error = UsbCatalog::from_toml_str(&text).unwrap_err();
        assert!(matches!(
            error,
            UsbError::DuplicateId {
                first: 1,
                second: 2,
                vendor_id: 0x096e,
                product_id: 0x0807,
                ..
            }
        ));
        assert!(error.to_string().contains("096e:0807"), "{error}");
    }

    #[test]
    fn notes_are_optional_and_kept() {
        let with_notes = format!(
            "{}notes = \"product id unverified\"\n",
            one_model("0x1", "0x2")
        );
        let catalog = UsbCatalog::from_toml_str(&with_notes).unwrap();
        assert_eq!(
            catalog.lookup(1, 2).and_then(|m| m.notes.as_deref()),
            Some("product id unverified")
        );
        assert_eq!(catalog.lookup(0x096e, 0x0807), None);
        assert_eq!(self::catalog().lookup(0x096e, 0x0807).unwrap().notes, None);
    }

    // ---- matching ----

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

    // ---- diffing ----

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

    #[test]
    fn replug_at_a_new_address_is_left_then_arrived() {
        let mut tracker = KeyTracker::default();
        tracker.reconcile(vec![key(1, 4, 0x096e, 0x0807)], |_| {});
        let events = tracker.reconcile(vec![key(1, 7, 0x096e, 0x0807)], |_| {});
        assert_eq!(
            events,
            vec![
                left(1, 4, 0x096e, 0x0807),
                UsbEvent::Arrived(key(1, 7, 0x096e, 0x0807))
            ]
        );
    }

    #[test]
    fn address_reused_by_another_model_between_scans_is_left_then_arrived() {
        let mut tracker = KeyTracker::default();
        tracker.reconcile(vec![key(1, 4, 0x096e, 0x0807)], |_| {});
        let events = tracker.reconcile(vec![key(1, 4, 0x1050, 0x0407)], |_| {});
        assert_eq!(
            events,
            vec![
                left(1, 4, 0x096e, 0x0807),
                UsbEvent::Arrived(key(1, 4, 0x1050, 0x0407))
            ]
        );
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

    // ---- real USB (must pass with or without a USB bus) ----

    #[test]
    fn missing_usbfs_is_reported_as_unavailable_with_its_path() {
        let error = check_usb_bus(Path::new("/nonexistent/bus/usb")).unwrap_err();
        let shown = error.to_string();
        assert!(matches!(error, UsbError::Unavailable { .. }));
        assert!(
            shown.starts_with("USB unavailable: /nonexistent/bus/usb does not exist"),
            "{shown}"
        );
        // A plain file is not a usbfs either.
        assert!(check_usb_bus(Path::new(SHIPPED)).is_err());
        assert!(check_usb_bus(Path::new(env!("CARGO_MANIFEST_DIR"))).is_ok());
    }

    #[test]
    fn listing_real_usb_is_ok_or_unavailable_and_never_panics() {
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        let bus_visible = Path::new(LINUX_USBFS).is_dir();
        for filter in [UsbFilter::CatalogueOnly, UsbFilter::CatalogueAndCcid] {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                list_usb_keys_filtered(&catalog, filter)
            }))
            .expect("list_usb_keys panicked");
            match outcome {
                Ok(keys) => {
                    assert!(bus_visible, "listed USB although {LINUX_USBFS} is missing");
                    if filter == UsbFilter::CatalogueOnly {
                        for key in &keys {
                            assert!(key.model.is_some(), "unlisted device reported: {key}");
                        }
                    }
                }
                Err(UsbError::Unavailable { reason }) => {
                    if !bus_visible {
                        assert!(reason.contains(LINUX_USBFS), "{reason}");
                    }
                }
                Err(other) => panic!("expected Ok or Unavailable, got {other:?}"),
            }
        }
    }

    #[test]
    fn watching_real_usb_starts_and_stops_or_reports_unavailable() {
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        let (sender, _receiver) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            watch(catalog, sender, Arc::clone(&stop))
        }))
        .expect("watch panicked");
        match started {
            Ok(handle) => stop_and_join(handle, &stop),
            Err(UsbError::Unavailable { reason }) => assert!(!reason.is_empty()),
            Err(other) => panic!("expected a thread or Unavailable, got {other:?}"),
        }
    }

    /// Runs the libusb part even where usbfs is missing. A udev-enabled libusb still starts
    /// there, so the listing and the watcher thread (hotplug registration, event loop, stop)
    /// get exercised on this VM too. Where libusb itself cannot start there is nothing to
    /// run, and the public functions above already cover that case.
    #[test]
    fn libusb_paths_run_where_libusb_starts() {
        let Ok(context) = Context::new() else {
            return;
        };
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        let keys = list_with_context(&context, &catalog, UsbFilter::CatalogueOnly).unwrap();
        assert!(keys.iter().all(|key| key.model.is_some()));
        assert!(
            keys.windows(2)
                .all(|w| (w[0].bus, w[0].address) < (w[1].bus, w[1].address))
        );

        let (sender, receiver) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = start_watcher(
            context,
            catalog,
            UsbFilter::CatalogueAndCcid,
            sender,
            Arc::clone(&stop),
        )
        .unwrap();
        thread::sleep(Duration::from_millis(300));
        stop_and_join(handle, &stop);
        assert_arrivals_precede_departures(receiver);

        // The polling fallback, forced, since this libusb may well have hotplug support.
        let (sender, receiver) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            context: Context::new().unwrap(),
            catalog: UsbCatalog::load(SHIPPED).unwrap(),
            filter: UsbFilter::CatalogueOnly,
            sender,
            stop: Arc::clone(&stop),
        };
        let handle = thread::spawn(move || watcher.run_polling());
        thread::sleep(Duration::from_millis(300));
        stop_and_join(handle, &stop);
        assert_arrivals_precede_departures(receiver);
    }

    /// Keys already plugged in are announced as arrivals, and nothing leaves before it has
    /// arrived.
    fn assert_arrivals_precede_departures(receiver: mpsc::Receiver<UsbEvent>) {
        let mut arrived = std::collections::BTreeSet::new();
        for event in receiver.try_iter() {
            match event {
                UsbEvent::Arrived(key) => {
                    arrived.insert((key.bus, key.address));
                }
                UsbEvent::Left { bus, address, .. } => {
                    assert!(arrived.remove(&(bus, address)), "left before arriving");
                }
            }
        }
    }

    fn stop_and_join(handle: JoinHandle<()>, stop: &AtomicBool) {
        stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !handle.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(handle.is_finished(), "watcher ignored the stop flag");
        handle.join().expect("watcher thread panicked");
    }
}
