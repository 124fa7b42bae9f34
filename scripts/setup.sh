#!/usr/bin/env bash
# Installs everything cryptoflow's demo and tests need that cargo does not
# build as part of the workspace: the `tansu` Kafka-protocol broker (from
# crates.io) and a Python venv with the independent readers used by tests
# (deltalake, pyarrow, kafka-python with lz4). Idempotent: re-running is cheap.
set -euo pipefail

TANSU_VERSION=0.6.0
CACHE="${CRYPTOFLOW_CACHE:-$HOME/.cache/cryptoflow}"
mkdir -p "$CACHE"

if ! command -v tansu >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
  echo "setup: installing the tansu broker $TANSU_VERSION (one-off, ~15 min on 2 cores)" >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
fi

if [ "${1:-}" = "--with-python" ]; then  # test-only readers
  VENV="$CACHE/venv"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import deltalake, pyarrow, kafka, lz4, yaml" >/dev/null 2>&1; then
    echo "setup: installing python test readers into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "deltalake>=1.0" pyarrow kafka-python lz4 pyyaml
  fi
fi

# Debian packages (need root, as on the dev and CI machines).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Headless Chromium for the dashboard test, and Compose (the Python
# docker-compose, which parses and validates a compose file without a
# Docker engine) for the compose test.
if [ "${1:-}" = "--with-python" ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} for the tests" >&2
    apt_install "${missing[@]}"
  fi
fi

# wrk for the HTTP load benchmark (bench/src/bin/load.rs).
if [ "${1:-}" = "--with-bench" ] && ! command -v wrk >/dev/null 2>&1; then
  echo "setup: installing wrk for the load benchmark" >&2
  apt_install wrk
fi
