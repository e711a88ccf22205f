//! TLS for the console's listener (`[console] tls_cert`, `tls_key`): rustls on ring, the one
//! crypto stack of the station, through tokio-rustls (already in the tree with lettre), under
//! axum's own server ([`TlsListener`] is an `axum::serve::Listener`).
//!
//! Handshakes run in their own tasks, each bounded by [`HANDSHAKE_TIMEOUT`], so a client that
//! connects and says nothing holds up nobody else; a failed handshake is logged at debug level
//! and dropped. HTTP/1.1 only (ALPN), as the console's server speaks.
//!
//! Security notes: the key file must be the station's own (mode 0600 or stricter, like the
//! station PIN file); neither its content nor rustls' parse errors of it are ever printed beyond
//! the file's name and what is wrong.

use crate::private_files::too_open;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the console's TLS could not be set up (names the file, never its content).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file is unreadable, not PEM, or holds no certificate.
    #[error("console.tls_cert {file}: {problem}")]
    Certificate {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// The key file is unreadable, open to others, or holds no private key.
    #[error("console.tls_key {file}: {problem}")]
    Key {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the pair (e.g. the key is not the certificate's).
    #[error("console.tls_cert and console.tls_key: {0}")]
    Config(String),
}

/// The server configuration of the certificate chain in `cert` and the key in `key` (PEM).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_err = |problem: String| TlsError::Certificate {
        file: cert.display().to_string(),
        problem,
    };
    let key_err = |problem: String| TlsError::Key {
        file: key.display().to_string(),
        problem,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate in it".into()));
    }
    let meta = std::fs::metadata(key).map_err(|e| key_err(e.to_string()))?;
    if let Some(why) = too_open(&meta) {
        return Err(key_err(why));
    }
    // The parse error of a key file is not repeated: it could quote the key's text.
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|_| key_err("no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections are handed on once their TLS handshake is done.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` with `config` (in a task of the current runtime, ended when the
    /// listener is dropped).
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (done, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "console: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "console: TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "console: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task holds a sender for as long as the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
