//! libusb access: a private context opened only where a USB bus is visible, descriptors read
//! from libusb's cache, the serial read with one GET_DESCRIPTOR request, and the snapshot of
//! the keys plugged in now (`keystation token list`).

use std::path::Path;

use rusb::{Context, Device, UsbContext};

use super::UsbError;
use super::catalogue::UsbCatalog;
use super::matching::{DeviceFacts, UsbFilter, UsbKey, classify, sanitize_serial};

/// Where Linux exposes USB devices to libusb (usbfs).
pub(super) const LINUX_USBFS: &str = "/dev/bus/usb";

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
pub(super) fn open_context() -> Result<Context, UsbError> {
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
pub(super) fn describe<T: UsbContext>(
    device: &Device<T>,
    filter: UsbFilter,
) -> Option<DeviceFacts> {
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
pub(super) fn read_serial<T: UsbContext>(device: &Device<T>) -> Option<String> {
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

pub(super) fn list_with_context<T: UsbContext>(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::usb::testkit::SHIPPED;

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
}
