//! The station's HSM context: the PKCS#11 module, the station PIN, the CA and vault tokens.
//!
//! # Security notes
//! The station PIN (user PIN of the CA and vault tokens) is read from `pkcs11.pin_file`, a file
//! the station user alone may read (mode 0600; anything looser is refused), as every HSM-backed
//! service keeps its PIN: the HSM protects the keys, the file system protects the PIN, and the
//! PIN never appears on a command line, in the environment or in a log. It is held in a
//! zeroizing [`Pin`].

use crate::config::Config;
use crate::domain::Pin;
use crate::token::{Pkcs11Module, StoreLock, Token, TokenError, TokenSelector, TokenSigner, Vault};
use std::path::Path;
use std::sync::Arc;

/// Runs blocking work from async code without stalling the runtime: the one place where the
/// station's async code crosses into PKCS#11 (every function of [`crate::token`] blocks), and
/// into the file and USB work done alongside it. Fronts never block: they call the station.
///
/// `block_in_place` rather than `spawn_blocking`: the work borrows the caller's state (sessions
/// leased from the pools, the job's token), and the multi-threaded runtime moves the worker's
/// other tasks elsewhere meanwhile.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Loads the PKCS#11 module of `config` (once per process). With SoftHSM as the installation's
/// HSM, its store is shared by every station process, and the module then takes the store's
/// lock, `<softhsm2.conf>.lock`, around what SoftHSM does not make safe across processes (see
/// [`crate::token::store_lock`]). Another module (a network HSM's) needs no such lock and gets
/// none.
pub fn load_module(config: &Config) -> Result<Pkcs11Module, TokenError> {
    load_module_at(config, config.pkcs11.module.as_deref())
}

/// Loads the vault token's module (`vault.module`, else `pkcs11.module`), as [`load_module`] does.
pub fn load_vault_module(config: &Config) -> Result<Pkcs11Module, TokenError> {
    load_module_at(config, config.vault_module())
}

fn load_module_at(config: &Config, module: Option<&Path>) -> Result<Pkcs11Module, TokenError> {
    match &config.pkcs11.softhsm2_conf {
        Some(conf) => {
            Pkcs11Module::load_shared_store(module, StoreLock::beside(&config.path(conf)))
        }
        None => Pkcs11Module::load(module),
    }
}

/// Errors setting up the HSM context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The PIN file is missing, unreadable, empty or too open.
    #[error("station PIN file {path}: {reason}")]
    PinFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The CA certificate file is missing or not PEM/DER.
    #[error("CA certificate {path}: {reason}")]
    CaCertificate {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The directory of the PIN file is open to group or others.
    #[error(transparent)]
    NotPrivate(#[from] crate::private_files::NotPrivate),
    /// A token operation failed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Reads the station PIN file: one line, mode 0600 (or stricter), in a directory of mode 0700.
pub fn read_pin_file(path: &Path) -> Result<Pin, HsmError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::private_files::check_dir(dir, "directory of the station PIN file")?;
    }
    let line =
        crate::private_files::read_secret_line(path).map_err(|reason| HsmError::PinFile {
            path: path.display().to_string(),
            reason,
        })?;
    Ok(Pin::from_secret(line))
}

/// Writes a secret to a new file with mode 0600 (its directory 0700), refusing to overwrite.
pub fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Loads a certificate from PEM or DER.
pub fn read_certificate(path: &Path) -> Result<Vec<u8>, HsmError> {
    let err = |reason: String| HsmError::CaCertificate {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    if bytes.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| err(e.to_string()))?;
        Ok(pem.contents)
    } else {
        Ok(bytes)
    }
}

/// PEM text of a DER certificate.
pub fn certificate_pem(der: &[u8]) -> String {
    pem_text("CERTIFICATE", der)
}

