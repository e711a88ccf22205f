//! The server's expiry-notice tick: `keystation serve` queues the certificate-expiry notices
//! of the installation once a minute, as every `deliver run` pass does (the unique key of a
//! notice makes the two, and every station, queue each one at most once). Sending stays the
//! delivery worker's.

use std::time::Duration;

use super::Periodic;
use crate::station::Station;

/// How often the expiry tick runs.
const TICK: Duration = Duration::from_secs(60);

/// The expiry tick (`Station::queue_expiry_notices`); a failure is logged, the next tick tries
/// again.
pub fn tick(station: Station) -> Periodic {
    Periodic::new("notices", TICK, move || {
        let station = station.clone();
        async move {
            match station.queue_expiry_notices().await {
                Ok(tick) => {
                    for (order, serial, days) in &tick.queued {
                        tracing::info!(%order, %serial, days, "expiry notice queued");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the expiry-notice tick failed"),
            }
        }
    })
}
