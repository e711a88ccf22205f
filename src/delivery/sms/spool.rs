//! Spool channel: one JSON file per message in a directory, for a gateway agent to send.
//!
//! Responsibility: publish `{spool_dir}/{delivery_id}.json` with the fields `delivery_id`, `to`,
//! `order_no`, `text`, `created_at` (RFC 3339), mode 0600; read the agent's receipt; remove the
//! station's copy once the agent has its own.
//!
//! The agent contract (README, "PIN delivery"): the agent reads `{delivery_id}.json`, hands the
//! SMS to its carrier, THEN writes the receipt `{delivery_id}.sent` (atomically: a temp name and
//! `rename`; any content up to 4 KiB without the message, e.g. `{"gateway_id": "..."}`), and
//! keeps no copy of the text. The receipt is what confirms the delivery (as a webhook gateway's
//! 2xx does); the station then overwrites and removes `{delivery_id}.json`, so no clear PIN stays
//! in the spool. The receipt stays: it is the evidence that the message went out.
//!
//! Invariants:
//! - Atomic: the agent never sees a partial file. The record is written to a hidden temp file in the
//!   same directory (`.{delivery_id}.{nonce}.tmp`, so an agent matching `*.json` ignores it),
//!   fsynced, then published under its final name, then the directory is fsynced.
//! - Idempotent: a file that already exists for a `delivery_id` is never rewritten; the send is then
//!   `Accepted`. Publication uses `link(2)` (which fails if the target exists) rather than
//!   `rename(2)` (which silently replaces it), so even two concurrent senders of the same delivery
//!   cannot overwrite each other; the temp name is then unlinked.
//! - Idempotency and `query` rely on the message file or its receipt: an agent may remove
//!   `{delivery_id}.json` only after writing `{delivery_id}.sent`. A delivery with a receipt is
//!   never published again.
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

use super::{OutgoingSms, QueryOutcome, RequestStamps, SendOutcome, message_json};

/// Spool directory channel.
#[derive(Debug)]
pub struct SpoolChannel {
    dir: PathBuf,
    stamps: Arc<dyn RequestStamps>,
}

/// Suffix of a message file.
pub const MESSAGE_SUFFIX: &str = ".json";
/// Suffix of the agent's receipt.
pub const RECEIPT_SUFFIX: &str = ".sent";
/// At most this much of a receipt is read.
const MAX_RECEIPT_BYTES: u64 = 4096;

/// Where one delivery stands in the spool directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolState {
    /// The agent's receipt is there: it sent the message (its own reference, if it gave one).
    Received {
        /// `gateway_id` from the receipt, if it is a JSON object with one.
        gateway_id: Option<String>,
    },
    /// The message waits for the agent.
    Waiting,
    /// Neither the message nor a receipt: never published, or taken without a receipt.
    Missing,
}

