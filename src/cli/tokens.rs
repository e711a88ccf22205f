//! `keystation token ...` handlers.

use super::opts::TokenCmd;
use super::{CliError, output};
use crate::station::Station;
use crate::token::Pkcs11Module;

pub(super) async fn run(station: &Station, cmd: TokenCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        TokenCmd::List => {
            let module = Pkcs11Module::load(station.config.pkcs11.module.as_deref())
                .map_err(|e| CliError::Failure(e.into()))?;
            let tokens = tokio::task::block_in_place(|| module.tokens())
                .map_err(|e| CliError::Failure(e.into()))?;
            let bindings = station.store.active_bindings().await?;
            let cfg = &station.config;
            let mut rows = Vec::new();
            for t in &tokens {
                let i = t.info();
                let role = if i.initialized && i.label == cfg.ca.token_label {
                    "station CA".to_string()
                } else if i.initialized && i.label == cfg.vault.token_label {
                    "station vault".to_string()
                } else if let Some(b) = bindings.iter().find(|b| {
                    b.token_serial.as_deref() == Some(i.serial.as_str()) && !i.serial.is_empty()
                }) {
                    format!("order {}", b.order_no)
                } else if i.is_blank() {
                    "blank".to_string()
                } else {
                    "unknown (not made by this station)".to_string()
                };
                rows.push((i.clone(), role));
            }
            // USB devices of known key models, beside the PKCS#11 view.
            let usb = crate::usb::UsbCatalog::load(cfg.path(&cfg.pkcs11.usb_tokens))
                .and_then(|c| crate::usb::list_usb_keys(&c));
            let usb_json = match &usb {
                Ok(keys) => {
                    serde_json::json!({"available": true, "devices": keys.iter().map(|k| serde_json::json!({
                    "bus": k.bus, "address": k.address,
                    "vendor_id": format!("{:04x}", k.vendor_id), "product_id": format!("{:04x}", k.product_id),
                    "model": k.model.as_ref().map(|m| m.model.clone()),
                    "vendor": k.model.as_ref().map(|m| m.vendor.clone()),
                    "pkcs11_module": k.model.as_ref().map(|m| m.pkcs11_module.display().to_string()),
                    "serial": k.serial,
                })).collect::<Vec<_>>()})
                }
                Err(e) => serde_json::json!({"available": false, "reason": e.to_string()}),
            };
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(i, role)| serde_json::json!({"token": i, "role": role}))
                    .collect();
                return output::json(
                    &serde_json::json!({"module": module.path(), "tokens": v, "usb": usb_json}),
                );
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|(i, role)| {
                    let mut flags = Vec::new();
                    if i.initialized {
                        flags.push("initialized");
                    }
                    if i.user_pin_initialized {
                        flags.push("user-pin");
                    }
                    if i.user_pin_count_low {
                        flags.push("PIN-COUNT-LOW");
                    }
                    if i.user_pin_final_try {
                        flags.push("PIN-FINAL-TRY");
                    }
                    if i.user_pin_locked {
                        flags.push("PIN-LOCKED");
                    }
                    vec![
                        if i.serial.is_empty() {
                            "-".into()
                        } else {
                            i.serial.clone()
                        },
                        if i.label.is_empty() {
                            "-".into()
                        } else {
                            i.label.clone()
                        },
                        i.model.clone(),
                        flags.join(","),
                        role.clone(),
                    ]
                })
                .collect();
            println!("PKCS#11 module {}", module.path().display());
            output::table(&["SERIAL", "LABEL", "MODEL", "FLAGS", "ROLE"], &table);
            match usb {
                Ok(keys) if keys.is_empty() => println!("\nUSB: no known key model plugged in"),
                Ok(keys) => {
                    println!("\nUSB keys:");
                    for k in keys {
                        println!("  {k}");
                    }
                }
                Err(e) => println!("\n{e}"),
            }
            Ok(())
        }
    }
}
