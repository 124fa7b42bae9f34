#!/usr/bin/env bash
# The test suite: installs what the tests need (broker, Python readers),
# then runs every test of the workspace in release mode (the dataflow tests
# push enough data that debug builds would dominate the run time).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cryptoflow/target}"
scripts/setup.sh --with-python
cargo test --release --workspace "$@"
