//! `check` on the station's own tokens: every key on the CA token (CA key, seal-maker key) and
//! on the vault token carries exactly the usages the station gives keys of its kind, and every
//! private key is protected as the station generates them.

use super::report::{CheckReport, Level};
use super::token_content::{protection_violation, usage_violation};
use crate::station::Station;
use crate::station::hsm::Hsm;
use crate::token::{ObjectKind, TokenError, TokenObject};

/// Reads every object of one station token.
type ReadToken = fn(&Hsm) -> Result<Vec<TokenObject>, TokenError>;

impl Station {
    pub(super) fn check_station_keys(&self, hsm: &Hsm, report: &mut CheckReport) {
        let tokens: [(&str, ReadToken); 2] = [
            ("the CA token", |hsm| hsm.ca_signer()?.session().inventory()),
            ("the vault token", |hsm| hsm.vault()?.inventory()),
        ];
        for (name, read) in tokens {
            let objects = match crate::station::hsm::blocking(|| read(hsm)) {
                Ok(objects) => objects,
                Err(e) => {
                    report.add(
                        Level::Violation,
                        "station_token_unreadable",
                        "",
                        format!("{name}: {e}"),
                    );
                    continue;
                }
            };
            let keys = objects.iter().filter(|o| {
                matches!(
                    o.kind,
                    ObjectKind::PrivateKey | ObjectKind::PublicKey | ObjectKind::SecretKey
                )
            });
            for key in keys {
                if let Some(msg) = usage_violation(key) {
                    report.add(
                        Level::Violation,
                        "station_key_usage",
                        "",
                        format!("{name}: {msg}"),
                    );
                }
                if key.kind == ObjectKind::PrivateKey
                    && let Some(msg) = protection_violation(key)
                {
                    report.add(
                        Level::Violation,
                        "station_key_protection",
                        "",
                        format!("{name}: {msg}"),
                    );
                }
            }
        }
    }
}
