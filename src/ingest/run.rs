//! Running one connector end to end: build the venue from plain options
//! (so a bad symbol fails before any connection), connect the Kafka sink,
//! watch Ctrl-C / SIGTERM, and drive the venue until stopped or
//! `--max-ticks`; the counters come back as a [`Summary`].
//!
//! No time semantics of its own (the venues and the [`Ingestor`] have
//! them). It must never parse flags: the command line lives in the binary
//! and hands over an [`IngestOptions`].

use std::time::Duration;

use super::binance::Binance;
use super::coinbase::Coinbase;
use super::coingecko::CoinGecko;
use super::kraken::Kraken;
use super::{
    run_websocket, Error, Ingestor, KafkaSink, Result, RunLimits, SinkOptions, Summary, WsVenue,
};
use crate::shutdown::stop_on_signal;

/// Which venue to stream, with its own settings.
#[derive(Clone, Debug)]
pub enum VenueOptions {
    /// Binance spot trades, after an optional REST backfill of klines.
    Binance {
        /// Symbols, Binance (`BTCUSDT`) or canonical (`BTC-USDT`) form.
        symbols: Vec<String>,
        /// Websocket endpoint base.
        ws_url: String,
        /// REST endpoint base (backfill).
        rest_url: String,
        /// Minutes of closed 1-minute klines to load before streaming (0: none).
        backfill_minutes: u64,
    },
    /// Coinbase Exchange `matches` + `ticker` + `heartbeat`.
    Coinbase {
        /// Product ids.
        products: Vec<String>,
        /// Websocket endpoint.
        ws_url: String,
    },
    /// Kraken websocket v2 `trade` + `ticker`.
    Kraken {
        /// Pairs, `BTC/USD` or `BTC-USD`.
        symbols: Vec<String>,
        /// Websocket endpoint.
        ws_url: String,
    },
    /// CoinGecko reference prices, polled over REST.
    CoinGecko {
        /// Coin ids.
        coins: Vec<String>,
        /// Quote currencies.
        vs: Vec<String>,
        /// API base URL.
        api_url: String,
        /// Seconds between polls (0.1 to 86,400).
        interval_s: f64,
        /// Days of `market_chart` history to load before polling.
        backfill_days: u32,
    },
}

/// Everything [`run`] needs.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// The venue.
    pub venue: VenueOptions,
    /// Where ticks and rejects go.
    pub sink: SinkOptions,
    /// Limits of the run, whatever the venue.
    pub limits: RunLimits,
}

/// A venue ready to connect.
enum Built {
    Binance(Binance, String, u64),
    Ws(Box<dyn WsVenue>),
    Poll(CoinGecko),
}

fn build(venue: VenueOptions) -> Result<Built> {
    Ok(match venue {
        VenueOptions::Binance {
            symbols,
            ws_url,
            rest_url,
            backfill_minutes,
        } => Built::Binance(Binance::new(&ws_url, &symbols)?, rest_url, backfill_minutes),
        VenueOptions::Coinbase { products, ws_url } => {
            Built::Ws(Box::new(Coinbase::new(&ws_url, &products)?))
        }
        VenueOptions::Kraken { symbols, ws_url } => {
            Built::Ws(Box::new(Kraken::new(&ws_url, &symbols)?))
        }
        VenueOptions::CoinGecko {
            coins,
            vs,
            api_url,
            interval_s,
            backfill_days,
        } => {
            if !(0.1..=86_400.0).contains(&interval_s) {
                return Err(Error::BadOption(
                    "--interval-s must be between 0.1 and 86400".into(),
                ));
            }
            let interval = Duration::from_secs_f64(interval_s);
            Built::Poll(CoinGecko::new(
                &api_url,
                &coins,
                &vs,
                interval,
                backfill_days,
            )?)
        }
    })
}

/// Runs a connector until Ctrl-C, SIGTERM or `--max-ticks`; returns its
/// counters.
pub fn run(opts: IngestOptions) -> Result<Summary> {
    let IngestOptions {
        venue,
        sink,
        limits,
    } = opts;
    // Build the venue first: bad symbols fail before any connection.
    let built = build(venue)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let sink = KafkaSink::connect(&sink).await?;
        let stop = stop_on_signal();
        match built {
            Built::Binance(b, rest_url, minutes) => {
                let mut ingest = Ingestor::new(b.exchange(), true, &sink, limits);
                if minutes > 0 {
                    b.backfill(&rest_url, minutes, &mut ingest, &stop).await?;
                }
                run_websocket(&b, &mut ingest, &stop).await?;
                Ok(ingest.finish()?)
            }
            Built::Ws(v) => {
                let mut ingest = Ingestor::new(v.exchange(), true, &sink, limits);
                run_websocket(v.as_ref(), &mut ingest, &stop).await?;
                Ok(ingest.finish()?)
            }
            Built::Poll(mut p) => p.run(&sink, limits, &stop).await,
        }
    })
}
