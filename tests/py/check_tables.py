"""Independent reader for cryptoflow's Delta tables (Python `deltalake`).

usage: check_tables.py DIR_A DIR_B TICKS_JSONL [DIR_C ...]

Checks that the tables written by two runs over the same topic (different
worker counts, or a run killed and restarted against a clean one) are
identical as multisets of rows (each further DIR after the ticks is
compared with DIR_A too, which is read once), and that the bars match
OHLCV recomputed here, in plain Python, from the ticks file. Prints a JSON
summary of row counts.
"""
import json
import math
import sys
from pathlib import Path
from collections import defaultdict
from datetime import datetime, timezone

from deltalake import DeltaTable

import native_exit

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ms(dt):
    return (dt - EPOCH) // __import__("datetime").timedelta(milliseconds=1)


# The orchestrator's run history records wall-clock times: never the same twice.
WALL_CLOCK_TABLES = {"job_runs"}


def tables(root):
    """Every Delta table under a warehouse root (a directory with a _delta_log),
    except the wall-clock ones."""
    return sorted(
        d.name
        for d in Path(root).iterdir()
        if (d / "_delta_log").is_dir() and d.name not in WALL_CLOCK_TABLES
    )


def rows(root, name):
    return DeltaTable(f"{root}/{name}").to_pyarrow_table().to_pylist()


def canon(row, drop=()):
    return tuple(sorted((k, repr(v)) for k, v in row.items() if k not in drop))


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def main():
    a, b, ticks_path = sys.argv[1:4]
    counts = {}
    names = tables(a)
    assert "bars" in names, f"no bars table under {a}"
    of_a = {name: sorted(canon(r) for r in rows(a, name)) for name in names}
    for b in [b] + sys.argv[4:]:
        assert names == tables(b), f"tables differ: {names} vs {tables(b)}"
        for name in names:
            ra = of_a[name]
            rb = sorted(canon(r) for r in rows(b, name))
            assert len(ra) == len(rb), f"{name}: {len(ra)} rows in {a}, {len(rb)} in {b}"
            assert ra == rb, f"{name}: rows differ between {a} and {b}"
            counts[name] = len(ra)

    # Oracle bars from the ticks file.
    groups = defaultdict(list)
    with open(ticks_path) as f:
        for i, line in enumerate(f):
            t = json.loads(line)
            groups[(t["symbol"], t["ts"] // 1000)].append((t["ts"], i, float(t["price"]), float(t["size"]), t["side"]))
    bars = {(r["symbol"], ms(r["start"]) // 1000): r for r in rows(a, "bars") if not r["filled"]}
    assert len(bars) == len(groups), f"{len(bars)} traded bars in Delta, {len(groups)} from the ticks"
    for key, ticks in groups.items():
        ticks.sort()
        bar = bars[key]
        prices = [t[2] for t in ticks]
        assert close(bar["open"], prices[0]), (key, bar["open"], prices[0])
        assert close(bar["close"], prices[-1]), (key, bar["close"], prices[-1])
        assert close(bar["high"], max(prices)) and close(bar["low"], min(prices)), key
        assert close(bar["volume"], sum(t[3] for t in ticks)), key
        assert close(bar["buy_volume"], sum(t[3] for t in ticks if t[4] == "buy")), key
        assert bar["trades"] == len(ticks), key
        assert bar["interval_ms"] == 1000 and ms(bar["end"]) - ms(bar["start"]) == 1000, key
        assert bar["date"].isoformat() == datetime.fromtimestamp(key[1], timezone.utc).date().isoformat(), key
    for p in rows(a, "predictions"):
        assert ms(p["target_at"]) - ms(p["made_at"]) == p["horizon_ms"], p
        assert close(p["predicted_price"], p["base_price"] * math.exp(p["predicted_return"])), p
    counts["traded_bars"] = len(groups)
    print(json.dumps(counts))


if __name__ == "__main__":
    native_exit.run(main)
