//! The on-disk store: one directory per initialised token under the configured `token_dir`,
//! named by the token's serial, holding `token.json` (everything about the token) and `lock`.
//!
//! - Every change is read-modify-write under an exclusive `flock` on `lock`, and `token.json` is
//!   replaced atomically (write a temporary file, fsync, rename), so two processes using the
//!   same store (the station and a `pkcs11-tool` run) never lose each other's changes, and a
//!   crash leaves the old or the new file, never half of one.
//! - A process notices another's change by the file's identity (inode, size, mtime): a rename
//!   always makes a new inode.
//! - Secret key values are sealed with the token key ([`crate::pin`]); everything else, PIN
//!   records included, is only useful with a PIN.
//!
//! Removing a token's directory is how a test pulls the key out: the token is then absent.

use crate::attrs::Attributes;
use crate::pin::{PinCounter, PinRecord, Sealed};
use cryptoki_sys::CK_ATTRIBUTE_TYPE;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const TOKEN_FILE: &str = "token.json";
const LOCK_FILE: &str = "lock";
const FORMAT: u32 = 1;

/// A stored object: its attributes (hex, keyed by `CKA_*` number) and, for a private key, its
/// secret value sealed with the token key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredObject {
    attributes: BTreeMap<String, String>,
    /// A private key's value, sealed with the token key; `None` for any other object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Sealed>,
}

impl StoredObject {
    /// Stores `attrs` (which must not hold the secret value) with `secret`.
    pub fn new(attrs: &Attributes, secret: Option<Sealed>) -> StoredObject {
        StoredObject {
            attributes: attrs
                .iter()
                .map(|(t, v)| (format!("{t:#x}"), hex::encode(v)))
                .collect(),
            secret,
        }
    }

    /// The attributes.
    pub fn attributes(&self) -> Result<Attributes, StoreError> {
        let mut pairs = Vec::with_capacity(self.attributes.len());
        for (t, v) in &self.attributes {
            let t = t
                .strip_prefix("0x")
                .and_then(|h| CK_ATTRIBUTE_TYPE::from_str_radix(h, 16).ok())
                .ok_or_else(|| StoreError(format!("bad attribute type {t:?}")))?;
            let v = hex::decode(v).map_err(|e| StoreError(format!("attribute {t:#x}: {e}")))?;
            pairs.push((t, v));
        }
        Ok(Attributes::from_pairs(pairs))
    }
}

/// Everything about one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// Version of this file's layout; a file of another version is refused.
    pub format: u32,
    /// The token's serial number (`CK_TOKEN_INFO.serialNumber`), also its directory's name.
    pub serial: String,
    /// The label given at `C_InitToken`.
    pub label: String,
    /// The SO PIN's record.
    pub so_pin: PinRecord,
    /// The SO PIN's wrong-PIN counter.
    pub so_tries: PinCounter,
    /// The user PIN's record; `None` until `C_InitPIN`.
    pub user_pin: Option<PinRecord>,
    /// The user PIN's wrong-PIN counter.
    pub user_tries: PinCounter,
    /// Object ids are never reused, so a handle can never name a successor object.
    pub next_object: u64,
    /// The token's objects by id.
    pub objects: BTreeMap<u64, StoredObject>,
}

impl TokenFile {
    /// A freshly initialised token.
    pub fn new(serial: &str, label: &str, so_pin: PinRecord, so_max: u32, user_max: u32) -> Self {
        TokenFile {
            format: FORMAT,
            serial: serial.to_string(),
            label: label.to_string(),
            so_pin,
            so_tries: PinCounter::new(so_max),
            user_pin: None,
            user_tries: PinCounter::new(user_max),
            next_object: 1,
            objects: BTreeMap::new(),
        }
    }
}

/// A store failure (the message names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What identifies one version of `token.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// One token's directory.
#[derive(Debug, Clone)]
pub struct TokenDir {
    path: PathBuf,
}

/// An exclusive lock on a token directory, released when dropped.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

fn io_err(path: &Path, what: &str) -> impl Fn(std::io::Error) -> StoreError {
    let p = path.display().to_string();
    let what = what.to_string();
    move |e| StoreError(format!("{what} {p}: {e}"))
}

impl TokenDir {
    /// The directory of the token with `serial` under `root`.
    pub fn at(root: &Path, serial: &str) -> TokenDir {
        TokenDir {
            path: root.join(serial),
        }
    }

    /// Creates a new, empty token directory (mode 0700); fails if it exists.
    pub fn create(root: &Path, serial: &str) -> Result<TokenDir, StoreError> {
        std::fs::create_dir_all(root).map_err(io_err(root, "creating"))?;
        let dir = TokenDir::at(root, serial);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir.path)
            .map_err(io_err(&dir.path, "creating"))?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while the token's file exists (the key is "plugged in").
    pub fn present(&self) -> bool {
        self.path.join(TOKEN_FILE).is_file()
    }

