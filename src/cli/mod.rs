//! The `keystation` command line: argument parsing ([`opts`]) apart from handlers.
//!
//! Exit codes: 0 ok; 2 bad input (every violation printed, `field: message` per line, or JSON
//! with `--json`), also clap's usage errors; 1 any other failure. Data goes to stdout, diagnostics
//! to stderr; `--json` makes stdout machine-readable in both success and failure.

mod audit;
mod deliver;
mod demo;
mod init;
pub mod opts;
mod orders;
mod output;
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
            | S::DeliveryConflict { .. } => CliError::Usage(e.to_string()),
            other => CliError::Failure(other.into()),
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    select_softhsm_config(&cli);
    let json = cli.json;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failure(e.into()))
        .and_then(|rt| rt.block_on(run(cli)));
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
        _ => cli
            .config
            .as_deref()
            .and_then(|p| Config::load(p).ok())
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
/// default `warn`. Nothing secret is ever logged at any level.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSTATION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        Command::Seal(cmd) => {
            let cfg = match cli.config.as_deref() {
                Some(p) => Some(Config::load(p).map_err(|e| CliError::Usage(e.to_string()))?),
                None => None,
            };
            seal::run(cfg.as_ref(), cmd, cli.json).await
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

async fn open_station(config: Option<&std::path::Path>) -> Result<Station, CliError> {
    let path =
        config.ok_or_else(|| CliError::Usage(crate::config::ConfigError::Missing.to_string()))?;
    let cfg = Config::load(path).map_err(|e| CliError::Usage(e.to_string()))?;
    Station::open(cfg, Arc::new(SystemClock))
        .await
        .map_err(|e| CliError::Failure(e.into()))
}
