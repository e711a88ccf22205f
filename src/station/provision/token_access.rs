//! How a job reaches tokens from async code: blocking PKCS#11 calls through the station's one
//! boundary ([`crate::station::hsm::blocking`]), and the one lock under which a blank token is
//! chosen and initialised.

/// Serialises choosing a blank token and initialising it: a SoftHSM blank slot has no identity
/// until `C_InitToken`, so two workers must not pick the same one.
pub(super) fn blank_token_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// Blocking token work crosses into async at the station's one boundary.
pub(super) use crate::station::hsm::blocking;
