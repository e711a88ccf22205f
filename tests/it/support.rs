//! Shared test machinery: a throw-away station driven through the real `keystation` binary.
//! (A fresh PostgreSQL database per test: [`crate::pg`].)

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Where the order fixtures live (`fixtures/orders`).
pub fn order_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/orders")
}

/// `s` as an order number (the store's API takes them parsed).
pub fn order_no(s: &str) -> keystation::domain::OrderNo {
    s.parse().expect("an order number")
}

/// `s` as a certificate serial.
pub fn cert_serial(s: &str) -> keystation::domain::CertSerial {
    s.parse().expect("a certificate serial")
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the valid bundle (`docs/`, `seals/` and the three orders) in a temporary directory,
/// where a test may add its own order files next to the documents.
pub fn valid_bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&order_fixtures().join("valid"), dir.path());
    dir
}

/// The valid fixture orders as JSON values, in order-number order.
pub fn valid_orders() -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(order_fixtures().join("valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "fixtures/orders/valid holds three orders");
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

/// Writes `value` as an order file `name` into `dir` and returns its path.
pub fn write_order(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

/// What a finished `keystation` process left.
#[derive(Debug)]
pub struct Run {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The `keystation` binary under test, with no station-related variables inherited from the
/// developer's shell.
pub fn keystation() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keystation"));
    cmd.env_remove("KEYSTATION_CONFIG")
        .env_remove("KEYSTATION_FAILPOINTS")
        .env_remove("KEYSTATION_LOG");
    cmd
}

/// A station created by `keystation init --dir <tmp>/station --generate-pins`: its own
/// database, SoftHSM token directory, CA and vault tokens.
#[derive(Debug)]
pub struct Station {
    /// Keeps the temporary directory (station and database) alive.
    tmp: tempfile::TempDir,
    pub config: PathBuf,
    /// Audit records `init` wrote (the station's birth), and those of the operators the helpers
    /// registered for the test; helpers count what tests add after them.
    baseline: std::cell::Cell<u64>,
    /// The operators the helpers registered (their `operator.added` records are not the test's).
    helper_operators: std::cell::RefCell<Vec<String>>,
}

impl Station {
    /// A station on its embedded SQLite database.
    pub fn sqlite() -> Station {
        Station::init(&[])
    }

    /// A station whose database is `url` (e.g. a [`crate::pg::PgDatabase`]).
    pub fn with_database(url: &str) -> Station {
        Station::init(&["--database-url", url])
    }

    /// `init` with extra arguments (e.g. `--ca-algorithm rsa-2048`).
    pub fn init(extra: &[&str]) -> Station {
        let dir = tempfile::tempdir().unwrap();
        let station_dir = dir.path().join("station");
        let out = keystation()
            .arg("init")
            .arg("--dir")
            .arg(&station_dir)
            .arg("--generate-pins")
            .args(extra)
            .output()
            .unwrap();
        Run::from_output(out).expect_code(0);
        let config = station_dir.join("station.toml");
        assert!(config.is_file(), "init wrote no {}", config.display());
        let st = Station {
            tmp: dir,
            config,
            baseline: std::cell::Cell::new(0),
            helper_operators: Default::default(),
        };
        st.map_os_user_to_desk();
        st.baseline.set(st.audit_verifies());
        st
    }

    /// [`map_os_user_to_desk`] for this station, its `operator.added` record counted as the
    /// helpers'.
    fn map_os_user_to_desk(&self) {
        if map_os_user_to_desk(&self.config) {
            self.helper_operators
                .borrow_mut()
                .push(DESK_OPERATOR.to_string());
        }
    }

    /// Takes the desk's OS-user mapping out of the configuration: a command without a
    /// credential then proves no operator (for tests of that refusal).
    pub fn unmap_os_user(&self) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let unmapped = text.replace(&os_user_mapping(), "");
        assert_ne!(text, unmapped, "the station had no desk mapping");
        std::fs::write(&self.config, unmapped).unwrap();
    }

    /// The temporary directory around the station (room for test files).
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// The station directory.
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("station")
    }

    /// A command against this station (`--config` set), not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = keystation();
        let (args, registered) = operator_args(&self.config, args);
        // `operator add` wrote one record: the helpers', not the test's.
        if let Some(name) = registered {
            self.baseline.set(self.baseline.get() + 1);
            self.helper_operators.borrow_mut().push(name);
        }
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// `keystation --config CONFIG --credential ADMIN`: a command run as the bootstrap
    /// administrator, its arguments still to add.
    pub fn admin_command(&self) -> Command {
        let mut cmd = keystation();
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--credential")
            .arg(admin_credential(&self.config));
        cmd
    }

    /// Runs a command against this station.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().unwrap())
    }

    /// Imports an order file (path given as is), returning the run.
    pub fn import(&self, file: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["order", "import", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `order list --json`, as JSON.
    pub fn list(&self) -> Vec<Value> {
        let v = self.run(&["--json", "order", "list"]).expect_code(0).json();
        v.as_array().unwrap().clone()
    }

    /// Order numbers of `order list --json`, in listing order.
    pub fn order_numbers(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|o| o["order_no"].as_str().unwrap().to_string())
            .collect()
    }

    /// `order show NO --json`, as JSON.
    pub fn show(&self, order_no: &str) -> Value {
        self.run(&["--json", "order", "show", order_no])
            .expect_code(0)
            .json()
    }

    /// `audit verify --json` must pass; returns the number of records added since `init`.
    #[track_caller]
    pub fn audit_verifies(&self) -> u64 {
        let v = self
            .run(&["--json", "audit", "verify"])
            .expect_code(0)
            .json();
        assert_eq!(v["ok"], Value::Bool(true), "{v}");
        v["records"].as_u64().unwrap() - self.baseline.get()
    }

    /// `audit show --json`, as JSON records added since `init`.
    pub fn audit(&self) -> Vec<Value> {
        let v = self.run(&["--json", "audit", "show"]).expect_code(0).json();
        let init = self.baseline.get() as usize - self.helper_operators.borrow().len();
        let helpers = self.helper_operators.borrow();
        let by_helpers = |r: &Value| {
            r["action"] == "operator.added"
                && r["details"].as_str().is_some_and(|d| {
                    let d: Value = serde_json::from_str(d).unwrap();
                    helpers.iter().any(|n| d["operator"] == n.as_str())
                })
        };
        v.as_array()
            .unwrap()
            .iter()
            .skip(init)
            .filter(|r| !by_helpers(r))
            .cloned()
            .collect()
    }
}

/// `keystation --config CONFIG [--credential FILE] ARGS`, as a desk types it: nothing added
/// (no operator registered, no credential chosen for it).
pub fn raw(config: &Path, credential: Option<&Path>, args: &[&str]) -> Run {
    let mut c = keystation();
    c.arg("--config").arg(config);
    if let Some(f) = credential {
        c.arg("--credential").arg(f);
    }
    Run::from_output(c.args(args).output().unwrap())
}

/// Exit 2 with `code` in the error.
#[track_caller]
pub fn refused_with(run: &Run, code: &str) {
    run.expect_code(2);
    assert!(
        run.stderr.contains(code),
        "expected {code}:\n{}",
        run.stderr
    );
}

/// Spawns `cmd` (a `keystation` command, its stdout set up by the caller) with the failpoint
/// `point=action` (`pause`, `sleepN`), and returns it once it reports reaching `point`. Its
/// stderr is then drained in the background, so a paused process never blocks on a full pipe.
pub fn spawn_to_failpoint(mut cmd: Command, point: &str, action: &str) -> Child {
    let mut child = cmd
        .env("KEYSTATION_FAILPOINTS", format!("{point}={action}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let marker = format!("failpoint {point} reached");
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains(&marker)),
        "{point} not reached"
    );
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// Runs `cmd`, which must exit 0: the binary under test or an independent checker (openssl,
/// pkcs11-tool, xmllint...). A failure names the command and shows both streams.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let line = command_line(cmd);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {line} ({e}); scripts/setup.sh installs the tools"),
    };
    assert_success(&out, &line);
    out
}

