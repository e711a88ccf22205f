//! Opening a PKCS#11 module and finding tokens.
//!
//! [`Pkcs11Module::load`] is the one place a token backend is opened (and, in test builds, the
//! one place the fault simulator is put around it). Tokens are found by serial number or label,
//! never by slot id, and a [`Token`] re-finds its slot by serial before each use, so a
//! renumbering or a token moved to another reader does not make the station write to the wrong
//! key.

pub use super::model::TokenInfo;

use super::TokenError;
use super::backend::TokenBackend;
use super::store_lock::{StoreGuard, StoreLock};
use crate::domain::TokenSerial;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where Debian and friends install SoftHSM2, the default module.
pub const SOFTHSM_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
];

/// A loaded, initialised PKCS#11 module, behind the token seam.
#[derive(Clone)]
pub struct Pkcs11Module {
    backend: Arc<dyn TokenBackend>,
    path: PathBuf,
    /// Whether the library is SoftHSM.
    softhsm: bool,
    /// The lock of the SoftHSM store the module shares with other processes, if it does.
    store_lock: Option<Arc<StoreLock>>,
}

impl fmt::Debug for Pkcs11Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Module")
            .field("path", &self.path)
            .finish()
    }
}

/// How to pick a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// By serial number (unique per token).
    Serial(TokenSerial),
    /// By label (the order number for customers' keys; the configured label for station tokens).
    Label(String),
}

impl TokenSelector {
    /// `SERIAL|LABEL` as typed by an operator: a match on serial wins over a label match
    /// (text that is no token serial, e.g. with a blank or over 16 characters, is a label only).
    pub fn either(s: &str) -> Vec<TokenSelector> {
        TokenSerial::parse(s)
            .ok()
            .map(TokenSelector::Serial)
            .into_iter()
            .chain([TokenSelector::Label(s.to_string())])
            .collect()
    }
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSelector::Serial(s) => write!(f, "serial {s}"),
            TokenSelector::Label(l) => write!(f, "label {l:?}"),
        }
    }
}

