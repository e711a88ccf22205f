//! `keystation init --dir DIR`: takes the station PIN and the SO PIN (files, prompts or the
//! generator) and has the station made ([`crate::station::setup`]), then says what was made and
//! which demonstration values remain. On a database that already holds an installation the
//! station joins it instead ([`crate::station::join`]): it takes only the installation's station
//! PIN, and needs the installation's HSM (`--softhsm2-conf`, `--pkcs11-module`).

use super::opts::InitArgs;
use super::{CliError, output, pin_input};
use crate::config::redacted_url;
use crate::domain::{Pin, SoPin};
use crate::station::OperationContext;
use crate::station::join::{installation_at, join_station};
use crate::station::setup::{
    Created, DEMO_MARK, NewStation, SetupError, check_free, create_station, generated_pins,
};

fn check_len(what: &str, s: &str) -> Result<(), CliError> {
    if s.chars().count() < 8 || s.len() > 64 {
        return Err(CliError::usage(format!(
            "{what} must have 8 to 64 characters"
        )));
    }
    Ok(())
}

/// Station PIN and SO PIN from files, prompts, or the generator.
fn station_pins(args: &InitArgs) -> Result<(Pin, SoPin), CliError> {
    if args.generate_pins {
        return Ok(generated_pins());
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

pub(super) async fn run(
    args: &InitArgs,
    json: bool,
    operation: &OperationContext,
) -> Result<(), CliError> {
    let Created {
        config_path,
        config: cfg,
        summary,
        demo_values,
        joined,
        crl,
    } = create(args, operation).await?;
    if !demo_values.is_empty() {
        // A plain init makes a working station with demonstration names and a demonstration
        // bank account: say so, every time, rather than let them reach production unnoticed.
        eprintln!(
            "warning: {} holds demonstration values (marked \"{DEMO_MARK}\"): {}",
            config_path.display(),
            demo_values.join(", ")
        );
        // A joining station's CA is the installation's: its names are not this init's to give.
        if !joined
            && demo_values
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
    // A new installation's first administrator (a joining station's operators are the
    // installation's already).
    let admin_credential = (!joined).then(|| {
        crate::station::setup::first_administrator_credential(
            config_path.parent().unwrap_or(std::path::Path::new(".")),
        )
    });
    if json {
        return output::json(&serde_json::json!({
            "config": config_path, "database": redacted_url(&cfg.database_url()), "material": summary,
            "ca_certificate": cfg.path(&cfg.ca.certificate), "demo_values": demo_values,
            "joined": joined, "station_id": cfg.station.id, "crl": crl,
            "admin_credential": admin_credential,
        }))
        .and_then(|()| super::ca::after_change(crl.as_ref(), "the station is made", json));
    }
    if joined {
        println!(
            "station {} joined the installation in {}: {}",
            cfg.station.id,
            redacted_url(&cfg.database_url()),
            config_path.display()
        );
    } else {
        println!("station created: {}", config_path.display());
    }
    println!(
        "CA certificate:  {} ({})",
        cfg.path(&cfg.ca.certificate).display(),
        summary.material.ca_subject
    );
    println!(
        "                 sha256 {}",
        summary.material.ca_fingerprint
    );
    println!(
        "CA token {} / vault token {}",
        summary.material.ca_token_serial, summary.material.vault_token_serial
    );
    if let Some(cred) = &admin_credential {
        println!(
            "administrator:   {} (credential {}, mode 0600): add operators with \
             keystation --credential {} operator add NAME --role ROLES --credential-out FILE",
            crate::station::operators::FIRST_ADMINISTRATOR,
            cred.display(),
            cred.display()
        );
    }
    println!(
        "next: keystation --config {} order import FILE.json",
        config_path.display()
    );
    super::ca::after_change(crl.as_ref(), "the station is made", json)
}

/// Creates a station (see `station::setup`); `init` and `demo` share it.
pub(super) async fn create(
    args: &InitArgs,
    operation: &OperationContext,
) -> Result<Created, CliError> {
    // Before asking for PINs: a directory that holds a station is refused at once.
    check_free(&args.dir)?;
    let joining = match &args.database_url {
        Some(url) => installation_at(url).await?,
        None => false,
    };
    let req = NewStation {
        dir: args.dir.clone(),
        station_id: args.station_id.clone(),
        database_url: args.database_url.clone(),
        ca_organization: args.ca_organization.clone(),
        ca_common_name: args.ca_common_name.clone(),
        ca_algorithm: args.ca_algorithm.clone(),
        product_algorithm: args.key_algorithm.clone(),
        pkcs11_module: args.pkcs11_module.clone(),
        existing_ca_cert: args.existing_ca_cert.clone(),
        ca_token_label: args.ca_token_label.clone(),
        ca_key_label: args.ca_key_label.clone(),
        softhsm2_conf: args.softhsm2_conf.clone(),
    };
    if joining {
        if args.generate_pins || args.existing_ca_cert.is_some() {
            return Err(CliError::usage(
                "this database holds an installation: the new station joins it with the \
                 installation's station PIN (--pin-file FILE, or the prompt); --generate-pins and \
                 --existing-ca-cert make a new installation",
            ));
        }
        let pin = match &args.pin_file {
            Some(p) => pin_input::read_file(p, "station PIN")?,
            None => pin_input::prompt_twice(
                "station PIN of the installation (user PIN of its CA and vault tokens)",
                "--pin-file FILE",
            )?,
        };
        return join_station(&req, Pin::from_secret(pin), operation)
            .await
            .map_err(CliError::from);
    }
    let (station_pin, so_pin) = station_pins(args)?;
    create_station(&req, station_pin, so_pin, operation)
        .await
        .map_err(|e| match e {
            SetupError::Invalid(vs) => CliError::invalid("invalid value", vs),
            other => CliError::from(other),
        })
}
