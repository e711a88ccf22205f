//! Creating the station's HSM material (`keystation init`).
//!
//! - CA token (label `ca.token_label`): the issuing CA's key pair (generated on the token,
//!   non-extractable) and its self-signed certificate, exported to `ca.certificate` (PEM); the
//!   seal-maker key pair with its certificate issued by that CA (`seal.maker_certificate`); the
//!   delegated OCSP signer's key pair and certificate (`ocsp.signer_certificate`), in the CA's algorithm.
//! - Vault token (label `vault.token_label`): the HMAC key deriving customers' SO PINs, the
//!   AES key sealing user PINs, the HMAC key of delivery receipts, the audit anchor key pair.
//!
//! Both tokens take the station PIN as user PIN. Their SO PIN comes from the operator (prompt or
//! file) and is not stored by the station.

use super::hsm::certificate_pem;
use super::ocsp_signer::{issue_ocsp_signer, write_signer_file};
use crate::ca::issuance::{issue_seal_maker_cert, self_signed_ca, serial_from_random};
use crate::ca::profile::{CaProfile, maker_cert_params, self_signed_ca_params};
use crate::config::Config;
use crate::domain::{Pin, SoPin};
use crate::random::Random;
use crate::token::{Pkcs11Module, Token, TokenError, TokenSelector, TokenSigner, Vault};
use time::OffsetDateTime;

/// Errors creating the station material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A station token with this label exists already.
    #[error(
        "a token labelled {0:?} already exists: this PKCS#11 module already holds a station (remove it or use other labels)"
    )]
    Exists(String),
    /// No blank token to make a station token from.
    #[error(
        "no blank token for the {0} token (SoftHSM: check softhsm2.conf; HSM: create a partition)"
    )]
    NoBlank(&'static str),
    /// The existing CA given to `init` is not usable.
    #[error("existing CA: {0}")]
    ExistingCa(String),
    /// A token operation failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Certificate creation failed.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// Writing the certificate files failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The OS random generator failed.
    #[error("OS random generator: {0}")]
    Random(String),
}

/// What `init` created, for the operator and the audit trail: the audit record's payload is
/// `material` itself, so the two cannot drift apart.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaterialSummary {
    /// The tokens, certificates and keys made, as `station.initialized` records them.
    #[serde(flatten)]
    pub material: crate::audit::event::StationInitialized,
    /// The delegated OCSP signer's certificate fingerprint (none for an installation made before
    /// OCSP signers existed, which a joining station reports as it finds it).
    pub ocsp_signer_fingerprint: Option<String>,
    /// The OCSP signer made by `init`, for the installation's records.
    #[serde(skip)]
    pub ocsp_signer: Option<crate::store::OcspSignerRecord>,
}

fn random16(random: &dyn Random) -> Result<[u8; 16], InitError> {
    random
        .bytes::<16>()
        .map_err(|e| InitError::Random(e.to_string()))
}

fn new_station_token(
    module: &Pkcs11Module,
    label: &str,
    what: &'static str,
    so_pin: &SoPin,
    station_pin: &Pin,
) -> Result<Token, InitError> {
    match module.find(&[TokenSelector::Label(label.to_string())]) {
        Ok(_) => return Err(InitError::Exists(label.to_string())),
        Err(TokenError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut t = module.first_blank()?.ok_or(InitError::NoBlank(what))?;
    t.init_token(so_pin, label)?;
    t.login_so(so_pin)?.init_user_pin(station_pin)?;
    t.refresh()?;
    Ok(t)
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::private_files::create_dir(dir).map_err(io)?;
    }
    crate::private_files::write_file(path, text.as_bytes()).map_err(io)
}

/// Where the issuing CA comes from.
#[derive(Debug, Clone, Copy)]
pub enum CaSource<'a> {
    /// A new CA: key pair generated on a new CA token, self-signed certificate.
    Create,
    /// An existing CA: its certificate (DER), its key on the existing token `ca.token_label`
    /// under `ca.key_label`, whose user PIN is the station PIN.
    Existing(&'a [u8]),
}

/// The modules of the station's tokens: the CA's (also the customers') and the vault's, which
/// may be the same.
#[derive(Debug, Clone, Copy)]
pub struct StationModules<'a> {
    /// The CA token's module.
    pub ca: &'a Pkcs11Module,
    /// The vault token's module.
    pub vault: &'a Pkcs11Module,
}

