"""Independent reader for two copies of cryptoflow's warehouse (Python `deltalake`).

usage: check_same_tables.py DIR_A DIR_B

Checks that every table holds the same rows in both (as multisets) and that
both carry a cryptoflow `txn` version (the committed epoch exactly-once
relies on) when they hold rows. The versions
themselves may differ: which epoch a table's last rows were committed in
depends on when commits happened (the wall-clock commit interval, the
orchestrator's flush requests), not on the data.
Prints a JSON object per table: rows, active files in A and B, and B's
last operation, so the caller can check what maintenance did to B.
"""
import json
import sys
from pathlib import Path

from deltalake import DeltaTable

import native_exit



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


def canon(row):
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def last_operation(table):
    # None once log cleanup has removed the commits (a checkpoint has no history).
    history = table.history(1)
    return history[0].get("operation") if history else None


def main():
    a, b = sys.argv[1:3]
    report = {}
    names = tables(a)
    assert names == tables(b), f"tables differ: {names} vs {tables(b)}"
    assert "bars" in names, f"no bars table under {a}"
    for name in names:
        ta, tb = DeltaTable(f"{a}/{name}"), DeltaTable(f"{b}/{name}")
        ra = sorted(canon(r) for r in ta.to_pyarrow_table().to_pylist())
        rb = sorted(canon(r) for r in tb.to_pyarrow_table().to_pylist())
        assert len(ra) == len(rb), f"{name}: {len(ra)} rows vs {len(rb)}"
        assert ra == rb, f"{name}: rows differ between {a} and {b}"
        txn_a = ta.transaction_version("cryptoflow")
        txn_b = tb.transaction_version("cryptoflow")
        if ra:
            assert txn_a is not None and txn_b is not None, f"{name}: txn {txn_a} vs {txn_b}"
        report[name] = {
            "rows": len(ra),
            "txn": txn_b,
            "files_a": len(ta.file_uris()),
            "files_b": len(tb.file_uris()),
            "last_operation_b": last_operation(tb),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    native_exit.run(main)
