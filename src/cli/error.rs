//! What a command fails with, and how it is reported.
//!
//! Every error carries a stable code ([`ErrorCode`]) and is printed with the command's operation
//! id, the one in every audit record the command wrote:
//!
//! ```text
//! error[E-ORDER-NOT-FOUND]: no order KS-NOPE-0001 (operation 3f2a9c1e-…)
//!   caused by: …
//! ```
//!
//! The first line is the public message; the causes under it (each once: a cause whose text the
//! message already shows is not repeated) are what a supporting engineer reads. `--json` prints
//! the same as one document: `{"error", "code", "message", "causes", "operation_id"}`, plus
//! `"violations"` for invalid input. The code's class gives the exit code: 2 for a refused
//! request, 1 for a failure.

use crate::domain::Violation;
use crate::station::OperationId;
use crate::station::error_code::{self as ec, Coded, ErrorCode};

/// A failed command, as the CLI reports it: `error[E-CODE]: message (operation ID)` on stderr,
/// its causes under it, and with `--json` one document with `code` and `operation_id` on stdout.
#[derive(Debug)]
pub struct CliError {
    code: ErrorCode,
    message: String,
    causes: Vec<String>,
    violations: Vec<Violation>,
    /// The command printed its own report (a negative verdict): with `--json`, stdout holds
    /// only that report.
    report_printed: bool,
}

impl CliError {
    /// An error of the command line itself, with its code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
            causes: Vec::new(),
            violations: Vec::new(),
            report_printed: false,
        }
    }

    /// A bad argument (exit 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ec::USAGE, message)
    }

    /// Invalid input: every violation is printed (exit 2).
    pub fn invalid(message: impl Into<String>, violations: Vec<Violation>) -> CliError {
        CliError {
            violations,
            ..CliError::new(ec::INPUT_INVALID, message)
        }
    }

    /// One invalid argument: `field` names it, `code` says what is wrong with it (exit 2).
    pub fn invalid_argument(
        field: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> CliError {
        CliError::invalid(
            format!("invalid {field}"),
            vec![Violation::error(field, code, message)],
        )
    }

    /// A `--state` filter: parsed by `parse`, or refused naming the `states` there are (`what`:
    /// "a state", "a delivery state").
    pub fn state_filter<T>(
        value: Option<String>,
        parse: impl Fn(&str) -> Option<T>,
        what: &str,
        states: &[&str],
    ) -> Result<Option<T>, CliError> {
        value
            .map(|s| {
                parse(&s).ok_or_else(|| {
                    let message = format!("{s:?} is not {what}: {}", states.join(", "));
                    CliError::invalid_argument("--state", "enum_invalid", message)
                })
            })
            .transpose()
    }

    /// A negative verdict whose report the command printed already.
    pub fn verdict(code: ErrorCode, message: impl Into<String>) -> CliError {
        CliError {
            report_printed: true,
            ..CliError::new(code, message)
        }
    }

    /// The exit code: 2 for a refused request, 1 for a failure.
    pub fn exit_code(&self) -> u8 {
        if self.code.is_refusal() { 2 } else { 1 }
    }
}

impl<E: Coded + std::error::Error> From<E> for CliError {
    fn from(e: E) -> CliError {
        let message = e.to_string();
        let mut causes: Vec<String> = Vec::new();
        let mut source = e.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // An error type that prints its source in its own message (`"{path}: {source}"`)
            // would otherwise show the same text twice.
            if !message.contains(&text) && !causes.iter().any(|c| c.contains(&text)) {
                causes.push(text);
            }
            source = cause.source();
        }
        CliError {
            causes,
            ..CliError::new(e.code(), message)
        }
    }
}

/// An IO error of the command line's own (writing an exported file).
pub fn io_error(what: String, e: std::io::Error) -> CliError {
    CliError {
        causes: vec![e.to_string()],
        ..CliError::new(ec::IO, what)
    }
}

/// Reports a failed command: stderr for people; with `--json` also one JSON document on stdout
/// (unless the command printed its report there).
pub fn report(e: &CliError, as_json: bool, operation: &OperationId) {
    let invalid = !e.violations.is_empty();
    if as_json && !e.report_printed {
        let kind = if invalid {
            "invalid_input"
        } else if e.code.is_refusal() {
            "usage"
        } else {
            "failure"
        };
        let mut doc = serde_json::json!({
            "error": kind,
            "code": e.code,
            "message": e.message,
            "causes": e.causes,
            "operation_id": operation,
        });
        if invalid {
            doc["violations"] = serde_json::json!(e.violations);
        }
        // Printed as `output::json` prints (through the CLI's `println!`), but without its
        // error: a document of strings always serialises, and this is the last word anyway.
        if let Ok(text) = serde_json::to_string_pretty(&doc) {
            println!("{text}");
        }
    }
    eprintln!("error[{}]: {} (operation {operation})", e.code, e.message);
    for cause in &e.causes {
        eprintln!("  caused by: {cause}");
    }
    for v in &e.violations {
        let field = if v.field.is_empty() {
            "(file)"
        } else {
            v.field.as_str()
        };
        eprintln!("{field}: {} [{}]", v.message, v.code);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::DeliveryState;

    #[test]
    fn a_state_filter_parses_or_refuses_naming_the_states() {
        let states = DeliveryState::ALL.map(DeliveryState::as_str);
        let filter = |v: Option<&str>| {
            CliError::state_filter(
                v.map(str::to_owned),
                DeliveryState::parse,
                "a delivery state",
                &states,
            )
        };
        assert_eq!(filter(None).unwrap(), None);
        assert_eq!(
            filter(Some("Needs-Operator")).unwrap(),
            Some(DeliveryState::NeedsOperator)
        );
        let refused = filter(Some("lost")).unwrap_err();
        assert_eq!(refused.exit_code(), 2);
        assert_eq!(refused.message, "invalid --state");
        let [v] = refused.violations.as_slice() else {
            panic!("one violation: {:?}", refused.violations)
        };
        assert_eq!((v.field.as_str(), v.code), ("--state", "enum_invalid"));
        assert!(
            v.message
                .starts_with("\"lost\" is not a delivery state: queued, sending,"),
            "{}",
            v.message
        );
    }
}
