//! A real station for tests: created and driven through the `keystation` binary, each test with
//! its own directory (database, SoftHSM token directory, CA, spool...).
//!
//! Library code that must touch the station's tokens (e.g. unsealing a PIN from the vault to log
//! in with `pkcs11-tool`) runs in a child process of this test binary whose `SOFTHSM2_CONF` is the
//! station's ([`TestStation::run_child`]): SoftHSM reads its configuration once per process.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::support::keystation;
use crate::support::{assert_success, items, run_ok, stdout_json};

/// A station for provisioning-level tests: [`crate::support::Station`] plus conveniences.
pub struct TestStation {
    inner: crate::support::Station,
}

impl TestStation {
    /// `keystation init --dir <tmp>/station --generate-pins`.
    pub fn new() -> TestStation {
        Self::with_args(&[])
    }

    /// `init` with extra arguments (e.g. `--ca-algorithm rsa-2048`).
    pub fn with_args(extra: &[&str]) -> TestStation {
        TestStation {
            inner: crate::support::Station::init(extra),
        }
    }

    /// The temporary directory around the station (room for test files).
    pub fn tmp(&self) -> &Path {
        self.inner.tmp()
    }

    /// The station directory.
    pub fn path(&self) -> PathBuf {
        self.inner.dir()
    }

    /// station.toml.
    pub fn config(&self) -> PathBuf {
        self.inner.config.clone()
    }

    /// A direct connection to the station's SQLite database (for tests playing an attacker or a
    /// second process), with its own runtime.
    pub fn sqlite(&self) -> (tokio::runtime::Runtime, sqlx::SqliteConnection) {
        use sqlx::Connection;
        let rt = crate::support::runtime();
        let url = format!("sqlite://{}", self.path().join("station.db").display());
        let conn = rt.block_on(sqlx::SqliteConnection::connect(&url)).unwrap();
        (rt, conn)
    }

    /// A token initialised outside the station (softhsm2-util), labelled `label`.
    pub fn foreign_token(&self, label: &str) {
        run_ok(
            Command::new("softhsm2-util")
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--so-pin",
                    "12345678",
                    "--pin",
                    "12345678",
                ])
                .env("SOFTHSM2_CONF", self.softhsm_conf()),
        );
    }

    /// Reads a public object off a token with pkcs11-tool (`kind`: cert, pubkey).
    pub fn read_object(&self, label: &str, kind: &str, key_id: &str) -> Vec<u8> {
        let file = self.tmp().join(format!("{label}-{kind}-{key_id}.der"));
        let out = pkcs11_tool(
            self,
            &[
                "--token-label",
                label,
                "--read-object",
                "--type",
                kind,
                "--id",
                key_id,
                "-o",
                file.to_str().unwrap(),
            ],
            None,
        );
        assert_success(&out, "pkcs11-tool --read-object");
        std::fs::read(file).unwrap()
    }

    /// The station's SoftHSM configuration.
    pub fn softhsm_conf(&self) -> PathBuf {
        self.path().join("softhsm2.conf")
    }

    /// Runs `keystation --config <station> ARGS` (extra env pairs optional).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = crate::support::operator_command(&self.config(), args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("running keystation")
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert_success(&out, &format!("keystation {args:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command with `--json` that must succeed; returns the parsed stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let text = self.ok(&a);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// A revocation as four-eyes makes it: `args` (`order revoke ...` / `cert revoke ...`,
    /// naming `--operator`) requests it and [`crate::support::SECOND_OFFICER`] approves it;
    /// returns what it revoked ([`crate::support::revocation_report`]).
    pub fn revoke(&self, args: &[&str]) -> Value {
        crate::support::revoked_by_four_eyes(|a| self.json(a), args)
    }

    /// Writes an order application (with its pictures) under the station's temp dir; returns
    /// the JSON file path.
    pub fn write_order(&self, order: &Value) -> PathBuf {
        let no = order["order_no"].as_str().unwrap_or("order");
        let d = self.tmp().join("applications").join(no);
        std::fs::create_dir_all(&d).expect("application dir");
        let seals = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seals");
        for f in ["company.png", "legal_rep.jpg"] {
            std::fs::copy(seals.join(f), d.join(f)).expect("copy picture");
        }
        let file = d.join("order.json");
        std::fs::write(&file, serde_json::to_vec_pretty(order).expect("json"))
            .expect("write order");
        file
    }

    /// Imports and approves an order.
    pub fn import_approved(&self, order: &Value) {
        let file = self.write_order(order);
        self.ok(&["order", "import", file.to_str().expect("utf-8 path")]);
        let no = order["order_no"].as_str().expect("order_no");
        self.ok(&["order", "approve", no, "--operator", "reviewer"]);
    }

    /// Runs the test `test_path` (module path within the test binary, e.g.
    /// `provision::my_test`) again in a child process bound to this station's SoftHSM, with
    /// `KS_STATION_DIR` set; the child detects itself with [`child_station`].
    pub fn run_child(&self, test_path: &str, env: &[(&str, &str)]) {
        let station = [
            ("SOFTHSM2_CONF", self.softhsm_conf()),
            ("KS_STATION_DIR", self.path()),
        ];
        crate::support::run_child_test(
            test_path,
            station
                .iter()
                .map(|(k, v)| (*k, v.as_os_str()))
                .chain(env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(v)))),
        );
    }
}

