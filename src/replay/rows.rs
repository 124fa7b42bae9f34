//! One line of a replayed file to the ticks it stands for.
//!
//! **Bars become trades.** A kline or OHLCV bar with volume V becomes four
//! synthetic trades of V/4 each (split exactly, see [`crate::decimal`]) at fixed
//! times inside the bar `[t, t + d)`: the open at `t`, the two extremes at
//! `t + d/3` and `t + 2d/3`, the close at `t + d − 1 ms`. The extremes come
//! in the order of the shorter path: low then high when the bar closed at or
//! above its open, high then low otherwise. So the dataflow rebuilds the same
//! open, high, low, close and volume for any bar length that divides `d`.
//! The open trade takes the bar's direction as its side (buy when close ≥
//! open); each later trade is a buy when its price is at or above the
//! previous one (the tick rule). A bar with zero volume had no trades and
//! gives none. Trade ids are `"<open ms>-<k>"` (k = 0..3), so a file replayed
//! twice gives the same ids for a downstream dedupe. Prices go out as exact
//! decimal strings in canonical form (`42283.58000000` → `42283.58`).
//!
//! **Binance klines** (the public dumps, e.g. `BTCUSDT-1m-2024-01-01.csv`):
//! 12 columns, no header — open time, open, high, low, close, volume, close
//! time, quote volume, trades, taker buy base, taker buy quote, ignore. Times
//! are epoch ms, or µs in the spot dumps from 2025 on: a value above 10^14
//! is read as µs. The bar length is close time + 1 ms − open time.
//!
//! **Generic OHLCV CSV**: a header naming the columns, matched
//! case-insensitively — time (`timestamp`, `time`, `date`, `datetime`,
//! `open_time` or `ts`), `open`, `high`, `low`, `close`, `volume` and an
//! optional `symbol`; other columns are ignored. Times are epoch seconds,
//! ms, µs or ns (told apart by magnitude), RFC 3339, `YYYY-MM-DD HH:MM:SS`
//! (UTC) or a date (midnight UTC). Fields may be double-quoted but may not
//! contain commas.
//!
//! **JSONL ticks**: each line must decode with the dataflow's own decoder
//! (`dataflows::tick::decode`) and goes to the topic byte for byte.
//!
//! Every payload is checked by the dataflow's own rules before it is sent
//! (synthetic trades by [`encode_checked`], JSONL lines by the decoder), so
//! a row either becomes ticks the pipeline accepts or an error naming what
//! is wrong with it.

use dataflows::tick::{decode, encode_checked, DecimalWireTick, Position, Side, ValidationLimits};

use crate::decimal::Decimal;

/// One record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Kafka key: the symbol.
    pub key: String,
    /// The tick, in the wire format.
    pub payload: Vec<u8>,
    /// Its event time, epoch ms (for pacing).
    pub ts_ms: u64,
}

/// Validates `payload` with the dataflow's decoder.
pub fn validated(payload: Vec<u8>, limits: ValidationLimits) -> Result<Outgoing, String> {
    match decode(&payload, Position::default(), limits) {
        Ok(tick) => Ok(Outgoing {
            key: tick.symbol,
            payload,
            ts_ms: tick.ts_ms,
        }),
        Err(r) => Err(format!("{}: {}", r.reason.code(), r.detail)),
    }
}

/// Epoch values above this are microseconds, not milliseconds (year 5138 in ms).
const MICROS_ABOVE: u64 = 100_000_000_000_000;

/// One OHLCV bar as read from a file.
pub struct Candle {
    /// Open time, epoch ms.
    pub open_ms: u64,
    /// Length, ms.
    pub interval_ms: u64,
    /// Prices.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Last price.
    pub close: Decimal,
    /// Base volume.
    pub volume: Decimal,
}

fn field(fields: &[&str], i: usize, name: &str) -> Result<Decimal, String> {
    Decimal::parse(fields[i]).map_err(|e| format!("{name}: {e}"))
}

