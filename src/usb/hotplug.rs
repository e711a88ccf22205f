//! The watcher thread of workstation mode: hotplug callbacks where libusb supports them, else a
//! scan of the bus every second; either way the same [`UsbEvent`]s, in order (a `Left` before
//! the `Arrived` that replaces it), keys already present announced as arrivals. It stops on its
//! flag, or once nobody listens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusb::{Context, Device, Hotplug, HotplugBuilder, UsbContext};

use super::UsbError;
use super::bus::{describe, open_context, read_serial};
use super::catalogue::UsbCatalog;
use super::matching::{KeyTracker, UsbEvent, UsbFilter, classify};

/// How long one `handle_events` call may block. It bounds the time [`watch`] takes to see
/// its stop flag.
const HOTPLUG_WAIT: Duration = Duration::from_millis(250);

/// Interval between device-list scans when libusb has no hotplug support.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Granularity at which the polling thread checks its stop flag while it waits.
const STOP_CHECK: Duration = Duration::from_millis(100);

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
    use crate::usb::bus::list_with_context;
    use crate::usb::testkit::SHIPPED;

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
