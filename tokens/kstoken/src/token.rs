//! One initialised token as this process sees it: the last version of its file read from disk,
//! re-read whenever another process changed it, and changed only under the directory's lock.

use crate::store::{StoreError, TokenDir, TokenFile, Version};
use cryptoki_sys::{CK_RV, CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED};

/// A token in a slot.
#[derive(Debug)]
pub struct Token {
    dir: TokenDir,
    file: TokenFile,
    version: Version,
}

fn device_error(e: StoreError) -> CK_RV {
    // A library has nowhere else to report why its device failed; nothing secret is in a
    // store error (paths and serde messages about the file's shape).
    eprintln!("kstoken: {e}");
    CKR_DEVICE_ERROR
}

impl Token {
    /// Reads the token in `dir`.
    pub fn open(dir: TokenDir) -> Result<Token, CK_RV> {
        if !dir.present() {
            return Err(CKR_DEVICE_REMOVED);
        }
        let (file, version) = dir.load().map_err(device_error)?;
        Ok(Token { dir, file, version })
    }

    /// Creates the token: `file` becomes its first version (the directory must be new).
    pub fn create(dir: TokenDir, file: TokenFile) -> Result<Token, CK_RV> {
        let _lock = dir.lock().map_err(device_error)?;
        let version = dir.save(&file).map_err(device_error)?;
        Ok(Token { dir, file, version })
    }

    /// The token's serial.
    pub fn serial(&self) -> &str {
        &self.file.serial
    }

    /// The token's label as last read.
    pub fn label(&self) -> &str {
        &self.file.label
    }

    /// True while the token's directory holds its file.
    pub fn present(&self) -> bool {
        self.dir.present()
    }

    /// The token as last read, re-read first if another process changed it.
    pub fn current(&mut self) -> Result<&TokenFile, CK_RV> {
        match self.dir.version() {
            None => return Err(CKR_DEVICE_REMOVED),
            Some(v) if v == self.version => {}
            Some(_) => {
                let (file, version) = self.dir.load().map_err(device_error)?;
                self.file = file;
                self.version = version;
            }
        }
        Ok(&self.file)
    }

    /// Applies `change` to the newest version of the token under the directory lock and
    /// writes the result if it differs. `change` reports failures inside its `T`, so that a
    /// failure which must still be recorded (a wrong PIN) is written too.
    pub fn update<T>(&mut self, change: impl FnOnce(&mut TokenFile) -> T) -> Result<T, CK_RV> {
        if !self.dir.present() {
            return Err(CKR_DEVICE_REMOVED);
        }
        let _lock = self.dir.lock().map_err(device_error)?;
        if !self.dir.present() {
            return Err(CKR_DEVICE_REMOVED);
        }
        let (mut file, version) = self.dir.load().map_err(device_error)?;
        let before = file.clone();
        let out = change(&mut file);
        self.version = if file != before {
            self.dir.save(&file).map_err(device_error)?
        } else {
            version
        };
        self.file = file;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pin::{PinRecord, TokenKey};

    fn new_token(root: &std::path::Path) -> Token {
        let key = TokenKey::generate().unwrap();
        let file = TokenFile::new("ab", "T", PinRecord::new(b"so", &key).unwrap(), 10, 3);
        Token::create(TokenDir::create(root, "ab").unwrap(), file).unwrap()
    }

    #[test]
    fn a_change_made_by_another_process_is_seen_and_not_overwritten() {
        let root = tempfile::tempdir().unwrap();
        let mut mine = new_token(root.path());
        let mut theirs = Token::open(TokenDir::at(root.path(), "ab")).unwrap();
        // The other process records a wrong PIN...
        theirs.update(|f| f.user_tries.fail()).unwrap();
        // ...and this one, which read the token before, sees it and adds its own.
        assert_eq!(mine.current().unwrap().user_tries.left, 2);
        mine.update(|f| f.user_tries.fail()).unwrap();
        assert_eq!(theirs.current().unwrap().user_tries.left, 1);
    }

    #[test]
    fn a_removed_directory_is_a_removed_device() {
        let root = tempfile::tempdir().unwrap();
        let mut t = new_token(root.path());
        std::fs::remove_dir_all(root.path().join("ab")).unwrap();
        assert!(!t.present());
        assert_eq!(t.current().err(), Some(CKR_DEVICE_REMOVED));
        assert_eq!(t.update(|_| ()).err(), Some(CKR_DEVICE_REMOVED));
    }
}
