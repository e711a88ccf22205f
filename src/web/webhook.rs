//! The server's webhook tick: `keystation serve` pushes the order API's due webhook events
//! every few seconds (`Station::webhook_send`; `api-token webhook-send` does one pass by
//! hand). Every station of an installation may run it: an event is claimed in a transaction
//! before it is sent, so one sender sends it.

use std::sync::Arc;
use std::time::Duration;

use super::Periodic;
use crate::station::Station;
use crate::station::api_webhook::WebhookSender;

/// How often the sender runs.
const TICK: Duration = Duration::from_secs(5);

/// The webhook tick, with the sender `serve` built from `[api.webhook]` at start; a failure is
/// logged, the next tick tries again.
pub fn tick(station: Station, sender: Arc<WebhookSender>) -> Periodic {
    Periodic::new("webhook", TICK, move || {
        let station = station.clone();
        let sender = sender.clone();
        async move {
            if let Err(e) = station.webhook_send(Some(&sender)).await {
                tracing::warn!(error = %e, "the webhook tick failed");
            }
        }
    })
}
