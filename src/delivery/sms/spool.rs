//! Spool channel: one JSON file per message in a directory, for a gateway agent to send.
//!
//! Responsibility: publish `{spool_dir}/{delivery_id}.json` with the fields `delivery_id`, `to`,
//! `order_no`, `text`, `created_at` (RFC 3339), mode 0600.
//!
//! Invariants:
//! - Atomic: the agent never sees a partial file. The record is written to a hidden temp file in the
//!   same directory (`.{delivery_id}.{nonce}.tmp`, so an agent matching `*.json` ignores it),
//!   fsynced, then published under its final name, then the directory is fsynced.
//! - Idempotent: a file that already exists for a `delivery_id` is never rewritten; the send is then
//!   `Accepted`. Publication uses `link(2)` (which fails if the target exists) rather than
//!   `rename(2)` (which silently replaces it), so even two concurrent senders of the same delivery
//!   cannot overwrite each other; the temp name is then unlinked.
//! - The agent contract: the agent must leave `{delivery_id}.json` in place (recording its own
//!   progress elsewhere); idempotency and `query` rely on the file's presence.
//! - IO failures (disk full, permissions, missing directory) are `Retryable` with the step and the
//!   directory named; no temp file is left behind on failure.
//!
//! Security notes: the file holds the PIN in clear for the agent, hence mode 0600 from creation
//! (never a wider mode first); the serialized record lives in a zeroizing buffer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::{
    OutgoingSms, QueryOutcome, RequestStamps, SendOutcome, json_escaped_bound, to_json_zeroizing,
};

/// Spool directory channel.
#[derive(Debug)]
pub struct SpoolChannel {
    dir: PathBuf,
    stamps: Arc<dyn RequestStamps>,
}

/// The on-disk record. Borrowed from the message, serialized only into a zeroizing buffer.
#[derive(Serialize)]
struct SpoolRecord<'a> {
    delivery_id: &'a str,
    to: &'a str,
    order_no: &'a str,
    text: &'a str,
    created_at: &'a str,
}

/// Result of a successful spool write.
#[derive(Debug, PartialEq, Eq)]
enum Published {
    /// We wrote the file.
    Written,
    /// A file for this delivery already existed and was left untouched.
    AlreadyPresent,
}

/// A failed spool step, for a reason string that says what failed where.
struct SpoolIoError {
    step: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl SpoolChannel {
    /// A channel writing into `dir`. The directory is not touched until the first send, so a
    /// missing or unwritable directory shows up as `Retryable` outcomes naming it.
    pub fn new(dir: impl Into<PathBuf>, stamps: Arc<dyn RequestStamps>) -> Self {
        Self {
            dir: dir.into(),
            stamps,
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Final path of a delivery's file. `delivery_id` is restricted to `[A-Za-z0-9_-]` by
    /// [`OutgoingSms::new`], so it cannot escape the directory.
    fn final_path(&self, delivery_id: &str) -> PathBuf {
        self.dir.join(format!("{delivery_id}.json"))
    }

    pub(super) async fn send(&self, sms: &OutgoingSms) -> SendOutcome {
        let created_at = match self.stamps.now().format(&Rfc3339) {
            Ok(t) => t,
            Err(e) => {
                return SendOutcome::Retryable {
                    reason: format!("spool: cannot format created_at: {e}"),
                };
            }
        };
        let nonce = match self.stamps.nonce() {
            Ok(n) => n,
            Err(e) => {
                return SendOutcome::Retryable {
                    reason: format!("spool: {e}"),
                };
            }
        };
        let record = SpoolRecord {
            delivery_id: sms.delivery_id(),
            to: sms.phone(),
            order_no: sms.order_no(),
            text: sms.text().expose_secret(),
            created_at: &created_at,
        };
        let capacity = 128
            + json_escaped_bound(record.delivery_id)
            + json_escaped_bound(record.to)
            + json_escaped_bound(record.order_no)
            + json_escaped_bound(record.text)
            + json_escaped_bound(record.created_at);
        let bytes = match to_json_zeroizing(&record, capacity) {
            Ok(b) => b,
            Err(e) => {
                return SendOutcome::Permanent {
                    reason: format!("spool: cannot serialize the record: {e}"),
                };
            }
        };
        let final_path = self.final_path(sms.delivery_id());
        let temp_path = self.dir.join(format!(".{}.{nonce}.tmp", sms.delivery_id()));
        let dir = self.dir.clone();
        let provider_id = format!("{}.json", sms.delivery_id());
        // File IO blocks (fsync especially): keep it off the async worker threads.
        let joined = tokio::task::spawn_blocking(move || {
            publish_atomically(&dir, &temp_path, &final_path, &bytes)
        })
        .await;
        match joined {
            Ok(Ok(_)) => SendOutcome::Accepted { provider_id },
            Ok(Err(e)) => SendOutcome::Retryable {
                reason: describe_io_error(&e),
            },
            Err(e) => SendOutcome::Retryable {
                reason: format!("spool: writer task failed: {e}"),
            },
        }
    }

    /// Removes the temp files that an interrupted send of `delivery_id` left behind (a crash
    /// between writing and publishing: they hold the PIN and were never published). Returns how
    /// many were removed; a published `{delivery_id}.json` is never touched.
    pub fn remove_stale_temps(&self, delivery_id: &str) -> usize {
        let prefix = format!(".{delivery_id}.");
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(&prefix) && name.ends_with(".tmp")
            })
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .count()
    }

    pub(super) async fn query(&self, sms: &OutgoingSms) -> QueryOutcome {
        let path = self.final_path(sms.delivery_id());
        match tokio::fs::try_exists(&path).await {
            Ok(true) => QueryOutcome::Accepted {
                provider_id: format!("{}.json", sms.delivery_id()),
            },
            Ok(false) => QueryOutcome::NotFound,
            Err(e) => QueryOutcome::Failed {
                reason: format!("spool: cannot check {}: {e}", path.display()),
            },
        }
    }
}

fn describe_io_error(e: &SpoolIoError) -> String {
    let hint = match e.source.kind() {
        io::ErrorKind::StorageFull => " (disk full)",
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            " (spool directory not writable)"
        }
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => " (spool directory missing)",
        _ => "",
    };
    format!(
        "spool: {} failed for {}{hint}: {}",
        e.step,
        e.path.display(),
        e.source
    )
}

