//! Resolving each replayed file before anything is sent: its format, symbol,
//! exchange and bar length (see the parent module), and the reader that
//! turns its lines into ticks. A file that cannot be replayed as a whole
//! fails here, naming the file and what to pass instead.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use dataflows::tick::ValidationLimits;

use super::rows::{self, binance_candle, candle_ticks, validated, OhlcvHeader, Outgoing};
use super::{Error, Format, ReplayOptions, Result};
use crate::files::{count_lines, open_buffered};

/// One file, resolved before anything is sent.
pub(super) struct Plan {
    pub(super) path: PathBuf,
    pub(super) reader: RowReader,
    pub(super) lines: u64,
}

/// How the rows of one file turn into ticks.
pub(super) enum RowReader {
    Binance {
        symbol: String,
        exchange: String,
    },
    Ohlcv {
        header: Option<OhlcvHeader>,
        symbol: Option<String>,
        exchange: String,
        interval_ms: u64,
    },
    Jsonl,
}

pub(super) fn name(path: &Path) -> String {
    path.display().to_string()
}

/// `BTCUSDT-1m-2024-01-01.csv` → (`BTCUSDT`, Some(60,000)).
fn name_hints(path: &Path) -> (Option<String>, Option<u64>) {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = stem.split(['-', '.', '_']);
    let symbol = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    (symbol, parts.next().and_then(parse_interval))
}

/// `30s`, `1m`, `4h`, `1d`, `1w` (also `1000ms`) to ms.
pub fn parse_interval(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = t[..split].parse().ok().filter(|n| *n > 0)?;
    let unit = match &t[split..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

fn first_line(path: &Path) -> Result<Option<String>> {
    let io = |cause| Error::Io {
        file: name(path),
        cause,
    };
    for line in open_buffered(path).map_err(io)?.lines() {
        let line = line.map_err(io)?;
        if !line.trim().is_empty() {
            return Ok(Some(line));
        }
    }
    Ok(None)
}

/// Smallest positive gap between consecutive times among the first rows.
fn infer_interval(path: &Path, header: &OhlcvHeader) -> Result<Option<u64>> {
    let io = |cause| Error::Io {
        file: name(path),
        cause,
    };
    let mut prev = None;
    let mut gap: Option<u64> = None;
    for line in open_buffered(path).map_err(io)?.lines().skip(1).take(1_000) {
        let Ok(t) = header.time_ms(&line.map_err(io)?) else {
            continue;
        };
        if let Some(p) = prev.filter(|p| t > *p) {
            gap = Some(gap.map_or(t - p, |g| g.min(t - p)));
        }
        prev = Some(t);
    }
    Ok(gap)
}

pub(super) fn plan(opts: &ReplayOptions, path: &Path) -> Result<Plan> {
    let file_error = |what: String| Error::File {
        file: name(path),
        what,
    };
    let lines = count_lines(path).map_err(|cause| Error::Io {
        file: name(path),
        cause,
    })?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let first = first_line(path)?;
    let format = match opts.format {
        Format::Auto if ["jsonl", "ndjson", "json"].contains(&ext.as_str()) => Format::Jsonl,
        Format::Auto => match &first {
            Some(l) if l.trim_start().starts_with('{') => Format::Jsonl,
            Some(l) if rows::split_csv(l)[0].bytes().all(|b| b.is_ascii_digit()) => Format::Binance,
            _ => Format::Ohlcv,
        },
        f => f,
    };
    let (name_symbol, name_interval) = name_hints(path);
    let symbol = match &opts.symbol {
        Some(s) => Some(crate::symbols::canonical(s).ok_or_else(|| {
            file_error(format!(
                "--symbol {s}: not a symbol like BTC-USDT or BTCUSDT"
            ))
        })?),
        None => name_symbol.as_deref().and_then(crate::symbols::canonical),
    };
    let no_symbol = || {
        file_error(
            "cannot tell the symbol from the file name (like BTCUSDT-1m-2024-01-01.csv); pass --symbol"
                .into(),
        )
    };
    let reader = match format {
        Format::Jsonl => RowReader::Jsonl,
        Format::Binance => RowReader::Binance {
            symbol: symbol.ok_or_else(no_symbol)?,
            exchange: opts.exchange.clone().unwrap_or_else(|| "binance".into()),
        },
        Format::Ohlcv | Format::Auto => {
            let header = match &first {
                Some(l) => OhlcvHeader::parse(l).map_err(file_error)?,
                // An empty file has no rows: any reader will do.
                None => {
                    return Ok(Plan {
                        path: path.to_path_buf(),
                        reader: RowReader::Jsonl,
                        lines,
                    })
                }
            };
            if !header.has_symbol() && symbol.is_none() {
                return Err(no_symbol());
            }
            let interval_ms = match opts.interval_ms.or(name_interval) {
                Some(i) => i,
                None => infer_interval(path, &header)?.ok_or_else(|| {
                    file_error(
                        "cannot tell the bar length from the rows; pass --interval (e.g. 1m)"
                            .into(),
                    )
                })?,
            };
            if interval_ms < 4 {
                return Err(file_error(format!(
                    "bar length {interval_ms} ms is too short"
                )));
            }
            RowReader::Ohlcv {
                header: None,
                symbol,
                exchange: opts.exchange.clone().unwrap_or_else(|| "replay".into()),
                interval_ms,
            }
        }
    };
    Ok(Plan {
        path: path.to_path_buf(),
        reader,
        lines,
    })
}

impl RowReader {
    /// The ticks of one non-blank line; `Ok(None)` for a header.
    pub(super) fn ticks(
        &mut self,
        line: &str,
        limits: ValidationLimits,
    ) -> std::result::Result<Option<Vec<Outgoing>>, String> {
        match self {
            RowReader::Jsonl => validated(line.as_bytes().to_vec(), limits).map(|o| Some(vec![o])),
            RowReader::Binance { symbol, exchange } => {
                let bar = binance_candle(line)?;
                candle_ticks(&bar, symbol, exchange, limits).map(Some)
            }
            RowReader::Ohlcv {
                header,
                symbol,
                exchange,
                interval_ms,
            } => {
                let Some(h) = header.as_ref() else {
                    *header = Some(OhlcvHeader::parse(line)?);
                    return Ok(None);
                };
                let (row_symbol, bar) = h.bar(line, *interval_ms)?;
                let symbol = match row_symbol {
                    Some(s) => crate::symbols::canonical(s).ok_or_else(|| {
                        format!("symbol `{s}` is not a pair like BTC-USDT or BTCUSDT")
                    })?,
                    None => symbol.clone().unwrap_or_default(),
                };
                candle_ticks(&bar, &symbol, exchange, limits).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_intervals() {
        assert_eq!(
            name_hints(Path::new("/data/BTCUSDT-1m-2024-01-01.csv")),
            (Some("BTCUSDT".into()), Some(60_000))
        );
        assert_eq!(name_hints(Path::new("prices.csv")).1, None);
        assert_eq!(parse_interval("4h"), Some(14_400_000));
        assert_eq!(parse_interval("1500ms"), Some(1_500));
        for bad in ["", "m", "0m", "1mo", "1y", "-1m"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }
}
