#!/usr/bin/env bash
# keystation's main job on a fresh Debian machine (as root):
#
#   ./scripts/demo.sh [DIR] [--orders N] [--workers W]        DIR defaults to ./demo-station
#
# Prepares the machine (scripts/setup.sh: SoftHSM2, OpenSC, OpenSSL, a Rust toolchain...), builds
# keystation and runs `keystation demo --dir DIR`: a station with its CA and vault tokens in
# SoftHSM, the fixture orders imported, approved, provisioned each onto its own fresh SoftHSM
# token (key pair on the token, CA-issued certificate, GB/T 38540 seals), shipped, and their PINs
# delivered (SMS spool files; pain.001 files confirmed by the demo's simulated bank). Run again
# with the same DIR it continues, or says the demo already ran; a DIR holding anything else is
# refused, never overwritten. Exit 0 only if every order reached PinDelivered.
#
# Why the dev build (`cargo run`): it shares every dependency the test command compiled, and a
# release build is a second full compile of all of them on a small machine for a job that takes
# seconds. It has no test hooks (failpoints, token fault simulator): only test builds do.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=./demo-station
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  dir=$1
  shift
fi

# The demo runs on SQLite: no need to start PostgreSQL for it.
KEYSTATION_SKIP_POSTGRES=1 "$root/scripts/setup.sh"
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

echo "demo: building keystation"
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin keystation
exec cargo run --quiet --manifest-path "$root/Cargo.toml" --bin keystation -- demo --dir "$dir" "$@"
