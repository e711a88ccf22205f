//! What a provisioning bench records of a batch: each order's time from its claim to its end,
//! each journaled step's time, failures, and (every `sample_every` orders) the resident memory.

use keystation::station::batch::BatchProgress;
use keystation::station::provision::{Phase, Progress, ProvisionReport, Step};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// What [`Recorder`] keeps.
#[derive(Default)]
pub struct Timings {
    pub started: HashMap<String, Instant>,
    pub per_token_ms: Vec<f64>,
    pub step_started: HashMap<(String, Step), Instant>,
    pub steps: HashMap<Step, Vec<f64>>,
    pub rss: Vec<(usize, u64)>,
    pub failed: Vec<String>,
    pub sample_every: usize,
}

/// A batch's progress, recorded.
pub struct Recorder(pub Mutex<Timings>);

impl Recorder {
    /// Runs `f` on the timings.
    pub fn with<T>(&self, f: impl FnOnce(&mut Timings) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Progress for Recorder {
    fn step(&self, order_no: &str, step: Step, phase: Phase) {
        let now = Instant::now();
        self.with(|t| match phase {
            Phase::Started => {
                t.step_started.insert((order_no.to_string(), step), now);
            }
            Phase::Done => {
                // A batch worker claims the next approved order without knowing its number
                // (SKIP LOCKED), so `started` is not called for it: its time counts from the
                // claim (the claim's own query is left out of the per-token figure).
                if step == Step::Claim {
                    t.started.entry(order_no.to_string()).or_insert(now);
                }
                if let Some(s) = t.step_started.remove(&(order_no.to_string(), step)) {
                    t.steps
                        .entry(step)
                        .or_default()
                        .push((now - s).as_secs_f64() * 1e3);
                }
            }
            Phase::Skipped | Phase::Failed => {}
        });
    }
}

impl BatchProgress for Recorder {
    fn begin(&self, _total: usize) {}

    fn started(&self, order_no: &str) {
        let now = Instant::now();
        self.with(|t| t.started.insert(order_no.to_string(), now));
    }

    fn finished(&self, order_no: &str, result: &Result<ProvisionReport, String>) {
        let now = Instant::now();
        self.with(|t| {
            match result {
                Ok(_) => {
                    if let Some(s) = t.started.remove(order_no) {
                        t.per_token_ms.push((now - s).as_secs_f64() * 1e3);
                    }
                }
                Err(e) => t.failed.push(format!("{order_no}: {e}")),
            }
            if t.sample_every > 0 && t.per_token_ms.len() % t.sample_every == 0 {
                let n = t.per_token_ms.len();
                t.rss.push((n, rss_kib("VmRSS:")));
            }
        });
    }
}

/// The median of `v` (sorted in place); 0 when empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A field of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`); 0 when unreadable.
pub fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
