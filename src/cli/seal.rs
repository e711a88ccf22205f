//! `keystation seal ...` handlers: read seals off a token, verify seal files (through the
//! station when there is one, so that its revocations count).

use super::error::io_error;
use super::opts::SealCmd;
use super::{CliError, output};
use crate::domain::Pin;
use crate::station::Station;
use crate::station::error_code as ec;
use crate::station::seal_inspection::{SealInspection, verify_seal_file};
use std::path::Path;

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

fn export_picture(seal: &SealInspection, path: &Path) -> Result<(), CliError> {
    let picture = seal
        .picture()
        .ok_or_else(|| CliError::usage("the seal does not parse: no picture to export"))?;
    std::fs::write(path, picture).map_err(|e| io_error(format!("writing {}", path.display()), e))
}

pub(super) async fn run(
    station: Option<&Station>,
    cmd: SealCmd,
    json: bool,
) -> Result<(), CliError> {
    match cmd {
        SealCmd::Verify {
            file,
            ca,
            token,
            export_picture: picture,
        } => {
            let seal = verify_seal_file(station, &file, ca.as_deref(), token.as_deref()).await?;
            if let Some(p) = &picture {
                export_picture(&seal, p)?;
            }
            let v = seal.describe();
            if json {
                output::json(&v)?;
            } else {
                print_human(&file.display().to_string(), &v);
            }
            if seal.is_valid() {
                Ok(())
            } else {
                Err(CliError::verdict(
                    ec::SEAL_INVALID,
                    format!(
                        "seal {} is NOT valid: failed {}",
                        file.display(),
                        seal.failed().join(", ")
                    ),
                ))
            }
        }
        SealCmd::Show {
            token,
            pin_file,
            export_dir,
        } => {
            let station = station.ok_or_else(|| CliError::usage("seal show needs --config"))?;
            let what = format!("user PIN of token {token}");
            let pin = Pin::from_secret(match &pin_file {
                Some(p) => super::pin_input::read_file(p, &what)?,
                None => super::pin_input::prompt(&what, "--pin-file FILE")?,
            });
            let seals = station.token_seals(&token, &pin).await?;
            let mut out = Vec::new();
            let mut failed = Vec::new();
            for seal in &seals {
                let label = seal.label.as_deref().unwrap_or_default();
                if !seal.is_valid() {
                    failed.push(format!("{label} failed {}", seal.failed().join(", ")));
                }
                if let Some(dir) = &export_dir {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
                    let base = label.replace(':', "_");
                    let der = dir.join(format!("{base}.der"));
                    std::fs::write(&der, &seal.der)
                        .map_err(|e| io_error(format!("writing {}", der.display()), e))?;
                    export_picture(seal, &dir.join(format!("{base}.png")))?;
                }
                out.push(seal.describe());
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
                Err(CliError::verdict(
                    ec::SEAL_INVALID,
                    format!(
                        "a seal on token {token} is NOT valid: {}",
                        failed.join("; ")
                    ),
                ))
            }
        }
    }
}
