//! `keystation serve [--listen ADDR]`: the station's server (see [`crate::web`]: OCSP, the CRL
//! at its distribution point, the CRL tick) until Ctrl-C or SIGTERM. The first line on stdout says where it listens (`--json`: one JSON object), so that
//! a supervisor or a test given port 0 learns the port.

use super::opts::ServeArgs;
use super::signals::wait_for_stop_signal;
use super::{CliError, output};
use crate::station::Station;
use crate::station::error_code as ec;
use crate::web::crl::CrlSlot;
use crate::web::{Periodic, Server};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub(super) async fn run(station: &Station, args: &ServeArgs, json: bool) -> Result<(), CliError> {
    let config = station.config();
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| config.serve.listen.clone());
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        CliError::invalid_argument("--listen", "address", format!("{listen:?}: {e}"))
    })?;
    let ocsp_path = config.ocsp.path()?;
    let crl_path = station.crl_url_path()?;
    let responder = Arc::new(station.ocsp_responder().await?);
    let hsm = Arc::new(station.open_hsm().await?);
    // The newest CRL is served from the first request on; the tick keeps it current.
    let crl = CrlSlot::default();
    if let Some(newest) = station.current_crl().await? {
        crl.set(newest);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("listening on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("listening on {addr}: {e}")))?;

    // The responder's revision poll: a revocation (here or at another station) reaches the
    // answers within a second or two. Failures are logged when they start and when they end.
    let failing = Arc::new(AtomicBool::new(false));
    let poll = {
        let responder = responder.clone();
        Periodic::new("ocsp-revision", Duration::from_secs(1), move || {
            let responder = responder.clone();
            let failing = failing.clone();
            async move {
                match responder.refresh().await {
                    Ok(()) if failing.swap(false, Ordering::SeqCst) => {
                        tracing::warn!("OCSP: the revocation revision is readable again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing.swap(true, Ordering::SeqCst) => {
                        tracing::warn!(error = %e, "OCSP: the revocation revision cannot be read: answers are tryLater until it can");
                    }
                    Err(_) => {}
                }
            }
        })
    };
    let server = Server::new()
        .routes(crate::web::ocsp::routes(responder, &ocsp_path))
        .routes(crate::web::crl::routes(
            crl.clone(),
            station.clone(),
            &crl_path,
        ))
        .every(poll)
        .every(crate::web::crl::tick(station.clone(), hsm, crl))
        .every(crate::web::notices::tick(station.clone()));

    if json {
        output::json(&serde_json::json!({
            "listen": local.to_string(),
            "ocsp_path": ocsp_path,
            "crl_path": crl_path,
        }))?;
    } else {
        println!(
            "keystation serve: listening on http://{local} (OCSP at {ocsp_path}, CRL at {crl_path})"
        );
    }
    server
        .run(listener, wait_for_stop_signal())
        .await
        .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("serving on {local}: {e}")))?;
    eprintln!("keystation serve: stopped");
    Ok(())
}
