//! End-to-end dataflow throughput: ticks/s through decode, validation, bars,
//! features, models, scoring and champion selection, for three sources —
//! records in memory, a JSONL file of ticks (the README's wire format, so
//! other systems can be run on the same file), and a pre-loaded Kafka topic
//! on a local broker — on 1 and 2 workers. Prints one JSON line per run.
//!
//! The ticks are simulated (`--symbols`, `--rate` per symbol) or read from
//! `--input` (any JSONL tick file, e.g. the peers' harness file). The
//! computation is chosen with `--models` and `--horizons` (the peers'
//! workload is `--models rls --horizons 1`: an online linear model and
//! persistence) and `--stages bars` (the tick path alone: source,
//! validation, bars, export). Outputs are counted, not kept.
//!
//! Timing covers the dataflow run only (input generation, file writing and
//! topic loading are excluded and reported separately where relevant).
//!
//! With the Kafka source, each worker count first measures the bare
//! consumer ceiling (`"stages": "consumer"`): as many threads as workers,
//! each the same `KafkaReader` over the same partitions, decoding every
//! record into a tick and nothing else. The pipeline's line then carries
//! `of_consumer_ceiling`, its rate over that ceiling.
//! `rss_peak_mb` is this process's peak so far (VmHWM), so it includes the
//! input held in memory and every earlier run of the same invocation.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use cryptoflow::broker::Broker;
use cryptoflow::files::JsonlReader;
use cryptoflow::kafka::{self, KafkaReader, StartFrom, TickProducer};
use dataflows::harness::{run_tally, Stages, Tally};
use dataflows::models::ModelParams;
use dataflows::predict::PredictConfig;
use dataflows::sim::{generated_symbols, SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig, VecReader};
use dataflows::PipelineConfig;

#[derive(Parser)]
struct Args {
    /// Ticks per run (simulated input; with --input: at most this many lines, 0 = all).
    #[arg(long, default_value_t = 1_000_000)]
    ticks: u64,
    /// Worker counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Sources to run, comma separated (memory, jsonl, kafka).
    #[arg(long, value_delimiter = ',', default_value = "memory,jsonl,kafka")]
    sources: Vec<String>,
    /// Partitions (virtual for memory/jsonl, real for kafka).
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Where to write the JSONL file (default: a temp file, removed after).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Read the ticks from this JSONL file instead of simulating them.
    #[arg(long, conflicts_with = "jsonl")]
    input: Option<PathBuf>,
    /// Simulated symbols.
    #[arg(long, default_value_t = 5)]
    symbols: usize,
    /// Simulated trades per symbol per second of event time.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Online models to run besides persistence (default: all of them).
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    /// Horizons in bars.
    #[arg(long, value_delimiter = ',', default_values_t = dataflows::predict::DEFAULT_HORIZONS)]
    horizons: Vec<u32>,
    /// `all` (the whole pipeline) or `bars` (source, validation, bars only).
    #[arg(long, default_value = "all")]
    stages: String,
    /// A label copied into every JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Take a state snapshot every this many ms of event time (issue 14;
    /// default: none). The JSON line then counts them, their bytes and the
    /// longest stall one caused.
    #[arg(long)]
    snapshot_every_ms: Option<u64>,
}

const START: u64 = 1_700_000_000_000;

fn config(
    models: &[&'static str],
    horizons: &[u32],
    snapshot_every_ms: Option<u64>,
) -> PipelineConfig {
    // Historical event times: the idle-advance and future checks must not interfere.
    PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(|| u64::MAX / 2)),
        predict: PredictConfig {
            models: models.to_vec(),
            horizons: horizons.to_vec(),
            ..PredictConfig::default()
        },
        snapshot: dataflows::SnapshotConfig {
            every_ms: snapshot_every_ms,
            ..dataflows::SnapshotConfig::default()
        },
        ..PipelineConfig::default()
    }
}

