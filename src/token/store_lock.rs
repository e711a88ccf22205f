//! One lock for every process that uses one SoftHSM token store (the stations of an installation
//! whose shared HSM is SoftHSM, in tests and the demo).
//!
//! SoftHSM is not safe against itself across processes: it keeps each token's state in a
//! `token.object` file that it rewrites in place on every login (and on `C_InitToken` and
//! `C_InitPIN`), and it reads that file whenever a process asks for the token's info. Its own
//! `fcntl` locks do not hold in a multi-threaded process (closing any descriptor of a file drops
//! every lock the process holds on it, and SoftHSM opens and closes the file from one thread
//! while another writes it), so a process reading a token while another logs in to it may read
//! a half-written file. SoftHSM then marks the token invalid and never reads it again: the
//! process misses the token for the rest of its life (a batch found no CA or no vault, and took
//! no order). SoftHSM also lists the store's tokens only when it is initialised, so a process
//! starting while another writes a token misses that token the same way.
//!
//! So, with a [`StoreLock`] on the module, every token read (`C_GetSlotList`, `C_GetTokenInfo`)
//! takes the lock shared, and every write of a token's state (logins, `C_InitToken`,
//! `C_InitPIN`, the vault's held anchor) and the module's initialisation take it exclusive. It is
//! an `flock` on a file beside the store's configuration, taken on a new descriptor each time, so
//! it also holds between the threads of one process. Key generation and the objects written to
//! a customer's new key are left out: no other process can see a token created after it started.
//! Another module (a network HSM's, a USB key's) gets no lock.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The lock of one SoftHSM store (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLock {
    path: PathBuf,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct StoreGuard {
    _file: File,
}

impl StoreLock {
    /// The lock of the store configured by `softhsm2_conf`: the file `<softhsm2_conf>.lock`.
    pub fn beside(softhsm2_conf: &Path) -> StoreLock {
        let mut path = softhsm2_conf.as_os_str().to_owned();
        path.push(".lock");
        StoreLock {
            path: PathBuf::from(path),
        }
    }

    /// Taken shared: no process writes a token's state meanwhile.
    pub fn shared(&self) -> Option<StoreGuard> {
        self.take(rustix::fs::FlockOperation::LockShared)
    }

    /// Taken exclusive: no other process, or thread, reads or writes a token meanwhile.
    pub fn exclusive(&self) -> Option<StoreGuard> {
        self.take(rustix::fs::FlockOperation::LockExclusive)
    }

    fn take(&self, how: rustix::fs::FlockOperation) -> Option<StoreGuard> {
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&self.path)
        };
        // No lock is no reason to refuse the token work: only the rare race above is left open.
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(lock = %self.path.display(), error = %e, "no lock on the SoftHSM store");
                return None;
            }
        };
        match rustix::fs::flock(&file, how) {
            Ok(()) => Some(StoreGuard { _file: file }),
            Err(e) => {
                tracing::debug!(lock = %self.path.display(), error = %e, "no lock on the SoftHSM store");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Shared locks go together; an exclusive one waits for every other, also one taken in the
    /// same process (each is its own descriptor).
    #[test]
    fn exclusive_excludes_shared_and_exclusive_within_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StoreLock::beside(&dir.path().join("softhsm2.conf"));
        let a = lock.shared().unwrap();
        let b = lock.shared().unwrap();
        let try_exclusive = || {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.path().join("softhsm2.conf.lock"))
                .unwrap();
            rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
        };
        assert!(
            !try_exclusive(),
            "an exclusive lock while two shared ones are held"
        );
        drop((a, b));
        assert!(try_exclusive());
        let held = lock.exclusive().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("softhsm2.conf.lock"))
            .unwrap();
        assert!(
            rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_err(),
            "a shared lock while an exclusive one is held"
        );
        drop(held);
        assert!(rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok());
    }
}
