//! The station's files and directories are readable by its own user only: they hold ID-card
//! images, ID and phone numbers (the database), sealed PINs, PINs in clear on their way out
//! (spool and bank files) and the station PIN.
//!
//! Three layers, so that no single forgotten mode leaks:
//! - the binary sets its umask to 077 at start-up ([`restrict_umask`]): whatever the station, SQLite
//!   (database, `-wal`, `-shm`) or SoftHSM creates is 0600 / 0700;
//! - what the station creates itself gets its mode explicitly ([`create_dir`], [`write_file`],
//!   [`restrict_sqlite_files`]), whatever the umask of the process (the library is used without
//!   the binary too);
//! - a directory or secret file that group or others may open is refused when the station starts
//!   using it ([`check_dir`], and [`too_open`] for the callers that read secret files), as the
//!   station PIN file always was: the operator fixes it with the `chmod` the message names.

use std::fs::{self, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A station directory or file that group or others may open, or that cannot be checked.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {reason}")]
pub struct NotPrivate {
    /// What it is to the station ("data directory", ...).
    pub what: &'static str,
    /// The path.
    pub path: String,
    /// Why it is refused, with the fix.
    pub reason: String,
}

impl crate::error_code::Coded for NotPrivate {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        ec::NOT_PRIVATE
    }
}

/// Sets the process umask to 077 (no permission for group or others on anything created).
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Why `meta` lets group or others in, with the `chmod` that fixes it; `None` when private.
pub fn too_open(meta: &Metadata) -> Option<String> {
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "readable by group or others (mode {mode:o}); run chmod {} on it",
            if meta.is_dir() { "700" } else { "600" }
        )
    })
}

/// Reads a secret file (a PIN, a credential, a key): its first line, without a trailing `\r`.
/// Refused with the reason, for the caller to name the file, unless it is a file only its owner
/// may read and that line is not empty.
pub fn read_secret_line(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if let Some(reason) = too_open(&meta) {
        return Err(reason);
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(|e| e.to_string())?);
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err("empty".into());
    }
    Ok(zeroize::Zeroizing::new(line.to_string()))
}

/// Requires `path` to be a directory only its owner may open.
pub fn check_dir(path: &Path, what: &'static str) -> Result<(), NotPrivate> {
    let refuse = |reason: String| NotPrivate {
        what,
        path: path.display().to_string(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_dir() {
        return Err(refuse("not a directory".into()));
    }
    match too_open(&meta) {
        Some(reason) => Err(refuse(reason)),
        None => Ok(()),
    }
}

/// Creates `path` and its missing parents with mode 0700 (existing ones are left as they are).
pub fn create_dir(path: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Writes `bytes` to `path` (created or truncated) with mode 0600, also when it existed.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `path` with mode 0600 and writes `bytes`; refuses (`AlreadyExists`) when something is
/// there already, so a file written once (an operator's credential) is never overwritten.
pub fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Removes a file that held a secret (a PIN in a spool or bank file): its bytes are overwritten
/// with zeros and synced first, unless another name links to the same file (an agent that
/// collected it with `link(2)`: that copy is the agent's, and zeroing would destroy it). Then the
/// name is removed and the directory synced. `false` when the file did not exist.
///
/// Overwriting is a best effort against someone reading the freed blocks of a plain file system;
/// a copy-on-write or journalled file system, or an SSD's remapping, may keep the old blocks.
/// The 0700 directory is what keeps others out while the file exists.
pub fn erase_file(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.is_file() && meta.nlink() == 1 {
        let mut f = OpenOptions::new().write(true).open(path)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = meta.len();
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(true)
}

/// Gives a SQLite database file (`sqlite://PATH?...`) and its `-wal` / `-shm` files mode 0600.
/// SQLite creates the `-wal` and `-shm` files with the mode of the database file, so this holds
/// for them from then on too. Other URLs (PostgreSQL) have no file here.
pub fn restrict_sqlite_files(url: &str) -> std::io::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        match fs::set_permissions(&file, fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn loose_directories_are_refused_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        create_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        check_dir(&dir, "data directory").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_dir(&dir, "data directory").unwrap_err().to_string();
        assert!(
            err.starts_with("data directory ")
                && err.contains("mode 755")
                && err.contains("chmod 700"),
            "{err}"
        );
        assert!(check_dir(&tmp.path().join("missing"), "data directory").is_err());
    }

    #[test]
    fn files_are_written_0600_even_over_a_loose_one() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        fs::write(&f, "old").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        write_file(&f, b"new").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(too_open(&fs::metadata(&f).unwrap()).is_none());
    }

    #[test]
    fn erased_files_are_zeroed_unless_someone_else_links_them() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("pin.json");
        fs::write(&f, "PIN Ab3k9Qz7").unwrap();
        // Keep a handle: it still sees the inode's bytes after the name is gone.
        let mut held = fs::File::open(&f).unwrap();
        assert!(erase_file(&f).unwrap());
        assert!(!f.exists());
        let mut after = Vec::new();
        std::io::Read::read_to_end(&mut held, &mut after).unwrap();
        assert_eq!(after, vec![0u8; "PIN Ab3k9Qz7".len()]);
        assert!(!erase_file(&f).unwrap());

        // An agent's hard link keeps its content.
        let g = tmp.path().join("pain.xml");
        let agents = tmp.path().join("agent-copy.xml");
        fs::write(&g, "memo").unwrap();
        fs::hard_link(&g, &agents).unwrap();
        assert!(erase_file(&g).unwrap());
        assert_eq!(fs::read_to_string(&agents).unwrap(), "memo");
    }

    #[test]
    fn sqlite_files_are_restricted() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("station.db");
        for f in [&db, &tmp.path().join("station.db-wal")] {
            fs::write(f, "x").unwrap();
            fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
        }
        restrict_sqlite_files(&format!("sqlite://{}?mode=rwc", db.display())).unwrap();
        for f in [&db, &tmp.path().join("station.db-wal")] {
            assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
        }
        restrict_sqlite_files("postgres:///x").unwrap();
    }
}
