//! In-process PKCS#11 tests, each in its own SoftHSM token directory.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process, so a test that uses the library in-process
//! re-runs ITSELF as a child process of this test binary with its own configuration: the parent
//! creates a fresh token directory, the child (`KS_SOFTHSM_CHILD=1`) runs the body. The parent
//! fails if the child fails, with the child's output.

use std::path::PathBuf;

/// A fresh SoftHSM configuration in a temp dir; returns (dir guard, conf path).
pub fn fresh_softhsm() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    (dir, conf)
}

/// Runs `body` in a child process of this test binary with its own SoftHSM token directory.
/// `test_path` is the module path of the calling test (see [`softhsm_test!`]).
pub fn in_softhsm_child(test_path: &str, body: impl FnOnce()) {
    if std::env::var_os("KS_SOFTHSM_CHILD").is_some() {
        body();
        return;
    }
    let (_dir, conf) = fresh_softhsm();
    // libtest names tests without the crate name: drop the leading `it::`.
    let name = test_path
        .split_once("::")
        .map(|(_, rest)| rest)
        .unwrap_or(test_path);
    crate::support::run_child_test(
        name,
        [
            ("SOFTHSM2_CONF", conf.as_os_str()),
            ("KS_SOFTHSM_CHILD", "1".as_ref()),
        ],
    );
}

/// `softhsm_test!(fn name() { ... })`: a test whose body runs in its own SoftHSM child process.
#[macro_export]
macro_rules! softhsm_test {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[test]
        fn $name() {
            $crate::softhsm::in_softhsm_child(
                concat!(module_path!(), "::", stringify!($name)),
                || $body,
            );
        }
    };
}
