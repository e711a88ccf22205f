//! USB keys on the bus: which catalogued key models are plugged in now, and when one
//! arrives or leaves. Beside [`crate::token`], not in it: this module knows USB descriptors,
//! not PKCS#11; it tells the station a key is there, `token` then talks to it.
//!
//! Rooms: [`catalogue`] (the key models of `hsm-config/usb-tokens.toml`), [`matching`] (which
//! devices are reported, as which model, and what changed between two looks at the bus),
//! [`bus`] (libusb: open a context, read descriptors, list) and [`hotplug`] (the watcher
//! thread).
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

pub mod bus;
pub mod catalogue;
pub mod hotplug;
pub mod matching;
#[cfg(test)]
mod testkit;

pub use bus::{list_usb_keys, list_usb_keys_filtered};
pub use catalogue::{CATALOG_VERSION, UsbCatalog, UsbModel};
pub use hotplug::{watch, watch_filtered};
pub use matching::{CCID_CLASS, UsbEvent, UsbFilter, UsbKey};

use std::path::PathBuf;

/// Errors of the USB module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

impl crate::error_code::Coded for UsbError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            UsbError::CatalogRead { .. }
            | UsbError::CatalogSyntax { .. }
            | UsbError::UnsupportedVersion { .. }
            | UsbError::BadId { .. }
            | UsbError::EmptyField { .. }
            | UsbError::DuplicateId { .. } => ec::USB_CATALOG,
            UsbError::Unavailable { .. } | UsbError::WatchThread { .. } => ec::USB_UNAVAILABLE,
        }
    }
}
