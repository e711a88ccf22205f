#!/usr/bin/env bash
# Fuzz smoke run (issue 7): builds the cargo-fuzz targets under tests/fuzz and runs each for a
# short period, starting from its committed seeds. Fails on the first crash, leak, timeout or
# out-of-memory; the reproducer is left in tests/fuzz/artifacts/<target>/.
#
#   scripts/fuzz-smoke.sh                          # every target, FUZZ_SECONDS each
#   scripts/fuzz-smoke.sh seal_parse bank_status   # only these
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh order_json   # a long local run
#
# Environment:
#   FUZZ_SECONDS     seconds per target (default 25)
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_TARGET_DIR  build directory of the fuzz project (default tests/fuzz/target, kept apart
#                    from the main build because every crate is built with fuzzing flags)
#
# Idempotent: installs cargo-fuzz (pinned) when missing, reuses the build and the working corpus
# (tests/fuzz/corpus/<target>, gitignored; new inputs go there, the seeds are only read).
# The machine's toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the nightly-only
# sanitizer and coverage flags. One libFuzzer process at a time (its default, single-process
# mode), so the smoke run never takes more than one core.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_DIR=tests/fuzz
SECONDS_PER_TARGET="${FUZZ_SECONDS:-25}"
SANITIZER="${FUZZ_SANITIZER:-address}"
TARGET_DIR="${FUZZ_TARGET_DIR:-$FUZZ_DIR/target}"
CARGO_FUZZ_VERSION=0.13.2

export RUSTC_BOOTSTRAP=1
# A CARGO_TARGET_DIR meant for the main build must not receive the instrumented one.
unset CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$FUZZ_DIR")
fi

echo "fuzz-smoke: building ${targets[*]} (sanitizer $SANITIZER)"
for t in "${targets[@]}"; do
  cargo fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" -s "$SANITIZER" "$t"
done

summary=()
for t in "${targets[@]}"; do
  corpus="$FUZZ_DIR/corpus/$t"
  seeds="$FUZZ_DIR/seeds/$t"
  mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$t"
  log="$FUZZ_DIR/artifacts/$t/smoke.log"
  echo "fuzz-smoke: $t for ${SECONDS_PER_TARGET}s (log: $log)"
  status=0
  cargo fuzz run --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" -s "$SANITIZER" "$t" \
    "$corpus" "$seeds" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz-smoke: $t FAILED (exit $status); reproducer in $FUZZ_DIR/artifacts/$t/" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  files=$(find "$corpus" -type f | wc -l)
  summary+=("$t: ${execs:-?} executions in ${SECONDS_PER_TARGET}s, corpus $files files, no crash")
done

printf 'fuzz-smoke: %s\n' "${summary[@]}"
