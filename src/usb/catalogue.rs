//! The catalogue of USB key models (`hsm-config/usb-tokens.toml`): vendor and product id, the
//! model's name and maker, and the PKCS#11 module that drives it.
//!
//! Strict like the station's configuration: a version, no unknown key, no empty field, ids
//! written as `0x` and one to four hex digits, and no two entries claiming the same id (a
//! plugged-in device would be ambiguous). Errors name the file, the entry and the field.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::UsbError;

/// The catalogue format version this build understands.
pub const CATALOG_VERSION: u32 = 1;

/// One catalogued key model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbModel {
    /// USB vendor id (idVendor).
    pub vendor_id: u16,
    /// USB product id (idProduct).
    pub product_id: u16,
    /// Display name of the model, e.g. `ePass2003`.
    pub model: String,
    /// Display name of the maker.
    pub vendor: String,
    /// PKCS#11 library that drives the key: a bare name for the loader's search path, or an
    /// absolute path.
    pub pkcs11_module: PathBuf,
    /// Provenance and caveats, e.g. "product id unverified".
    pub notes: Option<String>,
}

/// The validated catalogue of USB key models (`hsm-config/usb-tokens.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbCatalog {
    /// In file order. No two entries share (vendor_id, product_id).
    models: Vec<UsbModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    version: u32,
    #[serde(default)]
    model: Vec<RawModel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    vendor_id: String,
    product_id: String,
    model: String,
    vendor: String,
    pkcs11_module: String,
    notes: Option<String>,
}

impl UsbCatalog {
    /// Reads and validates a catalogue file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, UsbError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| UsbError::CatalogRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Validates catalogue text, e.g. one embedded in the binary or written by a test.
    pub fn from_toml_str(text: &str) -> Result<Self, UsbError> {
        Self::parse(text, "<string>")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, UsbError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|source| UsbError::CatalogSyntax {
            origin: origin.to_owned(),
            source,
        })?;
        if raw.version != CATALOG_VERSION {
            return Err(UsbError::UnsupportedVersion {
                origin: origin.to_owned(),
                found: raw.version,
                expected: CATALOG_VERSION,
            });
        }
        let mut models: Vec<UsbModel> = Vec::with_capacity(raw.model.len());
        for (position, entry) in raw.model.into_iter().enumerate() {
            let index = position + 1;
            let model = validate_entry(entry, index, origin)?;
            if let Some(first) = models
                .iter()
                .position(|m| m.vendor_id == model.vendor_id && m.product_id == model.product_id)
            {
                return Err(UsbError::DuplicateId {
                    origin: origin.to_owned(),
                    first: first + 1,
                    second: index,
                    vendor_id: model.vendor_id,
                    product_id: model.product_id,
                });
            }
            models.push(model);
        }
        Ok(Self { models })
    }

    /// The model with this vendor and product id, if catalogued.
    pub fn lookup(&self, vendor_id: u16, product_id: u16) -> Option<&UsbModel> {
        self.models
            .iter()
            .find(|m| m.vendor_id == vendor_id && m.product_id == product_id)
    }

    /// All entries, in file order.
    pub fn models(&self) -> &[UsbModel] {
        &self.models
    }
}

fn validate_entry(entry: RawModel, index: usize, origin: &str) -> Result<UsbModel, UsbError> {
    for (field, value) in [
        ("model", &entry.model),
        ("vendor", &entry.vendor),
        ("pkcs11_module", &entry.pkcs11_module),
    ] {
        if value.trim().is_empty() {
            return Err(UsbError::EmptyField {
                origin: origin.to_owned(),
                index,
                field,
            });
        }
    }
    let id = |field: &'static str, value: &str| {
        parse_usb_id(value).ok_or_else(|| UsbError::BadId {
            origin: origin.to_owned(),
            index,
            model: entry.model.clone(),
            field,
            value: value.to_owned(),
        })
    };
    let vendor_id = id("vendor_id", &entry.vendor_id)?;
    let product_id = id("product_id", &entry.product_id)?;
    Ok(UsbModel {
        vendor_id,
        product_id,
        model: entry.model,
        vendor: entry.vendor,
        pkcs11_module: PathBuf::from(entry.pkcs11_module),
        notes: entry.notes,
    })
}

