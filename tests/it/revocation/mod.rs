//! Issue 15: revocation that relying parties can see. OpenSSL plays the relying party and
//! pkilint the auditor.
//!
//! - `crl`: numbered CRLs issued at `init`, after every revocation and by `ca crl`, signed by
//!   the CA key in the HSM, published atomically at the distribution point's path, the number
//!   growing across revocations, restarts and two stations on one PostgreSQL; `crl_tick`'s
//!   re-issue and republication; a bad reason refused with nothing revoked.

mod crl;

pub use crate::support::openssl;
use std::path::{Path, PathBuf};
use std::process::Command;

/// pkilint's CRL linter, in the venv `scripts/setup.sh` makes.
pub const LINT_CRL: &str = "/opt/keystation/pkilint/bin/lint_crl";

/// The station's published CRL (DER) at the distribution point's path, `crl/unit-ca.crl`.
pub fn published(station_dir: &Path) -> PathBuf {
    station_dir.join("crl/unit-ca.crl")
}

/// `openssl crl -text` of a DER CRL; the CRL's signature must verify under `ca.pem`.
#[track_caller]
pub fn verified_crl_text(crl_der: &Path, ca_pem: &Path) -> String {
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_der.to_str().unwrap(),
        "-CAfile",
        ca_pem.to_str().unwrap(),
        "-verify",
        "-noout",
    ]);
    assert!(
        ok && out.contains("verify OK"),
        "openssl crl -verify: {out}"
    );
    let (ok, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_der.to_str().unwrap(),
        "-text",
        "-noout",
    ]);
    assert!(ok, "{text}");
    text
}

/// The CRL number `openssl crl -text` shows.
#[track_caller]
pub fn crl_number(text: &str) -> u64 {
    let after = text
        .split("X509v3 CRL Number:")
        .nth(1)
        .unwrap_or_else(|| panic!("no CRL number in {text}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// pkilint's findings on a DER CRL at ERROR or worse (none expected).
pub fn lint_errors(crl_der: &Path) -> Vec<String> {
    let out = Command::new(LINT_CRL)
        .args(["lint", "-t", "CRL", "-p", "PKIX", "-s", "ERROR"])
        .args(["--document-format", "DER"])
        .arg(crl_der)
        .output()
        .unwrap_or_else(|e| panic!("{LINT_CRL} (scripts/setup.sh installs it): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 1) && stderr.trim().is_empty(),
        "lint_crl did not run: {text}{stderr}"
    );
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}
