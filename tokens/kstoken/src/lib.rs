//! kstoken: a vendor-style PKCS#11 v2.40 module for keystation's tests and demos.
//!
//! It stands in for a Chinese USB key: it speaks TASS's vendor codes for SM2 (`CKK_SM2`
//! `0x80000004`, `CKM_SM2_KEY_PAIR_GEN` `0x80008001`, `CKM_SM3_SM2` `0x80008100`, `CKM_SM2`
//! `0x80008000`) besides standard P-256 ECDSA, makes keys that never leave it, stores
//! certificates and data objects on disk, and — unlike SoftHSM — locks a PIN after the
//! configured number of wrong tries. It is a TEST component: keystation never assumes it.
//!
//! - [`config`]: the module's configuration file (`KSTOKEN_CONF`);
//! - [`store`] and [`token`]: tokens on disk, shared safely between processes;
//! - [`pin`]: retry counters and the PIN-wrapped key that seals key material at rest;
//! - [`attrs`] and [`objects`]: attributes and object rules;
//! - [`mechanisms`] and [`crypto`]: key generation and signatures (RustCrypto `p256`, `sm2`);
//! - [`envelope`] and [`unwrap`]: SM2 decryption and the import of an `SM2EnvelopedKey`
//!   (the encryption key pair of a dual certificate);
//! - [`module`] and [`session`]: slots, tokens, sessions and logins;
//! - `ffi`: the C entry points (the only `unsafe` code).

pub mod attrs;
pub mod config;
pub mod crypto;
pub mod envelope;
mod ffi;
pub mod mechanisms;
pub mod module;
pub mod objects;
pub mod pin;
pub mod session;
pub mod store;
pub mod token;
pub mod unwrap;

pub use ffi::C_GetFunctionList;