/// Writes `bytes` to `temp`, makes it durable, publishes it as `final_path` unless that exists,
/// and removes the temp name. Blocking.
fn publish_atomically(
    dir: &Path,
    temp: &Path,
    final_path: &Path,
    bytes: &[u8],
) -> Result<Published, SpoolIoError> {
    // Fast path: never rewrite an existing delivery.
    if fs::symlink_metadata(final_path).is_ok() {
        return Ok(Published::AlreadyPresent);
    }
    if let Err(source) = write_durable(temp, bytes) {
        let _ = fs::remove_file(temp);
        return Err(SpoolIoError {
            step: "writing the temp file",
            path: temp.to_path_buf(),
            source,
        });
    }
    publish_temp(dir, temp, final_path)
}

/// Publishes a complete, fsynced temp file as `final_path` without ever replacing an existing
/// file, removes the temp name and fsyncs the directory so both changes survive a crash.
fn publish_temp(dir: &Path, temp: &Path, final_path: &Path) -> Result<Published, SpoolIoError> {
    let linked = match fs::hard_link(temp, final_path) {
        Ok(()) => Ok(Published::Written),
        // A concurrent sender published first: its file stays, ours is dropped.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Published::AlreadyPresent),
        Err(source) => Err(SpoolIoError {
            step: "publishing the file",
            path: final_path.to_path_buf(),
            source,
        }),
    };
    // Remove the temp name whatever happened, so no temp file is left behind.
    let removed = fs::remove_file(temp);
    let published = linked?;
    removed.map_err(|source| SpoolIoError {
        step: "removing the temp file",
        path: temp.to_path_buf(),
        source,
    })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SpoolIoError {
            step: "syncing the spool directory",
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(published)
}

fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn publish_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let final_path = dir.path().join("d1.json");
        let temp = dir.path().join(".d1.n1.tmp");
        assert_eq!(
            publish_atomically(dir.path(), &temp, &final_path, b"first").ok(),
            Some(Published::Written)
        );
        assert!(!temp.exists());
        // A racing sender that checked before the file existed reaches the link step.
        fs::write(&temp, b"second").unwrap();
        assert_eq!(
            publish_temp(dir.path(), &temp, &final_path).ok(),
            Some(Published::AlreadyPresent)
        );
        assert_eq!(fs::read(&final_path).unwrap(), b"first");
        assert!(!temp.exists());
        // And the fast path leaves it alone too.
        assert_eq!(
            publish_atomically(dir.path(), &temp, &final_path, b"third").ok(),
            Some(Published::AlreadyPresent)
        );
        assert_eq!(fs::read(&final_path).unwrap(), b"first");
        assert!(!temp.exists());
    }

    #[test]
    fn stale_temps_of_one_delivery_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".d1.n1.tmp",
            ".d1.n2.tmp",
            ".d10.n1.tmp",
            "d1.json",
            ".other",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let channel =
            SpoolChannel::new(dir.path(), Arc::new(super::super::SystemStamps::default()));
        assert_eq!(channel.remove_stale_temps("d1"), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".d10.n1.tmp", ".other", "d1.json"]);
    }

    #[test]
    fn failure_names_step_and_path_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let temp = missing.join(".d1.n.tmp");
        let err = publish_atomically(&missing, &temp, &missing.join("d1.json"), b"x")
            .err()
            .unwrap();
        let reason = describe_io_error(&err);
        assert!(reason.contains("writing the temp file"), "{reason}");
        assert!(reason.contains("missing"), "{reason}");
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