/// Parses `0x` followed by one to four hex digits. The digits are checked explicitly
/// because `from_str_radix` would also accept a sign.
fn parse_usb_id(text: &str) -> Option<u16> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::usb::testkit::{SHIPPED, catalog, one_model};

    #[test]
    fn shipped_catalogue_loads_and_knows_the_epass2003() {
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        let count = catalog.models().len();
        assert!((6..=10).contains(&count), "{count} entries");
        let epass = catalog.lookup(0x096e, 0x0807).expect("ePass2003 listed");
        assert_eq!(epass.model, "ePass2003");
        assert_eq!(epass.pkcs11_module, PathBuf::from("libcastle.so.1.0.0"));
        assert_eq!(
            catalog.lookup(0x20a0, 0x4230).map(|m| m.model.as_str()),
            Some("Nitrokey HSM")
        );
        assert!(catalog.lookup(0x096e, 0xffff).is_none());
        // The Longmai product id is only partly sourced, so its note must say so.
        let longmai = catalog.lookup(0x4c4d, 0x8b15).expect("Longmai listed");
        assert!(
            longmai
                .notes
                .as_deref()
                .is_some_and(|n| n.contains("Product id unverified"))
        );
    }

    #[test]
    fn shipped_opensc_path_exists_on_this_debian_machine() {
        // The catalogue names OpenSC by its absolute Debian path. opensc-pkcs11 is installed
        // here, so a typo in that path shows up now.
        let catalog = UsbCatalog::load(SHIPPED).unwrap();
        for model in catalog.models() {
            if model.pkcs11_module.is_absolute() {
                assert!(
                    model.pkcs11_module.exists(),
                    "{} names missing {}",
                    model.model,
                    model.pkcs11_module.display()
                );
            }
        }
    }

    #[test]
    fn load_names_the_missing_file() {
        let error = UsbCatalog::load("/nonexistent/usb-tokens.toml").unwrap_err();
        assert!(matches!(error, UsbError::CatalogRead { .. }));
        assert!(error.to_string().contains("/nonexistent/usb-tokens.toml"));
    }

    #[test]
    fn hex_ids_parse_strictly() {
        assert_eq!(parse_usb_id("0x096e"), Some(0x096e));
        assert_eq!(parse_usb_id("0X096E"), Some(0x096e));
        assert_eq!(parse_usb_id("0xffff"), Some(0xffff));
        assert_eq!(parse_usb_id("0x1"), Some(1));
        for bad in [
            "096e", "0x", "0x12345", "0xzz", "0x+1", "+0x1", " 0x096e", "0x096e ", "",
        ] {
            assert_eq!(parse_usb_id(bad), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn bad_id_error_names_field_value_and_entry() {
        let error = UsbCatalog::from_toml_str(&one_model("0x096e", "0807")).unwrap_err();
        match &error {
            UsbError::BadId {
                index,
                field,
                value,
                ..
            } => {
                assert_eq!((*index, *field, value.as_str()), (1, "product_id", "0807"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains("product_id") && message.contains("\"0807\""),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let top = format!("{}colour = \"red\"\n", "version = 1\n");
        assert!(matches!(
            UsbCatalog::from_toml_str(&top),
            Err(UsbError::CatalogSyntax { .. })
        ));
        let inner = format!("{}serial_prefix = \"FT\"\n", one_model("0x096e", "0x0807"));
        let error = UsbCatalog::from_toml_str(&inner).unwrap_err();
        assert!(error.to_string().contains("serial_prefix"), "{error}");
    }

    #[test]
    fn version_is_required_and_checked() {
        assert!(matches!(
            UsbCatalog::from_toml_str("[[model]]\n"),
            Err(UsbError::CatalogSyntax { .. })
        ));
        let v2 = one_model("0x096e", "0x0807").replace("version = 1", "version = 2");
        assert!(matches!(
            UsbCatalog::from_toml_str(&v2),
            Err(UsbError::UnsupportedVersion {
                found: 2,
                expected: 1,
                ..
            })
        ));
    }

    #[test]
    fn empty_catalogue_is_valid() {
        let catalog = UsbCatalog::from_toml_str("version = 1\n").unwrap();
        assert!(catalog.models().is_empty());
    }

    #[test]
    fn missing_and_empty_fields_are_rejected() {
        let no_module = one_model("0x096e", "0x0807").replace("pkcs11_module = \"libm.so\"\n", "");
        assert!(matches!(
            UsbCatalog::from_toml_str(&no_module),
            Err(UsbError::CatalogSyntax { .. })
        ));
        let blank_vendor =
            one_model("0x096e", "0x0807").replace("vendor = \"V\"", "vendor = \"  \"");
        assert!(matches!(
            UsbCatalog::from_toml_str(&blank_vendor),
            Err(UsbError::EmptyField {
                field: "vendor",
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn duplicates_are_rejected_even_when_spelled_differently() {
        let second = one_model("0x096E", "0x807").replace("version = 1\n", "");
        let text = format!("{}{second}", one_model("0x096e", "0x0807"));
        let error = UsbCatalog::from_toml_str(&text).unwrap_err();
        assert!(matches!(
            error,
            UsbError::DuplicateId {
                first: 1,
                second: 2,
                vendor_id: 0x096e,
                product_id: 0x0807,
                ..
            }
        ));
        assert!(error.to_string().contains("096e:0807"), "{error}");
    }

    #[test]
    fn notes_are_optional_and_kept() {
        let with_notes = format!(
            "{}notes = \"product id unverified\"\n",
            one_model("0x1", "0x2")
        );
        let catalog = UsbCatalog::from_toml_str(&with_notes).unwrap();
        assert_eq!(
            catalog.lookup(1, 2).and_then(|m| m.notes.as_deref()),
            Some("product id unverified")
        );
        assert_eq!(catalog.lookup(0x096e, 0x0807), None);
        assert_eq!(self::catalog().lookup(0x096e, 0x0807).unwrap().notes, None);
    }
}
