//! Issue 17, item 2: the operators' console of `keystation serve
//! --console-listen`, against a real server on a loopback port.
//!
//! - `http`: over reqwest — login by password and TOTP (and a refused one, audited), the CSRF
//!   token every form needs,
//!   the station's role checks (403), the queue's filter and search, a document served with its
//!   type, approve naming the logged-in operator in the audit trail, the login throttle, a
//!   non-loopback console refused;
//! - `browser`: Debian's Chromium through ChromeDriver (fantoccini): log in, see a fixture
//!   order's documents rendered, approve it, screenshots of the queue and the review page;
//! - `login`: codes refused when wrong or replayed, accounts without a password or TOTP, the
//!   CLI that sets them (policy, whose), no secret in clear in the trail or the database;
//! - `tls`: HTTPS with a certificate made by the test, the `Secure` cookie, a bad key refused;
//! - `language`: the English switch, over HTTP and clicked in Chromium.

mod api;
mod browser;
mod http;
mod language;
mod login;
mod pages;
mod provision;
mod provision_browser;
mod tls;

use crate::ocsp::Serve;
use crate::support::{Station, keystation, order_fixtures, run_ok};
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

/// What an operator logs in to the console with: name, password, TOTP secret (base32).
#[derive(Debug, Clone)]
pub struct Login {
    /// The operator's name.
    pub name: String,
    /// The console password.
    pub password: String,
    /// The TOTP secret, base32, as `operator totp` printed it.
    pub secret: String,
}

impl Login {
    /// The TOTP code of the current time step (the server reads the system clock too).
    pub fn code(&self) -> String {
        self.code_at_offset(0)
    }

    /// The code `steps` time steps from now.
    pub fn code_at_offset(&self, steps: i64) -> String {
        use keystation::domain::totp;
        let secret = data_encoding::BASE32_NOPAD
            .decode(self.secret.as_bytes())
            .expect("base32 secret");
        #[allow(clippy::disallowed_methods)] // the server under test runs on the system clock
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        totp::code_at(&secret, totp::time_step(now) + steps)
    }
}

/// Registers operator `name` with `roles` (by the admin credential), sets its console password
/// (on standard input, as a script would) and enrols its TOTP, reading the secret from the
/// command's stdout as the operator would read it off the terminal.
pub fn register(st: &Station, name: &str, roles: &str) -> Login {
    let file = st.tmp().join(format!("{name}.credential"));
    let admin = || st.admin_command();
    run_ok(
        admin()
            .args(["operator", "add", name, "--role", roles])
            .arg("--credential-out")
            .arg(&file),
    );
    let password = format!("{name} 的控制台密码 correct horse");
    set_password(admin().args(["operator", "password", name]), &password);
    let out = run_ok(admin().args(["operator", "totp", name]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret printed: {stdout}"))
        .trim()
        .to_string();
    assert!(
        stdout.contains("uri: otpauth://totp/") && stdout.contains(&secret),
        "{stdout}"
    );
    Login {
        name: name.to_string(),
        password,
        secret,
    }
}

/// Runs `cmd` (an `operator password` command) with `password` on its standard input.
pub fn set_password(cmd: &mut std::process::Command, password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
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

/// The text after the first `marker` in `html`, up to `end`; `what` names it if it is missing.
fn text_after(html: &str, marker: &str, end: char, what: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {what} in {html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find(end).unwrap()].to_string()
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    text_after(html, "name=\"csrf\" value=\"", '"', "CSRF field")
}

/// The id in the page's first `/requests/{id}/approve` form.
pub fn first_request_id(html: &str) -> String {
    text_after(html, "action=\"/requests/", '/', "request form")
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where screenshots are copied for people to look at.
pub fn shots_dir() -> PathBuf {
    PathBuf::from("/work/console-shots")
}

/// ORDER approved and provisioned, and two security officers registered: console-sophia, who
/// will ask for a revocation, and console-simon, who may approve it.
pub fn provisioned_with_two_officers(st: &Station) -> (Login, Login) {
    st.run(&["order", "approve", ORDER, "--operator", "console-reviewer"])
        .expect_code(0);
    st.run(&["provision", ORDER]).expect_code(0);
    assert_eq!(state_of(st, ORDER), "Provisioned");
    (
        register(st, "console-sophia", "security_officer"),
        register(st, "console-simon", "security_officer"),
    )
}

/// `serve` with its console on `console_listen`, which must refuse to start (exit code 2): its
/// standard error.
#[track_caller]
pub fn serve_refused(st: &Station, console_listen: &str) -> String {
    let out = keystation()
        .arg("--config")
        .arg(&st.config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--console-listen", console_listen])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
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