/// In a child started by [`TestStation::run_child`]: the station directory.
pub fn child_station() -> Option<PathBuf> {
    std::env::var_os("KS_STATION_DIR").map(PathBuf::from)
}

/// Library access to a station from a child process: config, store, HSM.
pub fn open_station(
    dir: &Path,
) -> (
    tokio::runtime::Runtime,
    keystation::station::Station,
    keystation::station::hsm::Hsm,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = keystation::config::Config::load(&dir.join("station.toml")).expect("config");
    let station = rt
        .block_on(keystation::station::Station::open(
            cfg,
            std::sync::Arc::new(keystation::clock::SystemClock),
        ))
        .expect("station");
    let hsm = rt.block_on(station.open_hsm()).expect("hsm");
    (rt, station, hsm)
}

/// The active token binding of `order_no`, and its token serial.
pub fn token_binding(
    rt: &tokio::runtime::Runtime,
    station: &keystation::station::Station,
    order_no: &str,
) -> (keystation::store::Binding, String) {
    let binding = rt
        .block_on(station.order_details(&order_no.parse().unwrap()))
        .unwrap()
        .token
        .unwrap();
    let serial = binding.token_serial.clone().unwrap();
    (binding, serial.into())
}

/// A valid order application. `auth`: legal_rep_phone | legal_rep_bank_card | corporate_transfer;
/// `seals`: company_and_legal_rep | company | none; `role`: main | secondary.
pub fn order_json(no: &str, auth: &str, seals: &str, role: &str) -> Value {
    let mut docs = vec![
        json!({"kind": "business_license", "file": "company.png"}),
        json!({"kind": "handler_id_front", "file": "company.png"}),
        json!({"kind": "handler_id_back", "file": "company.png"}),
        json!({"kind": "power_of_attorney", "file": "company.png"}),
    ];
    if role == "main" && seals != "none" {
        docs.push(json!({"kind": "seal_collection_form", "file": "company.png"}));
    }
    let pictures: Vec<Value> = match seals {
        "company_and_legal_rep" => vec![
            json!({"kind": "company", "picture": "company.png"}),
            json!({"kind": "legal_rep", "picture": "legal_rep.jpg"}),
        ],
        "company" => vec![json!({"kind": "company", "picture": "company.png"})],
        _ => vec![],
    };
    let mut o = json!({
        "order_no": no,
        "auth_method": auth,
        "company": {"name": "北京示例科技有限公司", "uscc": "91110000600037341L", "department": "信息部"},
        "legal_rep": {"name": "张三", "mobile": "13800138000", "id_type": "resident_id", "id_number": "11010519491231002X"},
        "product": {"key_role": role, "years": 1, "seal_service": seals},
        "invoice": {"title": "北京示例科技有限公司", "taxpayer_id": "91110000600037341L"},
        "handler": {"name": "李四", "mobile": "13900139000", "id_type": "resident_id", "id_number": "110108200001011237", "email": "li.si@example.com"},
        "shipping": {"province": "北京市", "city": "北京市", "address": "海淀区某路1号"},
        "documents": docs,
        "seals": pictures,
    });
    if auth == "corporate_transfer" {
        o["corporate_account"] = json!({"account_name": "北京示例科技有限公司", "account_number": "110060149018800012345", "bank_name": "中国银行北京分行"});
    }
    o
}

/// `pkcs11-tool` on the station's SoftHSM; `pin` goes through the environment, never argv.
pub fn pkcs11_tool(st: &TestStation, args: &[&str], pin: Option<&str>) -> Output {
    let mut c = Command::new("pkcs11-tool");
    c.arg("--module")
        .arg(softhsm_module())
        .args(args)
        .env("SOFTHSM2_CONF", st.softhsm_conf());
    if let Some(p) = pin {
        c.args(["--login", "--pin", "env:KS_TEST_PIN"])
            .env("KS_TEST_PIN", p);
    }
    c.output()
        .expect("pkcs11-tool must be installed (scripts/setup.sh installs opensc)")
}

