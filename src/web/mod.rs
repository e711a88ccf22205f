//! `keystation serve`: the station's one long-running server. The public listener serves what
//! relying parties fetch — the OCSP responder ([`ocsp`]) at the path of `ocsp.url`, the CRL
//! ([`crl`]) at the path of `ca.crl_url` — and runs the station's periodic work beside it (the
//! responder's revision poll, every second; the CRL tick, every two; the expiry-notice tick
//! ([`notices`]), every minute).
//!
//! A [`Server`] is a set of routes and a set of [`Periodic`] tasks on one listener. The
//! operators' console ([`console`]), with the order API ([`api`]), is a second [`Server`] on its
//! own listener, sharing the
//! shutdown and the runtime. Handlers learn the client's address (`ConnectInfo<SocketAddr>`).
//! Handlers call `station` only. Shutdown (Ctrl-C, SIGTERM): the listener stops taking
//! connections, requests in flight are answered, then the periodic tasks end.

pub mod api;
mod cache;
pub mod console;
pub mod crl;
pub mod notices;
pub mod ocsp;
pub mod tls;
pub mod webhook;

use crate::error_code::{self as ec, Class, ErrorCode};
use axum::Router;
use axum::http::StatusCode;
use axum::serve::ListenerExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP status of a refused station call, by its code: 403 when the operator may not (not
/// registered, disabled, lacking the role, deciding their own request), 404 for an unknown
/// order, 409 for any other refusal (the state does not allow it); `None` for a failure (500).
pub(crate) fn refusal_status(code: ErrorCode) -> Option<StatusCode> {
    if [
        ec::OPERATOR_ROLE,
        ec::OPERATOR_DISABLED,
        ec::OPERATOR_UNKNOWN,
        ec::OPERATOR_CREDENTIAL,
        ec::REQUEST_SAME_OPERATOR,
    ]
    .contains(&code)
    {
        Some(StatusCode::FORBIDDEN)
    } else if code == ec::ORDER_NOT_FOUND {
        Some(StatusCode::NOT_FOUND)
    } else if code.class() == Class::Refusal {
        Some(StatusCode::CONFLICT)
    } else {
        None
    }
}

type Tick = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Work the server does every `every`, beside answering requests (e.g. polling the revocation
/// revision, issuing the next CRL). A tick that is still running when the next is due delays it
/// (ticks never overlap); a tick logs its own failures.
#[derive(Clone)]
pub struct Periodic {
    name: &'static str,
    every: Duration,
    tick: Tick,
}

impl std::fmt::Debug for Periodic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Periodic {
    /// `tick` every `every`, first right at start.
    pub fn new<F, Fut>(name: &'static str, every: Duration, tick: F) -> Periodic
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Periodic {
            name,
            every,
            tick: Arc::new(move || Box::pin(tick())),
        }
    }
}

/// Routes and periodic tasks, run on one listener until shutdown.
#[derive(Debug, Default)]
pub struct Server {
    router: Router,
    periodic: Vec<Periodic>,
}

impl Server {
    /// A server with nothing yet.
    pub fn new() -> Server {
        Server::default()
    }

    /// Adds `routes` (each with its own state already given).
    pub fn routes(mut self, routes: Router) -> Server {
        self.router = self.router.merge(routes);
        self
    }

    /// Adds a periodic task.
    pub fn every(mut self, task: Periodic) -> Server {
        self.periodic.push(task);
        self
    }

    /// Serves on `listener` (plain TCP, or [`tls::TlsListener`]) until `shutdown` completes,
    /// then lets requests in flight finish and stops the periodic tasks.
    pub async fn run<L>(
        self,
        listener: L,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()>
    where
        L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    {
        let tasks: Vec<_> = self
            .periodic
            .into_iter()
            .map(|task| {
                tokio::spawn(async move {
                    let mut interval = tokio::time::interval(task.every);
                    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        interval.tick().await;
                        tracing::trace!(task = task.name, "periodic tick");
                        (task.tick)().await;
                    }
                })
            })
            .collect();
        let app = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        // `tap_io` (doing nothing) is what gives any listener's connections their client
        // address as `ConnectInfo<SocketAddr>`, a TLS one's as a TCP one's.
        let served = axum::serve(listener.tap_io(|_| {}), app)
            .with_graceful_shutdown(shutdown)
            .await;
        for task in tasks {
            task.abort();
        }
        served
    }
}
