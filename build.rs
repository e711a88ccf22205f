//! Rebuild when a migration changes: `sqlx::migrate!` embeds `src/store/migrations/*` at compile
//! time, but on stable Rust a proc macro cannot tell Cargo which files it read, so an added or
//! edited migration would otherwise leave a stale schema in the binary (sqlx documents this
//! build script for the purpose).

fn main() {
    println!("cargo:rerun-if-changed=src/store/migrations");
}
