//! Failpoints: named places where a test can make the station crash or fail on purpose.
//!
//! Driven by the `KEYSTATION_FAILPOINTS` environment variable, e.g.
//! `KEYSTATION_FAILPOINTS=provision.after_init_token=pause,import.before_commit=abort`:
//! - `abort`: the process aborts on the spot (no destructors, no commit) — a crash;
//! - `pause`: prints `keystation: failpoint NAME reached` on stderr and sleeps until killed, so a
//!   harness can SIGKILL it at exactly that point;
//! - `error`: [`check`] returns an [`InjectedFailure`] — an ordinary failure of that step;
//! - `sleepN`: prints the same line, sleeps N milliseconds, and goes on (a test does something to
//!   the world meanwhile, e.g. restarts the database).
//!
//! Failpoints exist only with the `test-hooks` feature, which test builds alone turn on (see
//! `Cargo.toml`); every other build, release or not, compiles them out and ignores the
//! variable. The variable carries no secret.

/// A failure injected by a failpoint with action `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected failure at failpoint {0}")]
pub struct InjectedFailure(pub String);

impl crate::error_code::Coded for InjectedFailure {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        ec::INJECTED_FAILURE
    }
}

/// Evaluates the failpoint `name`.
#[cfg(feature = "test-hooks")]
pub fn check(name: &str) -> Result<(), InjectedFailure> {
    let Ok(spec) = std::env::var("KEYSTATION_FAILPOINTS") else {
        return Ok(());
    };
    for item in spec.split(',') {
        let Some((point, action)) = item.trim().split_once('=') else {
            continue;
        };
        if point != name {
            continue;
        }
        match action {
            "abort" => {
                eprintln!("keystation: failpoint {name} reached: aborting");
                std::process::abort();
            }
            "pause" => {
                eprintln!("keystation: failpoint {name} reached");
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            "error" => return Err(InjectedFailure(name.to_string())),
            other => {
                if let Some(ms) = other
                    .strip_prefix("sleep")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    eprintln!("keystation: failpoint {name} reached");
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
            }
        }
    }
    Ok(())
}

/// Builds without the `test-hooks` feature: failpoints do not exist.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn check(_name: &str) -> Result<(), InjectedFailure> {
    Ok(())
}

/// A failpoint where only crashing makes sense (inside a transaction): `error` is ignored.
#[macro_export]
macro_rules! failpoint {
    ($name:expr) => {
        let _ = $crate::failpoint::check($name);
    };
}
