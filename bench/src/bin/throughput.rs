//! End-to-end dataflow throughput: ticks/s through decode, validation, bars,
//! features, models, scoring and champion selection, for three sources —
//! records in memory, a JSONL file of ticks (the README's wire format, so
//! other systems can be run on the same file), and a pre-loaded Kafka topic
//! on a local broker — on 1 and 2 workers. Prints one JSON line per run.
//!
//! Timing covers the dataflow run only (input generation, file writing and
//! topic loading are excluded and reported separately where relevant).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use cryptoflow::broker::Broker;
use cryptoflow::files::JsonlReader;
use cryptoflow::kafka::{self, KafkaReader, StartFrom, TickProducer};
use dataflows::harness::{run_collect, run_in_memory};
use dataflows::sim::{SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig};
use dataflows::{Delivery, Output, PipelineConfig};

#[derive(Parser)]
struct Args {
    /// Ticks per run.
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
}

const START: u64 = 1_700_000_000_000;

fn config() -> PipelineConfig {
    // Historical event times: the idle-advance and future checks must not interfere.
    PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(|| u64::MAX / 2)),
        ..PipelineConfig::default()
    }
}

fn payloads(n: u64) -> Vec<(String, Vec<u8>)> {
    let mut cfg = SimConfig::default_market(7, START);
    cfg.trades_per_sec = 50.0;
    Simulator::new(cfg)
        .take(n as usize)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()))
        .collect()
}

fn summary(d: &[Delivery]) -> (u64, u64) {
    let mut bars = 0;
    let mut preds = 0;
    for o in d.iter().flat_map(|d| d.inserted()) {
        match o {
            Output::Bar(_) => bars += 1,
            Output::Prediction(_) => preds += 1,
            _ => {}
        }
    }
    (bars, preds)
}

fn report(
    source: &str,
    workers: usize,
    ticks: u64,
    secs: f64,
    d: &[Delivery],
    extra: serde_json::Value,
) {
    let (bars, predictions) = summary(d);
    let mut line = serde_json::json!({
        "bench": "throughput",
        "source": source,
        "workers": workers,
        "ticks": ticks,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "ticks_per_sec": (ticks as f64 / secs).round(),
        "bars": bars,
        "predictions": predictions,
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    println!("{line}");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = payloads(args.ticks);
    let parts = args.partitions;

    if args.sources.iter().any(|s| s == "memory") {
        let records = Arc::new(partition_records(data.clone(), parts));
        for &w in &args.workers {
            let t = Instant::now();
            let d =
                run_in_memory(records.clone(), parts, w, config()).map_err(anyhow::Error::msg)?;
            report(
                "memory",
                w,
                args.ticks,
                t.elapsed().as_secs_f64(),
                &d,
                serde_json::json!({}),
            );
        }
    }

    if args.sources.iter().any(|s| s == "jsonl") {
        let path = args.jsonl.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("cryptoflow-bench-{}.jsonl", std::process::id()))
        });
        {
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
            let d = run_collect(
                w,
                move |i, n| JsonlReader::open(&p, parts, i, n).map_err(|e| e.to_string()),
                config(),
            )
            .map_err(anyhow::Error::msg)?;
            report(
                "jsonl",
                w,
                args.ticks,
                t.elapsed().as_secs_f64(),
                &d,
                serde_json::json!({"file": path.display().to_string()}),
            );
        }
        if args.jsonl.is_none() {
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
            let b = brokers.clone();
            let t = Instant::now();
            let d = run_collect(
                w,
                move |i, n| {
                    KafkaReader::new(&b, topic, parts, i, n, StartFrom::Earliest, true)
                        .map_err(|e| e.to_string())
                },
                config(),
            )
            .map_err(anyhow::Error::msg)?;
            report(
                "kafka",
                w,
                args.ticks,
                t.elapsed().as_secs_f64(),
                &d,
                serde_json::json!({"broker": "tansu memory://", "load_ticks_per_sec": (args.ticks as f64 / load_secs).round()}),
            );
        }
        drop(broker);
        let _ = std::fs::remove_file(&log);
    }
    Ok(())
}
