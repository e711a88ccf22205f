//! `keystation init --dir DIR`: a new station directory and its HSM material.
//!
//! Order of work: everything is prepared and checked first, `station.toml` is written LAST, so a
//! failed init never leaves a directory that looks like a working station.

use super::opts::InitArgs;
use super::{CliError, output, pin_input};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, EXAMPLE};
use crate::domain::pin::{PinAlphabet, PinPolicy};
use crate::domain::{Pin, SoPin, Violation};
use crate::private_files;
use crate::station::hsm::{read_pin_file, write_secret_file};
use crate::station::init::create_station_material;
use crate::store::{Actor, AuditEntry, Store};
use crate::token::Pkcs11Module;
use anyhow::Context;
use std::os::unix::fs::PermissionsExt;
use zeroize::Zeroizing;

/// The USB key catalogue copied into a new station.
const USB_TOKENS: &str = include_str!("../../hsm-config/usb-tokens.toml");

fn check_len(what: &str, s: &str) -> Result<(), CliError> {
    if s.chars().count() < 8 || s.len() > 64 {
        return Err(CliError::Usage(format!(
            "{what} must have 8 to 64 characters"
        )));
    }
    Ok(())
}

/// Station PIN and SO PIN from files, prompts, or the generator.
fn station_pins(args: &InitArgs) -> Result<(Pin, SoPin), CliError> {
    if args.generate_pins {
        let policy = PinPolicy {
            length: 16,
            alphabet: PinAlphabet::Unambiguous,
        };
        let mut rng = rand::TryRngCore::unwrap_err(rand::rngs::OsRng);
        let user = Pin::generate(&policy, &mut rng);
        let so = Pin::generate(&policy, &mut rng);
        return Ok((
            user,
            SoPin::from_secret(Zeroizing::new(so.expose_secret().to_string())),
        ));
    }
    let user = match &args.pin_file {
        Some(p) => pin_input::read_file(p, "station PIN")?,
        None => pin_input::prompt_twice(
            "station PIN (user PIN of the CA and vault tokens)",
            "--pin-file FILE and --so-pin-file FILE, or --generate-pins",
        )?,
    };
    let so = match &args.so_pin_file {
        Some(p) => pin_input::read_file(p, "SO PIN")?,
        None => pin_input::prompt_twice(
            "SO PIN of the CA and vault tokens",
            "--so-pin-file FILE, or --generate-pins",
        )?,
    };
    check_len("the station PIN", &user)?;
    check_len("the SO PIN", &so)?;
    Ok((Pin::from_secret(user), SoPin::from_secret(so)))
}

/// What `init` created.
pub(super) struct Created {
    pub config_path: std::path::PathBuf,
    pub config: Config,
    pub summary: crate::station::init::MaterialSummary,
    /// Keys of `station.toml` still holding a demonstration value ([`demo_values`]).
    pub demo_values: Vec<String>,
}

/// The comment that marks a demonstration value in `station.example.toml`.
const DEMO_MARK: &str = "# DEMO";

