//! The key algorithms of the station: what it generates on tokens (`station.toml` names them) and
//! what its CA issues for.
//!
//! One enum for the whole crate, so that the configuration, the token layer and the CA cannot
//! disagree on what "an RSA key" or "a P-256 key" means. PKCS#11 has no standard SM2 mechanism:
//! an SM2 key is made and used through the vendor codes of the module's entry in the vendor
//! table (`hsm-config/pkcs11-vendors.toml`, `crate::token::vendor`).

use serde::{Deserialize, Serialize};

/// Key algorithms the station generates on PKCS#11 tokens and its CA signs for.
///
/// Serialised in the configuration's spelling (`ecdsa-p256`, `rsa-2048`, `sm2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (default; PKCS#11 has no standard SM2 mechanism).
    EcdsaP256,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 signatures.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// SM2 on the curve sm2p256v1 with SM3 (GB/T 32918, signature SM2-with-SM3 and the default
    /// distinguishing ID), through a vendor module's SM2 codes.
    Sm2,
}

impl KeyAlgorithm {
    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Sm2 => "sm2",
        }
    }
}
