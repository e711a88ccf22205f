//! Inspecting seals (`keystation seal verify`, `seal show`): a seal file or the seals on a token,
//! each verified and described field by field.
//!
//! With a station, a seal is judged as the station sees it, its revocations included
//! ([`Station::verify_seal`]); without one (`seal verify FILE --ca CA.pem`), against the CA
//! alone at the system clock.

use super::Station;
use super::hsm::{HsmError, blocking, read_certificate};
use super::input_file::{InputFileError, read_bounded};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::Pin;
use crate::seal::{
    MAX_SEAL_FILE_BYTES, SEAL_APPLICATION, SealReport, SesCertList, generalized_time_to_offset,
    verify_seal,
};
use crate::store::StoreError;
use crate::token::{Pkcs11Module, TokenError, TokenSelector};
use std::path::{Path, PathBuf};

/// Why seals could not be inspected (a seal that fails its checks is not an error: see
/// [`SealInspection::is_valid`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealInspectionError {
    /// The seal file cannot be read.
    #[error("cannot read {path}: {source}")]
    SealFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: InputFileError,
    },
    /// No CA certificate to verify against.
    #[error("no CA certificate: give --ca CA.pem or --config station.toml")]
    NoCa,
    /// The CA certificate file is unusable.
    #[error(transparent)]
    CaFile(HsmError),
    /// The token could not be read.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The station's revocations could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One seal, verified.
#[derive(Debug, Clone)]
pub struct SealInspection {
    /// The seal object's label on its token (`seal show`).
    pub label: Option<String>,
    /// The seal's DER.
    pub der: Vec<u8>,
    /// The verdict of each check.
    pub report: SealReport,
}

impl SealInspection {
    /// True when every check passed.
    pub fn is_valid(&self) -> bool {
        self.report.is_valid()
    }

    /// Names of the failed checks.
    pub fn failed(&self) -> Vec<&'static str> {
        self.report.failed()
    }

    /// The seal picture, when the seal parsed.
    pub fn picture(&self) -> Option<&[u8]> {
        self.report
            .seal
            .as_ref()
            .map(|s| s.e_seal_info.picture.data.as_bytes())
    }

    /// Every field of the seal and every check, as `--json` prints them:
    /// `{"valid", "fields", "checks"}` (and `"label"` for a seal read off a token).
    pub fn describe(&self) -> serde_json::Value {
        let mut v = describe(&self.report);
        if let Some(label) = &self.label {
            v["label"] = serde_json::Value::String(label.clone());
        }
        v
    }
}

/// Verifies the seal file `file` against `ca` (default: the station's CA certificate) and, with
/// `token`, against the certificate on that token.
pub async fn verify_seal_file(
    station: Option<&Station>,
    file: &Path,
    ca: Option<&Path>,
    token: Option<&str>,
) -> Result<SealInspection, SealInspectionError> {
    let cfg = station.map(|s| s.config());
    let der = read_bounded(file, MAX_SEAL_FILE_BYTES).map_err(|source| {
        SealInspectionError::SealFile {
            path: file.to_path_buf(),
            source,
        }
    })?;
    let ca_path = match (ca, cfg) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(c)) => c.path(&c.ca.certificate),
        (None, None) => return Err(SealInspectionError::NoCa),
    };
    let ca_der = read_certificate(&ca_path).map_err(SealInspectionError::CaFile)?;
    let token_cert = match token {
        Some(sel) => Some(token_certificate(cfg, sel)?),
        None => None,
    };
    let report = match station {
        Some(st) => st.verify_seal(&der, &ca_der, token_cert.as_deref()).await?,
        None => verify_seal(&der, &ca_der, token_cert.as_deref(), SystemClock.now()),
    };
    Ok(SealInspection {
        label: None,
        der,
        report,
    })
}