/// PEM text of a DER object under `label` (`CERTIFICATE`, `X509 CRL`).
pub fn pem_text(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Something a `Pool` keeps: a logged-in session on a station token.
pub trait Pooled: Send {
    /// Still open and logged in.
    fn is_alive(&self) -> bool;
}

impl Pooled for Vault {
    fn is_alive(&self) -> bool {
        Vault::is_alive(self)
    }
}

impl Pooled for TokenSigner {
    fn is_alive(&self) -> bool {
        TokenSigner::is_alive(self)
    }
}

/// Logged-in sessions on a station token (vault, CA), kept open between jobs: a process logs in
/// to its station tokens once, not once per order, and never re-finds them among hundreds of
/// customers' tokens. One session per concurrent user; a session found dead (token pulled,
/// module reset) when taken is dropped and a new one opened.
struct Pool<T> {
    idle: std::sync::Mutex<Vec<T>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl<T: Pooled> Pool<T> {
    fn take(
        &self,
        open: impl FnOnce() -> Result<T, TokenError>,
    ) -> Result<Lease<'_, T>, TokenError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(item) if item.is_alive() => {
                    return Ok(Lease {
                        item: Some(item),
                        pool: self,
                    });
                }
                Some(_) => continue,
                None => {
                    return Ok(Lease {
                        item: Some(open()?),
                        pool: self,
                    });
                }
            }
        }
    }
}

/// A session taken from a `Pool`; back to the pool when dropped.
pub struct Lease<'a, T: Pooled> {
    item: Option<T>,
    pool: &'a Pool<T>,
}

