//! The `keystation` command line: argument parsing ([`opts`]) apart from handlers.
//!
//! Exit codes: 0 ok; 2 bad input (every violation printed, `field: message` per line, or JSON
//! with `--json`), also clap's usage errors; 1 any other failure. Data goes to stdout, diagnostics
//! to stderr; `--json` makes stdout machine-readable in both success and failure. Every error is
//! printed with its stable code and the command's operation id (see [`CliError`]).
//!
//! The CLI is a front of [`crate::station::Station`]: it names `station`, `domain` and `config`
//! only (and `web`, the HTTP front `serve` starts), never the store, the tokens or SQL (a test
//! greps for it), and does no blocking PKCS#11 work itself. Each invocation is one [`OperationContext`].

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

mod api_tokens;
pub mod at_approval;
mod audit;
mod ca;
mod certs;
mod deliver;
mod demo;
mod demo_fleet;
mod error;
mod fleet;
mod init;
mod ocsp;
pub mod operator_opts;
mod operators;
pub mod opts;
pub mod order_opts;
mod orders;
mod output;
mod pin_input;
mod provision;
pub mod reissue;
pub mod request_opts;
pub mod retire;
mod seal;
mod serve;
mod service_desk;
mod signals;
mod station_requests;
mod tokens;
mod unlock;
pub mod unlock_opts;
mod workstation;

pub use error::CliError;

use crate::config::Config;
use crate::domain::RequestKind;
use crate::station::error_code as ec;
use crate::station::{OperationContext, Station};
use clap::Parser;
use opts::{
    ApiTokenCmd, ChangeRequestCmd, Cli, Command, DeliverCmd, DemoArgs, OperatorCmd, OrderCmd,
    PinResetCmd, ReinitCmd,
};
use std::process::ExitCode;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::station::restrict_umask();
    let cli = Cli::parse();
    init_tracing();
    select_softhsm_config(&cli);
    let json = cli.json;
    // One operation per invocation: its id is in every audit record this command writes and in
    // the error it may print.
    let operation = OperationContext::new();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| error::io_error("starting the async runtime".into(), e))
        .and_then(|rt| rt.block_on(run(cli, &operation)));
    let result = result.and_then(|()| match output::stdout_error() {
        Some(e) => Err(CliError::new(ec::OUTPUT, format!("writing to stdout: {e}"))),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error::report(&e, json, operation.id());
            ExitCode::from(e.exit_code())
        }
    }
}

