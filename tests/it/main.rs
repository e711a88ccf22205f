//! Integration tests: ONE binary; each file under tests/it/ is a module.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod batch;
mod cert_revoke;
mod check_tokens;
mod crash;
mod crash_import;
mod db_faults;
mod delivery;
mod demo;
mod dualcert;
mod file_modes;
mod fixtures;
mod fleet;
mod fuzz_seeds;
mod hostile;
mod intake_cli;
mod intake_input;
mod lease;
mod newcomer;
mod notify;
mod ocsp;
mod operation_id;
mod operator_dead_ends;
mod operators;
mod pg;
mod provision;
mod random_source;
mod reissue;
mod renewal;
mod revocation;
mod seals;
mod secondary;
mod service_desk;
mod sm2;
mod sms;
mod softhsm;
mod station;
mod store;
mod support;
mod testtoken;
mod token;
mod token_faults;
mod workstation;
