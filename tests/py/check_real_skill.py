"""Independent reader of a warehouse written by `cryptoflow run`: how good
were the served predictions?

usage: check_real_skill.py DATA_DIR

Reads `scores`, `predictions` and `evaluations` with Python `deltalake`.
The champion of a (symbol, horizon) at time t is the winner of the latest
evaluation with `evaluated_at` <= t (persistence before any); the served
predictions are the champion's scores by the time they were made. Checks
that every score's `covered` agrees with its prediction's interval and the
realised return, that exactly one winner exists per (symbol, horizon,
day), and prints per (symbol, horizon) as JSON: scores, evaluated days,
served skill (1 - sum of squared errors / sum of squared realised returns)
and coverage, the share served by learned models, and every model's skill
and coverage.
"""
import bisect
import json
import math
import sys
from collections import defaultdict

from deltalake import DeltaTable

import native_exit


def table(root, name, columns):
    return DeltaTable(f"{root}/{name}").to_pyarrow_table(columns=columns).to_pydict()


def main():
    root = sys.argv[1]
    s = table(root, "scores", ["symbol", "model", "horizon_bars", "made_at", "target_at",
                               "predicted_return", "realized_return", "covered"])
    p = table(root, "predictions", ["symbol", "model", "horizon_bars", "made_at",
                                    "predicted_return", "interval_low", "interval_high"])
    e = table(root, "evaluations", ["symbol", "horizon_bars", "model", "winner", "evaluated_at", "reason"])

    # Winners: one per (symbol, horizon, day); champion from evaluated_at on.
    winners = defaultdict(dict)
    for sym, h, model, win, at, reason in zip(e["symbol"], e["horizon_bars"], e["model"],
                                               e["winner"], e["evaluated_at"], e["reason"]):
        if win:
            key = (sym, h)
            assert at not in winners[key], f"two winners for {key} at {at}"
            winners[key][at] = model
    days = defaultdict(set)
    for sym, h, at in zip(e["symbol"], e["horizon_bars"], e["evaluated_at"]):
        days[(sym, h)].add(at)
    for key, ds in days.items():
        assert set(winners[key]) == ds, f"{key}: days without exactly one winner"
    timeline = {k: (sorted(v), [v[t] for t in sorted(v)]) for k, v in winners.items()}

    def champion(sym, h, t):
        times, models = timeline.get((sym, h), ([], []))
        i = bisect.bisect_right(times, t)
        return models[i - 1] if i else "persistence"

    intervals = {}
    for sym, model, h, made, pred, lo, hi in zip(p["symbol"], p["model"], p["horizon_bars"], p["made_at"],
                                                  p["predicted_return"], p["interval_low"], p["interval_high"]):
        intervals[(sym, model, h, made)] = (pred, lo, hi)

    acc = defaultdict(lambda: [0, 0.0, 0.0, 0, 0, 0])  # n, sse, sse_base, with_interval, covered, learned
    per_model = defaultdict(lambda: [0, 0.0, 0.0, 0, 0])
    for sym, model, h, made, target, pred, y, cov in zip(s["symbol"], s["model"], s["horizon_bars"], s["made_at"],
                                                         s["target_at"], s["predicted_return"],
                                                         s["realized_return"], s["covered"]):
        issued = intervals.get((sym, model, h, made))
        assert issued is not None, f"score without prediction: {sym} {model} {h} {made}"
        ipred, lo, hi = issued
        assert math.isclose(ipred, pred, rel_tol=0, abs_tol=1e-15), (sym, model, h, made, ipred, pred)
        if cov is None:
            assert lo is None and hi is None, (sym, model, h, made)
        else:
            assert cov == (lo <= y <= hi), (sym, model, h, made, lo, y, hi, cov)
        m = per_model[(sym, h, model)]
        m[0] += 1
        m[1] += (pred - y) ** 2
        m[2] += y * y
        if cov is not None:
            m[3] += 1
            m[4] += int(cov)
        if champion(sym, h, made) == model:
            a = acc[(sym, h)]
            a[0] += 1
            a[1] += (pred - y) ** 2
            a[2] += y * y
            if cov is not None:
                a[3] += 1
                a[4] += int(cov)
            a[5] += int(model != "persistence")

    out = []
    for (sym, h), (n, sse, base, wi, cv, learned) in sorted(acc.items()):
        models = {
            model: {"skill": round(1 - m[1] / m[2], 4) if m[2] else 0.0,
                    "coverage": round(m[4] / m[3], 4) if m[3] else None}
            for (s2, h2, model), m in sorted(per_model.items()) if (s2, h2) == (sym, h)
        }
        champions = sorted({m for m in winners[(sym, h)].values()})
        out.append({
            "symbol": sym,
            "horizon_bars": h,
            "scores": n,
            "evaluated_days": len(days[(sym, h)]),
            "served_skill": round(1 - sse / base, 5) if base else 0.0,
            "served_coverage": round(cv / wi, 4) if wi else None,
            "learned_share": round(learned / n, 4),
            "champions": champions,
            "models": models,
        })
    print(json.dumps({"series": out}))


if __name__ == "__main__":
    native_exit.run(main)
