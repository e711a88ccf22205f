//! Integration tests: ONE binary; each file under tests/it/ is a module.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery;
mod sms;
mod softhsm;
mod token;
