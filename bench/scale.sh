#!/usr/bin/env bash
# Scale (issue 16): cost per tick and resident memory against the number of
# symbols. Ticks at the same per-symbol rate (the peers' generator, ~10
# ticks per symbol-second, so every size has ~10 ticks per bar) through the
# whole dataflow with the full default model zoo, in memory, on 1 and 2
# workers, for each symbol count. Every size gets at least SCALE_TICKS
# ticks and at least SCALE_PER_SYMBOL per symbol (200 bars), so that each
# symbol's models are past their warm-up and predict: with equal tick
# counts, 10,000 symbols get 20 bars each, no model predicts and the
# "cost per tick" is of a different, smaller computation. Prints the throughput
# bench's JSON line per run, then one summary line:
#   cost_spread        slowest over fastest ns/tick (1 worker) across sizes
#                      (flat means close to 1; the target is <= 1.2)
#   state_mb           peak RSS of the runs less RSS with the input loaded
#   bytes_per_symbol   (state at the most symbols - at the fewest) over the
#                      symbols added, and per (symbol, model, horizon)
# The tick files are generated once into the cache (never committed).
#
# Env: SCALE_TICKS (2000000) SCALE_PER_SYMBOL (2000) SCALE_SYMBOLS ("10 100 1000 10000")
#      SCALE_WORKERS (1,2)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${SCALE_TICKS:-2000000}
SIZES=${SCALE_SYMBOLS:-"10 100 1000 10000"}
CACHE="${CRYPTOFLOW_CACHE:-$HOME/.cache/cryptoflow}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "scale: building the throughput bench" >&2
(cd "$root" && cargo build --release -q -p cryptoflow-bench --bin throughput) >&2
for S in $SIZES; do
  n=$(( S * ${SCALE_PER_SYMBOL:-2000} > N ? S * ${SCALE_PER_SYMBOL:-2000} : N ))
  ticks=$CACHE/peers-ticks-$n-$S-42.jsonl
  if [ ! -s "$ticks" ]; then  # via .part: an interrupted run leaves no short file
    echo "scale: generating $n ticks of $S symbols" >&2
    python3 "$here/peers/gen_ticks.py" --ticks "$n" --symbols "$S" --seed 42 "$ticks.part"
    mv "$ticks.part" "$ticks"
  fi
  echo "scale: $S symbols" >&2
  "$CARGO_TARGET_DIR/release/throughput" --input "$ticks" --ticks 0 --sources memory \
    --workers "${SCALE_WORKERS:-1,2}" --label "scale-$S" | tee -a "$out"
done

python3 - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
one = sorted((r for r in rows if r["workers"] == 1), key=lambda r: r["symbols"])
if not one:
    sys.exit("scale: no 1-worker runs")
cost = {r["symbols"]: r["ns_per_tick_per_worker"] for r in one}
# The runs' peak RSS less what the process held with the input loaded
# (the ticks are held in memory): the dataflow's own memory at that size.
state = {r["symbols"]: max(x["rss_peak_mb"] for x in rows if x["symbols"] == r["symbols"])
         - r["rss_loaded_mb"] for r in one}
lo, hi = min(state), max(state)
series = len(one[0]["models"]) * len(one[0]["horizons"])
per_symbol = (state[hi] - state[lo]) * 1024 * 1024 / (hi - lo) if hi > lo else None
print(json.dumps({
    "bench": "scale",
    "ns_per_tick_1_worker": cost,
    "cost_spread": round(max(cost.values()) / min(cost.values()), 3),
    "ticks_by_size": {r["symbols"]: r["ticks"] for r in one},
    "predictions_1_worker": {r["symbols"]: r["predictions"] for r in one},
    "state_mb": state,
    "bytes_per_symbol": round(per_symbol) if per_symbol else None,
    "bytes_per_symbol_model_horizon": round(per_symbol / series) if per_symbol else None,
}))
EOF
