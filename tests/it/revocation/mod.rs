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

/// `openssl crl -inform DER -in crl_der` with `args` after: (succeeded, output).
pub fn openssl_crl(crl_der: &Path, args: &[&str]) -> (bool, String) {
    let der = crl_der.to_str().unwrap();
    openssl(&[&["crl", "-inform", "DER", "-in", der][..], args].concat())
}

/// `openssl crl -text` of a DER CRL; the CRL's signature must verify under `ca.pem`.
#[track_caller]
pub fn verified_crl_text(crl_der: &Path, ca_pem: &Path) -> String {
    let ca = ca_pem.to_str().unwrap();
    let (ok, out) = openssl_crl(crl_der, &["-CAfile", ca, "-verify", "-noout"]);
    assert!(
        ok && out.contains("verify OK"),
        "openssl crl -verify: {out}"
    );
    let (ok, text) = openssl_crl(crl_der, &["-text", "-noout"]);
    assert!(ok, "{text}");
    text
}

/// The DER CRL `crl_der` written as PEM at `pem`, what `openssl verify -CRLfile` reads.
#[track_caller]
pub fn crl_as_pem(crl_der: &Path, pem: &Path) {
    let (ok, out) = openssl_crl(crl_der, &["-out", pem.to_str().unwrap()]);
    assert!(ok, "{out}");
}

/// `openssl verify -crl_check` of `cert` against the CA and `crl_pem`: (accepted, output).
pub fn relying_party(ca: &Path, crl_pem: &Path, cert: &Path) -> (bool, String) {
    let [ca, crl, cert] = [ca, crl_pem, cert].map(|p| p.to_str().unwrap());
    openssl(&["verify", "-crl_check", "-CRLfile", crl, "-CAfile", ca, cert])
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
