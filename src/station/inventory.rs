//! The tokens in reach (`keystation token list`): every token of the station's PKCS#11 module
//! with the role it plays for this station, and the USB keys of known models plugged in.

use super::Station;
use crate::store::StoreError;
use crate::token::{TokenError, TokenInfo};
use crate::usb::{UsbCatalog, UsbKey, list_usb_keys};
use serde::Serialize;
use std::path::PathBuf;

/// What `token list` shows.
#[derive(Debug, Clone, Serialize)]
pub struct TokenListing {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// Its tokens.
    pub tokens: Vec<ListedToken>,
    /// USB keys of catalogued models.
    pub usb: UsbListing,
}

/// A token and what it is to this station.
#[derive(Debug, Clone, Serialize)]
pub struct ListedToken {
    /// What the token says about itself.
    pub token: TokenInfo,
    /// `station CA`, `station vault`, `order NO`, `blank` or `unknown (not made by this
    /// station)`.
    pub role: String,
}

/// The USB side of the listing.
#[derive(Debug, Clone, Serialize)]
pub struct UsbListing {
    /// False when USB cannot be listed here ([`UsbListing::reason`] says why).
    pub available: bool,
    /// The devices, when available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<UsbDevice>>,
    /// Why USB is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A USB key of a known model.
#[derive(Debug, Clone, Serialize)]
pub struct UsbDevice {
    /// Bus number.
    pub bus: u8,
    /// Address on the bus.
    pub address: u8,
    /// idVendor, 4 hex digits.
    pub vendor_id: String,
    /// idProduct, 4 hex digits.
    pub product_id: String,
    /// Catalogued model.
    pub model: Option<String>,
    /// Its vendor.
    pub vendor: Option<String>,
    /// The PKCS#11 module that drives it.
    pub pkcs11_module: Option<String>,
    /// iSerialNumber (sanitised, display only).
    pub serial: Option<String>,
    /// One line for people.
    #[serde(skip)]
    pub line: String,
}

impl From<&UsbKey> for UsbDevice {
    fn from(k: &UsbKey) -> Self {
        UsbDevice {
            bus: k.bus,
            address: k.address,
            vendor_id: format!("{:04x}", k.vendor_id),
            product_id: format!("{:04x}", k.product_id),
            model: k.model.as_ref().map(|m| m.model.clone()),
            vendor: k.model.as_ref().map(|m| m.vendor.clone()),
            pkcs11_module: k
                .model
                .as_ref()
                .map(|m| m.pkcs11_module.display().to_string()),
            serial: k.serial.clone(),
            line: k.to_string(),
        }
    }
}

/// Why the tokens could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The PKCS#11 module failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Station {
    /// Every token of the station's PKCS#11 module with its role, and the USB keys plugged in.
    pub async fn token_listing(&self) -> Result<TokenListing, InventoryError> {
        let cfg = &self.config;
        let (module, infos) =
            super::hsm::blocking(|| -> Result<(PathBuf, Vec<TokenInfo>), TokenError> {
                let module = crate::station::hsm::load_module(cfg)?;
                let infos = module.tokens()?.iter().map(|t| t.info().clone()).collect();
                Ok((module.path().to_path_buf(), infos))
            })?;
        let bindings = self.store.active_bindings().await?;
        let tokens = infos
            .into_iter()
            .map(|i| {
                let role = if i.initialized && i.label == cfg.ca.token_label {
                    "station CA".to_string()
                } else if i.initialized && i.label == cfg.vault.token_label {
                    "station vault".to_string()
                } else if let Some(b) = bindings.iter().find(|b| {
                    b.token_serial.as_deref() == Some(i.serial.as_str()) && !i.serial.is_empty()
                }) {
                    format!("order {}", b.order_no)
                } else if i.is_blank() {
                    "blank".to_string()
                } else {
                    "unknown (not made by this station)".to_string()
                };
                ListedToken { token: i, role }
            })
            .collect();
        let usb = match UsbCatalog::load(cfg.path(&cfg.pkcs11.usb_tokens))
            .and_then(|c| list_usb_keys(&c))
        {
            Ok(keys) => UsbListing {
                available: true,
                devices: Some(keys.iter().map(UsbDevice::from).collect()),
                reason: None,
            },
            Err(e) => UsbListing {
                available: false,
                devices: None,
                reason: Some(e.to_string()),
            },
        };
        Ok(TokenListing {
            module,
            tokens,
            usb,
        })
    }
}
