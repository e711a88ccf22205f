//! `keystation token ...` handlers.

use super::opts::TokenCmd;
use super::{CliError, output};
use crate::station::Station;

pub(super) async fn run(station: &Station, cmd: TokenCmd, json: bool) -> Result<(), CliError> {
    match cmd {
        TokenCmd::List => {
            let listing = station.token_listing().await?;
            if json {
                return output::json(&listing);
            }
            let table: Vec<Vec<String>> = listing
                .tokens
                .iter()
                .map(|t| {
                    let i = &t.token;
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
                        t.role.clone(),
                    ]
                })
                .collect();
            println!("PKCS#11 module {}", listing.module.display());
            output::table(&["SERIAL", "LABEL", "MODEL", "FLAGS", "ROLE"], &table);
            match (&listing.usb.devices, &listing.usb.reason) {
                (Some(keys), _) if keys.is_empty() => {
                    println!("\nUSB: no known key model plugged in")
                }
                (Some(keys), _) => {
                    println!("\nUSB keys:");
                    for k in keys {
                        println!("  {}", k.line);
                    }
                }
                (None, reason) => println!("\n{}", reason.as_deref().unwrap_or("USB unavailable")),
            }
            Ok(())
        }
    }
}