impl Pkcs11Module {
    /// Loads and initialises `path` (default: SoftHSM2) once per process.
    ///
    /// This is where the station opens its token backend: the cryptoki implementation, and in
    /// builds with the `test-hooks` feature the fault simulator around it when
    /// `KEYSTATION_TOKEN_SIM` names its state file.
    pub fn load(path: Option<&Path>) -> Result<Pkcs11Module, TokenError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => SOFTHSM_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| TokenError::NoModule {
                    searched: SOFTHSM_PATHS.join(", "),
                })?,
        };
        let cryptoki = super::pkcs11::CryptokiBackend::load(&path)?;
        let softhsm = cryptoki.is_softhsm();
        let backend: Arc<dyn TokenBackend> = Arc::new(cryptoki);
        #[cfg(feature = "test-hooks")]
        let backend = super::sim::around(backend);
        Ok(Pkcs11Module {
            backend,
            path,
            softhsm,
            store_lock: None,
        })
    }

    /// [`Pkcs11Module::load`] for a SoftHSM store other processes use too: initialised under
    /// `lock` taken exclusive, and every later token read and token state write under it (see
    /// [`super::store_lock`]). A module that is not SoftHSM (the test token, a USB key's) keeps
    /// its own store safe and gets no lock: its logins, each a device's PIN check, are not made
    /// to wait for each other's.
    pub fn load_shared_store(
        path: Option<&Path>,
        lock: StoreLock,
    ) -> Result<Pkcs11Module, TokenError> {
        let module = {
            let _exclusive = lock.exclusive();
            Pkcs11Module::load(path)?
        };
        let store_lock = module.softhsm.then(|| Arc::new(lock));
        Ok(Pkcs11Module {
            store_lock,
            ..module
        })
    }

    /// Whether the module takes a SoftHSM store's lock (see [`Pkcs11Module::load_shared_store`]).
    pub fn locks_shared_store(&self) -> bool {
        self.store_lock.is_some()
    }

    /// The store's lock taken shared, when the module has one.
    pub(crate) fn reading_store(&self) -> Option<StoreGuard> {
        self.store_lock.as_ref().and_then(|l| l.shared())
    }

    /// The store's lock taken exclusive, when the module has one. Only a backend call may run
    /// under it (a token read there would wait for itself).
    pub(crate) fn writing_store(&self) -> Option<StoreGuard> {
        self.store_lock.as_ref().and_then(|l| l.exclusive())
    }

    /// A module over another backend (`path` names it in messages): what a test stands behind
    /// the seam with.
    pub fn with_backend(backend: Arc<dyn TokenBackend>, path: PathBuf) -> Pkcs11Module {
        Pkcs11Module {
            backend,
            path,
            softhsm: false,
            store_lock: None,
        }
    }

    /// The module's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn backend(&self) -> &dyn TokenBackend {
        self.backend.as_ref()
    }

    /// Every token present, in slot order.
    pub fn tokens(&self) -> Result<Vec<Token>, TokenError> {
        let _reading = self.reading_store();
        let slots = self.backend.slots()?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            match self.backend.token_info(slot) {
                Ok(info) => out.push(Token {
                    module: self.clone(),
                    slot,
                    info,
                }),
                // A token pulled out between the slot list and its info: skip it.
                Err(TokenError::Removed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn info(&self, slot: u64) -> Result<TokenInfo, TokenError> {
        let _reading = self.reading_store();
        self.backend.token_info(slot)
    }

    /// The one token matching any of `selectors`, tried in order (serial before label).
    pub fn find(&self, selectors: &[TokenSelector]) -> Result<Token, TokenError> {
        let tokens = self.tokens()?;
        for sel in selectors {
            let matches: Vec<&Token> = tokens
                .iter()
                .filter(|t| match sel {
                    TokenSelector::Serial(s) => *s == t.info.serial,
                    TokenSelector::Label(l) => t.info.initialized && &t.info.label == l,
                })
                .collect();
            match matches.as_slice() {
                [] => continue,
                [one] => return Ok((*one).clone()),
                many => {
                    return Err(TokenError::Ambiguous {
                        selector: sel.to_string(),
                        serials: many
                            .iter()
                            .map(|t| t.info.serial.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Err(TokenError::NotFound(
            selectors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        ))
    }

    /// The token with `serial` if it sits in the slot SoftHSM gives it: SoftHSM moves a token it
    /// has just initialised to a slot numbered after the serial's last 8 hex digits. One token
    /// info read instead of one per token in the store; `None` (then callers search every slot)
    /// on any other module or when the guess is wrong.
    fn probe_serial_slot(&self, serial: &str) -> Option<Token> {
        let tail = serial.get(serial.len().checked_sub(8)?..)?;
        let id = u64::from_str_radix(tail, 16).ok()?;
        [id, id & 0x7FFF_FFFF].into_iter().find_map(|slot| {
            let info = self.info(slot).ok()?;
            (info.serial == serial).then(|| Token {
                module: self.clone(),
                slot,
                info,
            })
        })
    }

    /// A blank (uninitialised) token, if any. Slots are searched from the LAST one, reading
    /// token info only until a blank one is found: SoftHSM keeps its one blank slot at the end
    /// of a list that grows with every token the station made, and a station with hundreds of
    /// tokens must not read them all for every order.
    pub fn first_blank(&self) -> Result<Option<Token>, TokenError> {
        self.first_blank_except(&std::collections::HashSet::new())
    }

    /// [`Pkcs11Module::first_blank`], passing over the slots in `taken` (blank tokens other
    /// workers of the process are initialising).
    pub fn first_blank_except(
        &self,
        taken: &std::collections::HashSet<u64>,
    ) -> Result<Option<Token>, TokenError> {
        let slots = self.backend.slots()?;
        for slot in slots.into_iter().rev().filter(|s| !taken.contains(s)) {
            match self.info(slot) {
                Ok(info) if info.is_blank() => {
                    return Ok(Some(Token {
                        module: self.clone(),
                        slot,
                        info,
                    }));
                }
                Ok(_) | Err(TokenError::Removed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// A token found in the module, with the facts read when it was found.
#[derive(Clone)]
pub struct Token {
    module: Pkcs11Module,
    slot: u64,
    info: TokenInfo,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("info", &self.info).finish()
    }
}

impl Token {
    /// What the token said when last read.
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// Name for messages.
    pub fn name(&self) -> String {
        self.info.display_name()
    }

    /// The slot the token was last seen in (`keystation-unlock --slot`).
    pub fn slot(&self) -> u64 {
        self.slot
    }

    pub(crate) fn module(&self) -> &Pkcs11Module {
        &self.module
    }

    /// Re-reads the token's info; for an initialised token, also makes sure the same token (by
    /// serial) is still in the slot, and follows it if it moved.
    pub fn refresh(&mut self) -> Result<&TokenInfo, TokenError> {
        if self.info.serial.is_empty() {
            // A blank slot has no identity but its slot; after C_InitToken it gains a serial.
            self.info = self.module.info(self.slot)?;
            return Ok(&self.info);
        }
        match self.module.info(self.slot) {
            Ok(info) if info.serial == self.info.serial => {
                self.info = info;
                Ok(&self.info)
            }
            _ => {
                if let Some(found) = self.module.probe_serial_slot(&self.info.serial) {
                    *self = found;
                    return Ok(&self.info);
                }
                // A token without a serial cannot be found again by it: it is gone.
                let again = TokenSerial::parse(&self.info.serial)
                    .map(|s| vec![TokenSelector::Serial(s)])
                    .unwrap_or_default();
                let found = self.module.find(&again).map_err(|e| match e {
                    TokenError::NotFound(_) => TokenError::Removed {
                        token: self.name(),
                        function: "C_GetTokenInfo".into(),
                    },
                    other => other,
                })?;
                *self = found;
                Ok(&self.info)
            }
        }
    }
}

#[cfg(test)]
mod tests;