/// `out` is a success; otherwise the test fails with `context` and both streams.
#[track_caller]
pub fn assert_success(out: &Output, context: &str) {
    assert!(
        out.status.success(),
        "{context}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The program and its arguments (never the environment, where tests pass PINs).
fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stdout parsed as JSON.
#[track_caller]
pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The elements of the JSON array `v`; the test fails if `v` is not an array.
#[track_caller]
pub fn items(v: &Value) -> &[Value] {
    match v.as_array() {
        Some(a) => a,
        None => panic!("not a JSON array: {v:#}"),
    }
}

/// The string field `key` of every element of the JSON array `v`, in order.
#[track_caller]
pub fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    items(v)
        .iter()
        .map(|e| match e[key].as_str() {
            Some(s) => s,
            None => panic!("no string {key} in {e:#}"),
        })
        .collect()
}

/// The records of `audit show --json` output with action `action`, in chain order.
pub fn audit_records<'a>(audit: &'a Value, action: &str) -> Vec<&'a Value> {
    items(audit)
        .iter()
        .filter(|r| r["action"] == action)
        .collect()
}

/// The first record of `audit show --json` output with action `action`; the test fails if none.
#[track_caller]
pub fn audit_record<'a>(audit: &'a Value, action: &str) -> &'a Value {
    match audit_records(audit, action).first() {
        Some(r) => r,
        None => panic!("no {action} record in {audit:#}"),
    }
}

