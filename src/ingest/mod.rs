//! Live market data in: exchange connectors that turn public market-data
//! feeds into ticks on the `ticks` topic.
//!
//! One module per venue knows its protocol (URL, subscription frames, message
//! shapes, symbol form); everything else is shared here and behaves the same
//! for every venue:
//!
//! - **Exact numbers, one symbol form.** Prices and sizes are parsed as exact
//!   decimals ([`crate::decimal`]) and travel as decimal strings; symbols are mapped
//!   to canonical `BASE-QUOTE` ([`crate::symbols`]).
//! - **Validation by the dataflow's own rules.** Each normalised trade is
//!   checked and serialised by [`dataflows::tick::encode_checked`], so
//!   nothing the pipeline would reject is sent as a tick, and a trade that
//!   would be is rejected with the pipeline's own reason.
//! - **Never stop on bad input.** A frame that cannot be used (not JSON, an
//!   unknown message, a missing or bad field, a non-positive price) is counted
//!   and sent to the rejects topic (`ticks.rejects`) as
//!   `{"exchange","received_ms","reason","detail","payload"}` with the raw
//!   frame (cut to 4 KiB); the connection carries on.
//! - **Duplicates and gaps.** Trade ids are tracked per symbol
//!   ([`Tracker`]): an id seen among the last 10,000 is an exact duplicate and
//!   dropped (e.g. the trades a venue replays after a reconnect); where ids are
//!   consecutive (Binance `t`, Coinbase `trade_id`, Kraken `trade_id`) a jump
//!   is logged as a gap with the number of missing trades, and a lower id is
//!   counted as out of order and still sent (event time puts it in place).
//! - **Reconnect.** A dropped connection, an error or silence longer than
//!   `--stale-after-s` reconnects with jittered exponential backoff (250 ms
//!   doubling to `--backoff-max-ms`, each delay drawn in [½, 1] of its
//!   bound, reset once a connection delivers data) and resubscribes.
//! - **Summary.** On exit (Ctrl-C, SIGTERM or `--max-ticks`) the producer is
//!   flushed and a JSON [`Summary`] of the counters is printed.

mod backoff;
pub mod binance;
pub mod cli;
pub mod coinbase;
pub mod coingecko;
pub mod fields;
pub mod kraken;
pub mod rest;
mod tracker;
mod ws;

pub use backoff::Backoff;
pub use tracker::{Seen, Tracker};
pub use ws::{run_websocket, WsVenue};

use std::time::Duration;

use dataflows::tick::{
    encode_checked, DecimalWireTick, Side, ValidationLimits, MAX_REJECT_PAYLOAD,
};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::decimal::Decimal;
use crate::kafka::{self, TickProducer};
use crate::now_ms;
pub use fields::Malformed;

/// Errors that stop a connector (bad input frames never do: they are rejects).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A symbol, product or coin the venue cannot take.
    #[error("`{symbol}` is not a {venue} symbol ({hint})")]
    BadSymbol {
        /// Venue name.
        venue: &'static str,
        /// What was given.
        symbol: String,
        /// What a good one looks like.
        hint: String,
    },
    /// A bad option value.
    #[error("{0}")]
    BadOption(String),
    /// The venue refused a REST request for good (e.g. an unknown symbol).
    #[error("the venue refused the request: {0}")]
    Refused(String),
    /// Producing to Kafka failed.
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
    /// The HTTP client could not be built.
    #[error("http client")]
    Http(#[from] reqwest::Error),
    /// The async runtime could not start.
    #[error("tokio runtime")]
    Runtime(#[from] std::io::Error),
}

/// The venue's own spelling of each of `symbols` (`to_native`), checked to
/// map back to a canonical symbol (`to_canonical`); the first that does not
/// is a [`Error::BadSymbol`] with `hint`.
pub fn native_symbols(
    symbols: &[String],
    venue: &'static str,
    hint: &str,
    to_native: impl Fn(&str) -> String,
    to_canonical: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    symbols
        .iter()
        .map(|s| {
            let native = to_native(s);
            to_canonical(&native)
                .map(|_| native)
                .ok_or_else(|| Error::BadSymbol {
                    venue,
                    symbol: s.clone(),
                    hint: hint.to_string(),
                })
        })
        .collect()
}

/// Picks rustls's crypto provider for the process (both aws-lc-rs and ring
/// are compiled in through dependencies, so rustls will not guess). Later
/// calls are no-ops.
pub fn use_aws_lc_tls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// One trade, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trade {
    /// Canonical `BASE-QUOTE`.
    pub symbol: String,
    /// Trade time, epoch ms.
    pub ts_ms: u64,
    /// Exact price.
    pub price: Decimal,
    /// Exact size in base units.
    pub size: Decimal,
    /// Taker side.
    pub side: Side,
    /// Venue trade id (per symbol).
    pub trade_id: u64,
}

