//! `keystation-unlock`: the customer's side of a remote unlock, a thin shell over
//! [`keystation::unlock::tool`].

use clap::{Parser, Subcommand};
use keystation::clock::{Clock, SystemClock};
use keystation::unlock::tool::{Io, RequestArgs, request};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Unlocks a keystation USB key whose PIN is locked or forgotten, with an unlock authorisation
/// code from the service desk.
#[derive(Debug, Parser)]
#[command(name = "keystation-unlock", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a request code for the service desk, waits for the authorisation code they
    /// e-mail, then asks for the new PIN (twice) and unlocks the key.
    Request {
        /// The PKCS#11 module of the key (its vendor's library).
        #[arg(long)]
        module: PathBuf,
        /// The slot of the key, when several are plugged in.
        #[arg(long, conflicts_with = "serial")]
        slot: Option<u64>,
        /// Or the serial of the key (printed on it), when several are plugged in.
        #[arg(long)]
        serial: Option<String>,
    },
}

/// Unix seconds now. Test builds may pin it (`KEYSTATION_TEST_NOW`), to show an expired code.
fn now() -> u64 {
    #[cfg(feature = "test-hooks")]
    if let Some(t) = std::env::var("KEYSTATION_TEST_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return t;
    }
    u64::try_from(SystemClock.now().unix_timestamp()).unwrap_or(0)
}

fn main() {
    let cli = Cli::parse();
    let Command::Request {
        module,
        slot,
        serial,
    } = cli.command;
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    let mut io = Io {
        input: &mut input,
        output: &mut output,
        terminal,
    };
    match request(
        &RequestArgs {
            module,
            slot,
            serial,
        },
        &mut io,
        &now,
    ) {
        Ok(_) => {}
        Err(e) => {
            eprintln!("keystation-unlock: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
