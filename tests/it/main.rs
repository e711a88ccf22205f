//! Integration tests: ONE binary; each file under tests/it/ is a module.

// Tests may panic on the unexpected: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash_import;
mod fixtures;
mod intake_cli;
mod sms;
mod store;
mod support;
