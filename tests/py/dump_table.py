"""Prints one Delta table of a cryptoflow warehouse as a JSON array of rows,
read with the independent Python `deltalake` reader (values that are not
JSON, such as timestamps, as their str()), plus its cryptoflow `txn`
version: {"txn": N, "rows": [...]}.

usage: dump_table.py DIR TABLE
"""
import json
import sys

from deltalake import DeltaTable

import native_exit

def main():
    root, name = sys.argv[1:3]
    table = DeltaTable(f"{root}/{name}")
    rows = table.to_pyarrow_table().to_pylist()
    print(json.dumps({"txn": table.transaction_version("cryptoflow"), "rows": rows}, default=str))


native_exit.run(main)
