//! `keystation serve [--listen ADDR] [--console-listen ADDR]`: the station's server (see
//! [`crate::web`]: OCSP, the CRL at its distribution point, the CRL tick) and, on its own
//! listener, the operators' console ([`crate::web::console`]) and the order API
//! ([`crate::web::api`], under `/api/v1/`), until Ctrl-C or SIGTERM. The
//! first line on stdout says where it listens (`--json`: one JSON object, with `console_listen`);
//! in text, a second line says where the console is (`https://` with `[console] tls_cert`). A supervisor or a test given port 0 learns
//! the ports.

use super::opts::ServeArgs;
use super::signals::wait_for_stop_signal;
use super::{CliError, output};
use crate::station::Station;
use crate::station::error_code as ec;
use crate::web::crl::CrlSlot;
use crate::web::tls::{TlsListener, server_config};
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
    let console = match console_listener(station, args).await? {
        Some((listener, addr)) => {
            let idle = time::Duration::minutes(config.console.idle_timeout_minutes.into());
            let tls = matches!(listener, ConsoleListener::Tls(_));
            let routes =
                crate::web::console::Console::new(station.clone(), hsm.clone(), idle, tls).routes();
            let api = crate::web::api::Api::new(station.clone()).routes();
            Some((Server::new().routes(routes).routes(api), listener, addr))
        }
        None => None,
    };
    // `[api.webhook]`: its key is read and checked here, so a bad one stops the start.
    let webhook = station.webhook_sender()?.map(Arc::new);
    let mut server = Server::new()
        .routes(crate::web::ocsp::routes(responder, &ocsp_path))
        .routes(crate::web::crl::routes(
            crl.clone(),
            station.clone(),
            &crl_path,
        ))
        .every(poll)
        .every(crate::web::crl::tick(station.clone(), hsm, crl))
        .every(crate::web::notices::tick(station.clone()));
    if let Some(sender) = webhook {
        server = server.every(crate::web::webhook::tick(station.clone(), sender));
    }

    let console_addr = console.as_ref().map(|(_, _, addr)| *addr);
    if json {
        output::json(&serde_json::json!({
            "listen": local.to_string(),
            "ocsp_path": ocsp_path,
            "crl_path": crl_path,
            "console_listen": console_addr.map(|a| a.to_string()),
        }))?;
    } else {
        println!(
            "keystation serve: listening on http://{local} (OCSP at {ocsp_path}, CRL at {crl_path})"
        );
        if let Some((_, listener, addr)) = &console {
            let scheme = match listener {
                ConsoleListener::Tls(_) => "https",
                ConsoleListener::Plain(_) => "http",
            };
            println!("keystation serve: console on {scheme}://{addr}/");
        }
    }
    // One stop signal ends both servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let console_run = async {
        match console {
            Some((server, listener, addr)) => match listener {
                ConsoleListener::Plain(l) => server.run(l, until_stopped()).await,
                ConsoleListener::Tls(l) => server.run(l, until_stopped()).await,
            }
            .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("console on {addr}: {e}"))),
            None => Ok(()),
        }
    };
    let public_run = async {
        server
            .run(listener, until_stopped())
            .await
            .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("serving on {local}: {e}")))
    };
    let (public, console) = tokio::join!(public_run, console_run);
    public?;
    console?;
    eprintln!("keystation serve: stopped");
    Ok(())
}

/// The console's listener: HTTPS when `[console] tls_cert` and `tls_key` are set, else plain
/// HTTP on loopback only.
#[derive(Debug)]
enum ConsoleListener {
    Plain(tokio::net::TcpListener),
    Tls(TlsListener),
}

/// The console's listener, when `--console-listen` or `[console] listen` asks for one. Without
/// TLS only on a loopback address, refused otherwise with `E-CONSOLE-INSECURE`: a session cookie
/// and a password must not cross a network in clear.
async fn console_listener(
    station: &Station,
    args: &ServeArgs,
) -> Result<Option<(ConsoleListener, std::net::SocketAddr)>, CliError> {
    let config = station.config();
    let Some(listen) = args
        .console_listen
        .clone()
        .or_else(|| config.console.listen.clone())
    else {
        return Ok(None);
    };
    let addr: std::net::SocketAddr = listen.parse().map_err(|e| {
        CliError::invalid_argument("--console-listen", "address", format!("{listen:?}: {e}"))
    })?;
    let tls = match (&config.console.tls_cert, &config.console.tls_key) {
        (Some(cert), Some(key)) => Some(
            server_config(&config.path(cert), &config.path(key))
                .map_err(|e| CliError::new(ec::CONSOLE_TLS, e.to_string()))?,
        ),
        _ => None,
    };
    if tls.is_none() && !addr.ip().is_loopback() {
        return Err(CliError::new(
            ec::CONSOLE_INSECURE,
            format!(
                "--console-listen {addr}: without TLS the console listens on a loopback address \
                 only (127.0.0.1 or ::1): set [console] tls_cert and tls_key to serve it on \
                 {addr}, or reach it from another machine through an SSH tunnel"
            ),
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("console on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("console on {addr}: {e}")))?;
    let listener = match tls {
        Some(tls) => ConsoleListener::Tls(
            TlsListener::new(listener, tls)
                .map_err(|e| CliError::new(ec::SERVE_LISTEN, format!("console on {addr}: {e}")))?,
        ),
        None => ConsoleListener::Plain(listener),
    };
    Ok(Some((listener, local)))
}