    /// Takes the directory's exclusive lock (blocking).
    pub fn lock(&self) -> Result<DirLock, StoreError> {
        let p = self.path.join(LOCK_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(io_err(&p, "opening"))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StoreError(format!("locking {}: {e}", p.display())))?;
        Ok(DirLock(f))
    }

    /// The current version of `token.json`, `None` when it is gone.
    pub fn version(&self) -> Option<Version> {
        let m = std::fs::metadata(self.path.join(TOKEN_FILE)).ok()?;
        Some(Version {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }

    /// Reads `token.json` with its version.
    pub fn load(&self) -> Result<(TokenFile, Version), StoreError> {
        let p = self.path.join(TOKEN_FILE);
        let f = File::open(&p).map_err(io_err(&p, "opening"))?;
        let m = f.metadata().map_err(io_err(&p, "reading"))?;
        let file: TokenFile = serde_json::from_reader(std::io::BufReader::new(f))
            .map_err(|e| StoreError(format!("{}: {e}", p.display())))?;
        if file.format != FORMAT {
            return Err(StoreError(format!(
                "{}: unknown format {}",
                p.display(),
                file.format
            )));
        }
        let v = Version {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        };
        Ok((file, v))
    }

    /// Replaces `token.json` atomically (the caller holds the lock).
    pub fn save(&self, file: &TokenFile) -> Result<Version, StoreError> {
        let tmp = self.path.join(format!("{TOKEN_FILE}.tmp"));
        let text = serde_json::to_vec(file).map_err(|e| StoreError(e.to_string()))?;
        {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err(&tmp, "writing"))?;
            f.write_all(&text).map_err(io_err(&tmp, "writing"))?;
            f.sync_all().map_err(io_err(&tmp, "syncing"))?;
        }
        let dest = self.path.join(TOKEN_FILE);
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest, "replacing"))?;
        self.version()
            .ok_or_else(|| StoreError(format!("{} vanished after writing", dest.display())))
    }
}

/// Serials of the tokens under `root`, sorted (a missing root holds none).
pub fn scan(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut serials: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(TOKEN_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    serials.sort();
    serials
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::attrs::ulong_bytes;
    use crate::pin::TokenKey;
    use cryptoki_sys::{CKA_CLASS, CKA_LABEL, CKO_DATA};

    fn file(serial: &str) -> TokenFile {
        let key = TokenKey::generate().unwrap();
        TokenFile::new(
            serial,
            "label",
            PinRecord::new(b"so-pin", &key).unwrap(),
            10,
            6,
        )
    }

    #[test]
    fn a_saved_token_loads_back_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = TokenDir::create(root.path(), "00aa").unwrap();
        assert!(!dir.present());
        let mut f = file("00aa");
        let attrs = Attributes::from_pairs([
            (CKA_CLASS, ulong_bytes(CKO_DATA)),
            (CKA_LABEL, b"seal 1".to_vec()),
        ]);
        f.objects.insert(1, StoredObject::new(&attrs, None));
        f.next_object = 2;
        f.user_tries.fail();
        let _lock = dir.lock().unwrap();
        dir.save(&f).unwrap();
        assert!(dir.present());
        let (back, _) = dir.load().unwrap();
        assert_eq!(back, f);
        assert_eq!(back.objects[&1].attributes().unwrap(), attrs);
        assert_eq!(scan(root.path()), vec!["00aa".to_string()]);
    }

    #[test]
    fn every_save_is_a_new_version_and_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = TokenDir::create(root.path(), "01").unwrap();
        let mut f = file("01");
        let v1 = dir.save(&f).unwrap();
        f.label = "other".into();
        let v2 = dir.save(&f).unwrap();
        assert_ne!(v1, v2);
        assert_eq!(dir.version(), Some(v2));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn a_directory_without_its_file_is_no_token_and_creation_never_reuses_one() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("half-made")).unwrap();
        assert!(scan(root.path()).is_empty());
        assert!(scan(&root.path().join("missing")).is_empty());
        TokenDir::create(root.path(), "x").unwrap();
        assert!(TokenDir::create(root.path(), "x").is_err());
    }

    #[test]
    fn unknown_fields_and_formats_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = TokenDir::create(root.path(), "02").unwrap();
        let mut f = file("02");
        f.format = 99;
        dir.save(&f).unwrap();
        assert!(dir.load().unwrap_err().0.contains("unknown format"));
        let mut v = serde_json::to_value(file("02")).unwrap();
        v["surprise"] = serde_json::Value::Bool(true);
        std::fs::write(dir.path().join(TOKEN_FILE), v.to_string()).unwrap();
        assert!(dir.load().is_err());
    }
}
