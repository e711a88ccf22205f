//! PINs an operator gives on the command line: typed at a prompt, or read from a file named by
//! an option (`--pin-file`, `--so-pin-file`). Never an argument or an environment variable.
//!
//! A prompt needs a terminal: without one (a script, a pipe, a service) the command says which
//! option to use instead, rather than failing on the missing `/dev/tty`. A PIN file given here is
//! the operator's own: only its first line matters, its mode is the operator's business (the
//! station's own PIN file is checked by `station::hsm::read_pin_file`).

use super::CliError;
use super::error::io_error;
use crate::station::error_code as ec;
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// Asks for `what` once. Without a terminal: a usage error that names `instead`, the option
/// that gives the PIN from a file.
pub(super) fn prompt(what: &str, instead: &str) -> Result<Zeroizing<String>, CliError> {
    require_terminal(what, instead)?;
    Ok(Zeroizing::new(
        rpassword::prompt_password(format!("{what}: "))
            .map_err(|e| io_error(format!("asking for the {what}"), e))?,
    ))
}

/// Asks for a new `what` twice and requires both entries to match.
pub(super) fn prompt_twice(what: &str, instead: &str) -> Result<Zeroizing<String>, CliError> {
    let first = prompt(what, instead)?;
    let again = prompt(&format!("{what} (again)"), instead)?;
    if first != again {
        return Err(CliError::new(
            ec::PIN_INPUT,
            format!("the two {what} entries differ"),
        ));
    }
    Ok(first)
}

fn require_terminal(what: &str, instead: &str) -> Result<(), CliError> {
    if std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(CliError::new(
            ec::PIN_INPUT,
            format!("no terminal to ask for the {what}: give {instead}"),
        ))
    }
}

/// A new secret `what` (a console password): asked twice at a terminal; otherwise the first
/// line of standard input (a script, a test), never an argument or an environment variable.
pub(super) fn new_secret(what: &str) -> Result<Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        return prompt_twice(what, "it on standard input");
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| io_error(format!("reading the {what} from standard input"), e))?;
    let text = line.trim_end_matches(['\n', '\r']);
    if text.is_empty() {
        return Err(CliError::new(
            ec::PIN_INPUT,
            format!("no {what} on standard input"),
        ));
    }
    Ok(Zeroizing::new(text.to_string()))
}

/// The first line of `path`, which holds the `what` (e.g. "user PIN of token T").
pub(super) fn read_file(path: &Path, what: &str) -> Result<Zeroizing<String>, CliError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        CliError::new(
            ec::PIN_INPUT,
            format!("PIN file {} ({what}): cannot read it: {e}", path.display()),
        )
    })?);
    let line = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string();
    if line.is_empty() {
        return Err(CliError::new(
            ec::PIN_INPUT,
            format!("PIN file {} ({what}) is empty", path.display()),
        ));
    }
    Ok(Zeroizing::new(line))
}
