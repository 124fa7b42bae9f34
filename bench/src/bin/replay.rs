//! A backtest's pace and memory: the real `cryptoflow run --until-end`
//! (Kafka in, the full default model zoo, every table written to Delta)
//! over growing prefixes of one JSONL tick file, e.g. the peers' harness
//! file (`../shared/peers/gen_ticks.py`). Prints one JSON line per prefix:
//! ticks, wall seconds, ticks/s and peak resident memory.
//!
//! Each prefix is loaded into its own topic of a local tansu broker with
//! `cryptoflow replay` (not timed), then read by one `cryptoflow run` into a
//! fresh warehouse. Peak memory is the run process's `VmHWM`, sampled every
//! 20 ms until it exits (so at most 20 ms of its life is unseen). Both are
//! the release binary next to this one: `cargo build --release` first.
//!
//! What it shows: with flow control (the source paced by the export, a
//! bounded router queue) peak memory should stop growing with the length
//! of the replay once the per-symbol windows of the live view are full.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use cryptoflow::broker::Broker;

#[derive(Parser)]
struct Args {
    /// JSONL ticks (the README's wire format), at least as many lines as
    /// the largest prefix.
    #[arg(long)]
    input: PathBuf,
    /// Prefix lengths to replay, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "250000,1000000")]
    ticks: Vec<usize>,
    /// Worker threads of the run.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
}

/// The first `n` lines of `input` into `out`.
fn write_prefix(input: &Path, n: usize, out: &Path) -> anyhow::Result<()> {
    let reader = BufReader::new(std::fs::File::open(input).context("reading --input")?);
    let mut writer = BufWriter::new(std::fs::File::create(out)?);
    let mut lines = 0;
    for line in reader.lines().take(n) {
        writeln!(writer, "{}", line?)?;
        lines += 1;
    }
    writer.flush()?;
    if lines < n {
        bail!("{} has {lines} lines, fewer than {n}", input.display());
    }
    Ok(())
}

/// Peak resident memory of a live process, MiB (None once it is gone).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = cryptoflow_bench::cryptoflow_bin()?;
    let dir = std::env::temp_dir().join(format!("cryptoflow-bench-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let broker = Broker::start(&dir.join("broker.log"))?;
    let brokers = broker.bootstrap();
    for &n in &args.ticks {
        let file = dir.join(format!("ticks-{n}.jsonl"));
        write_prefix(&args.input, n, &file)?;
        let topic = format!("replay-{n}");
        let loaded = Command::new(&bin)
            .args(["replay", "--brokers", &brokers, "--topic", &topic])
            .args(["--partitions", &args.partitions.to_string()])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !loaded.success() {
            bail!("loading {n} ticks failed ({loaded})");
        }
        std::fs::remove_file(&file)?;
        let warehouse = dir.join(format!("warehouse-{n}"));
        let start = Instant::now();
        let mut run = Command::new(&bin)
            .args(["run", "--brokers", &brokers, "--topic", &topic])
            .args(["--workers", &args.workers.to_string()])
            .args(["--until-end", "--no-http", "--data-dir"])
            .arg(&warehouse)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut peak = 0.0f64;
        let status = loop {
            if let Some(mb) = peak_rss_mb(run.id()) {
                peak = peak.max(mb);
            }
            if let Some(status) = run.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let seconds = start.elapsed().as_secs_f64();
        if !status.success() {
            bail!("run over {n} ticks failed ({status})");
        }
        std::fs::remove_dir_all(&warehouse)?;
        println!(
            "{}",
            serde_json::json!({
                "bench": "replay",
                "input": args.input.display().to_string(),
                "ticks": n,
                "workers": args.workers,
                "seconds": (seconds * 1e3).round() / 1e3,
                "ticks_per_sec": (n as f64 / seconds).round(),
                "rss_peak_mb": peak.round(),
            })
        );
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
