//! Live market data in: exchange connectors that turn public market-data
//! feeds into ticks on the `ticks` topic.
//!
//! One module per venue knows its protocol (URL, subscription frames, message
//! shapes, symbol form); everything else is shared — the [`Ingestor`]
//! (`ingestor.rs`), the [`Sink`] (`sink.rs`), the websocket and REST loops,
//! and [`run`] (`run.rs`), which starts a venue from an [`IngestOptions`] —
//! and behaves the same for every venue:
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

pub mod binance;
pub mod coinbase;
pub mod coingecko;
pub mod fields;
mod ingestor;
pub mod kraken;
pub mod rest;
mod run;
mod sink;
mod tracker;
mod ws;

pub use crate::backoff::Backoff;
pub use fields::Malformed;
pub use ingestor::Ingestor;
pub use run::{run, IngestOptions, VenueOptions};
pub use sink::{KafkaSink, Sink, SinkOptions};
pub use tracker::{Seen, Tracker};
pub use ws::{run_websocket, WsVenue};

use std::time::Duration;

use dataflows::tick::Side;
use serde::Serialize;

use crate::decimal::Decimal;
use crate::kafka;

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

impl Trade {
    /// This trade as the `ticks` topic carries it from `exchange`, checked
    /// as the pipeline checks it: the tick's JSON, or the reason it would
    /// be rejected.
    pub fn encode(
        &self,
        exchange: &str,
        limits: dataflows::tick::ValidationLimits,
    ) -> std::result::Result<Vec<u8>, dataflows::tick::Invalid> {
        let (price, size, id) = (
            self.price.to_string(),
            self.size.to_string(),
            self.trade_id.to_string(),
        );
        let tick = dataflows::tick::DecimalWireTick {
            symbol: &self.symbol,
            exchange,
            ts: self.ts_ms,
            price: &price,
            size: &size,
            side: self.side,
            trade_id: Some(&id),
        };
        dataflows::tick::encode_checked(&tick, limits)
    }
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
