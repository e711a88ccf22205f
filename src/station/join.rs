//! Joining an installation: the installation (the CA, the vault, the seal maker, the audit
//! anchor, one database) is created once, by its first station; every other station joins it.
//! A joining station registers itself (a station id is registered once) after it has verified,
//! through the PKCS#11 module it reaches and with the station PIN it was given, that the HSM
//! holds the installation's material as the database records it: the same CA token with the same
//! CA certificate, whose key is on it; the same seal-maker certificate with its key; the same
//! vault token, holding the derivation, sealing and receipt keys, and the same audit-anchor key.
//! It writes nothing of the installation's (no material row, no key, no certificate on a token);
//! it takes the CA and seal-maker certificates from the CA token into its own directory.
//!
//! What a real installation maps onto: the CA and vault tokens are partitions of a network HSM
//! every desk reaches through the vendor's PKCS#11 module; each desk's own USB keys are its own.
//! In tests and the demo, stations reach one SoftHSM store for the shared HSM.

use super::hsm::{Hsm, blocking, certificate_pem, load_module, load_vault_module, read_pin_file};
use super::init::MaterialSummary;
pub use super::join_error::JoinError;
use super::setup::{
    Created, NewStation, SetupError, check_free, complete_station, config_text, io,
    write_station_files,
};
use super::{OperationContext, Station};
use crate::audit::event::{AuditEvent, InstallationMaterial, StationJoined};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::{Pin, TokenSerial};
use crate::private_files;
use crate::random::OsRandom;
use crate::store::{AuditEntry, Installation, Registration, Store, StoreError};
use crate::token::{Pkcs11Module, TokenError, TokenSelector};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

/// The installation's certificates, as its CA token holds them, verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The CA certificate (DER).
    pub ca_cert_der: Vec<u8>,
    /// The seal maker's certificate (DER).
    pub maker_cert_der: Vec<u8>,
}