/// SoftHSM reads its configuration from `SOFTHSM2_CONF` once, when the module is initialised,
/// and the test token (`tokens/kstoken`) from `KSTOKEN_CONF`. A station keeps its own
/// configuration of each (`pkcs11.softhsm2_conf`, `pkcs11.kstoken_conf`), exported here.
fn select_softhsm_config(cli: &Cli) {
    let (softhsm, kstoken) = match &cli.command {
        Command::Init(args) => (
            std::path::absolute(
                args.softhsm2_conf
                    .clone()
                    .unwrap_or_else(|| args.dir.join("softhsm2.conf")),
            )
            .ok(),
            std::path::absolute(args.dir.join("kstoken.conf")).ok(),
        ),
        // A fleet's stations share station 1's SoftHSM store (the installation's HSM).
        Command::Demo(args) if args.stations.is_some() => (
            std::path::absolute(demo_fleet::station_dir(&args.dir, 1).join("softhsm2.conf")).ok(),
            None,
        ),
        Command::Demo(DemoArgs { dir, .. }) => (
            std::path::absolute(dir.join("softhsm2.conf")).ok(),
            std::path::absolute(dir.join("kstoken.conf")).ok(),
        ),
        _ => {
            let cfg = config_path(cli.config.as_deref()).and_then(|p| Config::load(&p).ok());
            let conf = |pick: fn(&Config) -> Option<&std::path::PathBuf>| {
                cfg.as_ref().and_then(|c| pick(c).map(|p| c.path(p)))
            };
            (
                conf(|c| c.pkcs11.softhsm2_conf.as_ref()),
                conf(|c| c.pkcs11.kstoken_conf.as_ref()),
            )
        }
    };
    for (name, conf) in [("SOFTHSM2_CONF", softhsm), ("KSTOKEN_CONF", kstoken)] {
        if let Some(conf) = conf {
            // SAFETY: called from `main` before the runtime or any other thread exists, so
            // nothing can read the environment concurrently. The value is a path, not a secret.
            #[allow(unsafe_code)]
            unsafe {
                std::env::set_var(name, conf);
            }
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

/// Runs a parsed command line as `operation`. A command that may change state ends by
/// anchoring the audit trail (`audit::anchor_after_change`), whether it succeeded or not: a
/// failed job may have committed steps before it failed.
pub async fn run(cli: Cli, operation: &OperationContext) -> Result<(), CliError> {
    let config = cli.config.as_deref();
    let credential = cli.credential.as_deref();
    match cli.command {
        Command::Init(args) => init::run(&args, cli.json, operation).await,
        Command::Demo(args) => demo::run(&args, cli.json, operation).await,
        Command::Order(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(cmd, OrderCmd::List { .. } | OrderCmd::Show { .. });
            let result = orders::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Audit(cmd) => {
            let station = open_station(config, credential, operation).await?;
            audit::run(&station, cmd, cli.json).await
        }
        Command::Token(cmd) => {
            let station = open_station(config, credential, operation).await?;
            tokens::run(&station, cmd, cli.json).await
        }
        Command::Cert(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let result = certs::run(&station, cmd, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Ca(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let result = ca::run(&station, cmd, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Seal(cmd) => {
            // Without a station (`seal verify FILE --ca CA.pem`) a seal is judged on its own;
            // with one, also against the revocations the station recorded.
            let station = match config_path(config) {
                Some(p) => Some(open_station(Some(&p), credential, operation).await?),
                None => None,
            };
            seal::run(station.as_ref(), cmd, cli.json).await
        }
        Command::Station(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let result = workstation::run(&station, cmd).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Check => {
            let station = open_station(config, credential, operation).await?;
            check(&station, cli.json).await
        }
        Command::Provision(args) => {
            let station = open_station(config, credential, operation).await?;
            let result = provision::run(&station, &args, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Ship(args) => {
            let station = open_station(config, credential, operation).await?;
            let result = deliver::ship(&station, &args, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::PinReset(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(cmd, PinResetCmd::List { .. } | PinResetCmd::Show { .. });
            let result = service_desk::pin_reset(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Retire(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(cmd, retire::RetireCmd::Show { .. });
            let result = retire::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Revoke(cmd) => {
            let station = open_station(config, credential, operation).await?;
            at_approval::run_anchored(&station, RequestKind::Revoke, cmd, cli.json).await
        }
        Command::Reissue(cmd) => {
            let station = open_station(config, credential, operation).await?;
            at_approval::run_anchored(&station, RequestKind::Reissue, cmd, cli.json).await
        }
        Command::Unlock(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(
                cmd,
                unlock_opts::UnlockCmd::List { .. } | unlock_opts::UnlockCmd::Show { .. }
            );
            let result = unlock::unlock(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Deliver(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(cmd, DeliverCmd::Status { .. } | DeliverCmd::Notices { .. });
            let result = deliver::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Bank(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let result = deliver::bank(&station, cmd, cli.json).await;
            audit::anchor_after_change(&station).await;
            result
        }
        Command::Fleet(cmd) => {
            let station = open_station(config, credential, operation).await?;
            fleet::run(&station, cmd, cli.json).await
        }
        Command::Operator(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(cmd, OperatorCmd::List);
            let result = operators::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::ApiToken(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(
                cmd,
                ApiTokenCmd::List
                    | ApiTokenCmd::WebhookSecret { .. }
                    | ApiTokenCmd::WebhookEvents { .. }
            );
            let result = api_tokens::run(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Reinit(cmd) => {
            let station = open_station(config, credential, operation).await?;
            let changes = !matches!(cmd, ReinitCmd::Decide(ChangeRequestCmd::Requests { .. }));
            let result = station_requests::reinit(&station, cmd, cli.json).await;
            if changes {
                audit::anchor_after_change(&station).await;
            }
            result
        }
        Command::Serve(args) => {
            let station = open_station(config, credential, operation).await?;
            serve::run(&station, &args, cli.json).await
        }
    }
}

/// `keystation check`: the invariants against the database and the tokens.
async fn check(station: &Station, json: bool) -> Result<(), CliError> {
    let hsm = station.open_hsm().await?;
    let report = station.check(&hsm).await?;
    if json {
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
        if report.operator_changes == "bootstrap" {
            println!(
                "operators: a single enabled administrator ({}): operator and API token changes \
                 take effect at once (bootstrap); add a second administrator to make each need \
                 a second one's approval",
                report.administrators.join(", ")
            );
        } else {
            println!(
                "operators: {} enabled administrators: operator and API token changes need a \
                 second administrator's approval (four-eyes)",
                report.administrators.len()
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
        Err(CliError::verdict(
            ec::CHECK_VIOLATION,
            "station invariants are broken",
        ))
    }
}

/// An order number typed by an operator, taken as intake takes one (width-folded, trimmed,
/// upper-cased) and parsed where it enters: a malformed one is bad input (exit 2), named, rather
/// than an order the store does not find.
fn order_no_arg(raw: &str) -> Result<crate::domain::OrderNo, CliError> {
    crate::domain::OrderNo::parse(&crate::domain::normalize::order_no(raw))
        .map_err(|e| CliError::invalid_argument("ORDER_NO", "order_no_invalid", e.to_string()))
}

/// A certificate serial typed or pasted by an operator (upper case and colons as `openssl`
/// prints it are accepted), parsed where it enters: a malformed one is bad input (exit 2),
/// named, rather than a certificate the station does not find.
fn cert_serial_arg(raw: &str) -> Result<crate::domain::CertSerial, CliError> {
    crate::domain::CertSerial::parse(&crate::domain::normalize::cert_serial(raw))
        .map_err(|e| CliError::invalid_argument("SERIAL", "cert_serial_invalid", e.to_string()))
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

/// Opens the station for `operation`, acting with the operator credential `credential`
/// (`--credential`; else the configuration's), which the station resolves when a command acts.
async fn open_station(
    config: Option<&std::path::Path>,
    credential: Option<&std::path::Path>,
    operation: &OperationContext,
) -> Result<Station, CliError> {
    let path = config_path(config).ok_or(crate::config::ConfigError::Missing)?;
    let cfg = Config::load(&path)?;
    let station = Station::open_for(cfg, operation).await?;
    Ok(station.with_credential(credential.map(std::path::Path::to_path_buf)))
}

#[cfg(test)]
mod tests;
