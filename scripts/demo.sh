#!/usr/bin/env bash
# keystation's main job as far as it exists today, on a fresh Debian machine (as root):
#
#   ./scripts/demo.sh [DIR]        DIR defaults to ./demo-station
#
# Prepares the machine (scripts/setup.sh), creates a station in DIR (SQLite), imports the valid
# fixture orders (fixtures/orders/valid), lists them and verifies the audit trail. Run it again
# with the same DIR to continue that demo station: orders already imported are skipped. A DIR
# that holds anything but a previous demo station is refused, never overwritten.
#
# Why `cargo run` (dev profile) and not `cargo build --release`: the test command already builds
# the dev profile, and a release build is a second full compile of every dependency (several
# minutes on a small machine) for a job of a few small imports that optimisation cannot speed
# up. (Failpoints are compiled into dev builds but do nothing unless KEYSTATION_FAILPOINTS is
# set.) `keystation demo` will replace this script when provisioning lands.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-./demo-station}
marker=".keystation-demo"

# The demo runs on SQLite: no need to start PostgreSQL for it.
KEYSTATION_SKIP_POSTGRES=1 "$root/scripts/setup.sh"
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

if [ -e "$dir" ] && [ ! -f "$dir/$marker" ] && [ -n "$(ls -A "$dir" 2>/dev/null || echo file)" ]; then
  echo "demo: $dir exists and is not a demo station made by this script; refusing to touch it" >&2
  echo "demo: pass another directory: ./scripts/demo.sh DIR" >&2
  exit 2
fi

echo "demo: building keystation"
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin keystation
ks() {
  cargo run --quiet --manifest-path "$root/Cargo.toml" --bin keystation -- "$@"
}

mkdir -p "$dir"
# The marker first: a run interrupted during init can be continued instead of refused.
[ -f "$dir/$marker" ] || echo "created by scripts/demo.sh; safe to delete with this directory" >"$dir/$marker"
config="$dir/station.toml"
if [ -f "$config" ]; then
  echo "demo: continuing the demo station in $dir"
else
  ks init --dir "$dir"
fi

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
for order in "$root"/fixtures/orders/valid/*.json; do
  if ks --config "$config" order import "$order" 2>"$errors"; then
    cat "$errors" >&2   # warnings, if any
  else
    rc=$?
    if [ "$rc" -eq 2 ] && [ -s "$errors" ] && ! grep -qv '\[order_no_duplicate\]$' "$errors"; then
      echo "already imported: $(basename "$order")"
    else
      cat "$errors" >&2
      exit "$rc"
    fi
  fi
done

echo
ks --config "$config" order list
echo
ks --config "$config" audit verify
echo
echo "demo: station in $dir; look closer with:"
echo "  cargo run --manifest-path $root/Cargo.toml -- --config $config order show KS-DEMO-0001"
