//! Integration tests: ONE binary; each file under tests/it/ is a module.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod batch;
mod crash;
mod crash_import;
mod db_faults;
mod delivery;
mod demo;
mod fixtures;
mod fuzz_seeds;
mod hostile;
mod intake_cli;
mod intake_input;
mod pg;
mod provision;
mod seals;
mod sms;
mod softhsm;
mod station;
mod store;
mod support;
mod testtoken;
mod token;
mod token_faults;
mod workstation;
