//! `cryptoflow simulate | produce | replay`: the producing commands' flags
//! and their wiring to the library (`feed`, `replay`, `kafka`). All three
//! share the topic flags (the topic is created with `--partitions` if
//! missing) and the producer flags, so every source goes through the one
//! producer path.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cryptoflow::feed::{run_sim_feed, FeedOptions};
use cryptoflow::kafka::{self, Compression, ProducerOptions};
use cryptoflow::replay::{replay as replay_files, Format, Pace, ReplayOptions};
use cryptoflow::shutdown::stop_on_signal;

/// Where producing commands write: the topic is created if missing.
#[derive(Args)]
pub struct TopicArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Topic (created with --partitions if missing).
    #[arg(long, default_value = "ticks")]
    topic: String,
    /// Partitions when creating the topic.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
}

/// Producer settings shared by the producing commands.
#[derive(Args)]
pub struct ProducerArgs {
    /// Batch compression.
    #[arg(long, value_enum, default_value_t = Compression::Lz4)]
    compression: Compression,
    /// Turn off the idempotent producer (for brokers without InitProducerId).
    #[arg(long)]
    no_idempotence: bool,
}

impl ProducerArgs {
    fn options(&self) -> ProducerOptions {
        let ProducerArgs {
            compression,
            no_idempotence,
        } = self;
        ProducerOptions::default()
            .with_compression(*compression)
            .with_idempotence(!no_idempotence)
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number between 0 and 1")),
    }
}

fn seasonality(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=0.95).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number between 0 and 0.95")),
    }
}

fn canonical_symbol(s: &str) -> Result<String, String> {
    if dataflows::tick::is_canonical_symbol(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a canonical BASE-QUOTE symbol like BTC-USD"
        ))
    }
}

fn interval(s: &str) -> Result<u64, String> {
    cryptoflow::replay::parse_interval(s)
        .ok_or_else(|| format!("`{s}` is not a bar length like 1s, 1m, 4h, 1d"))
}

#[derive(Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    topic: TopicArgs,
    #[command(flatten)]
    producer: ProducerArgs,
    /// Messages to send; with none, lines are read from stdin.
    messages: Vec<String>,
}

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    topic: TopicArgs,
    #[command(flatten)]
    producer: ProducerArgs,
    /// Stop after this many ticks.
    #[arg(long)]
    ticks: Option<u64>,
    /// Produce as fast as possible (event time starts at --start-ms or now).
    #[arg(long)]
    max_speed: bool,
    /// Mean trades per second per symbol (over a UTC day).
    #[arg(long, default_value_t = 10.0, value_parser = positive_f64)]
    rate: f64,
    /// Symbols, comma separated (default: BTC-USD,ETH-USD,SOL-USD,XRP-USD,DOGE-USD).
    #[arg(long, value_delimiter = ',', value_parser = canonical_symbol, conflicts_with = "symbol_count")]
    symbols: Vec<String>,
    /// This many symbols: the five default ones, then SIM6-USD, SIM7-USD, …
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    symbol_count: Option<u32>,
    /// Correlation of the symbols' returns (a common market factor), 0 to 1.
    #[arg(long, default_value_t = dataflows::sim::MARKET_CORRELATION, value_parser = unit_interval)]
    correlation: f64,
    /// Intraday trade-rate cycle amplitude: rate × (1 + a·cos(2π(t − 14:00 UTC)/24 h)).
    #[arg(long, default_value_t = dataflows::sim::MARKET_SEASONALITY, value_parser = seasonality)]
    seasonality: f64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First event time, epoch ms (default: now).
    #[arg(long)]
    start_ms: Option<u64>,
}

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    topic: TopicArgs,
    #[command(flatten)]
    producer: ProducerArgs,
    /// Files, replayed in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// File format (auto: by extension and first line).
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Symbol of CSV files without a symbol column (default: from the file name, e.g. BTCUSDT-1m-….csv).
    #[arg(long)]
    symbol: Option<String>,
    /// Exchange on ticks from CSV files (default: binance for klines, replay for OHLCV).
    #[arg(long)]
    exchange: Option<String>,
    /// Bar length of OHLCV files, e.g. 1m (default: from the file name, else the rows' spacing).
    #[arg(long, value_parser = interval)]
    interval: Option<u64>,
    /// Replay at N times real time (event-time gaps divided by N).
    #[arg(long, value_parser = positive_f64, conflicts_with = "max_speed")]
    speed: Option<f64>,
    /// As fast as the broker takes it (the default).
    #[arg(long)]
    max_speed: bool,
    /// Count bad rows and continue instead of stopping at the first.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Allowed event-time skew ahead of the wall clock, ms (as `run`).
    #[arg(long, default_value_t = dataflows::source::DEFAULT_MAX_FUTURE_MS)]
    max_future_ms: u64,
}

