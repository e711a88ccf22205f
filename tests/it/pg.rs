//! The one PostgreSQL harness: a fresh database per test on the test server, dropped afterwards.
//!
//! The server is named by ONE environment variable, [`PG_ENV`] (`KEYSTATION_TEST_PG`): the URL of
//! an administrative database on a server where this user may create databases. By default it is
//! the local cluster over its Unix socket with peer authentication, as `scripts/setup.sh` sets it
//! up. PostgreSQL is not optional: when the server cannot be reached the test FAILS and says how
//! to start it, so a green run always means both store backends were tested.
//!
//! Self-contained (sqlx, tokio, uuid only) so that the benchmarks share it
//! (`#[path = "../tests/it/pg.rs"]`). The one test that stops its server (`db_faults`) runs a
//! private cluster of its own instead, so that it cannot disturb the tests using this one.

/// The environment variable naming the test server.
pub const PG_ENV: &str = "KEYSTATION_TEST_PG";

/// The local cluster of `scripts/setup.sh`: Unix socket, peer authentication as the OS user.
const LOCAL_SERVER: &str = "postgres:///postgres?host=/var/run/postgresql";

/// The administrative URL of the test server: [`PG_ENV`], or the local cluster.
pub fn admin_url() -> String {
    std::env::var(PG_ENV).unwrap_or_else(|_| LOCAL_SERVER.to_string())
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
    /// Creates a database on the test server ([`admin_url`]); panics with set-up instructions
    /// when the server is unreachable.
    pub async fn create() -> PgDatabase {
        PgDatabase::create_on(&admin_url()).await
    }

    /// Creates the database from synchronous code.
    pub fn create_blocking() -> PgDatabase {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(PgDatabase::create())
    }

    /// Creates a database on the server of `admin_url`.
    async fn create_on(admin_url: &str) -> PgDatabase {
        use sqlx::Connection;
        let name = format!("ks_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("{}", unreachable_message(admin_url, &e)));
        // `name` is `ks_test_` + hex digits: nothing to inject.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {admin_url}: {e}"));
        admin.close().await.unwrap();
        PgDatabase {
            url: database_url(admin_url, &name),
            name,
            admin_url: admin_url.to_string(),
        }
    }
}

/// What a test says when the server cannot be reached: where it looked, why it failed, and the
/// two ways out. Never "skipped".
fn unreachable_message(admin_url: &str, err: &dyn std::fmt::Display) -> String {
    format!(
        "PostgreSQL is unreachable at {admin_url}: {err}\n\
         Tests that need PostgreSQL never skip it. Run scripts/setup.sh (as root) to install and \
         start the local server, or set {PG_ENV} to the URL of a server where this user may \
         create databases."
    )
}

/// `admin_url` with its database name replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let (scheme, rest) = base
        .split_once("://")
        .unwrap_or_else(|| panic!("{PG_ENV} {admin_url:?} is not a postgres:// URL"));
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

/// An unreachable server fails the test, naming the server, the variable and `scripts/setup.sh`;
/// nothing (no `KEYSTATION_SKIP_POSTGRES`) turns that into a skip.
#[test]
fn an_unreachable_server_fails_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    // A socket directory with no server in it: the connection is refused at once.
    let nowhere = format!("postgres:///postgres?host={}", dir.path().display());
    let failed = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(PgDatabase::create_on(&nowhere))
    })
    .join()
    .expect_err("creating a database on a server that is not there must fail");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("PostgreSQL is unreachable at postgres:///postgres?host="),
        "{message}"
    );
    assert!(message.contains(PG_ENV), "{message}");
    assert!(message.contains("scripts/setup.sh"), "{message}");
}
