//! The station's own tables of `station.toml` — `[station]`, `[database]`, `[pkcs11]`, `[ca]`,
//! `[vault]`, `[product]`, `[seal]`, `[crl]` — and the default of every key that has one.

use crate::domain::KeyAlgorithm;
use serde::Deserialize;
use std::path::PathBuf;

/// `[station]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationSection {
    /// Name of this station in audit records and job leases.
    pub id: String,
    /// Data directory; relative paths elsewhere are resolved against it.
    #[serde(default = "dot")]
    pub data_dir: PathBuf,
    /// Seconds a job's lease holds unless renewed (renewed every third of it while the job
    /// runs): how long a crashed holder on another host keeps its order from the others.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

fn default_lease_secs() -> u64 {
    30
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://station.db` (relative to the data dir) or `postgres://...`.
    pub url: String,
}

/// `[pkcs11]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// Path of the PKCS#11 module; default: SoftHSM2 in its usual Debian locations.
    pub module: Option<PathBuf>,
    /// SoftHSM only: its configuration file (exported as `SOFTHSM2_CONF` for the module).
    pub softhsm2_conf: Option<PathBuf>,
    /// The project's test token only (`tokens/kstoken`, the SM2 demo and tests): its
    /// configuration file (exported as `KSTOKEN_CONF` for the module).
    pub kstoken_conf: Option<PathBuf>,
    /// File holding the user PIN of the CA and vault tokens (mode 0600, see README "Secrets").
    #[serde(default = "default_pin_file")]
    pub pin_file: PathBuf,
    /// USB key models (vendor/product id -> model, module).
    #[serde(default = "default_usb_tokens")]
    pub usb_tokens: PathBuf,
}

impl Default for Pkcs11Section {
    fn default() -> Self {
        Pkcs11Section {
            module: None,
            softhsm2_conf: None,
            kstoken_conf: None,
            pin_file: default_pin_file(),
            usb_tokens: default_usb_tokens(),
        }
    }
}

/// `[ca]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Label of the token holding the CA key.
    #[serde(default = "default_ca_token")]
    pub token_label: String,
    /// Label (and CKA_LABEL) of the CA private key on that token.
    #[serde(default = "default_ca_key")]
    pub key_label: String,
    /// Algorithm of a CA key created by `init`.
    #[serde(default = "default_alg")]
    pub key_algorithm: KeyAlgorithm,
    /// CA certificate (PEM), written by `init` or provided for an existing CA.
    #[serde(default = "default_ca_cert")]
    pub certificate: PathBuf,
    /// Subject CN of a CA created by `init`.
    #[serde(default = "default_ca_cn")]
    pub common_name: String,
    /// Subject O of a CA created by `init`.
    #[serde(default = "default_ca_org")]
    pub organization: String,
    /// CRL distribution point put into issued certificates.
    #[serde(default = "default_crl_url")]
    pub crl_url: String,
    /// Validity of a CA certificate created by `init`, in years.
    #[serde(default = "default_ca_years")]
    pub validity_years: u8,
}

impl Default for CaSection {
    fn default() -> Self {
        CaSection {
            token_label: default_ca_token(),
            key_label: default_ca_key(),
            key_algorithm: default_alg(),
            certificate: default_ca_cert(),
            common_name: default_ca_cn(),
            organization: default_ca_org(),
            crl_url: default_crl_url(),
            validity_years: default_ca_years(),
        }
    }
}

/// `[vault]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Label of the vault token.
    #[serde(default = "default_vault_token")]
    pub token_label: String,
    /// PKCS#11 module of the vault token when it is not `pkcs11.module`: the vault needs
    /// HMAC, AES-GCM and an ECDSA key, which an SM2 module (the CA's and the customers') may
    /// not offer. Default: `pkcs11.module`.
    pub module: Option<PathBuf>,
}

impl Default for VaultSection {
    fn default() -> Self {
        VaultSection {
            token_label: default_vault_token(),
            module: None,
        }
    }
}

/// `[product]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSection {
    /// Algorithm of the company key pair generated on the USB key.
    #[serde(default = "default_alg")]
    pub key_algorithm: KeyAlgorithm,
    /// SM2 dual certificates (双证书): beside the signing certificate, an encryption key pair
    /// made by the station (escrowed, sealed by the vault), enveloped onto the token, and its
    /// encryption certificate. SM2 only; default false.
    #[serde(default)]
    pub dual_certificate: bool,
}

