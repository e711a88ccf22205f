//! Printing: JSON for machines, aligned text for people, and the one writer of stdout.
//!
//! Every line a command prints goes through [`print_line`] (the CLI's `println!` is routed there,
//! see `cli/mod.rs`): when the reader of a pipe goes away (`keystation order list | head -1`)
//! the rest of the output is dropped quietly and the command still finishes its work and exits
//! with its own code; the standard `println!` would panic with a backtrace instead.

use super::error::CliError;
use crate::station::error_code as ec;
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

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(ec::OUTPUT, format!("serialising the output: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints a list as JSON, or as a [`table`] under `headers` with one `row` per item.
pub fn listing<T: Serialize>(
    items: &[T],
    as_json: bool,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<(), CliError> {
    if as_json {
        return json(&items);
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    table(headers, &rows);
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