/// (partition key, payload) per tick: simulated, or the lines of `input`
/// keyed by their `symbol` (lines without one keep an empty key).
fn payloads(args: &Args) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    if let Some(path) = &args.input {
        let text = std::fs::read(path).with_context(|| format!("--input {}", path.display()))?;
        let take = if args.ticks == 0 {
            usize::MAX
        } else {
            args.ticks as usize
        };
        return Ok(text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .take(take)
            .map(|l| {
                let key = serde_json::from_slice::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("symbol")?.as_str().map(str::to_string))
                    .unwrap_or_default();
                (key, l.to_vec())
            })
            .collect());
    }
    let mut cfg =
        SimConfig::default_market(7, START).with_symbols(&generated_symbols(args.symbols));
    cfg.trades_per_sec = args.rate;
    Ok(Simulator::new(cfg)
        .take(args.ticks as usize)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()))
        .collect())
}

/// This process's peak resident memory so far (VmHWM), in MB; None off Linux.
fn rss_peak_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// A memory line of /proc/self/status, in MB; None off Linux.
fn status_mb(key: &str) -> Option<f64> {
    cryptoflow_bench::status_mb("self", key).map(f64::round)
}

struct Run<'a> {
    args: &'a Args,
    ticks: u64,
    symbols: usize,
    models: Vec<&'static str>,
    stages: Stages,
    /// Resident memory with the input loaded, before any run.
    rss_loaded_mb: Option<f64>,
}

impl Run<'_> {
    fn report(&self, source: &str, workers: usize, secs: f64, t: &Tally, extra: serde_json::Value) {
        let mut line = serde_json::json!({
            "bench": "throughput",
            "label": self.args.label,
            "source": source,
            "stages": self.args.stages,
            "workers": workers,
            "symbols": self.symbols,
            "models": self.models,
            "horizons": self.args.horizons,
            "ticks": self.ticks,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "ticks_per_sec": (self.ticks as f64 / secs).round(),
            "ns_per_tick_per_worker": (secs * 1e9 * workers as f64 / self.ticks as f64).round(),
            "bars": t.bars,
            "predictions": t.predictions,
            "scores": t.scores,
            "rejects": t.rejects,
            "rss_peak_mb": rss_peak_mb(),
            "rss_loaded_mb": self.rss_loaded_mb,
        });
        if self.args.snapshot_every_ms.is_some() {
            line["snapshot_every_ms"] = self.args.snapshot_every_ms.into();
            line["snapshots"] = t.snapshots.into();
            line["snapshot_bytes_last"] = t.snapshot_bytes_last.into();
            line["snapshot_stall_max_ms"] = (t.snapshot_stall_max_ns as f64 / 1e6).into();
        }
        if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
            obj.extend(more);
        }
        println!("{line}");
    }

    fn config(&self) -> PipelineConfig {
        config(
            &self.models,
            &self.args.horizons,
            self.args.snapshot_every_ms,
        )
    }
}

