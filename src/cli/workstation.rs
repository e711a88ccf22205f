//! `keystation station watch`: the operator's desk on a terminal.

use super::CliError;
use super::opts::StationCmd;
use super::signals::stop_on_ctrl_c;
use crate::station::Station;
use crate::station::workstation::{Desk, WatchOptions};
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
            let order = order.as_deref().map(super::order_no_arg).transpose()?;
            let hsm = station.open_hsm().await?;
            let stop = stop_on_ctrl_c("leaving workstation mode");
            let (mut events, usb_unavailable) = station.desk_events(&hsm, stop.clone());
            if let Some(why) = usb_unavailable {
                println!("{why} — watching PKCS#11 tokens only");
            }
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
