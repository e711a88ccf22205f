//! keystation — a provisioning station for a Certificate Authority's back office.
//!
//! A company orders a "unit certificate" on a USB key. keystation takes the approved order and a
//! blank PKCS#11 token through the whole pipeline:
//!
//! ```text
//! order JSON --validate (domain)--> store: Submitted --review--> Approved
//!   --claim--> Provisioning: token initialised (SO PIN derived in the vault HSM), user PIN set
//!              and sealed in the vault, key pair generated ON the token (non-extractable),
//!              CSR signed on the token, unit certificate issued by the CA key (in its own token),
//!              certificate and GB/T 38540 seals written to the token
//!   --> Provisioned --ship--> Shipped --deliver PIN (SMS | 0.01 CNY transfer memo)--> PinDelivered
//! ```
//!
//! Module map (dependency direction: `domain` <- everything <- `station` <- `cli`):
//! - [`domain`]: pure business rules (orders, validation, lifecycle, PINs);
//! - [`store`]: SQLite / PostgreSQL, the only SQL; [`audit`]: the hash-chained audit trail;
//! - [`ca`]: the issuing CA; [`seal`]: GB/T 38540 seals; [`x509`]: the X.509 rules both share;
//! - [`token`]: PKCS#11 tokens (the only cryptoki); [`usb`]: USB keys on the bus, beside it;
//! - [`station`]: orchestration of intake, provisioning and delivery jobs;
//! - [`cli`]: the `keystation` command line;
//! - [`config`], [`clock`], [`failpoint`]: configuration, injected time, crash-test hooks;
//! - [`private_files`]: the station's files and directories, readable by its own user only.

pub mod audit;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod failpoint;
pub mod private_files;
pub mod seal;
pub mod station;
pub mod store;
pub mod token;
pub mod usb;
pub mod x509;