impl<T: Pooled> std::fmt::Debug for Lease<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl<T: Pooled> std::ops::Deref for Lease<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` takes the item out.
        self.item.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Pooled> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(item);
        }
    }
}

/// The station's HSM material, ready to use.
#[derive(Clone)]
pub struct Hsm {
    module: Pkcs11Module,
    vault_module: Pkcs11Module,
    station_pin: Arc<Pin>,
    config: Arc<Config>,
    ca_cert_der: Arc<Vec<u8>>,
    sessions: Arc<Sessions>,
}

/// The pools of one station process.
#[derive(Default)]
struct Sessions {
    vault: Pool<Vault>,
    ca: Pool<TokenSigner>,
    seal_maker: Pool<TokenSigner>,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl Hsm {
    /// Loads the module, reads the station PIN and the CA certificate.
    pub fn open(config: Arc<Config>) -> Result<Hsm, HsmError> {
        let module = load_module(&config)?;
        let vault_module = load_vault_module(&config)?;
        let station_pin = read_pin_file(&config.path(&config.pkcs11.pin_file))?;
        let ca_cert_der = read_certificate(&config.path(&config.ca.certificate))?;
        Ok(Hsm::from_parts(
            module,
            vault_module,
            station_pin,
            config,
            ca_cert_der,
        ))
    }

    /// Assembles a context from parts (used by `init`, which creates them).
    pub fn from_parts(
        module: Pkcs11Module,
        vault_module: Pkcs11Module,
        station_pin: Pin,
        config: Arc<Config>,
        ca_cert_der: Vec<u8>,
    ) -> Hsm {
        Hsm {
            module,
            vault_module,
            station_pin: Arc::new(station_pin),
            config,
            ca_cert_der: Arc::new(ca_cert_der),
            sessions: Arc::default(),
        }
    }

    /// The PKCS#11 module's file (for the operator: `pkcs11-tool --module`).
    pub fn module_path(&self) -> &Path {
        self.module.path()
    }

    /// The PKCS#11 module of customers' tokens.
    pub fn module(&self) -> &Pkcs11Module {
        &self.module
    }

    /// The CA certificate (DER).
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.ca_cert_der
    }

    fn station_token(&self, label: &str) -> Result<Token, TokenError> {
        self.module.find(&[TokenSelector::Label(label.to_string())])
    }

    /// A logged-in vault session (kept open for the next caller when dropped).
    pub fn vault(&self) -> Result<Lease<'_, Vault>, TokenError> {
        self.sessions.vault.take(|| {
            let mut t = self
                .vault_module
                .find(&[TokenSelector::Label(self.config.vault.token_label.clone())])?;
            Vault::open(&mut t, &self.station_pin)
        })
    }

    /// A signer over a key of the CA token (not pooled: for the rare keys other than the
    /// issuing CA's and the seal maker's).
    pub fn ca_token_signer(&self, key_label: &str) -> Result<TokenSigner, TokenError> {
        let mut t = self.station_token(&self.config.ca.token_label)?;
        let session = t.login_user(&self.station_pin)?;
        TokenSigner::by_label(session, key_label, self.config.ca.key_algorithm)
    }

    /// A signer over the key pair with CKA_ID `key_id` on the CA token (not pooled: the OCSP
    /// responder keeps its own sessions). By id, not label: a renewed OCSP signer keeps its label.
    pub fn ca_token_signer_by_id(&self, key_id: &[u8]) -> Result<TokenSigner, TokenError> {
        let mut t = self.station_token(&self.config.ca.token_label)?;
        let session = t.login_user(&self.station_pin)?;
        let public = session.public_key(key_id, self.config.ca.key_algorithm)?;
        TokenSigner::new(session, public)
    }

    /// Signs `msg` with the installation's audit anchor key, where the key on record
    /// (`recorded_spki`, none on a station from before it was recorded) says it lives: an SM2 key
    /// on the CA token, or else the vault's ECDSA P-256 key.
    pub fn sign_anchor(
        &self,
        recorded_spki: Option<&[u8]>,
        msg: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        if recorded_spki.is_some_and(|k| crate::sm2::point_of_spki(k).is_some()) {
            self.ca_token_signer(crate::token::vault::ANCHOR_KEY)?
                .sign_message(msg)
        } else {
            self.vault()?.sign_anchor(msg)
        }
    }

    /// The public key (SPKI DER) of the audit anchor key where the key on record says it lives
    /// (see [`Hsm::sign_anchor`]).
    pub fn anchor_public_key(&self, recorded_spki: &[u8]) -> Result<Vec<u8>, TokenError> {
        if crate::sm2::point_of_spki(recorded_spki).is_some() {
            Ok(self
                .ca_token_signer(crate::token::vault::ANCHOR_KEY)?
                .public()
                .spki_der
                .clone())
        } else {
            self.vault()?.anchor_public_key()
        }
    }

    /// The seal maker's signer (on the CA token), kept open between jobs.
    pub fn seal_maker_signer(&self) -> Result<Lease<'_, TokenSigner>, TokenError> {
        self.sessions
            .seal_maker
            .take(|| self.ca_token_signer(&self.config.seal.maker_key_label))
    }

    /// The issuing CA's signer, checked to match the CA certificate when its session is opened
    /// (a wrong key label or a swapped token must not sign anything); kept open between jobs.
    pub fn ca_signer(&self) -> Result<Lease<'_, TokenSigner>, TokenError> {
        self.sessions.ca.take(|| self.open_ca_signer())
    }

    fn open_ca_signer(&self) -> Result<TokenSigner, TokenError> {
        let signer = self.ca_token_signer(&self.config.ca.key_label)?;
        let cert_spki = x509_parser::parse_x509_certificate(&self.ca_cert_der)
            .map(|(_, c)| c.public_key().raw.to_vec())
            .map_err(|e| TokenError::Unexpected {
                token: self.config.ca.token_label.clone(),
                what: format!("the CA certificate does not parse: {e}"),
            })?;
        if cert_spki != signer.public().spki_der {
            return Err(TokenError::Unexpected {
                token: self.config.ca.token_label.clone(),
                what: format!(
                    "key {:?} does not match the CA certificate {}",
                    self.config.ca.key_label,
                    self.config.ca.certificate.display()
                ),
            });
        }
        Ok(signer)
    }
}