/// What one frame from a venue said.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One or more trades, each read on its own: a bad one is rejected
    /// without losing the others of the frame.
    Trades(Vec<std::result::Result<Trade, Malformed>>),
    /// A heartbeat, with the newest trade id of a symbol when the venue says it.
    Heartbeat(Option<(String, u64)>),
    /// Subscription acks, status and other bookkeeping.
    Control,
    /// A quote (ticker without a trade in it): validated and counted only.
    Quote,
    /// The venue reported an error (e.g. an unknown product).
    VenueError(String),
}

/// Where ticks and rejects go.
pub trait Sink {
    /// One tick in the wire format, keyed by symbol.
    fn tick(&self, symbol: &str, payload: &[u8]) -> kafka::Result<()>;
    /// One reject record, keyed by exchange.
    fn reject(&self, exchange: &str, payload: &[u8]) -> kafka::Result<()>;
    /// Waits for delivery of everything sent.
    fn flush(&self) -> kafka::Result<()>;
}

/// The Kafka sink: the shared producer path for both topics.
pub struct KafkaSink {
    ticks: TickProducer,
    rejects: TickProducer,
}

impl KafkaSink {
    /// Creates both topics if needed and connects producers to them.
    pub async fn connect(opts: &SinkOptions) -> kafka::Result<Self> {
        kafka::ensure_topic(&opts.brokers, &opts.topic, opts.partitions).await?;
        kafka::ensure_topic(&opts.brokers, &opts.rejects_topic, 1).await?;
        Ok(KafkaSink {
            ticks: TickProducer::new(&opts.brokers, &opts.topic)?,
            rejects: TickProducer::new(&opts.brokers, &opts.rejects_topic)?,
        })
    }
}

impl Sink for KafkaSink {
    fn tick(&self, symbol: &str, payload: &[u8]) -> kafka::Result<()> {
        self.ticks.send(symbol, payload)
    }
    fn reject(&self, exchange: &str, payload: &[u8]) -> kafka::Result<()> {
        self.rejects.send(exchange, payload)
    }
    fn flush(&self) -> kafka::Result<()> {
        self.ticks.finish(Duration::from_secs(30))?;
        self.rejects.finish(Duration::from_secs(30))?;
        Ok(())
    }
}

/// Where to produce.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Tick topic.
    pub topic: String,
    /// Rejects topic.
    pub rejects_topic: String,
    /// Partitions of the tick topic when it is created.
    pub partitions: i32,
}

/// How a connector runs, whatever the venue.
#[derive(Clone, Debug)]
pub struct RunLimits {
    /// Stop after this many ticks were sent.
    pub max_ticks: Option<u64>,
    /// Reconnect after this long without any frame.
    pub stale_after: Duration,
    /// Upper bound of a reconnect delay.
    pub backoff_max: Duration,
    /// How far ahead of the wall clock a trade time may be.
    pub max_future_ms: u64,
}

/// Counters of one connector run, printed as JSON on exit.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Venue name.
    pub exchange: String,
    /// Frames (or REST responses) received.
    pub frames: u64,
    /// Ticks sent to the tick topic.
    pub ticks: u64,
    /// Trades dropped as exact duplicates.
    pub duplicates: u64,
    /// Gaps detected.
    pub gaps: u64,
    /// Trades known to be missing across all gaps (where ids say so).
    pub missing_trades: u64,
    /// Trades that arrived with a lower id than one already seen.
    pub out_of_order: u64,
    /// Frames or trades sent to the rejects topic.
    pub rejected: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Quotes received (validated, not sent as ticks).
    pub quotes: u64,
    /// Errors reported by the venue.
    pub venue_errors: u64,
    /// Connections (or polls) that failed and were retried.
    pub reconnects: u64,
}

#[derive(Serialize)]
struct RejectRecord<'a> {
    exchange: &'a str,
    received_ms: u64,
    reason: &'a str,
    detail: &'a str,
    payload: &'a str,
}

/// The shared half of every connector: turns parsed frames into ticks,
/// rejects and counters.
pub struct Ingestor<'s> {
    exchange: &'static str,
    consecutive_ids: bool,
    sink: &'s dyn Sink,
    limits: RunLimits,
    tracker: Tracker,
    summary: Summary,
}

impl<'s> Ingestor<'s> {
    /// An ingestor for `exchange` writing to `sink`.
    pub fn new(
        exchange: &'static str,
        consecutive_ids: bool,
        sink: &'s dyn Sink,
        limits: RunLimits,
    ) -> Self {
        Ingestor {
            exchange,
            consecutive_ids,
            sink,
            limits,
            tracker: Tracker::default(),
            summary: Summary {
                exchange: exchange.to_string(),
                ..Summary::default()
            },
        }
    }

    /// Has `--max-ticks` been reached?
    pub fn done(&self) -> bool {
        self.limits
            .max_ticks
            .is_some_and(|m| self.summary.ticks >= m)
    }

    /// Counters so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Counts a failed connection or poll.
    pub fn reconnecting(&mut self) {
        self.summary.reconnects += 1;
    }