/// `text` with the first `key = ...` line (a demonstration value and its comment) replaced by
/// `key = "value"`, the value written as a TOML string.
fn set_value(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key} =");
    let mut done = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if !done && line.starts_with(&prefix) {
            done = true;
            out.push_str(&format!(
                "{key} = {}",
                toml::Value::String(value.to_string())
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The dotted keys of `text` whose line still carries the [`DEMO_MARK`].
fn demo_values(text: &str) -> Vec<String> {
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

pub(super) async fn run(args: &InitArgs, json: bool) -> Result<(), CliError> {
    let Created {
        config_path,
        config: cfg,
        summary,
        demo_values,
    } = create(args).await?;
    if !demo_values.is_empty() {
        // A plain init makes a working station with demonstration names and a demonstration
        // bank account: say so, every time, rather than let them reach production unnoticed.
        eprintln!(
            "warning: {} holds demonstration values (marked \"{DEMO_MARK}\"): {}",
            config_path.display(),
            demo_values.join(", ")
        );
        if demo_values
            .iter()
            .any(|k| k == "ca.organization" || k == "ca.common_name")
        {
            eprintln!(
                "warning: the CA certificate is named \"{}\"; for a real CA run init again with \
                 --ca-organization NAME --ca-common-name NAME (the name is in the certificate)",
                cfg.ca.organization
            );
        }
        eprintln!("warning: replace the others in station.toml before production");
    }
    if json {
        return output::json(&serde_json::json!({
            "config": config_path, "database": cfg.database_url(), "material": summary,
            "ca_certificate": cfg.path(&cfg.ca.certificate), "demo_values": demo_values,
        }));
    }
    println!("station created: {}", config_path.display());
    println!(
        "CA certificate:  {} ({})",
        cfg.path(&cfg.ca.certificate).display(),
        summary.ca_subject
    );
    println!("                 sha256 {}", summary.ca_fingerprint);
    println!(
        "CA token {} / vault token {}",
        summary.ca_token_serial, summary.vault_token_serial
    );
    println!(
        "next: keystation --config {} order import FILE.json",
        config_path.display()
    );
    Ok(())
}

/// Creates a station (see the module docs); `init` and `demo` share it.
pub(super) async fn create(args: &InitArgs) -> Result<Created, CliError> {
    let dir = &args.dir;
    let config_path = dir.join(crate::config::FILE_NAME);
    if config_path.exists() {
        return Err(CliError::Usage(format!(
            "{} already exists: this directory holds a station (use --config {})",
            config_path.display(),
            config_path.display()
        )));
    }
    let (station_pin, so_pin) = station_pins(args)?;
    let mut text = EXAMPLE.replace(
        "id = \"station-01\"",
        &format!("id = {:?}", args.station_id),
    );
    if let Some(url) = &args.database_url {
        text = text.replace(
            "url = \"sqlite://station.db?mode=rwc\"",
            &format!("url = {url:?}"),
        );
    }
    for (key, option, value) in [
        ("common_name", "--ca-common-name", &args.ca_common_name),
        ("organization", "--ca-organization", &args.ca_organization),
    ] {
        if let Some(v) = value {
            // The CA's names go into its certificate: the intake's rules for names apply.
            let name = crate::domain::normalize::text(v);
            crate::domain::text::check(&name, crate::domain::text::TextKind::Name).map_err(
                |p| {
                    CliError::Invalid(vec![Violation {
                        field: option.into(),
                        code: p.code,
                        message: p.message,
                        severity: crate::domain::Severity::Error,
                    }])
                },
            )?;
            text = set_value(&text, key, &name);
        }
    }
    if let Some(alg) = &args.ca_algorithm {
        text = text.replace(
            "key_algorithm = \"ecdsa-p256\"                   # or \"rsa-2048\"",
            &format!("key_algorithm = {alg:?}"),
        );
    }
    for (key, value) in [
        (
            "token_label = \"keystation-ca\"",
            args.ca_token_label.as_deref(),
        ),
        ("key_label = \"issuing-ca\"", args.ca_key_label.as_deref()),
    ] {
        if let Some(v) = value {
            let name = key.split(' ').next().unwrap_or(key);
            text = text.replacen(key, &format!("{name} = {v:?}"), 1);
        }
    }
    let existing_ca = match &args.existing_ca_cert {
        Some(p) => Some(
            crate::station::hsm::read_certificate(p).map_err(|e| CliError::Usage(e.to_string()))?,
        ),
        None => None,
    };
    let dir_abs =
        std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    // Validate before writing: a bad --station-id or URL must not leave a half-made station.
    let cfg = Config::parse(&text, &dir_abs).map_err(|e| CliError::Usage(e.to_string()))?;
    // The data directory holds personal data and secrets: 0700, also when it existed already
    // (the operator named it as the station's).
    private_files::create_dir(&dir_abs)
        .and_then(|()| std::fs::set_permissions(&dir_abs, std::fs::Permissions::from_mode(0o700)))
        .with_context(|| format!("creating {}", dir_abs.display()))?;
    let tokens = dir_abs.join("tokens");
    private_files::create_dir(&tokens).with_context(|| format!("creating {}", tokens.display()))?;
    private_files::write_file(
        &dir_abs.join("softhsm2.conf"),
        format!(
            "# SoftHSM2 configuration of this station (SOFTHSM2_CONF={}/softhsm2.conf)\n\
             directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir_abs.display(),
            tokens.display()
        )
        .as_bytes(),
    )
    .context("writing softhsm2.conf")?;
    let usb = cfg.path(&cfg.pkcs11.usb_tokens);
    if !usb.exists() {
        private_files::write_file(&usb, USB_TOKENS.as_bytes())
            .with_context(|| format!("writing {}", usb.display()))?;
    }
    let pin_path = cfg.path(&cfg.pkcs11.pin_file);
    if pin_path.exists() {
        return Err(CliError::Usage(format!(
            "{} exists already; remove it or choose another directory",
            pin_path.display()
        )));
    }
    // The station PIN is stored in the station's PIN file (0600 in a 0700 directory) — see the
    // README's "Secrets" section for why that is where an HSM-backed service keeps it.
    write_secret_file(&pin_path, station_pin.expose_secret())
        .with_context(|| format!("writing {}", pin_path.display()))?;
    // Read back through the same checks the station applies at every start.
    let station_pin = read_pin_file(&pin_path).map_err(|e| CliError::Failure(e.into()))?;

    let store = Store::connect(&cfg.database_url())
        .await
        .context("creating the database")?;
    let clock = SystemClock;
    let now = clock.now();
    let (summary, _) = tokio::task::block_in_place(|| {
        let module = Pkcs11Module::load(cfg.pkcs11.module.as_deref())?;
        let source = match &existing_ca {
            Some(der) => crate::station::init::CaSource::Existing(der),
            None => crate::station::init::CaSource::Create,
        };
        create_station_material(&cfg, &module, &station_pin, &so_pin, now, source)
            .map_err(anyhow::Error::from)
    })
    .map_err(CliError::Failure)?;
    drop(so_pin);

    let actor = Actor {
        name: format!("station:{}", cfg.station.id),
        operation_id: crate::station::new_operation_id(),
    };
    let mut tx = store.begin_write(now).await?;
    tx.put_material("ca_fingerprint", &summary.ca_fingerprint)
        .await?;
    tx.put_material("ca_token_serial", &summary.ca_token_serial)
        .await?;
    tx.put_material("vault_token_serial", &summary.vault_token_serial)
        .await?;
    tx.put_material("seal_maker_fingerprint", &summary.seal_maker_fingerprint)
        .await?;
    tx.put_material("audit_anchor_spki", &summary.audit_anchor_spki)
        .await?;
    tx.audit(
        &actor,
        AuditEntry {
            action: "station.initialized".into(),
            token_serial: Some(summary.ca_token_serial.clone()),
            details: serde_json::to_value(&summary).map_err(|e| CliError::Failure(e.into()))?,
            ..AuditEntry::default()
        },
    )
    .await?;
    tx.commit().await?;
    // The first anchor covers the station's birth.
    let station = crate::station::Station {
        config: std::sync::Arc::new(cfg.clone()),
        store: store.clone(),
        clock: std::sync::Arc::new(SystemClock),
    };
    let ca_der = crate::station::hsm::read_certificate(&cfg.path(&cfg.ca.certificate))
        .map_err(|e| CliError::Failure(e.into()))?;
    let hsm = tokio::task::block_in_place(|| -> Result<_, crate::token::TokenError> {
        Ok(crate::station::hsm::Hsm::from_parts(
            Pkcs11Module::load(cfg.pkcs11.module.as_deref())?,
            station_pin,
            std::sync::Arc::new(cfg.clone()),
            ca_der,
        ))
    })
    .map_err(|e| CliError::Failure(e.into()))?;
    station
        .anchor_audit(&hsm)
        .await
        .map_err(|e| CliError::Failure(e.into()))?;
    store.close().await;

    private_files::write_file(&config_path, text.as_bytes())
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(Created {
        config_path,
        config: cfg,
        summary,
        demo_values: demo_values(&text),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_marks_its_demo_values_and_set_value_clears_the_mark() {
        let all = demo_values(EXAMPLE);
        for key in [
            "ca.common_name",
            "ca.organization",
            "delivery.bank.debtor_account",
            "delivery.sms.sign_name",
        ] {
            assert!(all.iter().any(|k| k == key), "{key} not marked: {all:?}");
        }
        let named = set_value(EXAMPLE, "organization", "北京某某CA \"有限\"公司");
        let left = demo_values(&named);
        assert!(!left.iter().any(|k| k == "ca.organization"), "{left:?}");
        assert_eq!(left.len(), all.len() - 1);
        let cfg = Config::parse(&named, std::path::Path::new("/tmp")).unwrap();
        assert_eq!(cfg.ca.organization, "北京某某CA \"有限\"公司");
    }
}
