//! Batch issuance: many approved orders provisioned concurrently, one token per worker at a time.
//!
//! Workers are tasks on the multi-threaded runtime; each runs one order at a time to completion
//! (its token work runs on blocking threads, so workers overlap on the HSMs). The PKCS#11 module
//! is initialised once per process and shared; choosing and initialising a blank token is
//! serialised by the provisioning job itself. A failure of one order is recorded (the order is
//! Failed, resumable) and never stops the others. A stop request (Ctrl-C) lets every worker
//! finish the order in hand — its steps are journaled — and take no new one.
//!
//! Other processes, on this station or on others sharing its database, work the same queue. A
//! worker takes, in this order:
//! 1. this station's interrupted orders (Provisioning, bound here, no live job): resumed;
//! 2. the next approved order, claimed in one transaction that picks it (see `provision::next`):
//!    no list is read beforehand, so no worker tries an order someone else claimed;
//! 3. once no approved order is left, other stations' interrupted orders whose job is not live
//!    any more (their lease's holder is gone or its lease expired): taken over (see
//!    [`crate::domain::takeover`]).
//!
//! An order of 1 or 3 that another process holds, or moved on, or took over mid-run is skipped —
//! reported apart, never as a failure of this batch.

use super::Station;
use super::hsm::{Hsm, blocking};
use super::lease::keeps_others_out;
use super::provision::{Progress, ProvisionError, ProvisionReport, ProvisionRequest};
use crate::domain::lease::LeaseKind;
use crate::domain::{OrderNo, OrderState};
use crate::store::StoreError;
use crate::token::TokenError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Mutex;

/// Why a batch did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The station's CA or vault token cannot be used: the batch took no order (each would
    /// only have failed at its first step).
    #[error("the station's HSM cannot be used, so no order was taken: {0}")]
    Hsm(#[source] TokenError),
}

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
    /// A worker takes `order_no` (before any work on it), an order taken by number; the next
    /// approved order is known once claimed (its claim step).
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
    pub not_started: Vec<OrderNo>,
    /// A stop was requested.
    pub stopped: bool,
}

impl Station {
    /// This station's orders in Provisioning: interrupted ones to resume, and ones another of
    /// its processes is working on (which a batch tries and reports as skipped).
    pub async fn interrupted_here(&self) -> Result<Vec<OrderNo>, StoreError> {
        self.provisioning(true).await
    }

    /// Other stations' interrupted orders whose job is not live any more: what this station
    /// may take over.
    pub async fn takeover_candidates(&self) -> Result<Vec<OrderNo>, StoreError> {
        self.provisioning(false).await
    }

    async fn provisioning(&self, here: bool) -> Result<Vec<OrderNo>, StoreError> {
        let me = &self.config.station.id;
        let now = self.clock.now();
        let mut out = Vec::new();
        for o in self
            .store
            .list_orders(Some(OrderState::Provisioning))
            .await?
        {
            let Some(b) = self.store.active_binding(&o.order_no).await? else {
                continue;
            };
            if (b.station_id == *me) != here {
                continue;
            }
            let live = !here
                && self
                    .store
                    .lease(LeaseKind::Provision, o.order_no.as_str())
                    .await?
                    .is_some_and(|l| keeps_others_out(&l, now));
            if !live {
                out.push(o.order_no);
            }
        }
        Ok(out)
    }

    /// Provisions the queue with `opts.workers` workers. See the module docs.
    pub async fn provision_batch(
        &self,
        hsm: &Hsm,
        opts: BatchOptions,
        progress: Arc<dyn BatchProgress>,
        stop: Arc<AtomicBool>,
    ) -> Result<BatchSummary, BatchError> {
        let me = self.as_provisioning_operator().await?;
        // The tokens every job needs, opened (and kept in the pools) before any order is taken.
        blocking(|| -> Result<(), TokenError> {
            drop(hsm.vault()?);
            drop(hsm.ca_signer()?);
            drop(hsm.seal_maker_signer()?);
            Ok(())
        })
        .map_err(BatchError::Hsm)?;
        let own = me.interrupted_here().await?;
        let approved = me.store.list_orders(Some(OrderState::Approved)).await?;
        let estimate = own.len() + approved.len();
        progress.begin(opts.limit.map_or(estimate, |n| n.min(estimate)));
        let run = Arc::new(Run {
            station: me,
            hsm: hsm.clone(),
            own: Mutex::new(VecDeque::from(own)),
            takeover: Mutex::new(None),
            approved_left: AtomicBool::new(true),
            started: AtomicUsize::new(0),
            limit: opts.limit,
            summary: Mutex::new(BatchSummary::default()),
            no_blank: AtomicBool::new(false),
            progress,
            stop,
        });
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..opts.workers.max(1) {
            let run = run.clone();
            workers.spawn(async move { run.work().await });
        }
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "a batch worker stopped: the database failed")
                }
                // A worker panicked: its order stays in its journaled state, resumable.
                Err(e) => tracing::error!(error = %e, "a batch worker stopped abnormally"),
            }
        }
        let mut s = std::mem::take(&mut *run.summary.lock().await);
        s.stopped = run.stop.load(Ordering::SeqCst);
        if s.stopped || run.no_blank.load(Ordering::SeqCst) {
            s.not_started.extend(run.own.lock().await.drain(..));
            if let Some(t) = run.takeover.lock().await.as_mut() {
                s.not_started.extend(t.drain(..));
            }
            for o in self.store.list_orders(Some(OrderState::Approved)).await? {
                s.not_started.push(o.order_no);
            }
        }
        Ok(s)
    }
}