/// The SoftHSM module path (as the station finds it).
pub fn softhsm_module() -> &'static str {
    keystation::token::module::SOFTHSM_PATHS
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("SoftHSM2 must be installed (scripts/setup.sh)")
}

/// In a child process bound to the station: the order's user PIN unsealed from the vault, and
/// its SO PIN re-derived (test-only access to what the station otherwise only sends out).
pub fn unseal_pins(dir: &Path, order_no: &str) -> (String, String) {
    let (rt, station, hsm) = open_station(dir);
    let (binding, serial) = token_binding(&rt, &station, order_no);
    // The sealed PIN is nothing a front reads: straight from the database.
    let store = rt
        .block_on(keystation::store::Store::connect(
            &station.config().database_url(),
        ))
        .unwrap();
    let stored = rt
        .block_on(store.sealed_pin(&crate::support::order_no(order_no)))
        .unwrap()
        .unwrap();
    assert_eq!(stored.token_serial, serial);
    rt.block_on(async {
        tokio::task::block_in_place(|| {
            let v = hsm.vault().unwrap();
            let pin = v
                .unseal_pin(
                    &stored.sealed,
                    &keystation::token::vault::pin_aad(order_no, &serial),
                )
                .unwrap();
            let so = v.derive_so_pin(&binding.so_identity).unwrap();
            (
                pin.expose_secret().to_string(),
                so.expose_secret().to_string(),
            )
        })
    })
}

impl TestStation {
    /// The parent half of a test that runs again in a child bound to the station's SoftHSM
    /// ([`TestStation::run_child`]): in the child, runs `child` on the station directory and
    /// gives `None`; in the parent, a new station (`init` with `extra` arguments).
    pub fn unless_child(extra: &[&str], child: impl FnOnce(&Path)) -> Option<TestStation> {
        match child_station() {
            Some(dir) => {
                child(&dir);
                None
            }
            None => Some(Self::with_args(extra)),
        }
    }

    /// `check --json` must pass (`context` says when, in a failure); returns its report.
    #[track_caller]
    pub fn check_passes(&self, context: &str) -> Value {
        let out = self.run(&["check", "--json"], &[]);
        let report = stdout_json(&out);
        assert!(
            out.status.success(),
            "{context}: invariants broken: {report:#}"
        );
        report
    }

    /// `provision NO` with an injected failure at failpoint `point`: exits 1; returns the run.
    #[track_caller]
    pub fn provision_failing_at(&self, order_no: &str, point: &str) -> Output {
        let failpoint = format!("{point}=error");
        let out = self.run(
            &["provision", order_no],
            &[("KEYSTATION_FAILPOINTS", &failpoint)],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The violations `check --json` reports; its exit code must say whether there are any
    /// (0 none, 1 some).
    #[track_caller]
    pub fn violations(&self) -> Vec<Violation> {
        let out = self.run(&["check", "--json"], &[]);
        let report = stdout_json(&out);
        let found: Vec<Violation> = items(&report["findings"])
            .iter()
            .filter(|f| f["level"] == "violation")
            .map(|f| Violation {
                order_no: f["order_no"].as_str().unwrap_or("").to_string(),
                rule: f["rule"].as_str().unwrap().to_string(),
                message: f["message"].as_str().unwrap().to_string(),
            })
            .collect();
        let code = if found.is_empty() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{report:#}");
        found
    }
}

/// A broken invariant, as `check --json` names it.
#[derive(Debug, PartialEq)]
pub struct Violation {
    /// Empty for a station-wide finding.
    pub order_no: String,
    pub rule: String,
    pub message: String,
}

impl Violation {
    /// Whether this is `rule` broken by order `order_no`.
    pub fn is(&self, order_no: &str, rule: &str) -> bool {
        self.order_no == order_no && self.rule == rule
    }
}

/// `keystation --config DIR/station.toml ARGS`, not yet run (for a child working on the
/// station directory `dir`).
pub fn keystation_at(dir: &Path, args: &[&str]) -> Command {
    let mut c = keystation();
    let config = dir.join("station.toml");
    c.arg("--config")
        .arg(&config)
        .args(crate::support::with_operator_credential(&config, args));
    c
}

/// The fullest order: main key, company and legal representative seals, PIN by SMS to the legal
/// representative's phone.
pub fn full_order(no: &str) -> Value {
    order_json(no, "legal_rep_phone", "company_and_legal_rep", "main")
}
