//! Shared test machinery: a throw-away station driven through the real `keystation` binary, and
//! a fresh PostgreSQL database per test on the local server.
//!
//! PostgreSQL is not optional: when the server cannot be reached the test FAILS and says how to
//! start it (`scripts/setup.sh`), so a green run always means both store backends were tested.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the order fixtures live (`fixtures/orders`).
pub fn order_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/orders")
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
    /// Audit records `init` wrote (the station's birth); helpers count what tests add after it.
    baseline: u64,
}

impl Station {
    /// A station on its embedded SQLite database.
    pub fn sqlite() -> Station {
        Station::init(&[])
    }

    /// A station whose database is `url` (e.g. a [`PgDatabase`]).
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
        let mut st = Station {
            tmp: dir,
            config,
            baseline: 0,
        };
        st.baseline = st.audit_verifies();
        st
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
        cmd.arg("--config").arg(&self.config).args(args);
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
        v["records"].as_u64().unwrap() - self.baseline
    }

    /// `audit show --json`, as JSON records added since `init`.
    pub fn audit(&self) -> Vec<Value> {
        let v = self.run(&["--json", "audit", "show"]).expect_code(0).json();
        v.as_array()
            .unwrap()
            .iter()
            .skip(self.baseline as usize)
            .cloned()
            .collect()
    }
}

/// The server the PostgreSQL tests use: `KEYSTATION_TEST_PG`, by default the local cluster over
/// its Unix socket with peer authentication (what `scripts/setup.sh` sets up).
pub fn pg_admin_url() -> String {
    std::env::var("KEYSTATION_TEST_PG")
        .unwrap_or_else(|_| "postgres:///postgres?host=/var/run/postgresql".to_string())
}

/// A fresh database `ks_test_<uuid>` on the test server, dropped when this value is dropped
/// (also when the test panicked).
#[derive(Debug)]
pub struct PgDatabase {
    /// URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl PgDatabase {
    /// Creates the database; panics with set-up instructions when the server is unreachable.
    pub async fn create() -> PgDatabase {
        use sqlx::Connection;
        let admin_url = pg_admin_url();
        let name = format!("ks_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is unreachable at {admin_url}: {e}\n\
                 The store suite runs on SQLite AND PostgreSQL and never skips one. Run \
                 scripts/setup.sh (as root) to install and start the local server, or point \
                 KEYSTATION_TEST_PG at a server where this user may create databases."
                )
            });
        // `name` is `ks_test_` + hex digits: nothing to inject.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {admin_url}: {e}"));
        admin.close().await.unwrap();
        let url = database_url(&admin_url, &name);
        PgDatabase {
            url,
            name,
            admin_url,
        }
    }

    /// Creates the database from synchronous code.
    pub fn create_blocking() -> PgDatabase {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(PgDatabase::create())
    }
}

/// `admin_url` with its database name replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let (scheme, rest) = base
        .split_once("://")
        .unwrap_or_else(|| panic!("KEYSTATION_TEST_PG {admin_url:?} is not a postgres:// URL"));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let mut url = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside (or outside) some test's runtime: use a thread with its own runtime.
        // FORCE ends connections a test (or a killed keystation) left behind.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

#[test]
fn database_url_replaces_only_the_database_name() {
    assert_eq!(
        database_url("postgres:///postgres?host=/var/run/postgresql", "ks_test_1"),
        "postgres:///ks_test_1?host=/var/run/postgresql"
    );
    assert_eq!(
        database_url("postgres://u:p@db.internal:5433/postgres", "ks_test_1"),
        "postgres://u:p@db.internal:5433/ks_test_1"
    );
    assert_eq!(
        database_url("postgresql://db.internal", "x"),
        "postgresql://db.internal/x"
    );
}
