//! The console's provisioning batch as it runs: one batch at a time per console, its progress
//! kept as a numbered list of events, and `GET /provision/events`, which streams them as
//! server-sent events (axum's `Sse`) to every page that watches.
//!
//! Events (`event:` name, `data:` one JSON object, `id:` the event's number from 0):
//! `begin` `{total, by}`; `job` `{order}` (a worker took an order by number);
//! `step` `{order, step, phase}` (each phase of each step of each order, as the job reports it:
//! `started`, `done`, `skipped`, `failed`); `finished` `{order, ok, detail}` (and `token`, `serial` when ok); `skipped`
//! `{order, why}` (another process holds the order); `end` `{ok, failed, skipped, not_started,
//! error}`. A page that (re)connects gets every event from the first (or after its
//! `Last-Event-ID`), then the new ones as they come; the stream ends after `end`. Without any
//! batch yet the answer is `204 No Content`, which tells `EventSource` not to reconnect.
//!
//! No secret is in any event: order numbers, step names, certificate and token serials, and
//! the station's error messages (which never carry a PIN).

use super::{Console, station_error};
use crate::domain::View;
use crate::station::batch::{BatchError, BatchProgress, BatchSummary};
use crate::station::provision::{Phase, Progress, ProvisionReport, Step};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The console's batch: the one running, or the last one (its events stay for the page).
#[derive(Debug, Default)]
pub struct Board {
    current: Mutex<Option<Arc<BatchLog>>>,
}

impl Board {
    /// Starts a new batch log for `by`, unless the current batch still runs (then `None`).
    pub fn begin(&self, by: &str) -> Option<Arc<BatchLog>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|b| !b.ended()) {
            return None;
        }
        let log = Arc::new(BatchLog::new(by));
        *current = Some(log.clone());
        Some(log)
    }

    /// The current (or last) batch.
    pub fn current(&self) -> Option<Arc<BatchLog>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One logged event.
#[derive(Debug, Clone)]
struct Logged {
    name: &'static str,
    data: String,
}

/// A batch's events, in order, and a counter that wakes the streams watching it.
#[derive(Debug)]
pub struct BatchLog {
    started_by: String,
    events: Mutex<Vec<Logged>>,
    count: tokio::sync::watch::Sender<usize>,
    /// The batch's stop flag ([`crate::station::Station::provision_batch`]'s): once set, its
    /// workers finish the orders in hand and take no new one.
    stop: Arc<AtomicBool>,
}

impl BatchLog {
    fn new(by: &str) -> BatchLog {
        BatchLog {
            started_by: by.to_string(),
            events: Mutex::new(Vec::new()),
            count: tokio::sync::watch::Sender::new(0),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The flag the batch's workers watch.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Asks the running batch to stop, as Ctrl-C does for the CLI's: the orders in hand are
    /// finished (or stay journaled, resumable), no new one is taken. Logs a `stopping` event
    /// naming `by` the first time; false when the batch has ended already.
    pub fn request_stop(&self, by: &str) -> bool {
        if self.ended() {
            return false;
        }
        if !self.stop.swap(true, Ordering::SeqCst) {
            self.push("stopping", json!({ "by": by }));
        }
        true
    }

    /// Who started it.
    pub fn started_by(&self) -> &str {
        &self.started_by
    }

    /// Whether its `end` event is logged.
    pub fn ended(&self) -> bool {
        self.lock().last().is_some_and(|e| e.name == "end")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Logged>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, name: &'static str, data: serde_json::Value) {
        let mut events = self.lock();
        if events.last().is_some_and(|e| e.name == "end") {
            return;
        }
        events.push(Logged {
            name,
            data: data.to_string(),
        });
        self.count.send_replace(events.len());
    }

    /// Logs the batch's end: its summary, or why it did not run.
    pub fn end(&self, result: &Result<BatchSummary, String>) {
        let data = match result {
            Ok(s) => json!({
                "ok": s.ok.len(),
                "failed": s.failed.len(),
                "skipped": s.skipped.len(),
                "not_started": s.not_started.len(),
                "stopped": s.stopped,
                "error": null,
            }),
            Err(e) => json!({
                "ok": 0, "failed": 0, "skipped": 0, "not_started": 0, "stopped": false, "error": e,
            }),
        };
        self.push("end", data);
    }

    /// The end of a batch that did not run.
    pub fn end_error(&self, e: &BatchError) {
        self.end(&Err(e.to_string()));
    }

    /// Event `index`, if logged yet; whether it is the last the batch will log.
    fn event(&self, index: usize) -> Option<(Logged, bool)> {
        self.lock().get(index).map(|e| (e.clone(), e.name == "end"))
    }
}

/// The batch's progress, as the station reports it, into its log.
#[derive(Debug, Clone)]
pub struct LogProgress(pub Arc<BatchLog>);

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Started => "started",
        Phase::Done => "done",
        Phase::Skipped => "skipped",
        Phase::Failed => "failed",
    }
}

impl Progress for LogProgress {
    fn step(&self, order_no: &str, step: Step, phase: Phase) {
        self.0.push(
            "step",
            json!({"order": order_no, "step": step.name(), "phase": phase_name(phase)}),
        );
    }
}

impl BatchProgress for LogProgress {
    fn begin(&self, total: usize) {
        self.0
            .push("begin", json!({"total": total, "by": self.0.started_by}));
    }

    fn started(&self, order_no: &str) {
        self.0.push("job", json!({"order": order_no}));
    }

    fn finished(&self, order_no: &str, result: &Result<ProvisionReport, String>) {
        // A success carries its serials, which the page words in its own language; `detail`
        // stays for any other reader of the stream.
        let event = match result {
            Ok(r) => json!({
                "order": order_no,
                "ok": true,
                "detail": format!(
                    "令牌 {}，证书序列号 {}",
                    r.token_serial, r.certificate_serial
                ),
                "token": r.token_serial.to_string(),
                "serial": r.certificate_serial.to_string(),
            }),
            Err(e) => json!({"order": order_no, "ok": false, "detail": e}),
        };
        self.0.push("finished", event);
    }

    fn skipped(&self, order_no: &str, why: &str) {
        self.0
            .push("skipped", json!({"order": order_no, "why": why}));
    }
}

/// `GET /provision/events`: the current batch's events as server-sent events (see the module
/// docs), for an operator who may see the desk.
pub async fn events(State(console): State<Console>, headers: HeaderMap) -> Response {
    let l = match console.logged_in(&headers) {
        Ok(l) => l,
        Err(to_login) => return to_login,
    };
    if let Err(e) = console
        .station()
        .viewer(l.operator.as_str(), View::Desk)
        .await
    {
        return station_error(&e, &super::Frame::from(&l));
    }
    let Some(log) = console.inner.board.current() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    // A reconnecting EventSource says the last event it has.
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(0, |last| last + 1);
    let changes = log.count.subscribe();
    let stream = futures_util::stream::unfold(
        (log, from, changes, false),
        |(log, index, mut changes, done)| async move {
            if done {
                return None;
            }
            loop {
                // Marked seen before looking: an event logged after the look wakes the wait.
                changes.borrow_and_update();
                if let Some((e, last)) = log.event(index) {
                    let event = Event::default()
                        .id(index.to_string())
                        .event(e.name)
                        .data(e.data);
                    return Some((Ok::<_, Infallible>(event), (log, index + 1, changes, last)));
                }
                if log.ended() || changes.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