/// The allocator the `cryptoflow` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = payloads(&args)?;
    let parts = args.partitions;
    let models = match &args.models {
        Some(m) => ModelParams::default()
            .select(m)
            .map_err(anyhow::Error::msg)?,
        None => ModelParams::default().names(),
    };
    let stages = match args.stages.as_str() {
        "all" => Stages::All,
        "bars" => Stages::Bars,
        other => bail!("--stages {other}: expected `all` or `bars`"),
    };
    let symbols = data
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    // The peak so far is the input's loading (the file and its lines at
    // once); "5" resets it (Linux >= 4.0), so `rss_peak_mb` is the runs'
    // peak, and the runs' own state is that minus `rss_loaded_mb`.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let run = Run {
        args: &args,
        ticks: data.len() as u64,
        symbols,
        models,
        stages,
        rss_loaded_mb: status_mb("VmRSS:"),
    };

    if args.sources.iter().any(|s| s == "memory") {
        let records = Arc::new(partition_records(data.clone(), parts));
        for &w in &args.workers {
            let t = Instant::now();
            let records = records.clone();
            let d = run_tally(
                w,
                move |i, n| Ok(VecReader::for_worker(&records, parts, i, n)),
                run.config(),
                run.stages,
            )
            .map_err(anyhow::Error::msg)?;
            run.report(
                "memory",
                w,
                t.elapsed().as_secs_f64(),
                &d,
                serde_json::json!({}),
            );
        }
    }

    if args.sources.iter().any(|s| s == "jsonl") {
        // --input with --ticks 0 is read in place; otherwise the ticks run are written out.
        let written = !(args.input.is_some() && args.ticks == 0);
        let path = match (&args.input, &args.jsonl) {
            (Some(input), _) if !written => input.clone(),
            (_, Some(out)) => out.clone(),
            _ => {
                std::env::temp_dir().join(format!("cryptoflow-bench-{}.jsonl", std::process::id()))
            }
        };
        if written {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
            for (_, p) in &data {
                f.write_all(p)?;
                f.write_all(b"\n")?;
            }
            f.flush()?;
        }
        for &w in &args.workers {
            let p = path.clone();
            let t = Instant::now();
            let d = run_tally(
                w,
                move |i, n| JsonlReader::open(&p, parts, i, n).map_err(|e| e.to_string()),
                run.config(),
                run.stages,
            )
            .map_err(anyhow::Error::msg)?;
            run.report(
                "jsonl",
                w,
                t.elapsed().as_secs_f64(),
                &d,
                serde_json::json!({"file": path.display().to_string()}),
            );
        }
        if written && args.jsonl.is_none() {
            let _ = std::fs::remove_file(&path);
        }
    }

    if args.sources.iter().any(|s| s == "kafka") {
        let log = std::env::temp_dir().join(format!(
            "cryptoflow-bench-broker-{}.log",
            std::process::id()
        ));
        let broker = Broker::start(&log)?;
        let brokers = broker.bootstrap();
        let topic = "bench-ticks";
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(kafka::ensure_topic(&brokers, topic, parts))?;
        let t = Instant::now();
        let producer = TickProducer::new(&brokers, topic)?;
        for (k, p) in &data {
            producer.send(k, p)?;
        }
        producer.flush(std::time::Duration::from_secs(120))?;
        let load_secs = t.elapsed().as_secs_f64();
        let failed = producer
            .stats()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed);
        anyhow::ensure!(failed == 0, "{failed} ticks failed to load");
        drop(producer);
        for &w in &args.workers {
            let ceiling = cryptoflow_bench::consumer_ceiling(&brokers, topic, parts, w)?;
            anyhow::ensure!(
                ceiling.0 == run.ticks,
                "the bare consumers read {} of {} records",
                ceiling.0,
                run.ticks
            );
            let ceiling_rate = run.ticks as f64 / ceiling.2;
            println!(
                "{}",
                serde_json::json!({
                    "bench": "throughput",
                    "label": args.label,
                    "source": "kafka",
                    "stages": "consumer",
                    "workers": w,
                    "symbols": run.symbols,
                    "ticks": run.ticks,
                    "rejects": ceiling.1,
                    "seconds": (ceiling.2 * 1000.0).round() / 1000.0,
                    "ticks_per_sec": ceiling_rate.round(),
                    "broker": "tansu memory://",
                })
            );
            let b = brokers.clone();
            let t = Instant::now();
            let d = run_tally(
                w,
                move |i, n| {
                    KafkaReader::new(&b, topic, parts, i, n, StartFrom::Earliest, true)
                        .map_err(|e| e.to_string())
                },
                run.config(),
                run.stages,
            )
            .map_err(anyhow::Error::msg)?;
            let secs = t.elapsed().as_secs_f64();
            run.report(
                "kafka",
                w,
                secs,
                &d,
                serde_json::json!({
                    "broker": "tansu memory://",
                    "load_ticks_per_sec": (run.ticks as f64 / load_secs).round(),
                    "of_consumer_ceiling": ((run.ticks as f64 / secs) / ceiling_rate * 1000.0).round() / 1000.0,
                }),
            );
        }
        drop(broker);
        let _ = std::fs::remove_file(&log);
    }
    Ok(())
}
