//! Reading a file that comes from outside the station (an order application, its documents, a
//! seal handed to `seal verify`): regular files only, never more than a limit.
//!
//! Invariants, whatever the path names:
//! - opening never blocks: the file is opened with `O_NONBLOCK`, so a FIFO with no writer does
//!   not hang the station, and anything that is not a regular file (FIFO, socket, device such as
//!   `/dev/zero`, directory) is refused from the opened handle's metadata before a byte is read;
//! - at most `limit + 1` bytes are ever read, so a file that grows while it is read, or lies about
//!   its size, cannot make the station allocate more than the limit.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputFileError {
    /// The file is larger than the limit; reading stopped there.
    #[error("larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The path names a FIFO, socket, device or directory.
    #[error("not a regular file")]
    NotRegularFile,
    /// Opening or reading failed (missing, permissions...).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads the regular file at `path` (symlinks followed) if it holds at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, InputFileError> {
    let f = open_nonblocking(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(InputFileError::NotRegularFile);
    }
    if meta.len() > limit {
        return Err(InputFileError::TooLarge { limit });
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(InputFileError::TooLarge { limit });
    }
    Ok(buf)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Without O_NONBLOCK, open(2) of a FIFO waits for a writer, possibly forever. On a regular
    // file the flag changes nothing.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_a_file_up_to_the_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&p, 4),
            Err(InputFileError::TooLarge { limit: 4 })
        ));
    }

    #[test]
    fn refuses_directories_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_bounded(dir.path(), 10),
            Err(InputFileError::NotRegularFile)
        ));
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 10),
            Err(InputFileError::NotRegularFile)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_writer_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Without O_NONBLOCK this open would wait for a writer forever.
        assert!(matches!(
            read_bounded(&fifo, 10),
            Err(InputFileError::NotRegularFile)
        ));
    }
}
