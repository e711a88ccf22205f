//! The `keystation` command line: argument parsing ([`opts`]) apart from handlers.
//!
//! Exit codes: 0 ok; 2 bad input (every violation printed, `field: message` per line, or JSON
//! with `--json`), also clap's usage errors; 1 any other failure. Data goes to stdout, diagnostics
//! to stderr; `--json` makes stdout machine-readable in both success and failure.

/// The CLI's `println!`: this definition shadows the standard macro in every module below, so
/// all output goes through [`output::print_line`], which ends quietly when the reader of a pipe
/// went away (`| head`) instead of panicking as the standard macro does.
macro_rules! println {
    () => {
        $crate::cli::output::print_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::print_line(format_args!($($arg)*))
    };
}

mod audit;
mod certs;
mod deliver;
mod demo;
mod init;
pub mod opts;
mod orders;
mod output;
mod pin_input;
mod provision;
mod seal;
mod tokens;
mod workstation;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::Violation;
use crate::station::Station;
use clap::Parser;
use opts::{Cli, Command, DeliverCmd, OrderCmd};
use std::process::ExitCode;
use std::sync::Arc;

/// What a command can fail with, as the CLI reports it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input is wrong: exit 2 with every violation.
    #[error("invalid input")]
    Invalid(Vec<Violation>),
    /// A usage problem without a field (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A negative verdict whose report was already printed (exit 1, one line on stderr; with
    /// `--json` stdout holds only the report).
    #[error("{0}")]
    Verdict(String),
    /// Anything else (exit 1).
    #[error(transparent)]
    Failure(#[from] anyhow::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_) | CliError::Usage(_) => 2,
            CliError::Failure(_) | CliError::Verdict(_) => 1,
        }
    }
}

impl From<crate::station::delivery::DeliveryError> for CliError {
    fn from(e: crate::station::delivery::DeliveryError) -> Self {
        if e.is_usage() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Failure(e.into())
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError as S;
        match e {
            S::OrderNotFound(_)
            | S::Illegal { .. }
            | S::StateConflict { .. }
            | S::AlreadyShipped(_)
            | S::DeliveryNotFound(_)
            | S::DeliveryConflict { .. }
            | S::LeaseHeld { .. } => CliError::Usage(e.to_string()),
            other => CliError::Failure(other.into()),
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::private_files::restrict_umask();
    let cli = Cli::parse();
    init_tracing();
    select_softhsm_config(&cli);
    let json = cli.json;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failure(e.into()))
        .and_then(|rt| rt.block_on(run(cli)));
    let result = result.and_then(|()| match output::stdout_error() {
        Some(e) => Err(CliError::Failure(anyhow::anyhow!("writing to stdout: {e}"))),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::report_error(&e, json);
            ExitCode::from(e.exit_code())
        }
    }
}

/// SoftHSM reads its configuration from `SOFTHSM2_CONF` once, when the module is initialised.
/// A station keeps its own SoftHSM configuration (`pkcs11.softhsm2_conf`), exported here.
fn select_softhsm_config(cli: &Cli) {
    let conf = match &cli.command {
        Command::Init(args) => std::path::absolute(args.dir.join("softhsm2.conf")).ok(),
        Command::Demo(args) => std::path::absolute(args.dir.join("softhsm2.conf")).ok(),
        _ => config_path(cli.config.as_deref())
            .and_then(|p| Config::load(&p).ok())
            .and_then(|c| c.pkcs11.softhsm2_conf.as_ref().map(|p| c.path(p))),
    };
    if let Some(conf) = conf {
        // SAFETY: called from `main` before the runtime or any other thread exists, so nothing
        // can read the environment concurrently. The value is a path, not a secret.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", conf);
        }
    }
}

/// Logs go to stderr; the level comes from `KEYSTATION_LOG` (e.g. `debug`, `keystation=trace`),
/// default `warn`. Nothing secret is ever logged at any level. Colours only on a terminal (and
/// never with `NO_COLOR` set): a log redirected to a file holds plain text.
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSTATION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Runs a parsed command line. A command that may change state ends by anchoring the audit
/// trail (`audit::anchor_after_change`), whether it succeeded or not: a failed job may have
/// committed steps before it failed.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(args) => init::run(&args, cli.json).await,
        Command::Demo(args) => demo::run(&args, cli.json).await,
        Command::Order(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            let changes = !matches!(cmd, OrderCmd::List { .. } | OrderCmd::Show { .. });
            let result = orders::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Audit(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            audit::run(&station, cmd, cli.json).await
        }
        Command::Token(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            tokens::run(&station, cmd, cli.json).await
        }
        Command::Cert(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            certs::run(&station, cmd, cli.json).await
        }
        Command::Seal(cmd) => {
            // Without a station (`seal verify FILE --ca CA.pem`) a seal is judged on its own;
            // with one, also against the revocations the station recorded.
            let station = match config_path(cli.config.as_deref()) {
                Some(p) => Some(open_station(Some(&p)).await?),
                None => None,
            };
            seal::run(station.as_ref(), cmd, cli.json).await
        }
        Command::Station(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            let result = workstation::run(&station, cmd).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Check => {
            let station = open_station(cli.config.as_deref()).await?;
            let hsm = provision::hsm_of(&station)?;
            let report = station.check(&hsm).await?;
            if cli.json {
                output::json(&report)?;
            } else {
                for f in &report.findings {
                    let level = match f.level {
                        crate::station::check::Level::Violation => "VIOLATION",
                        crate::station::check::Level::Note => "note",
                    };
                    println!(
                        "{level:<9} {:<20} {:<16} {}",
                        f.rule,
                        f.order_no.as_deref().unwrap_or("-"),
                        f.message
                    );
                }
                println!(
                    "checked {} orders, {} tokens: {}",
                    report.orders,
                    report.tokens_checked,
                    if report.ok() {
                        "all invariants hold"
                    } else {
                        "INVARIANTS BROKEN"
                    }
                );
            }
            if report.ok() {
                Ok(())
            } else {
                Err(CliError::Verdict("station invariants are broken".into()))
            }
        }
        Command::Provision(args) => {
            let station = open_station(cli.config.as_deref()).await?;
            let result = provision::run(&station, &args, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Ship(args) => {
            let station = open_station(cli.config.as_deref()).await?;
            let result = deliver::ship(&station, &args, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Deliver(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            let changes = !matches!(cmd, DeliverCmd::Status { .. });
            let result = deliver::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Bank(cmd) => {
            let station = open_station(cli.config.as_deref()).await?;
            let result = deliver::bank(&station, cmd, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
    }
}

/// The configuration file: `--config`, else `KEYSTATION_CONFIG` (clap reads both into
/// `explicit`), else `station.toml` in the current directory — where `init --dir .` puts it.
fn config_path(explicit: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let here = std::path::Path::new(crate::config::FILE_NAME);
            here.is_file().then(|| here.to_path_buf())
        }
    }
}

async fn open_station(config: Option<&std::path::Path>) -> Result<Station, CliError> {
    let path = config_path(config)
        .ok_or_else(|| CliError::Usage(crate::config::ConfigError::Missing.to_string()))?;
    let cfg = Config::load(&path).map_err(|e| CliError::Usage(e.to_string()))?;
    Station::open(cfg, Arc::new(SystemClock))
        .await
        .map_err(|e| CliError::Failure(e.into()))
}
