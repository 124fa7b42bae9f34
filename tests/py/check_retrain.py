"""Independent reader of the orchestrator's tables (Python `deltalake`).

usage:
  check_retrain.py counts DIR
      JSON: per job, the run ids whose latest row is success / failed and
      the attempts rows; models rows by status; batch-model predictions and
      scores (rows naming a model_id).
  check_retrain.py same DIR_A DIR_B TABLE...
      asserts the tables hold the same rows (as multisets) in both.
  check_retrain.py models DIR_A DIR_B UPTO_MS
      JSON: the `models` rows of versions <= UPTO_MS are identical (the
      fitted model compared as text, i.e. bit for bit), and whether any
      later version differs.
"""
import json
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone

from deltalake import DeltaTable

import native_exit

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rows(root, name):
    return DeltaTable(f"{root}/{name}").to_pyarrow_table().to_pylist()


def canon(row):
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def ms(dt):
    return int((dt - EPOCH).total_seconds() * 1000)


def counts(root):
    runs = rows(root, "job_runs")
    latest = {}
    for r in runs:
        key = (r["attempt"], ms(r["started_at"]), r["state"] != "running")
        if r["run_id"] not in latest or key >= latest[r["run_id"]][0]:
            latest[r["run_id"]] = (key, r)
    jobs = defaultdict(lambda: {"success": 0, "failed": 0, "other": 0, "rows": 0, "errors": []})
    for _, r in latest.values():
        j = jobs[r["job"]]
        j[r["state"] if r["state"] in ("success", "failed") else "other"] += 1
    for r in runs:
        jobs[r["job"]]["rows"] += 1
        if r["error"]:
            jobs[r["job"]]["errors"].append(r["error"])
    models = rows(root, "models")
    preds = rows(root, "predictions")
    scores = rows(root, "scores")
    batch_scores = [s for s in scores if s["model_id"] is not None]
    # Out-of-sample skill of each batch model over its scores, against
    # persistence on the same predictions.
    base = {
        (s["symbol"], s["horizon_bars"], s["made_at"]): s["realized_return"] ** 2
        for s in scores
        if s["model"] == "persistence"
    }
    sq = defaultdict(lambda: [0.0, 0.0, 0])
    for s in batch_scores:
        k = (s["symbol"], s["horizon_bars"], s["made_at"])
        acc = sq[s["model"]]
        acc[0] += s["error"] ** 2
        acc[1] += base.get(k, 0.0)
        acc[2] += 1
    out = {
        "jobs": jobs,
        "models": dict(Counter(m["status"] for m in models)),
        "model_versions": len({m["id"] for m in models}),
        "deployed_versions": len({m["id"] for m in models if m["deployed_at"] is not None}),
        "batch_predictions": sum(1 for p in preds if p["model_id"] is not None),
        "batch_predictions_named": all(
            p["model_id"].startswith(p["model"] + ".") for p in preds if p["model_id"] is not None
        ),
        "batch_scores": len(batch_scores),
        "batch_skill": {m: 1 - a[0] / a[1] for m, a in sq.items() if a[1] > 0},
        "predictions": len(preds),
    }
    print(json.dumps(out))


def same(a, b, names):
    out = {}
    for name in names:
        ra = sorted(canon(r) for r in rows(a, name))
        rb = sorted(canon(r) for r in rows(b, name))
        assert len(ra) == len(rb), f"{name}: {len(ra)} rows vs {len(rb)}"
        assert ra == rb, f"{name}: rows differ between {a} and {b}"
        out[name] = len(ra)
    print(json.dumps(out))


def models(a, b, upto):
    # What was decided by the cut: versions trained at or before it, in the
    # statuses they had by then. A later status of an early version (retired
    # by a newer one, promoted on a later day's evaluation) depends on data
    # after the cut, so it may differ.
    def by_version(root):
        out = defaultdict(list)
        for r in rows(root, "models"):
            decided = r["version"] <= upto and r["status_at"].timestamp() * 1000 <= upto
            out[decided].append(canon(r))
        return {k: sorted(v) for k, v in out.items()}

    ma, mb = by_version(a), by_version(b)
    early_a, early_b = ma.get(True, []), mb.get(True, [])
    assert early_a, "no model version at or before the cut"
    assert early_a == early_b, "a model trained before the cut differs"
    print(json.dumps({"same_upto": len(early_a), "later_differ": ma.get(False) != mb.get(False)}))


def main():
    cmd = sys.argv[1]
    if cmd == "counts":
        counts(sys.argv[2])
    elif cmd == "same":
        same(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "models":
        models(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    native_exit.run(main)
