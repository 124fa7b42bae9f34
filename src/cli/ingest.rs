//! `cryptoflow ingest <venue>`: the connectors' flags, turned into the
//! library's [`IngestOptions`]; the run itself (venue, runtime, signals) is
//! [`cryptoflow::ingest::run`]. Prints the run's JSON summary on stdout.

use std::time::Duration;

use clap::{Args, Subcommand};
use cryptoflow::ingest::{
    binance, coinbase, coingecko, kraken, IngestOptions, RunLimits, SinkOptions, VenueOptions,
};

/// `cryptoflow ingest`.
#[derive(Args)]
pub struct IngestArgs {
    #[command(subcommand)]
    venue: Venue,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct Common {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "CRYPTOFLOW_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    brokers: String,
    /// Tick topic (created with --partitions if missing).
    #[arg(long, global = true, default_value = "ticks")]
    topic: String,
    /// Topic for frames that could not be used (created if missing).
    #[arg(long, global = true, default_value = "ticks.rejects")]
    rejects_topic: String,
    /// Partitions when creating the tick topic.
    #[arg(long, global = true, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Stop after this many ticks (default: run until Ctrl-C / SIGTERM).
    #[arg(long, global = true)]
    max_ticks: Option<u64>,
    /// Reconnect when no frame arrived for this many seconds.
    #[arg(long, global = true, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    stale_after_s: u64,
    /// Longest reconnect delay, ms.
    #[arg(long, global = true, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(250..))]
    backoff_max_ms: u64,
    /// How far ahead of the wall clock a trade time may be, ms.
    #[arg(long, global = true, default_value_t = dataflows::source::DEFAULT_MAX_FUTURE_MS)]
    max_future_ms: u64,
}

#[derive(Subcommand)]
enum Venue {
    /// Binance spot trades (`<symbol>@trade` on a combined stream).
    Binance {
        /// Symbols, Binance (`BTCUSDT`) or canonical (`BTC-USDT`) form.
        #[arg(long, value_delimiter = ',', default_value = "BTCUSDT,ETHUSDT")]
        symbols: Vec<String>,
        /// Websocket endpoint base.
        #[arg(long, default_value = binance::DEFAULT_WS)]
        ws_url: String,
        /// REST endpoint base (backfill).
        #[arg(long, default_value = binance::DEFAULT_REST)]
        rest_url: String,
        /// Minutes of closed 1-minute klines to load over REST before streaming.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=525_600))]
        backfill_minutes: u64,
    },
    /// Coinbase Exchange `matches` + `ticker` + `heartbeat`.
    Coinbase {
        /// Product ids.
        #[arg(long, value_delimiter = ',', default_value = "BTC-USD,ETH-USD")]
        products: Vec<String>,
        /// Websocket endpoint.
        #[arg(long, default_value = coinbase::DEFAULT_WS)]
        ws_url: String,
    },
    /// Kraken websocket v2 `trade` + `ticker`.
    Kraken {
        /// Pairs, `BTC/USD` or `BTC-USD`.
        #[arg(long, value_delimiter = ',', default_value = "BTC/USD,ETH/USD")]
        symbols: Vec<String>,
        /// Websocket endpoint.
        #[arg(long, default_value = kraken::DEFAULT_WS)]
        ws_url: String,
    },
    /// CoinGecko reference prices, polled over REST.
    Coingecko {
        /// Coin ids.
        #[arg(long, value_delimiter = ',', default_value = "bitcoin,ethereum")]
        coins: Vec<String>,
        /// Quote currencies.
        #[arg(long, value_delimiter = ',', default_value = "usd")]
        vs: Vec<String>,
        /// API base URL.
        #[arg(long, default_value = coingecko::DEFAULT_API)]
        api_url: String,
        /// Seconds between polls (the free plan allows tens of calls a minute).
        #[arg(long, default_value_t = 30.0)]
        interval_s: f64,
        /// Days of `market_chart` history to load before polling.
        #[arg(long, default_value_t = 0)]
        backfill_days: u32,
    },
}

/// Runs a connector until Ctrl-C, SIGTERM or `--max-ticks`, then prints
/// its counters as JSON.
pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let IngestArgs { venue, common } = args;
    let Common {
        brokers,
        topic,
        rejects_topic,
        partitions,
        max_ticks,
        stale_after_s,
        backoff_max_ms,
        max_future_ms,
    } = common;
    let venue = match venue {
        Venue::Binance {
            symbols,
            ws_url,
            rest_url,
            backfill_minutes,
        } => VenueOptions::Binance {
            symbols,
            ws_url,
            rest_url,
            backfill_minutes,
        },
        Venue::Coinbase { products, ws_url } => VenueOptions::Coinbase { products, ws_url },
        Venue::Kraken { symbols, ws_url } => VenueOptions::Kraken { symbols, ws_url },
        Venue::Coingecko {
            coins,
            vs,
            api_url,
            interval_s,
            backfill_days,
        } => VenueOptions::CoinGecko {
            coins,
            vs,
            api_url,
            interval_s,
            backfill_days,
        },
    };
    let summary = cryptoflow::ingest::run(IngestOptions {
        venue,
        sink: SinkOptions {
            brokers,
            topic,
            rejects_topic,
            partitions,
        },
        limits: RunLimits {
            max_ticks,
            stale_after: Duration::from_secs(stale_after_s),
            backoff_max: Duration::from_millis(backoff_max_ms),
            max_future_ms,
        },
    })?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
