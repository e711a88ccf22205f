//! Integration tests: ONE binary; each file under tests/it/ is a module.

// A failing unwrap IS the test failure here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod fuzz_seeds;
mod hostile;
mod provision;
mod seals;
mod sms;
mod softhsm;
mod station;
mod token;
mod workstation;
