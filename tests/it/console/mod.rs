//! Issue 17, item 2 (first slice): the operators' console of `keystation serve
//! --console-listen`, against a real server on a loopback port.
//!
//! - `http`: over reqwest — login (and a refused one, audited), the CSRF token every form needs,
//!   the station's role checks (403), the queue's filter and search, a document served with its
//!   type, approve naming the logged-in operator in the audit trail, the login throttle, a
//!   non-loopback console refused;
//! - `browser`: Debian's Chromium through ChromeDriver (fantoccini): log in, see a fixture
//!   order's documents rendered, approve it, screenshots of the queue and the review page.

mod browser;
mod http;
mod pages;
mod provision;
mod provision_browser;

use crate::ocsp::Serve;
use crate::support::{Station, admin_credential, keystation, order_fixtures, run_ok};
use std::path::{Path, PathBuf};

/// The fixture order the tests review (its documents are PNG and JPEG pictures).
pub const ORDER: &str = "KS-DEMO-0001";

/// A station (SQLite) with the fixture order `ORDER` imported (Submitted), and its console
/// running.
pub fn station_with_console() -> (Station, Serve) {
    console_of(Station::sqlite())
}

/// [`station_with_console`] for the station `st`.
pub fn console_of(st: Station) -> (Station, Serve) {
    let file = order_fixtures()
        .join("valid")
        .join("0001_main-key_two-seals_legal-rep-phone.json");
    st.import(&file, &[]).expect_code(0);
    let serve = Serve::start_with_console(&st.config);
    (st, serve)
}

/// Registers operator `name` with `roles` (by the admin credential); returns its credential
/// token, as the operator would paste it.
pub fn register(st: &Station, name: &str, roles: &str) -> String {
    let file = st.tmp().join(format!("{name}.credential"));
    run_ok(
        keystation()
            .arg("--config")
            .arg(&st.config)
            .arg("--credential")
            .arg(admin_credential(&st.config))
            .args(["operator", "add", name, "--role", roles])
            .arg("--credential-out")
            .arg(&file),
    );
    std::fs::read_to_string(&file).unwrap().trim().to_string()
}

/// The fixture document `name` (under `fixtures/orders/valid/docs`).
pub fn fixture_document(name: &str) -> Vec<u8> {
    std::fs::read(order_fixtures().join("valid/docs").join(name)).unwrap()
}

/// The console's URL of `path`.
pub fn url(serve: &Serve, path: &str) -> String {
    let base = serve.console_url.as_deref().expect("console started");
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Where screenshots are copied for people to look at.
pub fn shots_dir() -> PathBuf {
    PathBuf::from("/work/console-shots")
}

/// The state of `order` as `order show` gives it.
pub fn state_of(st: &Station, order: &str) -> String {
    st.show(order)["state"].as_str().unwrap().to_string()
}

/// Copies `file` into [`shots_dir`] (best effort: the directory is for people, not the test).
pub fn publish_shot(file: &Path) {
    let dir = shots_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::copy(file, dir.join(file.file_name().unwrap()));
    }
}
