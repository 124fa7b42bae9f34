//! Producer throughput: simulated ticks per second from the simulator,
//! through the one producer path (`run_sim_feed` → `TickProducer`), into a
//! local tansu broker with in-memory storage, acknowledged. One JSON line
//! per producer configuration, each on a fresh broker and topic; the
//! records on the topic (read back to the end of every partition) are
//! counted and checked against what was sent.
//!
//! `seconds` covers simulating, serialising, producing and the final flush
//! (every tick acknowledged); `sim_ticks_per_sec` is the simulator and JSON
//! encoding alone, to show which side limits the rate.

use std::time::{Duration, Instant};

use clap::Parser;
use cryptoflow::broker::Broker;
use cryptoflow::feed::{run_sim_feed, FeedOptions};
use cryptoflow::kafka::{self, Compression, ProducerOptions};
use cryptoflow::shutdown::Stop;
use dataflows::sim::{Simulator, MARKET_CORRELATION, MARKET_SEASONALITY};

#[derive(Parser)]
struct Args {
    /// Ticks per run.
    #[arg(long, default_value_t = 1_000_000)]
    ticks: u64,
    /// Topic partitions.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Simulated symbols.
    #[arg(long, default_value_t = 5)]
    symbols: usize,
    /// Configurations as COMPRESSION:IDEMPOTENT, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lz4:true,none:true,gzip:true,lz4:false"
    )]
    configs: Vec<String>,
}

const START: u64 = 1_700_000_000_000;

fn parse_config(s: &str) -> anyhow::Result<ProducerOptions> {
    let (c, i) = s
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("config `{s}`: expected COMPRESSION:IDEMPOTENT"))?;
    let compression = match c {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "lz4" => Compression::Lz4,
        other => anyhow::bail!("unknown compression `{other}`"),
    };
    Ok(ProducerOptions::default()
        .with_compression(compression)
        .with_idempotence(i.parse()?))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for config in &args.configs {
        let producer = parse_config(config)?;
        let dir =
            std::env::temp_dir().join(format!("cryptoflow-bench-producer-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let broker = Broker::start(&dir.join("broker.log"))?;
        let brokers = broker.bootstrap();
        kafka::prepare_topic(&brokers, "ticks", args.partitions)?;
        let opts = FeedOptions {
            brokers: brokers.clone(),
            topic: "ticks".into(),
            seed: 7,
            symbols: dataflows::sim::generated_symbols(args.symbols),
            correlation: MARKET_CORRELATION,
            seasonality: MARKET_SEASONALITY,
            trades_per_sec: 10.0,
            max_ticks: Some(args.ticks),
            max_speed: true,
            start_ms: Some(START),
            history_ms: 0,
            history_trades_per_sec: 10.0,
            producer,
        };

        // The simulator and encoding alone, and the bytes they make.
        let t0 = Instant::now();
        let bytes: usize = Simulator::new(opts.sim_config(START))
            .take(args.ticks as usize)
            .map(|t| t.to_json().len())
            .sum();
        let sim_seconds = t0.elapsed().as_secs_f64();

        let summary = run_sim_feed(&opts, &Stop::new())?;
        anyhow::ensure!(summary.failed == 0, "{} ticks failed", summary.failed);
        let on_topic = kafka::topic_size(&brokers, "ticks", Duration::from_secs(120))?;
        anyhow::ensure!(
            on_topic == args.ticks,
            "{on_topic} records on the topic, {} sent",
            args.ticks
        );
        println!(
            "{}",
            serde_json::json!({
                "bench": "producer",
                "broker": "tansu memory://",
                "ticks": summary.delivered,
                "on_topic": on_topic,
                "seconds": (summary.seconds * 1000.0).round() / 1000.0,
                "ticks_per_sec": (summary.delivered as f64 / summary.seconds).round(),
                "bytes": bytes,
                "mb_per_sec": (bytes as f64 / 1e6 / summary.seconds * 10.0).round() / 10.0,
                "sim_ticks_per_sec": (args.ticks as f64 / sim_seconds).round(),
                "settings": {
                    "producer": producer,
                    "partitions": args.partitions,
                    "symbols": args.symbols,
                },
            })
        );
        drop(broker);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
