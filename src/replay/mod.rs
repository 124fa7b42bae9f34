//! `cryptoflow replay FILE…`: historical files to the ticks topic, through
//! the same producer path as every feed.
//!
//! Formats (told apart by extension and first line, or `--format`): Binance
//! klines dumps, a generic OHLCV CSV with a header, and JSONL ticks; how a
//! row becomes ticks is in `rows.rs`. Symbols come from a `symbol` column,
//! else `--symbol`, else the file name (`BTCUSDT-1m-2024-01-01.csv` →
//! `BTC-USDT`, see `crate::symbols`). A generic CSV's bar length comes from
//! `--interval`, else the file name, else the smallest gap between the times
//! of its first 1,000 rows.
//!
//! Time: files are read in the order given, rows in file order. With
//! `--speed N` each record waits until `(its event time − the file's first
//! event time) / N` has passed on the wall clock since the file started; a
//! record whose time goes backwards goes at once. Otherwise (`--max-speed`,
//! the default) records go as fast as the broker takes them.
//!
//! Errors: a problem with a whole file (missing, no symbol, unknown header)
//! stops before anything is sent. A bad row stops the replay with
//! `<file>:<line>: <what>` after flushing what went before, unless
//! `--skip-bad-rows`, which counts it, logs the first few and goes on.
//! The progress bar (rows, rate, ETA against a pre-count of lines) is drawn
//! only when asked for, i.e. when stderr is a terminal.

mod plan;
pub mod rows;

pub use plan::parse_interval;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dataflows::tick::ValidationLimits;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::warn;

use crate::files::open_buffered;
use crate::kafka::{self, ProducerOptions, TickProducer};
use crate::shutdown::Stop;
use plan::{name, plan};

/// Errors of a replay. `Row` prints as `<file>:<line>: <what>`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row that is not valid in its format.
    #[error("{file}:{line}: {what}")]
    Row {
        /// The file as given.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        what: String,
    },
    /// A file that cannot be replayed as a whole.
    #[error("{file}: {what}")]
    File {
        /// The file as given.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// Reading failed.
    #[error("{file}: {cause}")]
    Io {
        /// The file as given.
        file: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// The broker.
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// File formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// By extension (`.jsonl`, `.ndjson`, `.json`) and first line (a header or not).
    Auto,
    /// Binance klines dump: 12 columns, no header.
    Binance,
    /// CSV with a header: time, open, high, low, close, volume[, symbol].
    Ohlcv,
    /// One tick per line, the wire format.
    Jsonl,
}

/// How fast records go out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As fast as the broker takes them.
    MaxSpeed,
    /// N times real time (event-time gaps divided by N).
    Speed(f64),
}

/// Replay settings.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic (created with `partitions` if missing).
    pub topic: String,
    /// Partitions when creating the topic.
    pub partitions: i32,
    /// Files, replayed in this order.
    pub files: Vec<PathBuf>,
    /// Their format.
    pub format: Format,
    /// Symbol of CSV files without a symbol column (any spelling `symbols::canonical` takes).
    pub symbol: Option<String>,
    /// Exchange on CSV ticks (default `binance` for klines, `replay` for generic CSV).
    pub exchange: Option<String>,
    /// Bar length of generic CSV files, ms.
    pub interval_ms: Option<u64>,
    /// Pacing.
    pub pace: Pace,
    /// Count bad rows and go on instead of stopping.
    pub skip_bad_rows: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Producer settings.
    pub producer: ProducerOptions,
    /// Allowed event-time skew ahead of the wall clock, ms (as `run`'s `--max-future-ms`).
    pub max_future_ms: u64,
    /// Ctrl-C / SIGTERM: stop reading, deliver what was sent, report.
    pub stop: Stop,
}

/// What a replay did.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ReplaySummary {
    /// Files replayed.
    pub files: usize,
    /// Data rows read (not counting headers and blank lines).
    pub rows: u64,
    /// Ticks sent.
    pub ticks: u64,
    /// Bad rows skipped (`--skip-bad-rows`).
    pub skipped: u64,
    /// Bars with zero volume (no trades, so no ticks).
    pub empty_bars: u64,
    /// Ticks acknowledged by the broker.
    pub delivered: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// Stopped by a signal before the last file's end.
    pub interrupted: bool,
}

