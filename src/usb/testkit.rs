//! Fixtures shared by the `usb` tests: the shipped catalogue, one-model catalogues, and keys,
//! device facts and departures built field by field.
#![allow(clippy::unwrap_used)]

use super::catalogue::UsbCatalog;
use super::matching::{DeviceFacts, UsbEvent, UsbKey};

/// The catalogue shipped with the station.
pub(crate) const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hsm-config/usb-tokens.toml");

/// A catalogue text with one model, `M` by `V`, driven by `libm.so`.
pub(crate) fn one_model(vendor_id: &str, product_id: &str) -> String {
    format!(
        "version = 1\n[[model]]\nvendor_id = \"{vendor_id}\"\nproduct_id = \"{product_id}\"\n\
         model = \"M\"\nvendor = \"V\"\npkcs11_module = \"libm.so\"\n"
    )
}

/// The one-model catalogue of an ePass2003-like key (`096e:0807`).
pub(crate) fn catalog() -> UsbCatalog {
    UsbCatalog::from_toml_str(&one_model("0x096e", "0x0807")).unwrap()
}

/// Device facts with no device class.
pub(crate) fn facts(
    bus: u8,
    address: u8,
    vid: u16,
    pid: u16,
    interface_classes: &[u8],
) -> DeviceFacts {
    DeviceFacts {
        bus,
        address,
        vendor_id: vid,
        product_id: pid,
        device_class: 0,
        interface_classes: interface_classes.to_vec(),
    }
}

/// An unlisted key without serial.
pub(crate) fn key(bus: u8, address: u8, vid: u16, pid: u16) -> UsbKey {
    UsbKey {
        bus,
        address,
        vendor_id: vid,
        product_id: pid,
        model: None,
        serial: None,
    }
}

/// The departure of the key at `bus`/`address`.
pub(crate) fn left(bus: u8, address: u8, vendor_id: u16, product_id: u16) -> UsbEvent {
    UsbEvent::Left {
        bus,
        address,
        vendor_id,
        product_id,
    }
}