impl Default for ProductSection {
    fn default() -> Self {
        ProductSection {
            key_algorithm: default_alg(),
            dual_certificate: false,
        }
    }
}

/// `[seal]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealSection {
    /// `vid` of the SES_Header (IA5, identifies the seal system vendor).
    #[serde(default = "default_vid")]
    pub vendor_id: String,
    /// Label of the seal-maker key on the CA token.
    #[serde(default = "default_maker_key")]
    pub maker_key_label: String,
    /// The seal maker's certificate (PEM), issued by the station's CA at `init`.
    #[serde(default = "default_maker_cert")]
    pub maker_certificate: PathBuf,
    /// Printed size of the company seal, millimetres (42 for joint-stock / state-owned).
    #[serde(default = "default_company_mm")]
    pub company_mm: (u32, u32),
    /// Printed size of the legal representative's seal, millimetres.
    #[serde(default = "default_legal_rep_mm")]
    pub legal_rep_mm: (u32, u32),
}

impl Default for SealSection {
    fn default() -> Self {
        SealSection {
            vendor_id: default_vid(),
            maker_key_label: default_maker_key(),
            maker_certificate: default_maker_cert(),
            company_mm: default_company_mm(),
            legal_rep_mm: default_legal_rep_mm(),
        }
    }
}

/// `[crl]`: the CRLs of the issuing CA (see [`crate::domain::crl`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlSection {
    /// Publication directory: the CRL is written at the URL path of `[ca] crl_url` under it
    /// (`crl/unit-ca.crl`), world-readable, for the web server of the distribution point.
    #[serde(default = "default_crl_dir")]
    pub publish_dir: PathBuf,
    /// From thisUpdate to nextUpdate, in hours; a new CRL is issued when a quarter is left.
    #[serde(default = "default_crl_hours")]
    pub validity_hours: u32,
}

impl Default for CrlSection {
    fn default() -> Self {
        CrlSection {
            publish_dir: default_crl_dir(),
            validity_hours: default_crl_hours(),
        }
    }
}

fn default_crl_dir() -> PathBuf {
    PathBuf::from("crl")
}
fn default_crl_hours() -> u32 {
    24
}
fn default_vid() -> String {
    "KEYSTATION".into()
}
fn default_maker_key() -> String {
    "seal-maker".into()
}
fn default_maker_cert() -> PathBuf {
    PathBuf::from("ca/seal-maker.pem")
}
fn default_company_mm() -> (u32, u32) {
    (40, 40)
}
fn default_legal_rep_mm() -> (u32, u32) {
    (20, 20)
}

pub(super) fn dot() -> PathBuf {
    PathBuf::from(".")
}
fn default_pin_file() -> PathBuf {
    PathBuf::from("secrets/station-hsm.pin")
}
fn default_usb_tokens() -> PathBuf {
    PathBuf::from("usb-tokens.toml")
}
fn default_ca_token() -> String {
    "keystation-ca".into()
}
fn default_ca_key() -> String {
    "issuing-ca".into()
}
fn default_alg() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}
fn default_ca_cert() -> PathBuf {
    PathBuf::from("ca/ca.pem")
}
fn default_ca_cn() -> String {
    "keystation Demo Unit Certificate CA".into()
}
fn default_ca_org() -> String {
    "keystation Demo CA".into()
}
fn default_crl_url() -> String {
    "http://crl.keystation.invalid/unit-ca.crl".into()
}
fn default_ca_years() -> u8 {
    10
}
fn default_vault_token() -> String {
    "keystation-vault".into()
}

/// `[operator]`: who this process's commands act as (issue 17).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSection {
    /// The operator credential file commands use when `--credential` gives none (relative to the
    /// station directory); it must be the operator's own (mode 0600).
    #[serde(default)]
    pub credential_file: Option<PathBuf>,
    /// `[operator.os_users]`: OS login name -> operator name. A command run by a mapped login
    /// (the effective uid's name in the password database, never `$USER`) acts as that operator
    /// without a credential file; the installation's administrator keeps this file as sudoers
    /// is kept (writable by root alone).
    #[serde(default)]
    pub os_users: std::collections::BTreeMap<String, String>,
}