    /// Handles one frame: `raw` is the text as received (kept for rejects).
    pub fn frame(
        &mut self,
        raw: &str,
        parsed: std::result::Result<Frame, Malformed>,
    ) -> kafka::Result<()> {
        self.summary.frames += 1;
        match parsed {
            Err(m) => self.reject(raw, &m),
            Ok(Frame::Trades(trades)) => {
                for t in trades {
                    match t {
                        Ok(t) => self.trade(raw, &t)?,
                        Err(m) => self.reject(raw, &m)?,
                    }
                }
                Ok(())
            }
            Ok(Frame::Heartbeat(last)) => {
                self.summary.heartbeats += 1;
                if let Some((symbol, id)) = last {
                    let missing = self.tracker.heartbeat(&symbol, id);
                    self.gap(
                        &symbol,
                        missing,
                        "heartbeat announced trades never received",
                    );
                }
                Ok(())
            }
            Ok(Frame::Control) => Ok(()),
            Ok(Frame::Quote) => {
                self.summary.quotes += 1;
                Ok(())
            }
            Ok(Frame::VenueError(msg)) => {
                self.summary.venue_errors += 1;
                warn!(exchange = self.exchange, error = %msg, "venue reported an error");
                Ok(())
            }
        }
    }

    fn gap(&mut self, symbol: &str, missing: u64, what: &str) {
        if missing > 0 {
            self.summary.gaps += 1;
            self.summary.missing_trades = self.summary.missing_trades.saturating_add(missing);
            warn!(exchange = self.exchange, symbol, missing, "gap: {what}");
        }
    }

    /// The run's limits.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// Sends a tick built and validated elsewhere (e.g. a backfilled kline),
    /// bypassing the trade-id tracking.
    pub fn validated_tick(&mut self, symbol: &str, payload: &[u8]) -> kafka::Result<()> {
        if self.done() {
            return Ok(());
        }
        self.sink.tick(symbol, payload)?;
        self.summary.ticks += 1;
        Ok(())
    }

    /// Counts a gap known only by time (no ids to say how many trades).
    pub fn time_gap(&mut self, symbol: &str, seconds: u64) {
        self.summary.gaps += 1;
        warn!(
            exchange = self.exchange,
            symbol, seconds, "gap: no update for too long"
        );
    }

    /// Handles one trade: dedupe, gap check, validate, send.
    pub fn trade(&mut self, raw: &str, t: &Trade) -> kafka::Result<()> {
        if self.done() {
            return Ok(());
        }
        match self
            .tracker
            .observe(&t.symbol, t.trade_id, self.consecutive_ids)
        {
            Seen::Duplicate => {
                self.summary.duplicates += 1;
                debug!(exchange = self.exchange, symbol = %t.symbol, id = t.trade_id, "duplicate dropped");
                return Ok(());
            }
            Seen::New {
                missing,
                out_of_order,
            } => {
                self.gap(&t.symbol, missing, "trade ids skipped");
                if out_of_order {
                    self.summary.out_of_order += 1;
                }
            }
        }
        let limits = ValidationLimits {
            now_ms: now_ms(),
            max_future_ms: self.limits.max_future_ms,
        };
        let (price, size, id) = (
            t.price.to_string(),
            t.size.to_string(),
            t.trade_id.to_string(),
        );
        let tick = DecimalWireTick {
            symbol: &t.symbol,
            exchange: self.exchange,
            ts: t.ts_ms,
            price: &price,
            size: &size,
            side: t.side,
            trade_id: Some(&id),
        };
        match encode_checked(&tick, limits) {
            Ok(json) => {
                self.sink.tick(&t.symbol, &json)?;
                self.summary.ticks += 1;
                Ok(())
            }
            Err((reason, detail)) => self.reject(raw, &Malformed::new(reason, detail)),
        }
    }

    /// Sends a frame that could not be used to the rejects topic.
    pub fn reject(&mut self, raw: &str, why: &Malformed) -> kafka::Result<()> {
        self.summary.rejected += 1;
        if self.summary.rejected <= 10 || self.summary.rejected.is_power_of_two() {
            warn!(exchange = self.exchange, reason = why.reason.code(), detail = %why.detail, rejected = self.summary.rejected, "frame rejected");
        }
        let end = (0..=raw.len().min(MAX_REJECT_PAYLOAD))
            .rev()
            .find(|&i| raw.is_char_boundary(i))
            .unwrap_or(0);
        let record = RejectRecord {
            exchange: self.exchange,
            received_ms: now_ms(),
            reason: why.reason.code(),
            detail: &why.detail,
            payload: &raw[..end],
        };
        let json = serde_json::to_vec(&record).expect("a reject always serialises");
        self.sink.reject(self.exchange, &json)
    }

    /// Flushes the sink and returns the counters.
    pub fn finish(self) -> kafka::Result<Summary> {
        self.sink.flush()?;
        info!(summary = ?self.summary, "ingest finished");
        Ok(self.summary)
    }
}
