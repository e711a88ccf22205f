#!/usr/bin/env bash
# The ONE test command (README, .ci/run): prepare the machine, then run every test target.
#
#   ./scripts/test.sh [cargo test args...]     e.g. ./scripts/test.sh -- store::postgres
#
# scripts/setup.sh is idempotent: it installs missing system packages and a Rust toolchain, and
# starts the local PostgreSQL the store and crash tests need (they fail, never skip, without it).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"   # a toolchain setup.sh just installed
fi
exec cargo test --all-targets "$@"