/// Runs the test `name` (its path below the crate, as libtest names it) of this binary again,
/// alone, in a child process with `env`; the child must pass it.
#[track_caller]
pub fn run_child_test<K, V>(name: &str, env: impl IntoIterator<Item = (K, V)>)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env)
        .output()
        .expect("spawning the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The string fields `keys` of the JSON object `v`, in that order.
#[track_caller]
pub fn fields<'a, const N: usize>(v: &'a Value, keys: [&str; N]) -> [&'a str; N] {
    keys.map(|k| match v[k].as_str() {
        Some(s) => s,
        None => panic!("no string {k} in {v:#}"),
    })
}

/// (field, code) of each error-severity violation of an `order import --json` refusal, in
/// order; each must carry a message.
#[track_caller]
pub fn error_violations(report: &Value) -> Vec<(String, String)> {
    assert_eq!(report["error"], "invalid_input", "{report}");
    items(&report["violations"])
        .iter()
        .filter(|v| v["severity"] == "error")
        .map(|v| {
            assert!(
                !v["message"].as_str().unwrap().is_empty(),
                "a violation without a message: {v}"
            );
            (
                v["field"].as_str().unwrap().to_string(),
                v["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A single-threaded runtime for a test's own blocking calls into async code (a second
/// connection to the station's database, say).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `pkcs11-tool --module MODULE --token-label LABEL --login --pin env:KS_TEST_PIN`, `pin` in
/// that variable of its environment (never on a command line): the command, its action (and the
/// token configuration's variable) still to add.
pub fn pkcs11_login(module: impl AsRef<std::ffi::OsStr>, label: &str, pin: &str) -> Command {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module")
        .arg(module)
        .args([
            "--token-label",
            label,
            "--login",
            "--pin",
            "env:KS_TEST_PIN",
        ])
        .env("KS_TEST_PIN", pin);
    c
}

/// `openssl ARGS`: (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/setup.sh)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The DER certificate `der` written as `dir/name.der` and, by `openssl x509`, as
/// `dir/name.pem`; returns the PEM file.
pub fn certificate_as_pem(dir: &Path, name: &str, der: &[u8]) -> PathBuf {
    let der_path = dir.join(format!("{name}.der"));
    std::fs::write(&der_path, der).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    let (ok, out) = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
    ]);
    assert!(ok, "openssl x509: {out}");
    pem
}

/// The roles the shared helpers give an operator a test names with `--operator`: every role a
/// desk's work needs, so existing tests keep their meaning (four-eyes still tells names apart).
pub const TEST_OPERATOR_ROLES: &str = "reviewer,provisioner,security_officer";

/// The operator a test station's OS user is mapped to (`[operator.os_users]`): commands run
/// without a credential act as this registered operator.
pub const DESK_OPERATOR: &str = "desk";

/// The login name running the tests, as the password database has it (what the station reads
/// from the effective uid).
pub fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    assert!(out.status.success(), "id -un failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `[operator.os_users]` section mapping [`os_user`] to [`DESK_OPERATOR`], as appended to a
/// test station's configuration.
pub fn os_user_mapping() -> String {
    format!(
        "\n[operator.os_users]\n{:?} = {DESK_OPERATOR:?}\n",
        os_user()
    )
}

/// Makes the station of `config` a desk whose OS user acts as [`DESK_OPERATOR`]
/// (`[operator.os_users]`; the operator registered with [`TEST_OPERATOR_ROLES`] on first use):
/// a command run there without a credential is that registered operator's, as at a real desk,
/// never anonymous. Whether this call registered the operator.
pub fn map_os_user_to_desk(config: &Path) -> bool {
    let (_, registered) =
        registered_operator(config, DESK_OPERATOR).expect("the desk operator registers");
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, format!("{text}{}", os_user_mapping())).unwrap();
    registered
}

/// The first administrator's credential of the station configured by `config`: `init` writes
/// it beside `station.toml` (a desk that joined an installation links to its installation's).
pub fn admin_credential(config: &Path) -> PathBuf {
    config
        .parent()
        .expect("station.toml is in a directory")
        .join("admin.credential")
}

/// Where the helpers keep the credentials of the operators tests name: beside the
/// installation's admin credential, so every desk of an installation finds the same ones.
fn test_credentials_dir(config: &Path) -> Option<PathBuf> {
    let admin = std::fs::canonicalize(admin_credential(config)).ok()?;
    Some(admin.parent()?.join("test-operators"))
}

/// The credential of operator `name` on the installation of `config`, registered (with
/// [`TEST_OPERATOR_ROLES`], by the admin credential) on first use; `None` when the name cannot
/// be registered (a test of a malformed name) or the station has no admin credential.
pub fn operator_credential(config: &Path, name: &str) -> Option<PathBuf> {
    registered_operator(config, name).map(|(file, _)| file)
}

/// [`operator_credential`], and whether this call registered it.
fn registered_operator(config: &Path, name: &str) -> Option<(PathBuf, bool)> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = test_credentials_dir(config)?;
    // Inside the station directory, private like the rest of it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap();
    let file = dir.join(format!("{}.credential", name.replace('/', "_")));
    let registering = !file.exists();
    if registering {
        let out = keystation()
            .arg("--config")
            .arg(config)
            .arg("--credential")
            .arg(admin_credential(config))
            .args(["operator", "add", name, "--role", TEST_OPERATOR_ROLES])
            .arg("--credential-out")
            .arg(&file)
            .output()
            .unwrap();
        if !out.status.success() {
            // A name that cannot be registered (a test of a malformed one) goes through as is.
            eprintln!(
                "test helper: operator {name:?} not registered: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
    }
    Some((file, registering))
}

/// `keystation --config CONFIG ARGS` with the operator's credential the arguments name
/// ([`with_operator_credential`]): the command, not yet run.
pub fn operator_command(config: &Path, args: &[&str]) -> Command {
    let mut c = keystation();
    c.arg("--config")
        .arg(config)
        .args(with_operator_credential(config, args));
    c
}

/// `args` as the shared helpers pass them: when they name `--operator NAME`, the command acts
/// with that operator's `--credential` (registered on first use), as a desk does.
pub fn with_operator_credential(config: &Path, args: &[&str]) -> Vec<std::ffi::OsString> {
    operator_args(config, args).0
}

/// [`with_operator_credential`], and whether the operator was registered by this call.
fn operator_args(config: &Path, args: &[&str]) -> (Vec<std::ffi::OsString>, Option<String>) {
    let name = args.windows(2).find(|w| w[0] == "--operator").map(|w| w[1]);
    let mut out = Vec::new();
    let mut registered = None;
    if let Some((file, new)) = name.and_then(|n| registered_operator(config, n)) {
        out.push("--credential".into());
        out.push(file.into_os_string());
        registered = new.then(|| name.unwrap_or_default().to_string());
    }
    out.extend(args.iter().map(|a| std::ffi::OsString::from(*a)));
    (out, registered)
}

/// Four-eyes on `provision ORDER --reinit`: `reinit request ORDER` by one test operator,
/// approved by [`SECOND_OFFICER`] (both registered on first use); the request's id.
pub fn approved_reinit(config: &Path, order_no: &str) -> String {
    let asker = operator_credential(config, "reinit-asker").expect("a test operator");
    let second = operator_credential(config, SECOND_OFFICER).expect("a test operator");
    let by = |credential: &Path, args: &[&str]| {
        run_ok(
            keystation()
                .arg("--config")
                .arg(config)
                .arg("--credential")
                .arg(credential)
                .args(args),
        )
    };
    let asked = stdout_json(&by(&asker, &["--json", "reinit", "request", order_no]));
    let id = asked["id"].as_str().expect("a request id").to_string();
    by(&second, &["reinit", "approve", &id]);
    id
}

/// The second operator the helpers approve revocations with: four-eyes (issue 17) needs an
/// operator other than the one who asked (registered on first use, like any named operator).
pub const SECOND_OFFICER: &str = "second-officer";

/// The id of the request `order revoke` / `cert revoke` printed (`--json` or text: the text's
/// first word).
#[track_caller]
pub fn request_id(stdout: &str) -> String {
    match serde_json::from_str::<Value>(stdout) {
        Ok(v) => v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id in {v:#}"))
            .to_string(),
        Err(_) => stdout
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("no request id in {stdout:?}"))
            .to_string(),
    }
}

/// `order revoke NO --reason keyCompromise --operator OPERATOR`: a revocation asked for.
pub fn revoke_order_args<'a>(no: &'a str, operator: &'a str) -> [&'a str; 7] {
    [
        "order",
        "revoke",
        no,
        "--reason",
        "keyCompromise",
        "--operator",
        operator,
    ]
}

/// `ARGS --credential-out FILE`: a command that writes a new operator's credential to `file`.
pub fn credential_out<'a>(args: &[&'a str], file: &'a Path) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--credential-out", file.to_str().unwrap()]);
    all
}

/// `valid_orders()`'s second order, numbered `no`, written into `dir` as `NO.json`: its path.
pub fn numbered_order(dir: &Path, no: &str) -> PathBuf {
    let (_, mut order) = valid_orders().remove(1);
    order["order_no"] = Value::from(no);
    write_order(dir, &format!("{}.json", no.to_lowercase()), &order)
}

/// `--json revoke approve ID --operator SECOND_OFFICER`: the second operator's approval, which
/// carries the revocation out.
pub fn approve_revoke_args(id: &str) -> [&str; 6] {
    [
        "--json",
        "revoke",
        "approve",
        id,
        "--operator",
        SECOND_OFFICER,
    ]
}

/// A revocation as four-eyes makes it, through a station's `json` runner (a command with
/// `--json` that must succeed): `args` (naming `--operator`) requests it and [`SECOND_OFFICER`]
/// approves it; returns what it revoked ([`revocation_report`]).
pub fn revoked_by_four_eyes(json: impl Fn(&[&str]) -> Value, args: &[&str]) -> Value {
    let id = request_id(&json(args).to_string());
    let approved = json(&["revoke", "approve", &id, "--operator", SECOND_OFFICER]);
    revocation_report(&approved)
}

/// The report of what an approved revocation revoked, in `revoke approve`'s JSON: the order's
/// (`order revoke`) or the one certificate's (`cert revoke`), with `four_eyes` naming both
/// operators.
#[track_caller]
pub fn revocation_report(approved: &Value) -> Value {
    assert_eq!(approved["request"]["state"], "done", "{approved:#}");
    match &approved["order"] {
        Value::Null => approved["certificate"].clone(),
        order => order.clone(),
    }
}
