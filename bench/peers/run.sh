#!/usr/bin/env bash
# cryptoflow side by side with the systems a user would pick instead, in one
# run, on one generated tick file (issue 16). Prints one JSON line per system
# and run on stdout, then one "ratios" line; logs go to stderr.
#
#   bash bench/peers/run.sh                      # 1M ticks, 100 symbols (~10 min)
#   PEERS_TICKS=200000 PEERS_SYMBOLS=20 bash bench/peers/run.sh
#
# The peers (copied from the shared harness, see README.md here): plain
# Python + River, Bytewax 1 worker / 2 workers / 2 processes, Pathway 1 / 2
# threads; each computes 1 s bars, 6 features, a River linear regression and
# persistence on the next bar, prequentially, in memory.
#
# cryptoflow, through the benchmarks in bench/ (release build):
#   peers-like  `throughput --input FILE --models rls --horizons 1`: the same
#               computation (bars, its features, an online linear model and
#               persistence, one horizon), plus what cryptoflow always does on
#               top (validation with rejects, intervals, scoring, the daily
#               evaluation and champion, best predictions), from memory and
#               from the JSONL file, 1 and 2 workers;
#   full-zoo    the same with every online model and 3 horizons;
#   bars-only   `--stages bars`: source, validation and bars alone;
#   product     `replay`: the real `cryptoflow run --until-end -w 2`, Kafka in
#               (a local tansu broker), the full zoo, every table to Delta;
#               each run next to the bare Kafka consumers' ceiling on the same
#               topic (`of_ceiling`), and again as a 2-process cluster of one
#               worker each (`cryptoflow cluster -P 2 -W 1`).
#
# Env: PEERS_TICKS (1000000) PEERS_SYMBOLS (100) PEERS_SEED (42)
#      PEERS_VENV ($HOME/.cache/cryptoflow/peers-venv) PEERS_SKIP_PEERS=1 (ours only)
#      PEERS_SKIP_PRODUCT=1 (no Kafka/Delta run; it needs tansu, scripts/setup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
N=${PEERS_TICKS:-1000000} S=${PEERS_SYMBOLS:-100} SEED=${PEERS_SEED:-42}
CACHE="${CRYPTOFLOW_CACHE:-$HOME/.cache/cryptoflow}"
VENV=${PEERS_VENV:-$CACHE/peers-venv}
PKGS="river==0.26.1 bytewax==0.21.1 pathway==0.33.0"  # the shared harness's pins
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ "${PEERS_SKIP_PEERS:-0}" != 1 ] && ! "$VENV/bin/python" -c 'import river, bytewax, pathway' 2>/dev/null; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  echo "peers: installing $PKGS into $VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check $PKGS >&2
fi
PY=python3
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"

ticks=$CACHE/peers-ticks-$N-$S-$SEED.jsonl
if [ ! -s "$ticks" ]; then  # via .part: an interrupted run leaves no short file
  "$PY" "$here/gen_ticks.py" --ticks "$N" --symbols "$S" --seed "$SEED" "$ticks.part"
  mv "$ticks.part" "$ticks"
fi

echo "peers: building the release binaries" >&2
(cd "$root" && cargo build --release -q --bin cryptoflow -p cryptoflow \
  && cargo build --release -q -p cryptoflow-bench --bin throughput --bin replay) >&2
bin=$CARGO_TARGET_DIR/release

emit() { tee -a "$out"; }
if [ "${PEERS_SKIP_PEERS:-0}" != 1 ]; then
  "$PY" -c 'import sys, importlib.metadata as m; print("peers: python", sys.version.split()[0],
    *(f"{p} {m.version(p)}" for p in ("river", "bytewax", "pathway")), file=sys.stderr)'
  cd "$here"
  for args in "river_baseline.py" "bytewax_pipeline.py -w 1" "bytewax_pipeline.py -w 2" \
      "bytewax_pipeline.py -p 2" "pathway_pipeline.py -t 1" "pathway_pipeline.py -t 2"; do
    echo "peers: $args" >&2
    # shellcheck disable=SC2086
    "$PY" $args "$ticks" 2> >(tail -5 >&2) | emit
  done
  cd "$root"
fi

T=("$bin/throughput" --input "$ticks" --ticks 0 --sources memory,jsonl --workers 1,2)
echo "peers: cryptoflow peers-like" >&2
"${T[@]}" --models rls --horizons 1 --label peers-like | emit
echo "peers: cryptoflow full-zoo" >&2
"${T[@]}" --label full-zoo | emit
echo "peers: cryptoflow bars-only" >&2
"${T[@]}" --stages bars --label bars-only | emit
if [ "${PEERS_SKIP_PRODUCT:-0}" != 1 ]; then
  echo "peers: cryptoflow product path (Kafka in, Delta out, run --until-end -w 2)" >&2
  "$bin/replay" --input "$ticks" --ticks "$N" --layouts 1x2,2x1 | emit
fi

"$PY" - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
peers = [r for r in rows if "system" in r]
ours = lambda label: [r for r in rows if r.get("label") == label]
best = lambda rs: max((r["ticks_per_sec"] for r in rs), default=None)
ratio = lambda a, b: round(a / b, 2) if a and b else None
fastest = max(peers, key=lambda r: r["ticks_per_s"], default=None)
peer_rate = fastest["ticks_per_s"] if fastest else None
layout = lambda p, w: [r for r in rows if r.get("bench") == "replay"
                       and r.get("processes", 1) == p and r["workers"] == w]
product, cluster = layout(1, 2), layout(2, 1)
product_rate = product[-1]["ticks_per_sec"] if product else None
cluster_rate = cluster[-1]["ticks_per_sec"] if cluster else None
print(json.dumps({
    "bench": "peers-ratios",
    "fastest_peer": fastest["system"] if fastest else None,
    "fastest_peer_ticks_per_sec": peer_rate,
    "peers_like_ticks_per_sec": best(ours("peers-like")),
    "peers_like_vs_fastest_peer": ratio(best(ours("peers-like")), peer_rate),
    "full_zoo_ticks_per_sec": best(ours("full-zoo")),
    "full_zoo_vs_fastest_peer": ratio(best(ours("full-zoo")), peer_rate),
    "bars_only_ticks_per_sec": best(ours("bars-only")),
    "product_ticks_per_sec": product_rate,
    "product_vs_fastest_peer": ratio(product_rate, peer_rate),
    "product_of_consumer_ceiling": product[-1]["of_ceiling"] if product else None,
    "two_processes_ticks_per_sec": cluster_rate,
    "two_processes_vs_two_workers": ratio(cluster_rate, product_rate),
}))
EOF
