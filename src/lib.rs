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
//! # Map of the house
//!
//! One line per top-level module, as the folders under `src/` stand (the test at the end of this
//! file checks that each entry exists, and that every module file or folder is listed).
//! Dependency direction: [`domain`] <- (`token`, `ca`, `seal`, `delivery`, `store`, `audit`)
//! <- [`station`] <- ([`cli`], [`web`]).
//!
//! - [`domain/`](domain): the business, pure (no IO, no async): orders and their state machine,
//!   validation, PINs, PIN deliveries;
//! - [`config/`](config): `station.toml`, versioned and strict: its sections, their defaults
//!   and the rules checked at load;
//! - [`clock.rs`](clock): time as a parameter, the one reader of the wall clock;
//! - [`random.rs`](random): randomness as a parameter (key ids, serials, PINs), the OS CSPRNG in
//!   production;
//! - [`token/`](token): PKCS#11 tokens through cryptoki, the only module that names it; the
//!   vault (SO PIN derivation, PIN sealing);
//! - [`usb/`](usb): USB keys on the bus (catalogue, matching, hotplug), beside `token`;
//! - [`x509.rs`](x509): the X.509 rules the CA and the seals share (names, extensions, time);
//! - [`sm2/`](sm2): SM2 signatures as certificates and seals carry them (OIDs, `Z_A`, verifying
//!   with the default distinguishing ID);
//! - [`ca/`](ca): the issuing CA: certificate profiles, issuance through a token-held key, CRLs,
//!   OCSP requests and responses;
//! - [`seal/`](seal): GB/T 38540 electronic seals: pictures, `SESeal` DER, verification;
//! - [`delivery/`](delivery): the PIN's channels: SMS (spool, Aliyun, webhook) and the bank
//!   transfer memo (pain.001 out, pain.002 / camt.054 in); the order API's webhook transport;
//! - [`store/`](store): SQLite and PostgreSQL, the only SQL; one migration set per backend;
//! - [`audit/`](audit): the audit trail: its hash chain (canonical bytes, chain rules) and the
//!   closed set of events a record may say, serialised in one place;
//! - [`station/`](station): orchestration: intake, provisioning, sealing, delivery jobs, batch
//!   runs, recovery after a crash; the one door of every front (one operation id per command);
//! - [`unlock/`](unlock): remote unlock: the request and authorisation codes (X25519, HKDF,
//!   AES-GCM) and the customer's tool; it names `domain` and `token` only;
//! - [`web/`](web): `keystation serve`, the station's long-running server: the OCSP responder
//!   and the CRL over HTTP, the periodic work beside it, and the operators' console on its own
//!   listener; it calls `station` only;
//! - [`cli/`](cli): the `keystation` command line (options apart from handlers, `--json`); it
//!   names `station`, `domain` and `config` only;
//! - [`error_code/`](error_code): the stable code of every error, as operators and scripts read
//!   it (the README's table is checked against it);
//! - [`failpoint.rs`](mod@failpoint): crash-test hooks, compiled only into test builds (the
//!   `test-hooks` feature);
//! - [`private_files.rs`](private_files): the station's files and directories, its own user's only;
//! - `main.rs`: the binary, a thin shell over [`cli`];
//! - `unlock_main.rs`: the customer's `keystation-unlock` binary, a thin shell over [`unlock`].

pub mod audit;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error_code;
pub mod failpoint;
pub mod private_files;
pub mod random;
pub mod seal;
pub mod sm2;
pub mod station;
pub mod store;
pub mod token;
pub mod unlock;
pub mod usb;
pub mod web;
pub mod x509;

#[cfg(test)]
mod map_tests {
    //! The map in this file's opening comment against the folders under `src/`.

    use std::collections::BTreeSet;
    use std::path::Path;

    /// The entries of the map: `name.rs` or `name/`, as the map writes them.
    fn map_entries() -> Vec<String> {
        include_str!("lib.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter_map(|l| l.strip_prefix("//! - "))
            .filter_map(|item| {
                // "[`domain/`](domain): ..." or "`main.rs`: ..."
                let item = item.strip_prefix('[').unwrap_or(item);
                let rest = item.strip_prefix('`')?;
                Some(rest[..rest.find('`')?].to_owned())
            })
            .collect()
    }

    /// The top-level module files (`name.rs`) and folders (`name/`) under `src/`, but this file.
    fn src_entries() -> BTreeSet<String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        std::fs::read_dir(&src)
            .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
            .map(|entry| {
                let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() {
                    format!("{name}/")
                } else {
                    name
                }
            })
            .filter(|name| name.ends_with('/') || name.ends_with(".rs"))
            .filter(|name| name != "lib.rs")
            .collect()
    }

    #[test]
    fn every_entry_of_the_map_is_a_file_or_folder_under_src() {
        let entries = map_entries();
        assert!(
            entries.len() >= 10,
            "the map has too few entries: {entries:?}"
        );
        let on_disk = src_entries();
        for entry in &entries {
            assert!(
                on_disk.contains(entry),
                "the map in src/lib.rs names `{entry}`, which is not under src/ (there: {on_disk:?})"
            );
        }
    }

    #[test]
    fn every_file_and_folder_under_src_is_in_the_map() {
        let entries: BTreeSet<String> = map_entries().into_iter().collect();
        for entry in src_entries() {
            assert!(
                entries.contains(&entry),
                "src/{entry} is not in the map at the top of src/lib.rs: add one line for it"
            );
        }
    }

    #[test]
    fn every_module_declared_here_is_in_the_map() {
        let entries: BTreeSet<String> = map_entries().into_iter().collect();
        let declared = include_str!("lib.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod "))
            .filter_map(|l| l.strip_suffix(';'));
        for module in declared {
            assert!(
                entries.contains(&format!("{module}/"))
                    || entries.contains(&format!("{module}.rs")),
                "module `{module}` is declared in src/lib.rs but not in its map"
            );
        }
    }
}
