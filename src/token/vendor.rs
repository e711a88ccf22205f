//! The vendor mechanism table (`hsm-config/pkcs11-vendors.toml`): per PKCS#11 module, the
//! vendor-defined codes and behaviour of SM2 — key type, key generation and signature
//! mechanisms, who hashes `Z_A ‖ M`, the signature encoding, where the public key is read.
//!
//! PKCS#11 defines no SM2, so a real vendor module is a configuration entry here, not code.
//! The cryptoki backend looks its module up in the table built from that file
//! ([`VendorTable::builtin`]) when it is loaded; an SM2 key on a module without an entry is
//! refused by name.

use serde::Deserialize;
use std::path::Path;

/// The table format this build reads.
pub const TABLE_VERSION: u32 = 1;

/// Start of the `CKK_`/`CKM_VENDOR_DEFINED` range.
const VENDOR_DEFINED: u64 = 0x8000_0000;

/// How sure the table is of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// This repository's tests drive the module.
    Tested,
    /// The vendor's own header or manual says so.
    Documented,
    /// Only a secondary source: test against the real module first.
    Unconfirmed,
}

/// Who computes `e = SM3(Z_A ‖ M)` for the signature mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestBy {
    /// The caller passes the message; the module computes `Z_A` and `e`.
    Module,
    /// The caller passes the 32-byte `e`.
    Caller,
}

/// How the module returns SM2 signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// `r ‖ s`, 64 bytes.
    Raw,
    /// DER `SEQUENCE { r INTEGER, s INTEGER }`.
    Der,
}

/// Where the SM2 public key is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeySource {
    /// `CKA_EC_POINT` (a DER OCTET STRING around the uncompressed point).
    EcPoint,
    /// A vendor-defined attribute.
    Attribute(u64),
}

impl<'de> Deserialize<'de> for PublicKeySource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Code(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Name(n) if n == "ec_point" => Ok(PublicKeySource::EcPoint),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "public_key {n:?}: expected \"ec_point\" or a vendor attribute code"
            ))),
            Raw::Code(c) => Ok(PublicKeySource::Attribute(c)),
        }
    }
}

/// A module's SM2 codes and behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sm2Codes {
    /// `CKK_` of an SM2 key.
    pub key_type: u64,
    /// `CKM_` generating an SM2 key pair.
    pub keygen_mechanism: u64,
    /// `CKM_` of the SM2-with-SM3 signature.
    pub sign_mechanism: u64,
    /// Who hashes `Z_A ‖ M` for [`Sm2Codes::sign_mechanism`].
    pub digest: DigestBy,
    /// A mechanism signing a caller-computed `e`, if the module has one.
    pub prehash_mechanism: Option<u64>,
    /// Signature encoding.
    pub signature: SignatureEncoding,
    /// Where the public key is read.
    pub public_key: PublicKeySource,
    /// Whether the key generation template carries `CKA_EC_PARAMS` (sm2p256v1).
    pub ec_params: bool,
    /// `CKM_` of SM2 decryption (`C_Decrypt` of a GM/T 0009 DER `SM2Cipher`), if known: the
    /// encryption key of a dual certificate decrypts with it.
    pub encrypt_mechanism: Option<u64>,
    /// `CKM_` importing an `SM2EnvelopedKey` with `C_UnwrapKey`, the unwrapping key being the
    /// token's SM2 signing private key, if known: how a dual certificate's encryption key pair
    /// reaches the token.
    pub envelope_unwrap_mechanism: Option<u64>,
}

/// One module of the table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorModule {
    /// Unique short name.
    pub name: String,
    /// Display name.
    pub vendor: String,
    /// File-name fragments of the module (case-insensitive).
    pub library: Vec<String>,
    /// How sure the entry is.
    pub status: Status,
    /// Where the facts come from.
    pub source: String,
    /// Caveats.
    pub notes: Option<String>,
    /// SM2 codes.
    pub sm2: Sm2Codes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    version: u32,
    #[serde(default)]
    module: Vec<VendorModule>,
}

/// Why the table cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VendorError {
    /// The file could not be read.
    #[error("cannot read vendor table {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not the schema (the parser names the key and line).
    #[error("vendor table {origin} is malformed: {source}")]
    Syntax {
        /// File or `<string>`.
        origin: String,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// A version this build does not read.
    #[error("vendor table {origin}: version {found} is not supported (expected {TABLE_VERSION})")]
    Version {
        /// File or `<string>`.
        origin: String,
        /// The version found.
        found: u32,
    },
    /// An entry breaks a rule; the message names the entry and the field.
    #[error("vendor table {origin}: module {module:?}: {problem}")]
    Entry {
        /// File or `<string>`.
        origin: String,
        /// The entry's name.
        module: String,
        /// What is wrong.
        problem: String,
    },
}

