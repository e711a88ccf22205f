//! Writing a CRL into the publication directory: atomically (a temporary file in the same
//! directory, synced, renamed over the old one, the directory synced), so a web server serving
//! the directory never hands out half a CRL; world-readable, since a CRL is public (the one
//! exception to the station's private files).

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the published CRL: anyone may read it.
const PUBLIC_FILE: u32 = 0o644;
/// Mode of a directory created for it (a web server running as another user reaches the file).
const PUBLIC_DIR: u32 = 0o755;

/// Writes `der` at `path` atomically (see the module docs), creating missing directories.
pub(super) fn write_atomically(path: &Path, der: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no parent directory")
    })?;
    create_public_dirs(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden, and named by this process: a web server skips it, two processes never share one.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(PUBLIC_FILE)
            .open(&tmp)?;
        // The umask may have taken bits away from the mode given to open.
        f.set_permissions(fs::Permissions::from_mode(PUBLIC_FILE))?;
        f.write_all(der)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Creates `dir` and its missing parents with mode 0755 whatever the umask; directories that
/// exist keep their mode (the operator's choice, e.g. a group for the web server).
fn create_public_dirs(dir: &Path) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for d in missing.into_iter().rev() {
        match DirBuilder::new().mode(PUBLIC_DIR).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(PUBLIC_DIR))?,
            // Another process made it meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_and_world_readable() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let path = tmp.path().join("crl/a/unit-ca.crl");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, PUBLIC_FILE);
        // No temporary file left beside it.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["unit-ca.crl"]);
        // The directories it made are public too, whatever the process's umask; one that
        // existed keeps its mode.
        for made in ["crl", "crl/a"] {
            let mode = fs::metadata(tmp.path().join(made))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, PUBLIC_DIR, "{made}");
        }
        let kept = fs::metadata(tmp.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(kept, 0o700);
    }
}