/// Bad rows logged one by one before only counting.
const LOGGED_BAD_ROWS: u64 = 10;

/// Waits so that records go out at `speed` times their event-time pace.
struct Pacer {
    speed: Option<f64>,
    anchor: Option<(u64, Instant)>,
}

impl Pacer {
    /// Sleeps until `ts_ms` is due, in short steps so `stop` is noticed.
    fn wait(&mut self, ts_ms: u64, stop: &Stop) {
        let Some(speed) = self.speed else { return };
        let (t0, w0) = *self.anchor.get_or_insert((ts_ms, Instant::now()));
        let ahead = ts_ms.saturating_sub(t0) as f64 / 1000.0 / speed;
        // Capped (at ~31 years) so an absurdly slow --speed cannot overflow.
        let due = w0 + Duration::from_secs_f64(ahead.min(1e9));
        loop {
            let now = Instant::now();
            if due <= now || stop.is_set() {
                break;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
        }
    }
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {human_pos}/{human_len} rows  {rate}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} rows/s", s.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    pb
}

/// Replays `opts.files` into the topic.
pub fn replay(opts: &ReplayOptions) -> Result<ReplaySummary> {
    let clock0 = Instant::now();
    let mut plans = opts
        .files
        .iter()
        .map(|p| plan(opts, p))
        .collect::<Result<Vec<_>>>()?;
    kafka::prepare_topic(&opts.brokers, &opts.topic, opts.partitions)?;
    let producer = TickProducer::with_options(&opts.brokers, &opts.topic, opts.producer)?;
    let limits = ValidationLimits {
        now_ms: crate::now_ms(),
        max_future_ms: opts.max_future_ms,
    };
    let pb = progress_bar(opts.progress, plans.iter().map(|p| p.lines).sum());
    let mut summary = ReplaySummary {
        files: plans.len(),
        ..ReplaySummary::default()
    };
    let result = (|| {
        for plan in &mut plans {
            let file = name(&plan.path);
            pb.set_message(
                plan.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            let mut pacer = Pacer {
                speed: match opts.pace {
                    Pace::MaxSpeed => None,
                    Pace::Speed(n) => Some(n),
                },
                anchor: None,
            };
            let io = |cause| Error::Io {
                file: file.clone(),
                cause,
            };
            let mut reader = open_buffered(&plan.path).map_err(io)?;
            let mut buf = String::new();
            let mut line_no = 0u64;
            loop {
                if opts.stop.is_set() {
                    summary.interrupted = true;
                    return Ok(());
                }
                buf.clear();
                let read = reader.read_line(&mut buf).map_err(|e| Error::Row {
                    file: file.clone(),
                    line: line_no + 1,
                    what: e.to_string(),
                })?;
                if read == 0 {
                    break;
                }
                line_no += 1;
                pb.inc(1);
                let line = buf.trim_end_matches(['\n', '\r']);
                if line.trim().is_empty() {
                    continue;
                }
                let ticks = match plan.reader.ticks(line, limits) {
                    Ok(None) => continue,
                    Ok(Some(t)) => t,
                    Err(what) if opts.skip_bad_rows => {
                        summary.rows += 1;
                        summary.skipped += 1;
                        if summary.skipped <= LOGGED_BAD_ROWS {
                            pb.suspend(|| warn!(file = %file, line = line_no, error = %what, "skipped bad row"));
                        }
                        continue;
                    }
                    Err(what) => {
                        return Err(Error::Row {
                            file: file.clone(),
                            line: line_no,
                            what,
                        })
                    }
                };
                summary.rows += 1;
                if ticks.is_empty() {
                    summary.empty_bars += 1;
                }
                for t in ticks {
                    pacer.wait(t.ts_ms, &opts.stop);
                    if opts.stop.is_set() {
                        summary.interrupted = true;
                        return Ok(());
                    }
                    producer.send(&t.key, &t.payload)?;
                    summary.ticks += 1;
                }
            }
        }
        Ok(())
    })();
    // Whatever went before a bad row is delivered (or reported) either way.
    let delivered = producer.finish(Duration::from_secs(60));
    match &result {
        Ok(()) => pb.finish(),
        Err(_) => pb.abandon(),
    }
    result?;
    summary.delivered = delivered?;
    summary.seconds = clock0.elapsed().as_secs_f64();
    Ok(summary)
}