/// Creates (or adopts) the CA, and creates the vault token and their keys (blocking). Key ids
/// and certificate serials come from `random`.
pub fn create_station_material(
    cfg: &Config,
    modules: StationModules<'_>,
    station_pin: &Pin,
    so_pin: &SoPin,
    now: OffsetDateTime,
    random: &dyn Random,
    ca: CaSource<'_>,
) -> Result<(MaterialSummary, Vec<u8>), InitError> {
    let module = modules.ca;
    let (mut ca_token, ca_signer, ca_cert) = match ca {
        CaSource::Create => {
            // CA token: CA key, self-signed certificate.
            let mut ca_token =
                new_station_token(module, &cfg.ca.token_label, "CA", so_pin, station_pin)?;
            let session = ca_token.login_user(station_pin)?;
            let ca_key = session.generate_key_pair(
                cfg.ca.key_algorithm,
                &random16(random)?,
                &cfg.ca.key_label,
            )?;
            let ca_signer = TokenSigner::new(session, ca_key.clone())?;
            let profile = CaProfile {
                common_name: cfg.ca.common_name.clone(),
                organization: cfg.ca.organization.clone(),
                validity_years: cfg.ca.validity_years,
                crl_url: cfg.ca.crl_url.clone(),
            };
            let params =
                self_signed_ca_params(&profile, now, serial_from_random(random16(random)?))?;
            let ca_cert = self_signed_ca(&params, &ca_signer, &ca_key.spki_der)?;
            ca_signer
                .session()
                .write_certificate(&ca_key.id, &cfg.ca.key_label, &ca_cert)?;
            (ca_token, ca_signer, ca_cert)
        }
        CaSource::Existing(cert) => {
            let mut ca_token = module.find(&[TokenSelector::Label(cfg.ca.token_label.clone())])?;
            let session = ca_token.login_user(station_pin)?;
            let ca_signer =
                TokenSigner::by_label(session, &cfg.ca.key_label, cfg.ca.key_algorithm)?;
            // The key must be the certificate's (its public half), and it must be a CA.
            let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| {
                InitError::ExistingCa(format!("the CA certificate does not parse: {e}"))
            })?;
            if parsed.public_key().raw != ca_signer.public().spki_der.as_slice() {
                return Err(InitError::ExistingCa(format!(
                    "key {:?} on token {:?} is not the key of the given CA certificate",
                    cfg.ca.key_label, cfg.ca.token_label
                )));
            }
            if !parsed.is_ca() {
                return Err(InitError::ExistingCa(
                    "the given certificate is not a CA certificate".into(),
                ));
            }
            (ca_token, ca_signer, cert.to_vec())
        }
    };
    write_file(&cfg.path(&cfg.ca.certificate), &certificate_pem(&ca_cert))?;

    // Seal maker: its own key on the CA token, certificate issued by the CA. An existing CA
    // token may already hold one (another station of the same CA): it is reused when its
    // certificate was issued by this CA, never duplicated.
    let existing_maker = ca_signer
        .session()
        .find_private_key_by_label(&cfg.seal.maker_key_label)?
        .map(|_| {
            ca_signer
                .session()
                .certificate_by_label(&cfg.seal.maker_key_label)
        })
        .transpose()?
        .flatten();
    let maker_cert = match existing_maker {
        Some(cert) => {
            let issued_here = x509_parser::parse_x509_certificate(&cert)
                .ok()
                .zip(x509_parser::parse_x509_certificate(&ca_cert).ok())
                .is_some_and(|((_, m), (_, c))| {
                    m.issuer().as_raw() == c.subject().as_raw()
                        && crate::x509::verify_signed_by(&m, c.public_key()).is_ok()
                });
            if !issued_here {
                return Err(InitError::ExistingCa(format!(
                    "the CA token already holds a key {:?} whose certificate this CA did not issue; \
                     choose another seal.maker_key_label",
                    cfg.seal.maker_key_label
                )));
            }
            cert
        }
        None => {
            let maker_key = ca_signer.session().generate_key_pair(
                cfg.ca.key_algorithm,
                &random16(random)?,
                &cfg.seal.maker_key_label,
            )?;
            let maker_params = maker_cert_params(
                &cfg.station.id,
                &cfg.ca.organization,
                now,
                cfg.ca.validity_years,
                &serial_from_random(random16(random)?),
                &cfg.ca.crl_url,
            )?;
            let maker_cert =
                issue_seal_maker_cert(&maker_params, &maker_key.spki_der, &ca_cert, &ca_signer)?;
            ca_signer.session().write_certificate(
                &maker_key.id,
                &cfg.seal.maker_key_label,
                &maker_cert,
            )?;
            maker_cert
        }
    };
    write_file(
        &cfg.path(&cfg.seal.maker_certificate),
        &certificate_pem(&maker_cert),
    )?;
    // The delegated OCSP signer, on the CA token too, in the CA's algorithm.
    let ocsp_signer = issue_ocsp_signer(cfg, &ca_signer, &ca_cert, now, random)?;
    write_signer_file(cfg, &ocsp_signer.cert_der)?;
    let ocsp_signer = Some(ocsp_signer);
    // The audit anchor key in the CA's algorithm: for an SM2 CA an SM2 key on the CA token (the
    // vault token, SoftHSM, has no SM2); otherwise the vault's ECDSA P-256 key, below.
    let sm2_anchor = if cfg.ca.key_algorithm == crate::domain::KeyAlgorithm::Sm2 {
        let key = ca_signer.session().find_or_generate_key_pair(
            crate::domain::KeyAlgorithm::Sm2,
            &random16(random)?,
            crate::token::vault::ANCHOR_KEY,
        )?;
        Some(key.spki_der)
    } else {
        None
    };
    drop(ca_signer);

    // Vault token: derivation, sealing and receipt keys.
    let mut vault_token = new_station_token(
        modules.vault,
        &cfg.vault.token_label,
        "vault",
        so_pin,
        station_pin,
    )?;
    let vault = Vault::open(&mut vault_token, station_pin)?;
    vault.create_keys()?;
    let audit_anchor_spki = hex::encode(match sm2_anchor {
        Some(spki) => spki,
        None => vault.anchor_public_key()?,
    });
    drop(vault);

    ca_token.refresh()?;
    let summary = crate::ca::issuance::cert_summary(&ca_cert)?;
    Ok((
        MaterialSummary {
            material: crate::audit::event::StationInitialized {
                ca_token_serial: ca_token.info().serial.clone(),
                vault_token_serial: vault_token.info().serial.clone(),
                ca_fingerprint: summary.sha256_fingerprint,
                ca_subject: summary.subject,
                seal_maker_fingerprint: crate::x509::sha256_fingerprint(&maker_cert),
                audit_anchor_spki,
            },
            ocsp_signer_fingerprint: ocsp_signer
                .as_ref()
                .map(|s| crate::x509::sha256_fingerprint(&s.cert_der)),
            ocsp_signer,
        },
        ca_cert,
    ))
}
