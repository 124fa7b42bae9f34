//! Live latency, end to end: from a bar's end to its prediction being
//! readable over HTTP, with a live feed through Kafka (issue 16).
//!
//! A local tansu broker; the real `cryptoflow run` (live: no
//! `--until-end`, HTTP on a free loopback port, its own warehouse, commits
//! and jobs as a user runs it); the simulated market produced into the
//! topic paced to the wall clock (event time = now, `--symbols` symbols at
//! `--trades-per-sec` each), after three minutes of history produced at
//! once so the models are past their warm-up; one SSE client on
//! `/api/stream`. The live view
//! publishes a `best` insert when a bar's new best prediction for a
//! (symbol, horizon) is applied, after which `/api/predictions` returns it,
//! so the event's arrival is when the prediction became readable (an upper
//! bound: the SSE hop is included).
//!
//! The bar ending at `t` can close once every partition's watermark (its
//! newest event time less `--lateness-ms`) has passed `t`. Two latencies
//! per (symbol, bar), to the first `best` insert of the bar:
//! - `end_to_end`: from wall time `t + lateness`, the earliest its
//!   frontier can pass. It includes the feed's own gaps (the wait for the
//!   next tick on each partition), the producer's batching (linger 5 ms),
//!   the broker and the consumer, then the dataflow, the router and the
//!   server.
//! - `from_frontier`: from when the frontier passed as an independent
//!   consumer (the run's reader, its settings, all partitions) saw it: the
//!   latest, over the partitions, of the first arrival of a tick at or
//!   after `t + lateness`. What is left is the dataflow, the router and the
//!   server (and the difference between two consumers' fetches).
//!
//! `kafka_hop` is that consumer's arrival less each tick's event time
//! (produced when its time came). Bars and ticks in the first
//! `--warmup-s` seconds are left out (connecting, the first models).
//! Prints p50/p90/p99/max of each.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use cryptoflow::broker::{free_port, Broker};
use cryptoflow::feed::{run_sim_feed, FeedOptions};
use cryptoflow::kafka::{self, ProducerOptions};
use cryptoflow::shutdown::Stop;
use dataflows::sim::{MARKET_CORRELATION, MARKET_SEASONALITY};

#[derive(Parser)]
struct Args {
    /// Seconds measured after the warm-up.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Seconds of feed before bars count.
    #[arg(long, default_value_t = 30)]
    warmup_s: u64,
    /// Simulated symbols.
    #[arg(long, default_value_t = 20)]
    symbols: usize,
    /// Mean trades per second per symbol.
    #[arg(long, default_value_t = 20.0)]
    trades_per_sec: f64,
    /// Topic partitions.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Workers of the run.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// The run's allowed lateness, ms.
    #[arg(long, default_value_t = dataflows::source::DEFAULT_LATENESS_MS)]
    lateness_ms: u64,
    /// The `cryptoflow` binary to measure (default: the one built next to
    /// this bench).
    #[arg(long)]
    cryptoflow: Option<PathBuf>,
}

/// Wall clock, epoch ms with a fraction.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// p50/p90/p99/max/min of `v` (ms), rounded to µs.
fn stats(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        (v[i] * 1000.0).round() / 1000.0
    };
    serde_json::json!({
        "samples": v.len(), "p50_ms": pct(0.5), "p90_ms": pct(0.9),
        "p99_ms": pct(0.99), "max_ms": pct(1.0), "min_ms": pct(0.0),
    })
}

/// Per partition, (event time, arrival) of every tick read, in offset
/// order.
type Arrivals = std::collections::BTreeMap<i32, Vec<(u64, f64)>>;

/// Reads every partition of `topic` as the run's reader does until `stop`,
/// noting when each tick arrives.
fn read_ticks(brokers: &str, topic: &str, parts: i32, stop: &Stop) -> anyhow::Result<Arrivals> {
    use dataflows::source::{RecordReader, SourceEvent};
    let mut reader = cryptoflow::kafka::KafkaReader::new(
        brokers,
        topic,
        parts,
        0,
        1,
        cryptoflow::kafka::StartFrom::Earliest,
        false,
    )?;
    let limits = dataflows::tick::ValidationLimits {
        now_ms: u64::MAX / 2,
        max_future_ms: 0,
    };
    let mut seen = Arrivals::new();
    let mut events = Vec::with_capacity(4096);
    while !stop.is_set() {
        events.clear();
        reader.poll(4096, &mut events).map_err(anyhow::Error::msg)?;
        let at = now_ms();
        if events.is_empty() {
            std::thread::sleep(Duration::from_micros(200));
        }
        for e in &events {
            if let SourceEvent::Record(r) = e {
                let tick = dataflows::tick::decode(&r.payload, r.pos, limits)
                    .map_err(|e| anyhow::anyhow!("the feed produced a reject: {e:?}"))?;
                seen.entry(r.pos.partition)
                    .or_default()
                    .push((tick.ts_ms, at));
            }
        }
    }
    Ok(seen)
}

/// When a consumer saw the frontier pass `t`: the latest, over the
/// partitions, of the first arrival of a tick at or after `t` (None if a
/// partition has none).
fn frontier_passed(arrivals: &Arrivals, t: u64) -> Option<f64> {
    let mut latest: f64 = 0.0;
    for ticks in arrivals.values() {
        let first = ticks.iter().find(|(ts, _)| *ts >= t)?;
        latest = latest.max(first.1);
    }
    Some(latest)
}

