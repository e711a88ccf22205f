//! Integration tests: ONE binary; each file under tests/it/ is a module.

mod sms;
