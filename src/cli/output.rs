//! Printing: JSON for machines, aligned text for people, and the one writer of stdout.
//!
//! Every line a command prints goes through [`print_line`] (the CLI's `println!` is routed there,
//! see `cli/mod.rs`): when the reader of a pipe goes away (`keystation order list | head -1`)
//! the rest of the output is dropped quietly and the command still finishes its work and exits
//! with its own code; the standard `println!` would panic with a backtrace instead.

use super::CliError;
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout could not be written: nothing more is written to it.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// A write error other than a closed pipe (a full disk behind a redirection): reported at exit.
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes one line to stdout. A closed pipe ends the output silently; any other write error
/// ends it too and is reported by [`stdout_error`] when the command has finished.
pub fn print_line(args: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            if let Ok(mut slot) = STDOUT_ERROR.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Why stdout could not be written, unless its reader simply went away.
pub fn stdout_error() -> Option<String> {
    STDOUT_ERROR.lock().ok().and_then(|slot| slot.clone())
}

/// An error and its causes as one line. A cause whose text its parent already shows (an error
/// type that prints its source in its own message, as `"{path}: {source}"` does) is not repeated:
/// `anyhow`'s `{:#}` would print "reading F: No such file: No such file".
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failure(e.into()))?;
    println!("{text}");
    Ok(())
}

/// Prints rows as a left-aligned table (widths by character count, good enough for CJK mixed
/// with ASCII in a terminal that renders CJK double-width: we count CJK as two columns).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let width = |s: &str| -> usize {
        s.chars()
            .map(|c| {
                if (c as u32) >= 0x1100 && is_wide(c) {
                    2
                } else {
                    1
                }
            })
            .sum()
    };
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(width(cell));
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i].saturating_sub(width(c)) + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF |
        0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 |
        0xFFE0..=0xFFE6)
}

/// Reports a failed command: stderr for people; with `--json` also a JSON error on stdout.
pub fn report_error(e: &CliError, as_json: bool) {
    match e {
        CliError::Invalid(vs) => {
            if as_json {
                let _ = json(&serde_json::json!({ "error": "invalid_input", "violations": vs }));
            }
            for v in vs {
                let field = if v.field.is_empty() {
                    "(file)"
                } else {
                    v.field.as_str()
                };
                eprintln!("{field}: {} [{}]", v.message, v.code);
            }
        }
        CliError::Usage(msg) => {
            if as_json {
                let _ = json(&serde_json::json!({ "error": "usage", "message": msg }));
            }
            eprintln!("error: {msg}");
        }
        CliError::Verdict(msg) => eprintln!("{msg}"),
        CliError::Failure(err) => {
            let text = error_text(err);
            if as_json {
                let _ = json(&serde_json::json!({ "error": "failure", "message": text }));
            }
            eprintln!("error: {text}");
        }
    }
}
