#!/usr/bin/env bash
# The demo: builds cryptoflow, installs the local broker if needed, and runs
# `cryptoflow demo` (broker + simulated feed + 2-worker dataflow + HTTP).
# Open http://127.0.0.1:8080/ or curl http://127.0.0.1:8080/api/predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryptoflow/target}"
scripts/setup.sh
exec cargo run --release --bin cryptoflow -- demo "$@"