impl Station {
    /// The seals on `token` (logged in with its user `pin`), each verified against the station's
    /// CA and the certificate on the token.
    pub async fn token_seals(
        &self,
        token: &str,
        pin: &Pin,
    ) -> Result<Vec<SealInspection>, SealInspectionError> {
        let ca_der = read_certificate(&self.config.path(&self.config.ca.certificate))
            .map_err(SealInspectionError::CaFile)?;
        let cfg = &self.config;
        let (cert, seals) = blocking(|| -> Result<_, TokenError> {
            let module = pkcs11_module(Some(cfg))?;
            let mut t = module.find(&TokenSelector::either(token))?;
            let label = t.info().label.clone();
            let s = t.login_user(pin)?;
            let cert = s.certificate_by_label(&label)?.unwrap_or_default();
            Ok((cert, s.data_objects(SEAL_APPLICATION)?))
        })?;
        let mut out = Vec::with_capacity(seals.len());
        for (label, der) in seals {
            let report = self.verify_seal(&der, &ca_der, Some(&cert)).await?;
            out.push(SealInspection {
                label: Some(label),
                der,
                report,
            });
        }
        Ok(out)
    }
}

fn pkcs11_module(cfg: Option<&Config>) -> Result<Pkcs11Module, TokenError> {
    Pkcs11Module::load(cfg.and_then(|c| c.pkcs11.module.as_deref()))
}

/// The certificate on a token (public: no login needed).
fn token_certificate(cfg: Option<&Config>, sel: &str) -> Result<Vec<u8>, TokenError> {
    blocking(|| {
        let module = pkcs11_module(cfg)?;
        let mut t = module.find(&TokenSelector::either(sel))?;
        let label = t.info().label.clone();
        let s = t.open()?;
        s.certificate_by_label(&label)?
            .ok_or_else(|| TokenError::Unexpected {
                token: s.name(),
                what: "no certificate on the token".into(),
            })
    })
}

fn describe(report: &SealReport) -> serde_json::Value {
    let fields = report.seal.as_ref().map(|s| {
        let info = &s.e_seal_info;
        let p = &info.property;
        let certs: Vec<String> = match &p.cert_list {
            SesCertList::Certs(list) => list
                .iter()
                .map(|c| {
                    x509_parser::parse_x509_certificate(c.as_bytes())
                        .map(|(_, x)| x.subject().to_string())
                        .unwrap_or_else(|_| "(unparsable certificate)".into())
                })
                .collect(),
            SesCertList::CertDigestList(list) => {
                list.iter().map(|d| format!("digest {}", d.digest_type)).collect()
            }
        };
        let t = |g: &der::asn1::GeneralizedTime| {
            generalized_time_to_offset(g)
                .map(crate::clock::format_utc)
                .unwrap_or_default()
        };
        let maker = x509_parser::parse_x509_certificate(s.cert.as_bytes())
            .map(|(_, x)| x.subject().to_string())
            .unwrap_or_default();
        serde_json::json!({
            "header": {"id": info.header.id.to_string(), "version": info.header.version, "vid": info.header.vid.to_string()},
            "es_id": info.es_id.to_string(),
            "type": p.seal_type,
            "name": p.name,
            "cert_list_type": p.cert_list.cert_list_type(),
            "cert_list": certs,
            "create_date": t(&p.create_date),
            "valid_start": t(&p.valid_start),
            "valid_end": t(&p.valid_end),
            "picture": {"type": info.picture.picture_type.to_string(), "bytes": info.picture.data.as_bytes().len(),
                        "width_mm": info.picture.width, "height_mm": info.picture.height},
            "maker_certificate": maker,
            "sign_alg": s.sign_alg_id.to_string(),
            "ext_datas": info.ext_datas.as_ref().map(|e| e.len()).unwrap_or(0),
        })
    });
    serde_json::json!({
        "valid": report.is_valid(),
        "fields": fields,
        "checks": report.checks.iter().map(|c| serde_json::json!({"name": c.name, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
    })
}
