//! `keystation seal ...` handlers: read seals off a token, verify seal files (through the
//! station when there is one, so that its revocations count).

use super::opts::SealCmd;
use super::{CliError, output};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::Pin;
use crate::seal::{
    MAX_SEAL_FILE_BYTES, SealReport, SesCertList, generalized_time_to_offset, verify_seal,
};
use crate::station::Station;
use crate::station::hsm::read_certificate;
use crate::station::input_file::read_bounded;
use crate::token::{Pkcs11Module, TokenSelector};
use std::path::{Path, PathBuf};

fn module(cfg: Option<&Config>) -> Result<Pkcs11Module, CliError> {
    Pkcs11Module::load(cfg.and_then(|c| c.pkcs11.module.as_deref()))
        .map_err(|e| CliError::Failure(e.into()))
}

fn ca_path(cfg: Option<&Config>, ca: Option<&Path>) -> Result<PathBuf, CliError> {
    match (ca, cfg) {
        (Some(p), _) => Ok(p.to_path_buf()),
        (None, Some(c)) => Ok(c.path(&c.ca.certificate)),
        (None, None) => Err(CliError::Usage(
            "no CA certificate: give --ca CA.pem or --config station.toml".into(),
        )),
    }
}

/// The certificate on a token (public: no login needed).
fn token_certificate(module: &Pkcs11Module, sel: &str) -> Result<Vec<u8>, CliError> {
    tokio::task::block_in_place(|| -> Result<Vec<u8>, crate::token::TokenError> {
        let mut t = module.find(&TokenSelector::either(sel))?;
        let label = t.info().label.clone();
        let s = t.open()?;
        s.certificate_by_label(&label)?
            .ok_or_else(|| crate::token::TokenError::Unexpected {
                token: s.name(),
                what: "no certificate on the token".into(),
            })
    })
    .map_err(|e| CliError::Failure(e.into()))
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

fn print_human(title: &str, v: &serde_json::Value) {
    println!("== {title}");
    if let Some(f) = v.get("fields").filter(|f| !f.is_null()) {
        for key in [
            "header",
            "es_id",
            "type",
            "name",
            "cert_list_type",
            "cert_list",
            "create_date",
            "valid_start",
            "valid_end",
            "picture",
            "maker_certificate",
            "sign_alg",
            "ext_datas",
        ] {
            println!("  {key:<18} {}", f[key]);
        }
    }
    if let Some(checks) = v["checks"].as_array() {
        for c in checks {
            let ok = c["ok"].as_bool().unwrap_or(false);
            println!(
                "  check {:<20} {} {}",
                c["name"].as_str().unwrap_or(""),
                if ok { "ok  " } else { "FAIL" },
                c["detail"].as_str().unwrap_or("")
            );
        }
    }
    println!(
        "  verdict            {}",
        if v["valid"].as_bool().unwrap_or(false) {
            "VALID"
        } else {
            "INVALID"
        }
    );
}

fn export_picture(report: &SealReport, path: &Path) -> Result<(), CliError> {
    let seal = report
        .seal
        .as_ref()
        .ok_or_else(|| CliError::Usage("the seal does not parse: no picture to export".into()))?;
    std::fs::write(path, seal.e_seal_info.picture.data.as_bytes())
        .map_err(|e| CliError::Failure(anyhow::anyhow!("writing {}: {e}", path.display())))
}

/// Verifies a seal: as the station sees it when there is one, else against the CA alone.
async fn verify(
    station: Option<&Station>,
    der: &[u8],
    ca_der: &[u8],
    token_cert: Option<&[u8]>,
) -> Result<SealReport, CliError> {
    match station {
        Some(st) => st
            .verify_seal(der, ca_der, token_cert)
            .await
            .map_err(|e| CliError::Failure(e.into())),
        None => Ok(verify_seal(der, ca_der, token_cert, SystemClock.now())),
    }
}

pub(super) async fn run(
    station: Option<&Station>,
    cmd: SealCmd,
    json: bool,
) -> Result<(), CliError> {
    let cfg = station.map(|s| &*s.config);
    match cmd {
        SealCmd::Verify {
            file,
            ca,
            token,
            export_picture: picture,
        } => {
            let der = read_bounded(&file, MAX_SEAL_FILE_BYTES)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let ca_der = read_certificate(&ca_path(cfg, ca.as_deref())?)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let token_cert = match &token {
                Some(sel) => Some(token_certificate(&module(cfg)?, sel)?),
                None => None,
            };
            let report = verify(station, &der, &ca_der, token_cert.as_deref()).await?;
            if let Some(p) = &picture {
                export_picture(&report, p)?;
            }
            let v = describe(&report);
            if json {
                output::json(&v)?;
            } else {
                print_human(&file.display().to_string(), &v);
            }
            if report.is_valid() {
                Ok(())
            } else {
                Err(CliError::Verdict(format!(
                    "seal {} is NOT valid: failed {}",
                    file.display(),
                    report.failed().join(", ")
                )))
            }
        }
        SealCmd::Show {
            token,
            pin_file,
            export_dir,
        } => {
            let cfg = cfg.ok_or_else(|| CliError::Usage("seal show needs --config".into()))?;
            let ca_der = read_certificate(&cfg.path(&cfg.ca.certificate))
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let what = format!("user PIN of token {token}");
            let pin = Pin::from_secret(match &pin_file {
                Some(p) => super::pin_input::read_file(p, &what)?,
                None => super::pin_input::prompt(&what, "--pin-file FILE")?,
            });
            let module = module(Some(cfg))?;
            /// The token's certificate and its seal objects (label, DER).
            type TokenSeals = (Vec<u8>, Vec<(String, Vec<u8>)>);
            let (cert, seals) =
                tokio::task::block_in_place(|| -> Result<TokenSeals, crate::token::TokenError> {
                    let mut t = module.find(&TokenSelector::either(&token))?;
                    let label = t.info().label.clone();
                    let s = t.login_user(&pin)?;
                    let cert = s.certificate_by_label(&label)?.unwrap_or_default();
                    Ok((cert, s.data_objects(crate::seal::SEAL_APPLICATION)?))
                })
                .map_err(|e| CliError::Failure(e.into()))?;
            let mut out = Vec::new();
            let mut failed = Vec::new();
            for (label, der) in &seals {
                let report = verify(station, der, &ca_der, Some(&cert)).await?;
                if !report.is_valid() {
                    failed.push(format!("{label} failed {}", report.failed().join(", ")));
                }
                if let Some(dir) = &export_dir {
                    std::fs::create_dir_all(dir).map_err(|e| CliError::Failure(e.into()))?;
                    let base = label.replace(':', "_");
                    std::fs::write(dir.join(format!("{base}.der")), der)
                        .map_err(|e| CliError::Failure(e.into()))?;
                    export_picture(&report, &dir.join(format!("{base}.png")))?;
                }
                let mut v = describe(&report);
                v["label"] = serde_json::Value::String(label.clone());
                out.push(v);
            }
            let all_valid = !seals.is_empty() && failed.is_empty();
            if json {
                output::json(
                    &serde_json::json!({"token": token, "seals": out, "valid": all_valid}),
                )?;
            } else {
                if out.is_empty() {
                    println!("token {token} holds no seals");
                }
                for v in &out {
                    print_human(v["label"].as_str().unwrap_or(""), v);
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(CliError::Verdict(format!(
                    "a seal on token {token} is NOT valid: {}",
                    failed.join("; ")
                )))
            }
        }
    }
}
