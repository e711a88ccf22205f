//! Remote unlock with an unlock authorisation code (issue 16 item 4): the codes
//! ([`code`]) and the customer's tool, `keystation-unlock` ([`tool`]; `src/unlock_main.rs` is
//! its binary). The station's side (requests, four-eyes, sending the code) is in
//! `station::service_desk::unlock`.
//!
//! Dependency direction: `domain` and `token` <- `unlock` <- `station`. The tool needs no
//! database, vault or configuration: only the PKCS#11 module of the customer's key.

pub mod code;
pub mod tool;
