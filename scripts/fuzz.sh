#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets, cargo fuzz + libFuzzer) for a
# bounded time, seeded from the tests' fixtures (fuzz/seeds.py), and prints
# one JSON line per target: {"fuzz":TARGET,"seconds":S,"execs":N,"corpus":C}.
# Exits non-zero on the first crash, panic or timeout; the input is kept in
# fuzz/artifacts/TARGET/ (turn it into a regression test, see the README).
#
#   scripts/fuzz.sh                 # 60 s per target
#   scripts/fuzz.sh 5               # 5 s per target (CI's pass)
#   scripts/fuzz.sh 600 decimal     # one target, ten minutes
#
# Installs cargo-fuzz from crates.io if missing. The machines have only the
# stable toolchain: the targets are built with `--sanitizer none`, with which
# cargo-fuzz passes rustc only stable flags (libFuzzer's coverage
# instrumentation, `-Cpasses=sancov-module`); AddressSanitizer would need
# nightly, and the code fuzzed is safe Rust. Release build with debug
# assertions, as cargo-fuzz does by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryptoflow/target}"
CARGO_FUZZ_VERSION=0.13.2

SECONDS_PER_TARGET="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (one-off)" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
FUZZ_FLAGS=(--sanitizer none --fuzz-dir fuzz)

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

python3 fuzz/seeds.py fuzz/corpus >&2
cargo fuzz build "${FUZZ_FLAGS[@]}" >&2

for t in "${targets[@]}"; do
  log="$(mktemp)"
  # A target no test fixture seeds starts from an empty corpus.
  mkdir -p "fuzz/corpus/$t"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
  if ! cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    rm -f "$log"
    exit 1
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  corpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
  rm -f "$log"
  echo "{\"fuzz\":\"$t\",\"seconds\":$SECONDS_PER_TARGET,\"execs\":${execs:-0},\"corpus\":$corpus,\"crashes\":0}"
done
echo "fuzz: ${#targets[@]} passed, 0 failed"
