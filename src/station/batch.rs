//! Batch issuance: many approved orders provisioned concurrently, one token per worker at a time.
//!
//! Workers are tasks on the multi-threaded runtime; each runs one order at a time to completion
//! (its token work runs on blocking threads, so workers overlap on the HSMs). The PKCS#11 module
//! is initialised once per process and shared; choosing and initialising a blank token is
//! serialised by the provisioning job itself. A failure of one order is recorded (the order is
//! Failed, resumable) and never stops the others. A stop request (Ctrl-C) lets every worker
//! finish the order in hand — its steps are journaled — and take no new one.
//!
//! Another process may work the same queue (a second batch, a single `provision`, a desk): an
//! order it holds (its lease, see [`super::lease`]) or moved on after this batch listed it is
//! skipped — reported apart, never as a failure of this batch.

use super::Station;
use super::hsm::Hsm;
use super::provision::{Progress, ProvisionError, ProvisionReport, ProvisionRequest};
use crate::domain::OrderState;
use crate::store::StoreError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Concurrent workers (>= 1).
    pub workers: usize,
    /// At most this many orders.
    pub limit: Option<usize>,
}

/// Batch-level progress: per order, on top of the per-step [`Progress`].
pub trait BatchProgress: Progress {
    /// The batch starts with `total` orders.
    fn begin(&self, total: usize);
    /// A worker takes `order_no` (before any work on it).
    fn started(&self, _order_no: &str) {}
    /// An order finished (either way).
    fn finished(&self, order_no: &str, result: &Result<ProvisionReport, String>);
    /// An order was left alone: another process holds it or moved it on (`why`).
    fn skipped(&self, _order_no: &str, _why: &str) {}
}

/// The outcome of a batch.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BatchSummary {
    /// Orders provisioned.
    pub ok: Vec<ProvisionReport>,
    /// Orders that failed, with the reason (each is Failed and resumable).
    pub failed: Vec<(String, String)>,
    /// Orders left to another process that holds them or moved them on, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Orders not started (stop requested, or no blank token left).
    pub not_started: Vec<String>,
    /// A stop was requested.
    pub stopped: bool,
}

impl Station {
    /// The orders a batch would take: this station's interrupted ones first, then approved ones
    /// in FIFO order.
    pub async fn batch_queue(&self, limit: Option<usize>) -> Result<Vec<String>, StoreError> {
        let mut queue = Vec::new();
        for o in self
            .store
            .list_orders(Some(OrderState::Provisioning))
            .await?
        {
            if let Some(b) = self.store.active_binding(&o.order_no).await? {
                if b.station_id == self.config.station.id {
                    queue.push(o.order_no);
                }
            }
        }
        queue.extend(
            self.store
                .list_orders(Some(OrderState::Approved))
                .await?
                .into_iter()
                .map(|o| o.order_no),
        );
        if let Some(n) = limit {
            queue.truncate(n);
        }
        Ok(queue)
    }

    /// Provisions the queue with `opts.workers` workers. See the module docs.
    pub async fn provision_batch(
        &self,
        hsm: &Hsm,
        opts: BatchOptions,
        progress: Arc<dyn BatchProgress>,
        stop: Arc<AtomicBool>,
    ) -> Result<BatchSummary, StoreError> {
        let queue = self.batch_queue(opts.limit).await?;
        progress.begin(queue.len());
        let queue = Arc::new(Mutex::new(VecDeque::from(queue)));
        let summary = Arc::new(Mutex::new(BatchSummary::default()));
        let no_blank = Arc::new(AtomicBool::new(false));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..opts.workers.max(1) {
            let station = self.clone();
            let hsm = hsm.clone();
            let queue = queue.clone();
            let summary = summary.clone();
            let progress = progress.clone();
            let stop = stop.clone();
            let no_blank = no_blank.clone();
            workers.spawn(async move {
                loop {
                    if stop.load(Ordering::SeqCst) || no_blank.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(order_no) = queue.lock().await.pop_front() else {
                        break;
                    };
                    let req = ProvisionRequest {
                        order_no: order_no.clone(),
                        token: None,
                        reinit: false,
                    };
                    progress.started(&order_no);
                    let result = station.provision(&hsm, &req, progress.as_ref()).await;
                    let mut s = summary.lock().await;
                    match result {
                        Ok(report) => {
                            progress.finished(&order_no, &Ok(report.clone()));
                            s.ok.push(report);
                        }
                        Err(ProvisionError::NoBlankToken(_)) => {
                            // Out of blank keys: this order was not touched; stop taking more.
                            no_blank.store(true, Ordering::SeqCst);
                            s.not_started.push(order_no);
                        }
                        Err(e) if e.taken_elsewhere() => {
                            let msg = e.to_string();
                            progress.skipped(&order_no, &msg);
                            s.skipped.push((order_no, msg));
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            progress.finished(&order_no, &Err(msg.clone()));
                            s.failed.push((order_no, msg));
                        }
                    }
                }
            });
        }
        while let Some(joined) = workers.join_next().await {
            if let Err(e) = joined {
                // A worker panicked: its order stays in its journaled state, resumable.
                tracing::error!(error = %e, "a batch worker stopped abnormally");
            }
        }
        let mut s = std::mem::take(&mut *summary.lock().await);
        s.not_started.extend(queue.lock().await.drain(..));
        s.stopped = stop.load(Ordering::SeqCst);
        Ok(s)
    }
}