fn epoch_ms_of(text: &str, name: &str) -> Result<u64, String> {
    let v: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{name}: `{}` is not an integer epoch time", text.trim()))?;
    Ok(if v > MICROS_ABOVE { v / 1000 } else { v })
}

/// Splits a CSV line (no quoted commas), trimming blanks and double quotes.
pub fn split_csv(line: &str) -> Vec<&str> {
    line.trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|f| f.trim().trim_matches('"').trim())
        .collect()
}

/// A Binance klines row.
pub fn binance_candle(line: &str) -> Result<Candle, String> {
    let f = split_csv(line);
    if f.len() != 12 {
        return Err(format!(
            "expected the 12 columns of a Binance klines row, found {}",
            f.len()
        ));
    }
    let open_ms = epoch_ms_of(f[0], "open_time")?;
    let close_ms = epoch_ms_of(f[6], "close_time")?;
    if close_ms < open_ms + 3 {
        return Err(format!(
            "close_time {close_ms} is not after open_time {open_ms}"
        ));
    }
    Ok(Candle {
        open_ms,
        interval_ms: close_ms + 1 - open_ms,
        open: field(&f, 1, "open")?,
        high: field(&f, 2, "high")?,
        low: field(&f, 3, "low")?,
        close: field(&f, 4, "close")?,
        volume: field(&f, 5, "volume")?,
    })
}

/// Column positions of a generic OHLCV CSV.
#[derive(Clone, Debug)]
pub struct OhlcvHeader {
    time: usize,
    prices: [usize; 5],
    symbol: Option<usize>,
    columns: usize,
}

/// Accepted names of the time column.
pub const TIME_COLUMNS: [&str; 6] = ["timestamp", "time", "date", "datetime", "open_time", "ts"];

impl OhlcvHeader {
    /// Reads the header line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let names: Vec<String> = split_csv(line)
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let find = |n: &str| names.iter().position(|c| c == n);
        let time = TIME_COLUMNS.iter().find_map(|n| find(n)).ok_or_else(|| {
            format!(
                "no time column in the header (one of {}); found {}",
                TIME_COLUMNS.join(", "),
                names.join(",")
            )
        })?;
        let mut prices = [0; 5];
        for (slot, name) in prices
            .iter_mut()
            .zip(["open", "high", "low", "close", "volume"])
        {
            *slot = find(name).ok_or_else(|| {
                format!(
                    "no `{name}` column in the header (needs a time column, open, high, low, close, volume); found {}",
                    names.join(",")
                )
            })?;
        }
        Ok(OhlcvHeader {
            time,
            prices,
            symbol: find("symbol"),
            columns: names.len(),
        })
    }

    /// Whether rows name their symbol.
    pub fn has_symbol(&self) -> bool {
        self.symbol.is_some()
    }

    /// The time of a row, epoch ms.
    pub fn time_ms(&self, line: &str) -> Result<u64, String> {
        let f = split_csv(line);
        let t = f.get(self.time).ok_or("row is shorter than the header")?;
        parse_time(t)
    }

    /// A data row: its symbol (when the file has the column) and its bar.
    pub fn bar<'a>(
        &self,
        line: &'a str,
        interval_ms: u64,
    ) -> Result<(Option<&'a str>, Candle), String> {
        let f = split_csv(line);
        if f.len() != self.columns {
            return Err(format!(
                "expected {} columns like the header, found {}",
                self.columns,
                f.len()
            ));
        }
        let [o, h, l, c, v] = self.prices;
        Ok((
            self.symbol.map(|i| f[i]),
            Candle {
                open_ms: parse_time(f[self.time])?,
                interval_ms,
                open: field(&f, o, "open")?,
                high: field(&f, h, "high")?,
                low: field(&f, l, "low")?,
                close: field(&f, c, "close")?,
                volume: field(&f, v, "volume")?,
            },
        ))
    }
}