/// `cryptoflow simulate`: the seeded simulator into the topic, until
/// `--ticks`, Ctrl-C or SIGTERM.
pub fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let SimulateArgs {
        topic: TopicArgs {
            brokers,
            topic,
            partitions,
        },
        producer,
        ticks,
        max_speed,
        rate,
        symbols,
        symbol_count,
        correlation,
        seasonality,
        seed,
        start_ms,
    } = a;
    kafka::prepare_topic(&brokers, &topic, partitions)?;
    let stop = stop_on_signal();
    let symbols = match symbol_count {
        Some(n) => dataflows::sim::generated_symbols(n as usize),
        None => symbols,
    };
    let opts = FeedOptions {
        brokers,
        topic,
        seed,
        symbols,
        correlation,
        seasonality,
        trades_per_sec: rate,
        max_ticks: ticks,
        max_speed,
        start_ms,
        history_ms: 0,
        history_trades_per_sec: rate,
        producer: producer.options(),
    };
    let summary = run_sim_feed(&opts, &stop).context("simulated feed")?;
    println!("{}", serde_json::to_string(&summary)?);
    anyhow::ensure!(
        summary.failed == 0,
        "{} ticks were not delivered",
        summary.failed
    );
    Ok(())
}

/// `cryptoflow produce`: lines from the arguments or stdin, keyed by symbol.
pub fn produce(a: ProduceArgs) -> anyhow::Result<()> {
    let ProduceArgs {
        topic: TopicArgs {
            brokers,
            topic,
            partitions,
        },
        producer,
        messages,
    } = a;
    kafka::prepare_topic(&brokers, &topic, partitions)?;
    let producer = kafka::TickProducer::with_options(&brokers, &topic, producer.options())?;
    let send = |line: &str| -> anyhow::Result<()> {
        // Key by symbol when the line has one, so a symbol stays in one partition;
        // a line that is not a tick is still sent: the pipeline rejects it with a reason.
        let key = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("symbol").and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_default();
        producer.send(&key, line.as_bytes())?;
        Ok(())
    };
    let mut sent = 0u64;
    if messages.is_empty() {
        for line in std::io::stdin().lines() {
            let line = line.context("reading stdin")?;
            if !line.trim().is_empty() {
                send(&line)?;
                sent += 1;
            }
        }
    } else {
        for m in &messages {
            send(m)?;
            sent += 1;
        }
    }
    producer.finish(Duration::from_secs(30))?;
    eprintln!("sent {sent} message(s) to {topic}");
    Ok(())
}

/// `cryptoflow replay`: history files into the topic.
pub fn replay(a: ReplayArgs) -> anyhow::Result<()> {
    let ReplayArgs {
        topic: TopicArgs {
            brokers,
            topic,
            partitions,
        },
        producer,
        files,
        format,
        symbol,
        exchange,
        interval,
        speed,
        max_speed: _,
        skip_bad_rows,
        max_future_ms,
    } = a;
    let summary = replay_files(&ReplayOptions {
        brokers,
        topic: topic.clone(),
        partitions,
        files,
        format,
        symbol,
        exchange,
        interval_ms: interval,
        // --max-speed is the default; the flag only makes it explicit.
        pace: speed.map_or(Pace::MaxSpeed, Pace::Speed),
        skip_bad_rows,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        producer: producer.options(),
        max_future_ms,
        stop: stop_on_signal(),
    })?;
    println!("{}", serde_json::to_string(&summary)?);
    eprintln!(
        "replayed {} row(s) from {} file(s): {} tick(s) to {topic}{}",
        summary.rows,
        summary.files,
        summary.ticks,
        if summary.skipped > 0 {
            format!(", {} bad row(s) skipped", summary.skipped)
        } else {
            String::new()
        }
    );
    Ok(())
}
