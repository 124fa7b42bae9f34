"""Checks that a warehouse whose run stopped early holds nothing a clean run
does not: every table of PARTIAL is readable by the independent Python
`deltalake` reader and its rows are a sub-multiset of the same table of
CLEAN (no row twice, no half-written or foreign row).

usage: check_subset_tables.py CLEAN PARTIAL
Prints {table: {"rows": n, "clean_rows": m, "txn": v}}.
"""
import json
import sys
from collections import Counter
from pathlib import Path

from deltalake import DeltaTable

import native_exit


def canon(row):
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def main():
    clean, partial = sys.argv[1:3]
    report = {}
    for d in sorted(Path(partial).iterdir()):
        if not (d / "_delta_log").is_dir():
            continue
        tp = DeltaTable(str(d))
        rp = Counter(canon(r) for r in tp.to_pyarrow_table().to_pylist())
        rc = Counter(canon(r) for r in DeltaTable(f"{clean}/{d.name}").to_pyarrow_table().to_pylist())
        extra = rp - rc
        assert not extra, f"{d.name}: {sum(extra.values())} rows a clean run does not have, e.g. {next(iter(extra))}"
        report[d.name] = {"rows": sum(rp.values()), "clean_rows": sum(rc.values()), "txn": tp.transaction_version("cryptoflow")}
    print(json.dumps(report))


native_exit.run(main)