/// Epoch s/ms/µs/ns by magnitude, RFC 3339, `YYYY-MM-DD[ T]HH:MM:SS[.f]`
/// (UTC) or `YYYY-MM-DD` (midnight UTC), to epoch ms.
pub fn parse_time(text: &str) -> Result<u64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let v: u64 = t.parse().map_err(|_| format!("`{t}` is too large"))?;
        return Ok(match v {
            v if v < 100_000_000_000 => v * 1000,
            v if v <= MICROS_ABOVE => v,
            v if v < 100_000_000_000_000_000 => v / 1000,
            v => v / 1_000_000,
        });
    }
    let ms = DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
                .map(|d| d.and_utc().timestamp_millis())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d").map(|d| {
                d.and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc()
                    .timestamp_millis()
            })
        })
        .map_err(|_| {
            format!("`{t}` is not a time (epoch s/ms/µs/ns, RFC 3339 or YYYY-MM-DD HH:MM:SS)")
        })?;
    u64::try_from(ms).map_err(|_| format!("`{t}` is before 1970"))
}

/// The four synthetic trades of `bar` (none when its volume is zero),
/// each checked by the dataflow's own rules ([`encode_checked`]).
pub fn candle_ticks(
    bar: &Candle,
    symbol: &str,
    exchange: &str,
    limits: ValidationLimits,
) -> Result<Vec<Outgoing>, String> {
    let Candle {
        open_ms,
        interval_ms,
        open,
        high,
        low,
        close,
        volume,
    } = bar;
    for (name, p) in [
        ("open", open),
        ("high", high),
        ("low", low),
        ("close", close),
    ] {
        if p.is_zero() {
            return Err(format!("{name} must be > 0"));
        }
    }
    if high < low {
        return Err(format!("high {} is below low {}", high, low));
    }
    for (name, p) in [("open", open), ("close", close)] {
        if p > high || p < low {
            return Err(format!(
                "{name} {} is outside low {} .. high {}",
                p, low, high
            ));
        }
    }
    if volume.is_zero() {
        return Ok(Vec::new());
    }
    let up = close >= open;
    let path = if up {
        [open, low, high, close]
    } else {
        [open, high, low, close]
    };
    // Saturating: an absurd interval gives absurd times, which the decoder
    // then rejects with a reason instead of an overflow.
    let times = [
        *open_ms,
        open_ms.saturating_add(interval_ms / 3),
        open_ms.saturating_add(interval_ms / 3 * 2 + interval_ms % 3 * 2 / 3),
        open_ms.saturating_add(*interval_ms).saturating_sub(1),
    ];
    let size = volume.quarter().to_string();
    let mut out = Vec::with_capacity(4);
    for k in 0..4 {
        let side = match k {
            0 if up => Side::Buy,
            0 => Side::Sell,
            _ if path[k] >= path[k - 1] => Side::Buy,
            _ => Side::Sell,
        };
        let trade_id = format!("{open_ms}-{k}");
        let tick = DecimalWireTick {
            symbol,
            exchange,
            ts: times[k],
            price: &path[k].to_string(),
            size: &size,
            side,
            trade_id: Some(&trade_id),
        };
        let payload =
            encode_checked(&tick, limits).map_err(|(r, d)| format!("{}: {d}", r.code()))?;
        out.push(Outgoing {
            key: symbol.to_string(),
            payload,
            ts_ms: times[k],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ValidationLimits = ValidationLimits {
        now_ms: 1_800_000_000_000,
        max_future_ms: 60_000,
    };

    fn ticks(line: &str) -> Vec<serde_json::Value> {
        let bar = binance_candle(line).unwrap();
        candle_ticks(&bar, "BTC-USDT", "binance", LIMITS)
            .unwrap()
            .iter()
            .map(|o| serde_json::from_slice(&o.payload).unwrap())
            .collect()
    }

    #[test]
    fn a_down_bar_goes_open_high_low_close() {
        let t = ticks("1704067200000,42283.58000000,42298.62000000,42261.02000000,42266.00000000,35.92724000,1704067259999,1518765.92,1396,16.2,684936.8,0");
        let prices: Vec<&str> = t.iter().map(|v| v["price"].as_str().unwrap()).collect();
        assert_eq!(prices, ["42283.58", "42298.62", "42261.02", "42266"]);
        let ts: Vec<u64> = t.iter().map(|v| v["ts"].as_u64().unwrap()).collect();
        assert_eq!(
            ts,
            [1704067200000, 1704067220000, 1704067240000, 1704067259999]
        );
        let sides: Vec<&str> = t.iter().map(|v| v["side"].as_str().unwrap()).collect();
        assert_eq!(sides, ["sell", "buy", "sell", "buy"]);
        assert!(t.iter().all(|v| v["size"] == "8.98181"));
        assert_eq!(t[3]["trade_id"], "1704067200000-3");
    }

    #[test]
    fn microsecond_times_and_up_bars() {
        let t = ticks("1735689600000000,93576.00,93610.93,93537.50,93610.92,8.21827,1735689659999999,769139.5,1322,5.2,486500.3,0");
        assert_eq!(t[0]["ts"], 1735689600000u64);
        assert_eq!(t[3]["ts"], 1735689659999u64);
        let prices: Vec<&str> = t.iter().map(|v| v["price"].as_str().unwrap()).collect();
        assert_eq!(prices, ["93576", "93537.5", "93610.93", "93610.92"]);
    }

    #[test]
    fn bad_bars_say_why() {
        let err = |line: &str| match binance_candle(line) {
            Ok(bar) => candle_ticks(&bar, "BTC-USDT", "binance", LIMITS).unwrap_err(),
            Err(e) => e,
        };
        assert!(err("1,2,3").contains("12 columns"));
        assert!(
            err("1704067200000,42283.5,abc,42261.0,42266.0,1,1704067259999,0,0,0,0,0")
                .starts_with("high: `abc`")
        );
        assert!(
            err("1704067200000,42283.5,42000,42261.0,42266.0,1,1704067259999,0,0,0,0,0")
                .contains("high 42000 is below low 42261")
        );
        assert!(err("1704067200000,0,1,0,1,1,1704067259999,0,0,0,0,0").contains("open must be > 0"));
        // Seconds instead of milliseconds: the decoder's plausibility check.
        assert!(err("1704067200,1,1,1,1,1,1704067259,0,0,0,0,0").contains("implausible_timestamp"));
        let bar = binance_candle("1704067200000,1,1,1,1,0.0,1704067259999,0,0,0,0,0").unwrap();
        assert!(candle_ticks(&bar, "BTC-USDT", "binance", LIMITS)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn ohlcv_headers_and_times() {
        let h = OhlcvHeader::parse("Date,Symbol,Open,High,Low,Close,Adj Close,Volume").unwrap();
        assert!(h.has_symbol());
        let (sym, bar) = h
            .bar(
                "2024-01-02,ETHUSDT,2352.1,2400,2350.5,2391.0,2391.0,12.5",
                86_400_000,
            )
            .unwrap();
        assert_eq!(sym, Some("ETHUSDT"));
        assert_eq!(bar.open_ms, 1_704_153_600_000);
        assert!(OhlcvHeader::parse("when,open,high,low,close,volume")
            .unwrap_err()
            .contains("no time column"));
        assert!(OhlcvHeader::parse("time,open,high,low,close")
            .unwrap_err()
            .contains("no `volume` column"));
        for (text, ms) in [
            ("1704067200", 1_704_067_200_000),
            ("1704067200000", 1_704_067_200_000),
            ("1704067200000000", 1_704_067_200_000),
            ("1704067200000000000", 1_704_067_200_000),
            ("2024-01-01T00:00:00Z", 1_704_067_200_000),
            ("2024-01-01T01:00:00.250+01:00", 1_704_067_200_250),
            ("2024-01-01 00:00:01", 1_704_067_201_000),
            ("2024-01-01", 1_704_067_200_000),
        ] {
            assert_eq!(parse_time(text), Ok(ms), "{text}");
        }
        assert!(parse_time("yesterday").is_err());
    }
}
