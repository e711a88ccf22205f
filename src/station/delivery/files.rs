//! Files of the delivery worker: its directories (resolved once, [`DeliveryPaths`]), its lock,
//! credential files, and the atomic, never-overwriting publication of a bank file.
//!
//! # Security notes
//! A pain.001 holds PINs in its memos: it is created with mode 0600 (never wider first), written
//! to a hidden temp name in the outbound directory (`.NAME.tmp`, which the bank's agent ignores),
//! fsynced, then published with `link(2)` — which fails instead of replacing an existing file —
//! and the temp name removed. A temp file left by a crash is removed by the worker at start-up.

use super::error::DeliveryError;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The directories of PIN delivery, resolved against the station's data directory: where the
/// station's delivery code and `check` read their configured (possibly relative) paths. (The
/// demo's simulated gateway and bank read them as the agents would, from the configuration.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPaths {
    /// SMS spool (`delivery.sms.spool_dir`).
    pub spool_dir: PathBuf,
    /// Where pain.001 files go (`delivery.bank.outbound_dir`).
    pub outbound_dir: PathBuf,
    /// Where the bank's pain.002 / camt.054 arrive (`delivery.bank.inbound_dir`).
    pub inbound_dir: PathBuf,
}

impl DeliveryPaths {
    /// Resolves `[delivery]`'s directories.
    pub fn resolve(config: &crate::config::Config) -> DeliveryPaths {
        let d = &config.delivery;
        DeliveryPaths {
            spool_dir: config.path(&d.sms.spool_dir),
            outbound_dir: config.path(&d.bank.outbound_dir),
            inbound_dir: config.path(&d.bank.inbound_dir),
        }
    }
}

/// Holds the station's delivery-worker lock (an exclusive `flock` on a file in the data
/// directory) for as long as it lives, so two `deliver run` of one station never work at once:
/// each would take the other's in-flight sends for crashed ones.
#[derive(Debug)]
pub struct WorkerLock {
    _file: File,
    path: PathBuf,
}

impl WorkerLock {
    /// Takes the lock without waiting; [`DeliveryError::Locked`] if another process has it.
    pub fn acquire(path: &Path) -> Result<WorkerLock, DeliveryError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| DeliveryError::Io {
                what: "opening the worker lock",
                path: path.display().to_string(),
                source,
            })?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |e| {
                if e == rustix::io::Errno::WOULDBLOCK {
                    DeliveryError::Locked(path.display().to_string())
                } else {
                    DeliveryError::Io {
                        what: "locking",
                        path: path.display().to_string(),
                        source: e.into(),
                    }
                }
            },
        )?;
        Ok(WorkerLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a channel credential: the first line of a file only the station user may read.
pub(super) fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, DeliveryError> {
    crate::private_files::read_secret_line(path).map_err(|reason| DeliveryError::SecretFile {
        path: path.display().to_string(),
        reason,
    })
}

/// Creates a directory the worker writes into (mode 0700), or requires the existing one to be
/// private: spool and bank files hold PINs in clear until they are collected.
pub(super) fn ensure_dir(path: &Path) -> Result<(), DeliveryError> {
    if !path.is_dir() {
        crate::private_files::create_dir(path).map_err(|source| DeliveryError::Io {
            what: "creating directory",
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(crate::private_files::check_dir(path, "delivery directory")?)
}

/// The temp name under which `name` is prepared in its directory.
pub(super) fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// How publishing a file failed.
#[derive(Debug)]
pub(super) enum PublishError {
    /// Nothing reached the final name (the temp file, if any, was removed).
    NotPublished(std::io::Error),
    /// The final name already exists; nothing was written over it.
    AlreadyExists,
}

/// Writes `bytes` as `dir/name`: temp file (0600) + fsync + `link` to the final name (fails if
/// it exists) + unlink temp + fsync directory. Once `link` succeeded the file is published even
/// if the last fsync fails (logged): the caller must then record it as emitted.
pub(super) fn publish_new_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PublishError> {
    let final_path = dir.join(name);
    let temp = dir.join(temp_name(name));
    if fs::symlink_metadata(&final_path).is_ok() {
        return Err(PublishError::AlreadyExists);
    }
    // A temp file of an earlier, interrupted attempt: never published, safe to drop.
    let _ = fs::remove_file(&temp);
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(PublishError::NotPublished(e));
    }
    if let Err(e) = fs::hard_link(&temp, &final_path) {
        let _ = fs::remove_file(&temp);
        return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
            PublishError::AlreadyExists
        } else {
            PublishError::NotPublished(e)
        });
    }
    if let Err(e) = fs::remove_file(&temp) {
        tracing::warn!(path = %temp.display(), error = %e, "could not remove a published file's temp name");
    }
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not fsync the outbound directory");
    }
    Ok(())
}

/// Removes the temp file of `name` if an interrupted attempt left one (it holds PINs).
pub(super) fn remove_stale_temp(dir: &Path, name: &str) -> bool {
    fs::remove_file(dir.join(temp_name(name))).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn publish_never_overwrites_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        publish_new_file(dir.path(), "A.xml", b"first").unwrap();
        assert!(matches!(
            publish_new_file(dir.path(), "A.xml", b"second"),
            Err(PublishError::AlreadyExists)
        ));
        assert_eq!(fs::read(dir.path().join("A.xml")).unwrap(), b"first");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("A.xml")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("A.xml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn publish_into_a_missing_directory_is_not_published() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            publish_new_file(&missing, "A.xml", b"x"),
            Err(PublishError::NotPublished(_))
        ));
    }

    #[test]
    fn worker_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.lock");
        let held = WorkerLock::acquire(&path).unwrap();
        assert!(matches!(
            WorkerLock::acquire(&path),
            Err(DeliveryError::Locked(_))
        ));
        drop(held);
        WorkerLock::acquire(&path).unwrap();
    }

    #[test]
    fn secret_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        fs::write(&path, "topsecret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && !err.contains("topsecret"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&path).unwrap().as_str(), "topsecret");
    }
}