/// One batch run, shared by its workers.
struct Run {
    station: Station,
    hsm: Hsm,
    /// This station's interrupted orders, listed at the start.
    own: Mutex<VecDeque<OrderNo>>,
    /// Other stations' abandoned orders, listed once no approved order is left.
    takeover: Mutex<Option<VecDeque<OrderNo>>>,
    approved_left: AtomicBool,
    /// Orders taken so far (for `--limit`).
    started: AtomicUsize,
    limit: Option<usize>,
    summary: Mutex<BatchSummary>,
    no_blank: AtomicBool,
    progress: Arc<dyn BatchProgress>,
    stop: Arc<AtomicBool>,
}

/// What a worker takes next.
enum Take {
    /// An order by number (this station's interrupted one, or one to take over).
    Order(OrderNo),
    /// The next approved order, picked by its claim.
    Next,
}

impl Run {
    async fn work(&self) -> Result<(), StoreError> {
        loop {
            if self.stop.load(Ordering::SeqCst) || self.no_blank.load(Ordering::SeqCst) {
                return Ok(());
            }
            let Some(take) = self.next_take().await? else {
                return Ok(());
            };
            if self
                .limit
                .is_some_and(|n| self.started.fetch_add(1, Ordering::SeqCst) >= n)
            {
                return Ok(());
            }
            match take {
                Take::Order(no) => {
                    let req = ProvisionRequest {
                        order_no: no.clone(),
                        token: None,
                        reinit: false,
                    };
                    self.progress.started(no.as_str());
                    let r = self
                        .station
                        .provision(&self.hsm, &req, self.progress.as_ref())
                        .await;
                    self.record(Some(no), r).await;
                }
                Take::Next => {
                    let r = self
                        .station
                        .provision_next(&self.hsm, self.progress.as_ref())
                        .await;
                    match r {
                        Ok(None) => {
                            // Nothing approved is left: give the slot back, look elsewhere.
                            self.approved_left.store(false, Ordering::SeqCst);
                            self.started.fetch_sub(1, Ordering::SeqCst);
                        }
                        Ok(Some(report)) => self.record(None, Ok(report)).await,
                        Err(e) => self.record(None, Err(e)).await,
                    }
                }
            }
        }
    }

    /// This station's interrupted orders first, then the next approved order while there is
    /// one, then the orders to take over (listed once).
    async fn next_take(&self) -> Result<Option<Take>, StoreError> {
        if let Some(no) = self.own.lock().await.pop_front() {
            return Ok(Some(Take::Order(no)));
        }
        if self.approved_left.load(Ordering::SeqCst) {
            return Ok(Some(Take::Next));
        }
        let mut takeover = self.takeover.lock().await;
        if takeover.is_none() {
            *takeover = Some(VecDeque::from(self.station.takeover_candidates().await?));
        }
        Ok(takeover
            .as_mut()
            .and_then(VecDeque::pop_front)
            .map(Take::Order))
    }

    async fn record(
        &self,
        order_no: Option<OrderNo>,
        result: Result<ProvisionReport, ProvisionError>,
    ) {
        let mut s = self.summary.lock().await;
        let named = |e: &ProvisionError| {
            order_no
                .as_ref()
                .map(OrderNo::to_string)
                .or_else(|| e.order_no().map(str::to_string))
                .unwrap_or_else(|| "(the next approved order)".to_string())
        };
        match result {
            Ok(report) => {
                self.progress
                    .finished(report.order_no.as_str(), &Ok(report.clone()));
                s.ok.push(report);
            }
            Err(e @ ProvisionError::NoBlankToken(_)) => {
                // Out of blank keys: this order was not touched; stop taking more.
                self.no_blank.store(true, Ordering::SeqCst);
                if let Some(no) = order_no {
                    s.not_started.push(no);
                }
                tracing::info!(error = %e, "no blank key left; the batch takes no more orders");
            }
            Err(e) if e.taken_elsewhere() => {
                let no = named(&e);
                let msg = e.to_string();
                self.progress.skipped(&no, &msg);
                s.skipped.push((no, msg));
            }
            Err(e) => {
                let no = named(&e);
                let msg = e.to_string();
                self.progress.finished(&no, &Err(msg.clone()));
                s.failed.push((no, msg));
            }
        }
    }
}
