#!/usr/bin/env bash
# The release binary has no test hooks. Failpoints (KEYSTATION_FAILPOINTS) and the token fault
# simulator (KEYSTATION_TOKEN_SIM) exist only with the `test-hooks` cargo feature, which the
# package's dev-dependency on itself turns on for test and bench builds alone (Cargo.toml). This
# builds `cargo build --release` as an operator would and shows that it ignores both variables
# where a test build obeys them:
#
# - `order import` with `import.before_commit=abort` imports the order (a test build aborts);
# - `audit anchor` with every token's user PIN simulated as locked logs in to the vault and
#   anchors (a test build refuses: PIN locked).
#
#   ./scripts/check-release-hooks.sh          (.ci/run runs it; needs what scripts/setup.sh installs)
#
# KEYSTATION_BIN=PATH probes that binary instead of building one: with a test build's
# (`target/debug/keystation` after `cargo test`) the check must fail, which shows it can.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

bin=${KEYSTATION_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin keystation
  bin="${CARGO_TARGET_DIR:-target}/release/keystation"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
obeyed=0
obeyed() {
  echo "check-release-hooks: $bin obeyed $1" >&2
  obeyed=1
}

env -u KEYSTATION_FAILPOINTS -u KEYSTATION_TOKEN_SIM -u KEYSTATION_CONFIG \
  "$bin" init --dir "$work/station" --generate-pins >"$work/init.out" 2>&1 || {
  cat "$work/init.out" >&2
  echo "check-release-hooks: keystation init failed" >&2
  exit 1
}
config="$work/station/station.toml"
cp -r fixtures/orders/valid "$work/orders"
# An import is an operator's act: a reviewer, added by init's administrator (alone: bootstrap).
"$bin" --config "$config" --credential "$work/station/admin.credential" \
  operator add intake --role reviewer --credential-out "$work/intake.credential" \
  >"$work/operator.out" 2>&1 || {
  cat "$work/operator.out" >&2
  echo "check-release-hooks: keystation operator add failed" >&2
  exit 1
}

# A failpoint that would abort the import before its commit.
if KEYSTATION_FAILPOINTS=import.before_commit=abort \
  "$bin" --config "$config" --credential "$work/intake.credential" \
  order import "$work/orders/0001_main-key_two-seals_legal-rep-phone.json" \
  >"$work/import.out" 2>&1 &&
  "$bin" --config "$config" --json order list | grep -q '"order_no"'; then
  :
else
  cat "$work/import.out" >&2
  obeyed "KEYSTATION_FAILPOINTS (the import did not complete)"
fi

# Every token's user PIN locked, as far as the simulator is concerned.
printf '{"tokens": {"*": {"max_user_tries": 3, "user_tries_left": 0}}}\n' >"$work/token-sim.json"
if ! KEYSTATION_TOKEN_SIM="$work/token-sim.json" \
  "$bin" --config "$config" audit anchor >"$work/anchor.out" 2>&1; then
  cat "$work/anchor.out" >&2
  obeyed "KEYSTATION_TOKEN_SIM (the vault login was refused)"
fi

[ "$obeyed" = 0 ] || exit 1
echo "check-release-hooks: $bin ignores KEYSTATION_FAILPOINTS and KEYSTATION_TOKEN_SIM"
