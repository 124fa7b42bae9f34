#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from the tests' fixtures.

usage: fuzz/seeds.py [OUT_DIR]   (default: fuzz/corpus next to this file)

Every string literal in the project's Rust sources (the integration tests
under tests/ and the unit tests inline in src/ and dataflows/) is a fixture
someone wrote for a reason: ticks, exchange frames, CSV rows, decimals,
URLs. Each is sorted to the targets whose input it looks like and written
as one file named by its hash (so re-running adds nothing twice). Nothing
here is hand-written input: change a test and the seeds follow.
"""
import hashlib
import json
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"
SOURCES = ["tests", "src", "dataflows/src", "dataflows/tests"]


def literals(text):
    """Rust string literals (normal and raw) in `text`, unescaped."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if c == "'":
            # A char literal ('"', '\'', '\u{..}') must not open a string.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            i += m.end() if m else 1
            continue
        if c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not text[i - 1].isalnum()):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            start = i + 2 + len(hashes)
            end = text.find('"' + hashes, start)
            if end < 0:
                return
            yield text[start:end]
            i = end + 1 + len(hashes)
            continue
        if c == '"':
            out, j = [], i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    e = text[j + 1]
                    if e == "\n":  # line continuation: skip the newline and indentation
                        j += 2
                        while j < n and text[j] in " \t":
                            j += 1
                        continue
                    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
                    if e in simple:
                        out.append(simple[e])
                        j += 2
                        continue
                    m = re.match(r"\\u\{([0-9a-fA-F]+)\}|\\x([0-9a-fA-F]{2})", text[j:])
                    if m:
                        out.append(chr(int(m.group(1) or m.group(2), 16)))
                        j += m.end()
                        continue
                out.append(text[j])
                j += 1
            yield "".join(out)
            i = j + 1
            continue
        i += 1


def variants(s):
    """The literal, and with format!'s doubled braces undone."""
    yield s
    if "{{" in s or "}}" in s:
        yield s.replace("{{", "{").replace("}}", "}")


def targets_of(s):
    t = set()
    if s.lstrip().startswith(("{", "[")):
        t.add("tick_decode")
        t.add("tick_scan")
        t.add("replay_jsonl")
        if any(k in s for k in ('"e"', '"stream"', '"result"', '"code"')):
            t.add("binance_frame")
        if '"type"' in s:
            t.add("coinbase_frame")
        if '"channel"' in s or '"method"' in s:
            t.add("kraken_frame")
        if any(k in s for k in ("last_updated_at", '"prices"', "_24h_vol", "total_volumes")):
            t.add("coingecko_body")
    lines = [l for l in s.splitlines() if l.strip()]
    if lines and lines[0][:1].isdigit() and lines[0].count(",") >= 5:
        t.add("replay_binance_row")
    if lines and "open" in lines[0].lower() and "close" in lines[0].lower():
        t.add("replay_ohlcv")
    if 0 < len(s) <= 48 and re.fullmatch(r"[\s0-9.eE+\-a-zA-Z]*[0-9][\s0-9.eE+\-a-zA-Z]*", s):
        t.add("decimal")
    if s.startswith("/") and " " not in s and len(s) < 300:
        t.add("http_uri")
    if re.fullmatch(r"\d{4}-\d\d-\d\d([ T][0-9:.]+Z?)?|\d{9,19}", s.strip()):
        t.add("replay_ohlcv")
    return t


def encoded(s):
    """Seeds for `tick_encode` from a tick-like JSON object."""
    try:
        v = json.loads(s)
    except ValueError:
        return None
    if not isinstance(v, dict) or "symbol" not in v:
        return None
    f = [str(v.get(k, "")) for k in ("symbol", "exchange", "price", "size", "trade_id")]
    ts = v.get("ts", 0)
    ts = ts if isinstance(ts, int) and 0 <= ts < 2**64 else 0
    return b"\xff".join(x.encode() for x in f) + struct.pack(">Q", ts)


def main():
    seeds = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.rs")):
            for lit in literals(path.read_text(encoding="utf-8")):
                for s in variants(lit):
                    for target in targets_of(s):
                        data = s.encode()
                        if target == "http_uri":
                            data = b"\x00" + data  # GET
                        seeds.setdefault(target, set()).add(data)
                        if target == "replay_binance_row":
                            for line in s.splitlines():
                                seeds[target].add(line.encode())
                    enc = encoded(s)
                    if enc is not None:
                        seeds.setdefault("tick_encode", set()).add(enc)
    counts = {}
    for target, items in sorted(seeds.items()):
        d = OUT / target
        d.mkdir(parents=True, exist_ok=True)
        for data in items:
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
        counts[target] = len(items)
    print(json.dumps({"seeds": counts}))


if __name__ == "__main__":
    main()