/// Reads `best` inserts from the SSE stream at `addr` until the stream
/// ends: (symbol, bar close ms) → first arrival, wall epoch ms.
fn read_best(addr: &str, seen: Arc<Mutex<Vec<(String, u64, f64)>>>) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "GET /api/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    let mut reader = BufReader::new(s);
    let (mut line, mut kind) = (String::new(), String::new());
    while reader.read_line(&mut line)? > 0 {
        let at = now_ms();
        let l = line.trim_end();
        if let Some(k) = l.strip_prefix("event: ") {
            kind = k.to_string();
        } else if let Some(d) = l.strip_prefix("data: ") {
            if kind == "best" {
                let v: serde_json::Value = serde_json::from_str(d)?;
                if v["op"] == "insert" {
                    let symbol = v["symbol"].as_str().context("best without symbol")?;
                    let made = v["made_at_ms"]
                        .as_u64()
                        .context("best without made_at_ms")?;
                    seen.lock()
                        .expect("no panic holds it")
                        .push((symbol.to_string(), made, at));
                }
            }
        }
        line.clear();
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.cryptoflow {
        Some(p) => p.clone(),
        None => cryptoflow_bench::cryptoflow_bin()?,
    };
    let dir = std::env::temp_dir().join(format!("cryptoflow-bench-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let broker = Broker::start(&dir.join("broker.log"))?;
    let brokers = broker.bootstrap();
    let topic = "latency";
    kafka::prepare_topic(&brokers, topic, args.partitions)?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let log = std::fs::File::create(dir.join("run.log"))?;
    let mut run = Command::new(&bin)
        .arg("run")
        .args(["--brokers", &brokers, "--topic", topic])
        .args(["--workers", &args.workers.to_string()])
        .args(["--lateness-ms", &args.lateness_ms.to_string()])
        .args(["--http", &addr, "--api-rate-limit", "0"])
        .arg("--data-dir")
        .arg(dir.join("warehouse"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let ready = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        if ready.elapsed() > Duration::from_secs(60) || run.try_wait()?.is_some() {
            bail!(
                "the run did not serve HTTP on {addr} (see {})",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen: Arc<Mutex<Vec<(String, u64, f64)>>> = Arc::default();
    let sse = {
        let (addr, seen) = (addr.clone(), seen.clone());
        std::thread::spawn(move || read_best(&addr, seen))
    };
    let stop = Stop::new();
    let consumer = {
        let (brokers, stop, parts) = (brokers.clone(), stop.clone(), args.partitions);
        std::thread::spawn(move || read_ticks(&brokers, topic, parts, &stop))
    };
    let feed_start = cryptoflow::now_ms();
    let feed = {
        let opts = FeedOptions {
            brokers: brokers.clone(),
            topic: topic.to_string(),
            seed: 7,
            symbols: (0..args.symbols).map(|i| format!("L{i:03}-USD")).collect(),
            correlation: MARKET_CORRELATION,
            seasonality: MARKET_SEASONALITY,
            trades_per_sec: args.trades_per_sec,
            max_ticks: None,
            max_speed: false,
            start_ms: Some(feed_start),
            // The features' warm-up, before the live part.
            history_ms: (dataflows::features::WARMUP_BARS + 60) * dataflows::bars::DEFAULT_BAR_MS,
            history_trades_per_sec: args.trades_per_sec,
            producer: ProducerOptions::default(),
        };
        let stop = stop.clone();
        std::thread::spawn(move || run_sim_feed(&opts, &stop))
    };
    std::thread::sleep(Duration::from_secs(args.warmup_s + args.seconds));
    stop.trigger();
    let fed = feed
        .join()
        .map_err(|_| anyhow::anyhow!("the feed panicked"))??;
    // Bars that closed by now have had their time to show.
    std::thread::sleep(Duration::from_millis(args.lateness_ms + 2_000));
    let arrivals = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer panicked"))??;
    let exited = run.try_wait()?;
    let _ = run.kill();
    let _ = run.wait();
    if let Some(status) = exited {
        bail!("the run exited early ({status}); see {}", dir.display());
    }
    drop(sse);
    let counted_from = feed_start + args.warmup_s * 1000;
    let counted_until = feed_start + (args.warmup_s + args.seconds) * 1000;
    let mut first: std::collections::BTreeMap<(String, u64), f64> = Default::default();
    for (symbol, made, at) in seen.lock().expect("no panic holds it").iter() {
        if (counted_from..counted_until).contains(made) {
            let e = first.entry((symbol.clone(), *made)).or_insert(*at);
            *e = e.min(*at);
        }
    }
    if first.is_empty() {
        bail!("no best prediction was seen (see {})", dir.display());
    }
    let end_to_end: Vec<f64> = first
        .iter()
        .map(|((_, made), at)| at - (*made + args.lateness_ms) as f64)
        .collect();
    let from_frontier: Vec<f64> = first
        .iter()
        .filter_map(|((_, made), at)| {
            frontier_passed(&arrivals, made + args.lateness_ms).map(|f| at - f)
        })
        .collect();
    let hop: Vec<f64> = arrivals
        .values()
        .flatten()
        .filter(|(ts, _)| (counted_from..counted_until).contains(ts))
        .map(|(ts, at)| at - *ts as f64)
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "bench": "latency",
            "to": "the bar's first best insert on /api/stream",
            "symbols": args.symbols,
            "trades_per_sec_per_symbol": args.trades_per_sec,
            "ticks_fed": fed.delivered,
            "partitions": args.partitions,
            "workers": args.workers,
            "lateness_ms": args.lateness_ms,
            "seconds": args.seconds,
            "end_to_end": stats(end_to_end),
            "from_frontier": stats(from_frontier),
            "kafka_hop": stats(hop),
        })
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
