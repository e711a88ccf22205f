//! Making a station (`keystation init --dir DIR`, and the demo's first run): its directory,
//! `station.toml`, the SoftHSM configuration, the station PIN file, the database, the HSM
//! material ([`super::init`]), the first audit record and the first anchor.
//!
//! Order of work: everything is prepared and checked first, `station.toml` is written LAST, so a
//! failed init never leaves a directory that looks like a working station.

use super::hsm::{
    Hsm, HsmError, blocking, load_module, load_vault_module, read_certificate, read_pin_file,
    write_secret_file,
};
use super::init::{CaSource, InitError, MaterialSummary, StationModules, create_station_material};
use super::operators::{FIRST_ADMINISTRATOR, first_administrator_roles};
use super::{OperationContext, Station};
use crate::audit::event::AuditEvent;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, EXAMPLE};
use crate::domain::pin::{PinAlphabet, PinPolicy};
use crate::domain::{OperatorId, Pin, Severity, SoPin, TokenSerial, Violation};
use crate::private_files;
use crate::random::{OsRandom, Random};
use crate::store::{AuditEntry, Installation, Registration, Store, StoreError};
use crate::token::TokenError;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The USB key catalogue copied into a new station.
pub(super) const USB_TOKENS: &str = include_str!("../../hsm-config/usb-tokens.toml");

/// The comment that marks a demonstration value in `station.example.toml`.
pub const DEMO_MARK: &str = "# DEMO";

/// Marks a directory as a demo station, so a re-run continues it and nothing else is touched.
const DEMO_MARKER: &str = ".keystation-demo";

/// What the new station is to be.
#[derive(Debug, Clone, Default)]
pub struct NewStation {
    /// Its directory (created if missing; must not hold a station yet).
    pub dir: PathBuf,
    /// Station id.
    pub station_id: String,
    /// Database URL instead of the SQLite file in the directory.
    pub database_url: Option<String>,
    /// Organisation (O) of a CA created here; none: the demo name.
    pub ca_organization: Option<String>,
    /// Common name (CN) of a CA created here; none: the demo name.
    pub ca_common_name: Option<String>,
    /// Key algorithm of the CA (`ecdsa-p256`, `rsa-2048`, `sm2`).
    pub ca_algorithm: Option<String>,
    /// Key algorithm of customers' keys (`[product] key_algorithm`); none: the example's.
    pub product_algorithm: Option<String>,
    /// PKCS#11 module of the CA and customers' tokens instead of SoftHSM; the vault stays on
    /// SoftHSM (`[vault] module`). A test-token module (`libkstoken`) gets its configuration
    /// file and token directory in the station's directory, as SoftHSM does.
    pub pkcs11_module: Option<PathBuf>,
    /// An existing CA's certificate to adopt instead of creating a CA.
    pub existing_ca_cert: Option<PathBuf>,
    /// Label of the existing CA's token.
    pub ca_token_label: Option<String>,
    /// Label of the existing CA's key.
    pub ca_key_label: Option<String>,
    /// The installation's HSM is a SoftHSM store shared with other stations: its configuration
    /// file (instead of a store of the station's own in its directory).
    pub softhsm2_conf: Option<PathBuf>,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// `station.toml`.
    pub config_path: PathBuf,
    /// Its content, parsed.
    pub config: Config,
    /// The HSM material.
    pub summary: MaterialSummary,
    /// Keys of `station.toml` still holding a demonstration value ([`DEMO_MARK`]).
    pub demo_values: Vec<String>,
    /// The station joined an installation that existed already (see [`super::join`]).
    pub joined: bool,
    /// The first CRL of a new installation (none for a station that joined one).
    pub crl: Option<super::crl::CrlOutcome>,
}

