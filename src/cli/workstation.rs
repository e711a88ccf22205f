//! `keystation station watch`: the operator's desk on a terminal.

use super::CliError;
use super::opts::StationCmd;
use super::provision::{hsm_of, stop_on_ctrl_c};
use crate::station::Station;
use crate::station::workstation::{Desk, PolledDesk, WatchOptions, start_usb_watch};
use std::io::{BufRead, Write};
use std::time::Duration;

/// The terminal as the operator's desk.
struct Terminal {
    yes: bool,
}

impl Desk for Terminal {
    fn say(&self, line: &str) {
        println!("{line}");
    }

    fn confirm(&self, question: &str) -> bool {
        if self.yes {
            println!("{question} yes (--yes)");
            return true;
        }
        print!("{question} [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "是")
    }
}

pub(super) async fn run(station: &Station, cmd: StationCmd) -> Result<(), CliError> {
    match cmd {
        StationCmd::Watch {
            order,
            once,
            yes,
            poll_ms,
        } => {
            let hsm = hsm_of(station)?;
            let stop = stop_on_ctrl_c("leaving workstation mode");
            let catalog = station.config.path(&station.config.pkcs11.usb_tokens);
            let usb = match start_usb_watch(&catalog, stop.clone()) {
                Ok(rx) => Some(rx),
                Err(why) => {
                    println!("{why} — watching PKCS#11 tokens only");
                    None
                }
            };
            let mut events = PolledDesk::new(hsm.module().clone(), usb);
            let opts = WatchOptions {
                order,
                once,
                poll_interval: Duration::from_millis(poll_ms.max(50)),
            };
            let summary = station
                .watch(&hsm, &mut events, &Terminal { yes }, &opts, stop)
                .await?;
            println!(
                "workstation: {} provisioned, {} interrupted (resumable)",
                summary.provisioned.len(),
                summary.interrupted.len()
            );
            Ok(())
        }
    }
}
