//! `keystation demo --dir DIR`: the main job, end to end, on embedded defaults.

use super::opts::{DemoArgs, InitArgs};
use super::{CliError, output};
use crate::config::Config;
use crate::station::crl::CrlOutcome;
use crate::station::demo::DemoOptions;
use crate::station::error_code as ec;
use crate::station::setup::claim_demo_dir;
use crate::station::{OperationContext, Station};
use std::sync::Arc;

/// The test token's module, built beside the keystation binary (`cargo build` puts
/// `libkstoken.so` in the same directory; a test build in its `deps/`).
fn test_token_module() -> Result<std::path::PathBuf, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| super::error::io_error("locating the keystation binary".into(), e))?;
    let dir = exe.parent().unwrap_or(std::path::Path::new("."));
    [dir.join("libkstoken.so"), dir.join("deps").join("libkstoken.so")]
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| {
            CliError::new(
                ec::PKCS11_MODULE,
                format!(
                    "--algorithm sm2 needs the test token libkstoken.so beside {} (cargo build -p kstoken)",
                    exe.display()
                ),
            )
        })
}

pub(super) async fn run(
    args: &DemoArgs,
    json: bool,
    operation: &OperationContext,
) -> Result<(), CliError> {
    if let (Some(n), Some(url)) = (args.stations, &args.database_url) {
        return super::demo_fleet::run(args, n, url, json, operation).await;
    }
    let dir = &args.dir;
    let config_path = dir.join(crate::config::FILE_NAME);
    let sm2 = args.algorithm.as_deref() == Some("sm2");
    if claim_demo_dir(dir)? {
        eprintln!("demo: continuing the demo station in {}", dir.display());
    } else {
        let pkcs11_module = if sm2 {
            Some(test_token_module()?)
        } else {
            None
        };
        eprintln!(
            "demo: creating a station in {} (SoftHSM tokens, SQLite, spool and bank directories)",
            dir.display()
        );
        let created = super::init::create(
            &InitArgs {
                dir: dir.clone(),
                station_id: "demo-station".into(),
                database_url: None,
                pin_file: None,
                so_pin_file: None,
                generate_pins: true,
                ca_organization: None,
                ca_common_name: None,
                ca_algorithm: args.algorithm.clone(),
                key_algorithm: args.algorithm.clone(),
                pkcs11_module,
                existing_ca_cert: None,
                ca_token_label: None,
                ca_key_label: None,
                softhsm2_conf: None,
            },
            operation,
        )
        .await?;
        match &created.crl {
            Some(CrlOutcome::Issued(r)) => {
                eprintln!("demo: CRL {} published at {}", r.number, r.path.display())
            }
            Some(CrlOutcome::Failed { error }) => {
                eprintln!(
                    "demo: warning: no CRL was issued ({error}); `keystation ca crl` issues it"
                )
            }
            None => {}
        }
    }
    let cfg = Config::load(&config_path)?;
    let station = Station::open_for(cfg, operation).await?;
    let hsm = station.open_hsm().await?;
    let say: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|line: &str| eprintln!("demo: {line}"));
    let report = station
        .run_demo(
            &hsm,
            DemoOptions {
                generated: args.orders,
                workers: args.workers,
            },
            say,
        )
        .await?;
    let cfg = station.config();
    let data = cfg.data_dir();
    if json {
        output::json(&serde_json::json!({"dir": data, "report": report}))?;
    } else {
        if report.already_ran {
            println!(
                "The demo already ran in {}: every order is PinDelivered.\n",
                data.display()
            );
        }
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.order_no.to_string(),
                    r.company.clone(),
                    r.token_serial.clone().unwrap_or_else(|| "-".into()),
                    r.certificate_serial.clone().unwrap_or_else(|| "-".into()),
                    r.seals.to_string(),
                    r.channel.clone(),
                    r.delivery.clone().unwrap_or_else(|| "-".into()),
                    r.state.to_string(),
                ]
            })
            .collect();
        let shown = if rows.len() > 40 {
            &rows[..40]
        } else {
            &rows[..]
        };
        output::table(
            &[
                "ORDER",
                "COMPANY",
                "TOKEN",
                "CERTIFICATE",
                "SEALS",
                "PIN CHANNEL",
                "DELIVERY",
                "STATE",
            ],
            shown,
        );
        if rows.len() > shown.len() {
            println!(
                "... and {} more (keystation --config {} order list)",
                rows.len() - shown.len(),
                config_path.display()
            );
        }
        println!();
        println!("where things are:");
        println!("  station config      {}", config_path.display());
        println!("  database            {}", cfg.database_url());
        println!(
            "  CA certificate      {}",
            cfg.path(&cfg.ca.certificate).display()
        );
        println!(
            "  SoftHSM tokens      {} (SOFTHSM2_CONF={})",
            data.join("tokens").display(),
            data.join("softhsm2.conf").display()
        );
        // The customers' module's own configuration, for pkcs11-tool.
        let module_conf = match &cfg.pkcs11.kstoken_conf {
            Some(conf) => {
                println!(
                    "  test-token tokens   {} (KSTOKEN_CONF={}, the CA's and customers' keys)",
                    data.join("kstoken-tokens").display(),
                    cfg.path(conf).display()
                );
                format!("KSTOKEN_CONF={}", cfg.path(conf).display())
            }
            None => format!("SOFTHSM2_CONF={}", data.join("softhsm2.conf").display()),
        };
        println!(
            "  SMS spool           {} (the gateway's receipts; the station's copies of the \
             messages are removed once confirmed)",
            cfg.path(&cfg.delivery.sms.spool_dir).display()
        );
        println!(
            "  SMS as received     {} (simulated gateway: the PINs)",
            data.join(crate::station::demo::peers::GATEWAY_DIR)
                .display()
        );
        println!(
            "  bank outbound       {} (pain.001 until the bank confirms it)",
            cfg.path(&cfg.delivery.bank.outbound_dir).display()
        );
        println!(
            "  bank as received    {} (simulated bank: pain.001, the PIN is in RmtInf/Ustrd)",
            data.join(crate::station::demo::peers::BANK_DIR).display()
        );
        println!(
            "  bank inbound        {} (the simulated bank's pain.002)",
            cfg.path(&cfg.delivery.bank.inbound_dir).display()
        );
        if let Some(r) = report.rows.iter().find(|r| r.message_file.is_some()) {
            println!();
            println!(
                "inspect a key (log in with the PIN from its message, e.g. {}):",
                r.message_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            println!(
                "  {} pkcs11-tool --module {} --token-label {} --login --list-objects",
                module_conf,
                hsm.module_path().display(),
                r.order_no
            );
            println!(
                "  keystation --config {} seal show --token {}",
                config_path.display(),
                r.order_no
            );
        }
        println!(
            "  keystation --config {} check      # invariants",
            config_path.display()
        );
        println!(
            "  keystation --config {} audit verify",
            config_path.display()
        );
    }
    if report.complete {
        Ok(())
    } else {
        let missing: Vec<&str> = report
            .rows
            .iter()
            .filter(|r| r.state != crate::domain::OrderState::PinDelivered)
            .map(|r| r.order_no.as_str())
            .collect();
        Err(CliError::verdict(
            ec::DEMO_INCOMPLETE,
            format!(
                "demo incomplete: {} order(s) not PinDelivered ({}); re-run to continue",
                missing.len(),
                missing.join(", ")
            ),
        ))
    }
}
