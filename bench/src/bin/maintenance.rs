//! Warehouse maintenance: what 1,000 small streaming commits cost and what
//! compaction gives back. The real warehouse writes the real pipeline's
//! output (a seeded five-symbol market, 1 s bars, every model and horizon)
//! in 2-second event-time epochs — the live commit interval — after a
//! three-minute warm-up, into a fresh directory, with automatic checkpoints
//! every 100 versions (or each `--checkpoint-every` setting given; without
//! checkpoints commits slow down linearly, so compare with fewer
//! `--commits`). Reported: the latency of an epoch commit (all tables) over
//! the first and the last 100 commits; the time to open every table and
//! decode all its rows with the parquet reader, with file counts; then the
//! same read after `compact` and the compaction's own time. Prints one JSON
//! object.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use cryptoflow::warehouse::compact::{compact, CompactOptions};
use cryptoflow::warehouse::read::scan;
use cryptoflow::warehouse::{catalog, Warehouse};
use dataflows::harness::simulated_deliveries;
use dataflows::Delivery;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// Epoch commits per run.
    #[arg(long, default_value_t = 1_000)]
    commits: usize,
    /// Event time per epoch, ms.
    #[arg(long, default_value_t = 2_000)]
    epoch_ms: u64,
    /// Checkpoint settings to compare, comma separated (0: none).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    checkpoint_every: Vec<u64>,
    /// Full reads per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    reads: usize,
}

/// 2026-11-24 00:00 UTC: every epoch lands in one date partition.
const START: u64 = 1_795_478_400_000;
const SEED: u64 = 11;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// p50, p99 and mean of commit latencies (ms).
fn latency(samples: &[f64]) -> Value {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    json!({
        "p50_ms": round(at(0.5)),
        "p99_ms": round(at(0.99)),
        "mean_ms": round(s.iter().sum::<f64>() / s.len() as f64),
    })
}

/// Opens and decodes every table `reads` times; the median time, with files and rows.
async fn read_all(root: &Path, reads: usize) -> anyhow::Result<Value> {
    let mut times = Vec::new();
    let (mut files, mut rows, mut bytes) = (0, 0, 0);
    for _ in 0..reads.max(1) {
        let t = Instant::now();
        (files, rows, bytes) = (0, 0, 0);
        for name in catalog::names() {
            let s = scan(root, name).await?;
            files += s.files;
            rows += s.rows;
            bytes += s.bytes;
        }
        times.push(ms(t));
    }
    times.sort_by(f64::total_cmp);
    Ok(json!({
        "open_and_read_ms": round(times[times.len() / 2]),
        "files": files,
        "rows": rows,
        "bytes": bytes,
        "log_entries": log_entries(root),
    }))
}

/// Files under the tables' `_delta_log` directories.
fn log_entries(root: &Path) -> usize {
    catalog::names()
        .iter()
        .filter_map(|t| std::fs::read_dir(root.join(t).join("_delta_log")).ok())
        .map(|d| d.count())
        .sum()
}

/// Event time before the first measured epoch: predictions start after 121
/// bars and scores 15 bars later, so every measured epoch writes every table
/// that a steady pipeline writes and the first and last 100 commits compare.
const WARM_UP_MS: u64 = 180_000;

/// The pipeline's output after the warm-up, grouped into `commits` event-time epochs.
fn epochs(args: &Args) -> anyhow::Result<Vec<Vec<Delivery>>> {
    let span = WARM_UP_MS + args.commits as u64 * args.epoch_ms;
    let deliveries = simulated_deliveries(SEED, START, span, 10.0).map_err(anyhow::Error::msg)?;
    let first = START + WARM_UP_MS;
    let mut out: Vec<Vec<Delivery>> = Vec::new();
    for d in deliveries.into_iter().filter(|d| d.time > first) {
        let bucket = ((d.time - first - 1) / args.epoch_ms) as usize;
        if bucket >= args.commits {
            break;
        }
        out.resize_with(bucket + 1, Vec::new);
        out[bucket].push(d);
    }
    out.retain(|e| !e.is_empty());
    Ok(out)
}

async fn run(
    args: &Args,
    epochs: &[Vec<Delivery>],
    every: u64,
    dir: PathBuf,
) -> anyhow::Result<Value> {
    let mut wh = Warehouse::open(&dir).await?.with_checkpoint_every(every);
    let mut latencies = Vec::with_capacity(epochs.len());
    let mut rows = 0;
    let t = Instant::now();
    for e in epochs {
        let c = Instant::now();
        rows += wh.commit(e).await?;
        latencies.push(ms(c));
    }
    let total_s = t.elapsed().as_secs_f64();
    let n = latencies.len().min(100);
    let before = read_all(&dir, args.reads).await?;
    let c = Instant::now();
    let reports = compact(&dir, &[], &CompactOptions::default()).await?;
    let compact_ms = ms(c);
    let after = read_all(&dir, args.reads).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "checkpoint_every": every,
        "commits": latencies.len(),
        "rows_written": rows,
        "commit_seconds": round(total_s),
        "commit_first_100": latency(&latencies[..n]),
        "commit_last_100": latency(&latencies[latencies.len() - n..]),
        "read_before_compaction": before,
        "compaction_ms": round(compact_ms),
        "partitions_compacted": reports.iter().map(|r| r.partitions).sum::<usize>(),
        "read_after_compaction": after,
    }))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.commits > 0, "--commits must be positive");
    anyhow::ensure!(args.epoch_ms > 0, "--epoch-ms must be positive");
    let epochs = epochs(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    for &every in &args.checkpoint_every {
        let dir = std::env::temp_dir().join(format!(
            "cryptoflow-bench-maintenance-{}-{every}",
            std::process::id()
        ));
        runs.push(rt.block_on(run(&args, &epochs, every, dir))?);
    }
    println!(
        "{}",
        json!({
            "bench": "maintenance",
            "symbols": 5,
            "bar_ms": 1_000,
            "epoch_ms": args.epoch_ms,
            "runs": runs,
        })
    );
    Ok(())
}