/// Why a station could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The directory already holds a station, a PIN file, or (for a demo) something else.
    #[error("{0}")]
    DirectoryTaken(String),
    /// A value given for the station is invalid (each violation names its option).
    #[error("{} invalid value(s)", .0.len())]
    Invalid(Vec<Violation>),
    /// The configuration made from the values does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The existing CA's certificate file cannot be used.
    #[error(transparent)]
    ExistingCaFile(HsmError),
    /// The station PIN file just written, or the CA certificate just made, does not read back.
    #[error(transparent)]
    Hsm(HsmError),
    /// A file or directory could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The database could not be created.
    #[error("creating the database: {0}")]
    Database(#[source] StoreError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first administrator could not be made.
    #[error(transparent)]
    Operator(#[from] super::operators::OperatorError),
    /// The HSM material could not be made.
    #[error(transparent)]
    Material(#[from] InitError),
    /// The PKCS#11 module could not be loaded.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The record of the station's material would not serialise.
    #[error("recording the station's material: {0}")]
    Details(#[from] serde_json::Error),
    /// The first anchor of the audit trail failed.
    #[error(transparent)]
    Anchor(#[from] super::anchor::AnchorError),
    /// The installation could not be joined (see [`super::join`]).
    #[error(transparent)]
    Join(#[from] super::join_error::JoinError),
    /// Joining needs what was not given (the shared HSM, the installation's station PIN).
    #[error("{0}")]
    JoinUsage(String),
}

pub(super) fn io(what: String) -> impl FnOnce(std::io::Error) -> SetupError {
    move |source| SetupError::Io { what, source }
}

/// Writes the files every new station directory gets beside its `station.toml` (by `init` and
/// by `join`): the USB token list (unless one is there) and the station PIN file, which must not
/// exist yet. Returns the PIN as read back through the checks the station applies at every start.
pub(super) fn write_station_files(cfg: &Config, station_pin: Pin) -> Result<Pin, SetupError> {
    let usb = cfg.path(&cfg.pkcs11.usb_tokens);
    if !usb.exists() {
        private_files::write_file(&usb, USB_TOKENS.as_bytes())
            .map_err(io(format!("writing {}", usb.display())))?;
    }
    let pin_path = cfg.path(&cfg.pkcs11.pin_file);
    if pin_path.exists() {
        return Err(SetupError::DirectoryTaken(format!(
            "{} exists already; remove it or choose another directory",
            pin_path.display()
        )));
    }
    // The station PIN is stored in the station's PIN file (0600 in a 0700 directory) — see the
    // README's "Secrets" section for why that is where an HSM-backed service keeps it.
    write_secret_file(&pin_path, station_pin.expose_secret())
        .map_err(io(format!("writing {}", pin_path.display())))?;
    drop(station_pin);
    read_pin_file(&pin_path).map_err(SetupError::Hsm)
}

/// The PINs `init --generate-pins` makes: 16 characters of the unambiguous alphabet.
const GENERATED_PINS: PinPolicy = PinPolicy {
    length: 16,
    alphabet: PinAlphabet::Unambiguous,
};

/// A station PIN and an SO PIN for `init --generate-pins`, drawn from the randomness every
/// production station is given ([`OsRandom`]).
pub fn generated_pins() -> (Pin, SoPin) {
    generate_pins(&OsRandom)
}

/// A station PIN and an SO PIN drawn from `random` (panics if it fails, as `Random::rng` says:
/// a PIN is never made from less).
fn generate_pins(random: &dyn Random) -> (Pin, SoPin) {
    let mut rng = random.rng();
    let user = Pin::generate(&GENERATED_PINS, &mut rng);
    let so = Pin::generate(&GENERATED_PINS, &mut rng);
    // Both are drawn the same way; the SO PIN is only typed apart.
    let so = SoPin::from_secret(Zeroizing::new(so.expose_secret().to_string()));
    (user, so)
}

/// Refuses a directory that holds a station already (its `station.toml`).
pub fn check_free(dir: &Path) -> Result<(), SetupError> {
    let config_path = dir.join(crate::config::FILE_NAME);
    if config_path.exists() {
        return Err(SetupError::DirectoryTaken(format!(
            "{} already exists: this directory holds a station (use --config {})",
            config_path.display(),
            config_path.display()
        )));
    }
    Ok(())
}

/// Claims `dir` for a demo station: creates it, or accepts it when it is empty or a demo
/// station already. Returns true when it holds a demo station's configuration (a re-run).
pub fn claim_demo_dir(dir: &Path) -> Result<bool, SetupError> {
    let marker = dir.join(DEMO_MARKER);
    let occupied = dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if occupied && !marker.exists() {
        return Err(SetupError::DirectoryTaken(format!(
            "{} exists and is not a keystation demo; refusing to touch it (give another --dir)",
            dir.display()
        )));
    }
    private_files::create_dir(dir).map_err(io(format!("creating {}", dir.display())))?;
    if !marker.exists() {
        private_files::write_file(
            &marker,
            b"a keystation demo station (keystation demo); safe to delete with this directory\n",
        )
        .map_err(io(format!("writing {}", marker.display())))?;
    }
    Ok(dir.join(crate::config::FILE_NAME).exists())
}

/// `text` with the first `key = ...` line (a demonstration value and its comment) replaced by
/// `key = "value"`, the value written as a TOML string.
fn set_value(text: &str, key: &str, value: &str) -> String {
    set_line(
        text,
        key,
        &toml::Value::String(value.to_string()).to_string(),
    )
}

/// `text` with its first `key = ...` line replaced by `key = value` (`value`: TOML text).
pub(super) fn set_line(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key} =");
    let mut done = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if !done && line.starts_with(&prefix) {
            done = true;
            out.push_str(&format!("{key} = {value}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The dotted keys of `text` whose line still carries the [`DEMO_MARK`].
pub(super) fn demo_values(text: &str) -> Vec<String> {
    let mut table = String::new();
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
        } else if line.contains(DEMO_MARK) && !line.starts_with('#') {
            if let Some((key, _)) = line.split_once('=') {
                found.push(format!("{table}.{}", key.trim()));
            }
        }
    }
    found
}

/// True for the project's test token (`tokens/kstoken`), which the station configures as it
/// configures SoftHSM: a configuration file and a token directory of its own.
fn is_test_token(module: &Path) -> bool {
    module
        .file_name()
        .is_some_and(|f| f.to_string_lossy().starts_with("libkstoken"))
}

/// The text of the new station's `station.toml`.
pub(super) fn config_text(req: &NewStation) -> Result<String, SetupError> {
    let mut text = EXAMPLE.replace("id = \"station-01\"", &format!("id = {:?}", req.station_id));
    if let Some(url) = &req.database_url {
        text = text.replace(
            "url = \"sqlite://station.db?mode=rwc\"",
            &format!("url = {url:?}"),
        );
    }
    for (key, option, value) in [
        ("common_name", "--ca-common-name", &req.ca_common_name),
        ("organization", "--ca-organization", &req.ca_organization),
    ] {
        if let Some(v) = value {
            // The CA's names go into its certificate: the intake's rules for names apply.
            let name = crate::domain::normalize::text(v);
            crate::domain::text::check(&name, crate::domain::text::TextKind::Name).map_err(
                |p| {
                    SetupError::Invalid(vec![Violation {
                        field: option.into(),
                        code: p.code,
                        message: p.message,
                        severity: Severity::Error,
                    }])
                },
            )?;
            text = set_value(&text, key, &name);
        }
    }
    if let Some(alg) = &req.ca_algorithm {
        text = text.replacen(
            "key_algorithm = \"ecdsa-p256\"                   # or \"rsa-2048\", or \"sm2\" (a module with SM2 codes in pkcs11-vendors.toml)",
            &format!("key_algorithm = {alg:?}"),
            1,
        );
    }
    let absolute =
        |p: &PathBuf| std::path::absolute(p).map_err(io(format!("resolving {}", p.display())));
    if let Some(conf) = &req.softhsm2_conf {
        let conf = absolute(conf)?;
        text = text.replacen(
            "softhsm2_conf = \"softhsm2.conf\"                # SoftHSM only: token directory of this station",
            &format!(
                "softhsm2_conf = {:?}   # SoftHSM only: the installation's shared store",
                conf.display().to_string()
            ),
            1,
        );
    }
    if let Some(alg) = &req.product_algorithm {
        text = text.replacen(
            "key_algorithm = \"ecdsa-p256\"                   # key pair generated on customers' USB keys (or \"rsa-2048\", \"sm2\")",
            &format!("key_algorithm = {alg:?}"),
            1,
        );
    }
    if let Some(module) = &req.pkcs11_module {
        let module = absolute(module)?;
        let softhsm = crate::token::module::SOFTHSM_PATHS
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .unwrap_or(Path::new(crate::token::module::SOFTHSM_PATHS[0]));
        text = text.replacen(
            "# module = \"/usr/lib/softhsm/libsofthsm2.so\"   # default: SoftHSM2 in its usual Debian paths",
            &format!("module = {:?}", module.display().to_string()),
            1,
        );
        text = text.replacen(
            "# module = \"/usr/lib/softhsm/libsofthsm2.so\"   # default: pkcs11.module; set when that module has no HMAC/AES (SM2 tokens)",
            &format!("module = {:?}", softhsm.display().to_string()),
            1,
        );
        if is_test_token(&module) {
            text = text.replacen(
                "# kstoken_conf = \"kstoken.conf\"",
                "kstoken_conf = \"kstoken.conf\"",
                1,
            );
        }
    }
    for (key, value) in [
        (
            "token_label = \"keystation-ca\"",
            req.ca_token_label.as_deref(),
        ),
        ("key_label = \"issuing-ca\"", req.ca_key_label.as_deref()),
    ] {
        if let Some(v) = value {
            let name = key.split(' ').next().unwrap_or(key);
            text = text.replacen(key, &format!("{name} = {v:?}"), 1);
        }
    }
    Ok(text)
}

/// Creates a station (see the module docs), acting for `operation`. The SO PIN is used for the
/// station tokens and dropped; the station PIN goes to the station's PIN file.
pub async fn create_station(
    req: &NewStation,
    station_pin: Pin,
    so_pin: SoPin,
    operation: &OperationContext,
) -> Result<Created, SetupError> {
    let dir = &req.dir;
    check_free(dir)?;
    let config_path = dir.join(crate::config::FILE_NAME);
    let text = config_text(req)?;
    let existing_ca = match &req.existing_ca_cert {
        Some(p) => Some(read_certificate(p).map_err(SetupError::ExistingCaFile)?),
        None => None,
    };
    let dir_abs = std::path::absolute(dir).map_err(io(format!("resolving {}", dir.display())))?;
    // Validate before writing: a bad --station-id or URL must not leave a half-made station.
    let cfg = Config::parse(&text, &dir_abs)?;
    // The data directory holds personal data and secrets: 0700, also when it existed already
    // (the operator named it as the station's).
    private_files::create_dir(&dir_abs)
        .and_then(|()| std::fs::set_permissions(&dir_abs, std::fs::Permissions::from_mode(0o700)))
        .map_err(io(format!("creating {}", dir_abs.display())))?;
    let store = Store::connect(&cfg.database_url())
        .await
        .map_err(SetupError::Database)?;
    // Never a second installation over the first: its material stays as it is (`record_installation`
    // refuses it too, in the transaction).
    if store.installation().await?.is_some() {
        return Err(SetupError::Store(StoreError::InstallationExists));
    }
    if req.softhsm2_conf.is_none() {
        write_softhsm_store(&dir_abs)?;
    }
    if req.pkcs11_module.as_deref().is_some_and(is_test_token) {
        let kstoken_tokens = dir_abs.join("kstoken-tokens");
        private_files::create_dir(&kstoken_tokens)
            .map_err(io(format!("creating {}", kstoken_tokens.display())))?;
        private_files::write_file(
            &dir_abs.join("kstoken.conf"),
            format!(
                "# keystation test token (libkstoken.so) of this station (KSTOKEN_CONF={}/kstoken.conf)\n\
                 token_dir = {:?}\n",
                dir_abs.display(),
                kstoken_tokens.display().to_string()
            )
            .as_bytes(),
        )
        .map_err(io("writing kstoken.conf".into()))?;
    }
    let station_pin = write_station_files(&cfg, station_pin)?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    let now = clock.now();
    let summary = blocking(|| -> Result<MaterialSummary, SetupError> {
        let module = load_module(&cfg)?;
        let vault_module = load_vault_module(&cfg)?;
        let source = match &existing_ca {
            Some(der) => CaSource::Existing(der),
            None => CaSource::Create,
        };
        let (summary, _) = create_station_material(
            &cfg,
            StationModules {
                ca: &module,
                vault: &vault_module,
            },
            &station_pin,
            &so_pin,
            now,
            random.as_ref(),
            source,
        )?;
        Ok(summary)
    })?;
    drop(so_pin);

    let station = Station {
        config: Arc::new(cfg.clone()),
        store: store.clone(),
        clock,
        random,
        operation: operation.clone(),
        identity: super::operators::Identity::default(),
        job_operator: None,
    };
    let mut tx = store.begin_write(now).await?;
    let material = &summary.material;
    tx.record_installation(&Installation {
        ca_fingerprint: material.ca_fingerprint.clone(),
        ca_token_serial: material.ca_token_serial.clone(),
        vault_token_serial: material.vault_token_serial.clone(),
        seal_maker_fingerprint: material.seal_maker_fingerprint.clone(),
        audit_anchor_spki: material.audit_anchor_spki.clone(),
    })
    .await?;
    tx.register_station(&cfg.station.id, Registration::Init)
        .await?;
    // The first administrator, whose credential adds the other operators (issue 17).
    let admin_credential = first_administrator_credential(&dir_abs);
    super::operators::add_in(
        &mut tx,
        &station.station_actor(),
        (
            &OperatorId::parse(FIRST_ADMINISTRATOR)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            &first_administrator_roles(),
        ),
        station.random.as_ref(),
        &admin_credential,
        &super::operators::Provenance::default(),
    )
    .await?;
    if let Some(signer) = &summary.ocsp_signer {
        tx.record_ocsp_signer(signer).await?;
        let entry =
            super::ocsp_signer::signer_issued(signer, None, None).map_err(InitError::from)?;
        tx.audit(&station.station_actor(), entry).await?;
    }
    tx.audit(
        &station.station_actor(),
        AuditEntry {
            // The audit column holds a well-formed serial; the details carry it as read.
            token_serial: TokenSerial::parse(&material.ca_token_serial).ok(),
            ..AuditEntry::new(AuditEvent::StationInitialized(material.clone()))
        },
    )
    .await?;
    if let Err(e) = tx.commit().await {
        let _ = private_files::erase_file(&admin_credential);
        return Err(e.into());
    }
    // The first anchor covers the station's birth.
    let ca_der = read_certificate(&cfg.path(&cfg.ca.certificate)).map_err(SetupError::Hsm)?;
    let hsm = blocking(|| -> Result<Hsm, TokenError> {
        Ok(Hsm::from_parts(
            load_module(&cfg)?,
            load_vault_module(&cfg)?,
            station_pin,
            Arc::new(cfg.clone()),
            ca_der,
        ))
    })?;
    // CRL number 1: the distribution point named in every certificate has a CRL from the start.
    let crl = station.crl_after(Some(&hsm), "init").await;
    complete_station(&station, &hsm, text, config_path, cfg, summary, Some(crl)).await
}

/// Where `init` writes the first administrator's credential: `admin.credential` in the station
/// directory (mode 0600).
pub fn first_administrator_credential(dir: &Path) -> PathBuf {
    dir.join(format!("{FIRST_ADMINISTRATOR}.credential"))
}

/// The last steps of `init` and `join`, once the station is registered: the first audit anchor
/// it makes (whichever station anchors, the vault's anchor only moves forward), then its
/// `station.toml` (`text`, at `config_path`), written last. Says what was made; `first_crl` is
/// the first CRL of a new installation (none: the station joined one).
pub(super) async fn complete_station(
    station: &Station,
    hsm: &Hsm,
    text: String,
    config_path: PathBuf,
    config: Config,
    summary: MaterialSummary,
    first_crl: Option<super::crl::CrlOutcome>,
) -> Result<Created, SetupError> {
    station.anchor_audit(hsm).await?;
    station.store.close().await;
    private_files::write_file(&config_path, text.as_bytes())
        .map_err(io(format!("writing {}", config_path.display())))?;
    Ok(Created {
        config_path,
        config,
        summary,
        demo_values: demo_values(&text),
        joined: first_crl.is_none(),
        crl: first_crl,
    })
}

/// A SoftHSM store of the station's own in `dir` (`tokens/`, `softhsm2.conf`).
fn write_softhsm_store(dir: &Path) -> Result<(), SetupError> {
    let tokens = dir.join("tokens");
    private_files::create_dir(&tokens).map_err(io(format!("creating {}", tokens.display())))?;
    private_files::write_file(
        &dir.join("softhsm2.conf"),
        format!(
            "# SoftHSM2 configuration of this station (SOFTHSM2_CONF={}/softhsm2.conf)\n\
             directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.display(),
            tokens.display()
        )
        .as_bytes(),
    )
    .map_err(io("writing softhsm2.conf".into()))
}

#[cfg(test)]
mod tests;