fn is_plain_name(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
        self.dir.join(format!("{delivery_id}{MESSAGE_SUFFIX}"))
    }

    /// Path of the agent's receipt for a delivery.
    fn receipt_path(&self, delivery_id: &str) -> PathBuf {
        self.dir.join(format!("{delivery_id}{RECEIPT_SUFFIX}"))
    }

    /// Where a delivery stands in the spool. `delivery_id` must be one the station made (a
    /// UUID); anything with a path separator is never looked up.
    pub fn state(&self, delivery_id: &str) -> io::Result<SpoolState> {
        if !is_plain_name(delivery_id) {
            return Ok(SpoolState::Missing);
        }
        match File::open(self.receipt_path(delivery_id)) {
            Ok(f) => {
                use std::io::Read;
                let mut text = String::new();
                f.take(MAX_RECEIPT_BYTES).read_to_string(&mut text).ok();
                let gateway_id = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["gateway_id"].as_str().map(str::to_string))
                    .filter(|id| id.len() <= 128 && !id.chars().any(char::is_control));
                return Ok(SpoolState::Received { gateway_id });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match fs::symlink_metadata(self.final_path(delivery_id)) {
            Ok(_) => Ok(SpoolState::Waiting),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SpoolState::Missing),
            Err(e) => Err(e),
        }
    }

    /// Overwrites and removes the station's copy of a delivery's message (see
    /// [`crate::private_files::erase_file`]); `false` when there was none. The agent's receipt,
    /// if any, stays as the station's evidence, made private like everything the station keeps
    /// (the agent may have written it with a looser mode).
    pub fn remove_message(&self, delivery_id: &str) -> io::Result<bool> {
        if !is_plain_name(delivery_id) {
            return Ok(false);
        }
        let removed = crate::private_files::erase_file(&self.final_path(delivery_id))?;
        match fs::set_permissions(
            self.receipt_path(delivery_id),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        ) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(removed)
    }

    /// The delivery ids of the messages in the spool (`*.json`, not temp files).
    pub fn message_ids(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(MESSAGE_SUFFIX) {
                if is_plain_name(id) {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
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
        let fields = [
            record.delivery_id,
            record.to,
            record.order_no,
            record.text,
            record.created_at,
        ];
        let bytes = match message_json("spool", "record", &record, &fields) {
            Ok(b) => b,
            Err(outcome) => return outcome,
        };
        let final_path = self.final_path(sms.delivery_id());
        let temp_path = self.dir.join(format!(".{}.{nonce}.tmp", sms.delivery_id()));
        let dir = self.dir.clone();
        let provider_id = format!("{}.json", sms.delivery_id());
        // The agent sent it already (and may have removed the message): never publish again.
        if self.receipt_path(sms.delivery_id()).exists() {
            return SendOutcome::Accepted { provider_id };
        }
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
        let provider_id = format!("{}.json", sms.delivery_id());
        match self.state(sms.delivery_id()) {
            Ok(SpoolState::Received { .. }) => QueryOutcome::Delivered { provider_id },
            Ok(SpoolState::Waiting) => QueryOutcome::Accepted { provider_id },
            Ok(SpoolState::Missing) => QueryOutcome::NotFound,
            Err(e) => QueryOutcome::Failed {
                reason: format!("spool: cannot check {}: {e}", self.dir.display()),
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
    fn receipts_confirm_and_the_station_copy_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let channel =
            SpoolChannel::new(dir.path(), Arc::new(super::super::SystemStamps::default()));
        assert_eq!(channel.state("d1").unwrap(), SpoolState::Missing);
        fs::write(dir.path().join("d1.json"), b"{\"text\":\"PIN\"}").unwrap();
        fs::write(dir.path().join("d2.json"), b"x").unwrap();
        assert_eq!(channel.message_ids().unwrap(), ["d1", "d2"]);
        assert_eq!(channel.state("d1").unwrap(), SpoolState::Waiting);
        fs::write(dir.path().join("d1.sent"), b"{\"gateway_id\":\"GW-7\"}").unwrap();
        assert_eq!(
            channel.state("d1").unwrap(),
            SpoolState::Received {
                gateway_id: Some("GW-7".into())
            }
        );
        assert!(channel.remove_message("d1").unwrap());
        assert!(!channel.remove_message("d1").unwrap());
        assert!(!dir.path().join("d1.json").exists());
        // The receipt stays, and still says the message went out.
        assert!(matches!(
            channel.state("d1").unwrap(),
            SpoolState::Received { .. }
        ));
        // A receipt that is not JSON still counts; names that could escape are never read.
        fs::write(dir.path().join("d2.sent"), b"ok").unwrap();
        assert_eq!(
            channel.state("d2").unwrap(),
            SpoolState::Received { gateway_id: None }
        );
        assert_eq!(channel.state("../d2").unwrap(), SpoolState::Missing);
        assert!(!channel.remove_message("../d2").unwrap());
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