impl crate::error_code::Coded for VendorError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code as ec;
        match self {
            VendorError::Read { .. }
            | VendorError::Syntax { .. }
            | VendorError::Version { .. }
            | VendorError::Entry { .. } => ec::VENDOR_TABLE,
        }
    }
}

/// The table shipped in `hsm-config/pkcs11-vendors.toml`, compiled into the binary.
const BUILTIN: &str = include_str!("../../hsm-config/pkcs11-vendors.toml");

/// The validated table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorTable {
    modules: Vec<VendorModule>,
}

impl VendorTable {
    /// Reads and validates a table file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, VendorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| VendorError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Validates table text (one embedded in a binary or written by a test).
    pub fn from_toml_str(text: &str) -> Result<Self, VendorError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, VendorError> {
        let raw: RawTable = toml::from_str(text).map_err(|source| VendorError::Syntax {
            origin: origin.to_owned(),
            source,
        })?;
        if raw.version != TABLE_VERSION {
            return Err(VendorError::Version {
                origin: origin.to_owned(),
                found: raw.version,
            });
        }
        let entry_err = |m: &VendorModule, problem: String| VendorError::Entry {
            origin: origin.to_owned(),
            module: m.name.clone(),
            problem,
        };
        for (i, m) in raw.module.iter().enumerate() {
            if m.name.trim().is_empty() || m.vendor.trim().is_empty() || m.source.trim().is_empty()
            {
                return Err(entry_err(
                    m,
                    "name, vendor and source must not be empty".into(),
                ));
            }
            if m.library.is_empty() || m.library.iter().any(|l| l.trim().is_empty()) {
                return Err(entry_err(
                    m,
                    "library needs at least one non-empty name".into(),
                ));
            }
            if raw.module[..i].iter().any(|o| o.name == m.name) {
                return Err(entry_err(m, "the name appears twice".into()));
            }
            let s = &m.sm2;
            let mut codes = vec![
                ("key_type", s.key_type),
                ("keygen_mechanism", s.keygen_mechanism),
                ("sign_mechanism", s.sign_mechanism),
            ];
            codes.extend(s.prehash_mechanism.map(|c| ("prehash_mechanism", c)));
            codes.extend(s.encrypt_mechanism.map(|c| ("encrypt_mechanism", c)));
            codes.extend(
                s.envelope_unwrap_mechanism
                    .map(|c| ("envelope_unwrap_mechanism", c)),
            );
            if let PublicKeySource::Attribute(c) = s.public_key {
                codes.push(("public_key", c));
            }
            for (field, code) in codes {
                if !(VENDOR_DEFINED..=u64::from(u32::MAX)).contains(&code) {
                    return Err(entry_err(
                        m,
                        format!(
                            "{field} {code:#x} is not a vendor-defined code (0x80000000..=0xffffffff)"
                        ),
                    ));
                }
            }
        }
        Ok(VendorTable {
            modules: raw.module,
        })
    }

    /// The table shipped with this build (`hsm-config/pkcs11-vendors.toml`); a file that does
    /// not validate fails the build's own unit tests, so the fallback to an empty table is never
    /// taken in practice.
    pub fn builtin() -> VendorTable {
        Self::parse(BUILTIN, "hsm-config/pkcs11-vendors.toml").unwrap_or(VendorTable {
            modules: Vec::new(),
        })
    }

    /// Every entry, in file order.
    pub fn modules(&self) -> &[VendorModule] {
        &self.modules
    }

    /// The entry named `name`.
    pub fn by_name(&self, name: &str) -> Option<&VendorModule> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The first entry whose library fragments match the file name of `module` (the path of
    /// a PKCS#11 library, as in `pkcs11.module`).
    pub fn for_module(&self, module: &Path) -> Option<&VendorModule> {
        let file = module.file_name()?.to_string_lossy().to_lowercase();
        self.modules.iter().find(|m| {
            m.library
                .iter()
                .any(|fragment| file.contains(&fragment.to_lowercase()))
        })
    }
}

#[cfg(test)]
mod tests;