fn mismatch(what: &'static str, expected: &str, found: &str) -> JoinError {
    JoinError::Mismatch {
        what,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Verifies (blocking) that `module` (the CA's) and `vault_module`, logged in with
/// `station_pin`, hold the installation's material `inst` (see the module docs).
pub fn verify_installation(
    cfg: &Config,
    module: &Pkcs11Module,
    vault_module: &Pkcs11Module,
    station_pin: Pin,
    inst: &Installation,
) -> Result<Verified, JoinError> {
    for (what, module, label, serial) in [
        ("CA", module, &cfg.ca.token_label, &inst.ca_token_serial),
        (
            "vault",
            vault_module,
            &cfg.vault.token_label,
            &inst.vault_token_serial,
        ),
    ] {
        let token = match module.find(&[TokenSelector::Label(label.clone())]) {
            Ok(t) => t,
            Err(TokenError::NotFound(_)) => {
                return Err(JoinError::NotReachable {
                    what,
                    label: label.clone(),
                    serial: serial.clone(),
                    module: module.path().display().to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if token.info().serial != *serial {
            return Err(mismatch(
                if what == "CA" {
                    "CA token"
                } else {
                    "vault token"
                },
                &format!("serial {serial}"),
                &format!("serial {}", token.info().serial),
            ));
        }
    }
    let hsm = Hsm::from_parts(
        module.clone(),
        vault_module.clone(),
        station_pin,
        Arc::new(cfg.clone()),
        Vec::new(),
    );
    // The CA certificate as the CA token keeps it, next to its key, which must be the
    // certificate's.
    let ca = hsm.ca_token_signer(&cfg.ca.key_label)?;
    let ca_cert_der = ca
        .session()
        .certificate_by_label(&cfg.ca.key_label)?
        .ok_or_else(|| {
            mismatch(
                "CA certificate",
                &format!("sha256 {}", inst.ca_fingerprint),
                &format!("no certificate labelled {:?}", cfg.ca.key_label),
            )
        })?;
    let fingerprint = crate::x509::sha256_fingerprint(&ca_cert_der);
    if fingerprint != inst.ca_fingerprint {
        return Err(mismatch(
            "CA certificate",
            &format!("sha256 {}", inst.ca_fingerprint),
            &format!("sha256 {fingerprint}"),
        ));
    }
    let cert_key = x509_parser::parse_x509_certificate(&ca_cert_der)
        .map(|(_, c)| c.public_key().raw.to_vec())
        .map_err(|e| mismatch("CA certificate", "a certificate", &format!("{e}")))?;
    if cert_key != ca.public().spki_der {
        return Err(mismatch(
            "CA key",
            "the key of the CA certificate",
            &format!("another key labelled {:?}", cfg.ca.key_label),
        ));
    }
    drop(ca);
    let maker = hsm.seal_maker_signer()?;
    let maker_cert_der = maker
        .session()
        .certificate_by_label(&cfg.seal.maker_key_label)?
        .ok_or_else(|| {
            mismatch(
                "seal-maker certificate",
                &format!("sha256 {}", inst.seal_maker_fingerprint),
                &format!("no certificate labelled {:?}", cfg.seal.maker_key_label),
            )
        })?;
    drop(maker);
    let maker_fingerprint = crate::x509::sha256_fingerprint(&maker_cert_der);
    if maker_fingerprint != inst.seal_maker_fingerprint {
        return Err(mismatch(
            "seal-maker certificate",
            &format!("sha256 {}", inst.seal_maker_fingerprint),
            &format!("sha256 {maker_fingerprint}"),
        ));
    }
    let recorded = hex::decode(&inst.audit_anchor_spki).unwrap_or_default();
    let anchor = hex::encode(hsm.anchor_public_key(&recorded)?);
    let vault = hsm.vault()?;
    if anchor != inst.audit_anchor_spki {
        return Err(mismatch(
            "audit anchor key",
            &inst.audit_anchor_spki,
            &anchor,
        ));
    }
    // Each vault key answers: the derivation key, the sealing key (a seal that opens again),
    // the receipt key. Nothing of it is kept.
    drop(vault.derive_so_pin("keystation:join-probe")?);
    let probe = Pin::from_secret(zeroize::Zeroizing::new("join-probe".to_string()));
    let sealed = vault.seal_pin(&probe, b"keystation:join-probe")?;
    drop(vault.unseal_pin(&sealed, b"keystation:join-probe")?);
    vault.receipt_mac(b"keystation:join-probe")?;
    Ok(Verified {
        ca_cert_der,
        maker_cert_der,
    })
}

/// Whether the database at `url` holds an installation (a station `init` there joins it).
pub async fn installation_at(url: &str) -> Result<bool, SetupError> {
    let store = Store::connect(url).await.map_err(SetupError::Database)?;
    let found = store.installation().await?.is_some();
    store.close().await;
    Ok(found)
}

/// Makes a station that joins the installation in `req.database_url` (see the module docs),
/// acting for `operation`. `station_pin` is the installation's (the user PIN of its CA and vault
/// tokens); it goes to the station's PIN file. Like a station that creates an installation,
/// `station.toml` is written last: a refused join leaves no directory that looks like a station.
pub async fn join_station(
    req: &NewStation,
    station_pin: Pin,
    operation: &OperationContext,
) -> Result<Created, SetupError> {
    let dir = &req.dir;
    check_free(dir)?;
    if req.softhsm2_conf.is_none() && req.pkcs11_module.is_none() {
        return Err(SetupError::JoinUsage(
            "this database holds an installation: the station joins it and needs its HSM — \
             --softhsm2-conf FILE (a shared SoftHSM store) or --pkcs11-module PATH (a network HSM)"
                .into(),
        ));
    }
    let config_path = dir.join(crate::config::FILE_NAME);
    let text = config_text(req)?;
    let dir_abs = std::path::absolute(dir).map_err(io(format!("resolving {}", dir.display())))?;
    let cfg = Config::parse(&text, &dir_abs)?;
    let store = Store::connect(&cfg.database_url())
        .await
        .map_err(SetupError::Database)?;
    let Some(inst) = store.installation().await? else {
        return Err(SetupError::JoinUsage(format!(
            "{} holds no installation to join",
            crate::config::redacted_url(&cfg.database_url())
        )));
    };
    // Refused before the HSM is even opened (the registration refuses it again, for good).
    let id = &cfg.station.id;
    if store.stations().await?.iter().any(|s| s.station_id == *id) {
        return Err(StoreError::StationExists(id.clone()).into());
    }
    private_files::create_dir(&dir_abs)
        .and_then(|()| std::fs::set_permissions(&dir_abs, std::fs::Permissions::from_mode(0o700)))
        .map_err(io(format!("creating {}", dir_abs.display())))?;
    let station_pin = write_station_files(&cfg, station_pin)?;
    let pin_path = cfg.path(&cfg.pkcs11.pin_file);
    let module = blocking(|| load_module(&cfg))?;
    let vault_module = blocking(|| load_vault_module(&cfg))?;
    let verified =
        match blocking(|| verify_installation(&cfg, &module, &vault_module, station_pin, &inst)) {
            Ok(v) => v,
            Err(e) => {
                // The PIN file would make the directory look half a station: nothing of it stays.
                let _ = std::fs::remove_file(&pin_path);
                return Err(e.into());
            }
        };
    for (path, der) in [
        (cfg.path(&cfg.ca.certificate), &verified.ca_cert_der),
        (
            cfg.path(&cfg.seal.maker_certificate),
            &verified.maker_cert_der,
        ),
    ] {
        if let Some(parent) = path.parent() {
            private_files::create_dir(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        private_files::write_file(&path, certificate_pem(der).as_bytes())
            .map_err(io(format!("writing {}", path.display())))?;
    }
    // The installation's OCSP signer (none for an installation that has not made one
    // yet), beside the CA certificate.
    let ocsp_signer = store.ocsp_signer().await?;
    if let Some(signer) = &ocsp_signer {
        super::ocsp_signer::write_signer_file(&cfg, &signer.cert_der)?;
    }
    let ca_subject = crate::ca::issuance::cert_summary(&verified.ca_cert_der)
        .map(|c| c.subject)
        .unwrap_or_default();
    let summary = MaterialSummary {
        material: crate::audit::event::StationInitialized {
            ca_token_serial: inst.ca_token_serial.clone(),
            vault_token_serial: inst.vault_token_serial.clone(),
            ca_fingerprint: inst.ca_fingerprint.clone(),
            ca_subject,
            seal_maker_fingerprint: inst.seal_maker_fingerprint.clone(),
            audit_anchor_spki: inst.audit_anchor_spki.clone(),
        },
        ocsp_signer_fingerprint: ocsp_signer
            .as_ref()
            .map(|s| crate::x509::sha256_fingerprint(&s.cert_der)),
        ocsp_signer: None,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let station = Station {
        config: Arc::new(cfg.clone()),
        store: store.clone(),
        clock,
        random: Arc::new(OsRandom),
        operation: operation.clone(),
        identity: super::operators::Identity::default(),
        job_operator: None,
    };
    let mut tx = store.begin_write(now).await?;
    tx.register_station(id, Registration::Join).await?;
    tx.audit(
        &station.station_actor(),
        AuditEntry {
            // The audit column holds a well-formed serial; the details carry it as read.
            token_serial: TokenSerial::parse(&inst.ca_token_serial).ok(),
            ..AuditEntry::new(AuditEvent::StationJoined(StationJoined {
                station_id: id.to_string(),
                installation: InstallationMaterial {
                    ca_fingerprint: inst.ca_fingerprint.clone(),
                    ca_token_serial: inst.ca_token_serial.clone(),
                    vault_token_serial: inst.vault_token_serial.clone(),
                    seal_maker_fingerprint: inst.seal_maker_fingerprint.clone(),
                    audit_anchor_spki: inst.audit_anchor_spki.clone(),
                },
                pkcs11_module: module.path().display().to_string(),
            }))
        },
    )
    .await?;
    tx.commit().await?;
    let pin = read_pin_file(&pin_path).map_err(SetupError::Hsm)?;
    let hsm = Hsm::from_parts(
        module,
        vault_module,
        pin,
        Arc::new(cfg.clone()),
        verified.ca_cert_der,
    );
    complete_station(&station, &hsm, text, config_path, cfg, summary, None).await
}
