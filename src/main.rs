//! The `keystation` binary: parse arguments, hand over to [`keystation::cli::run`].

fn main() -> std::process::ExitCode {
    keystation::cli::main()
}
