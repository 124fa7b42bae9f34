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
//!
//! The Kafka ceiling, in the same run on the same broker and topic: before
//! each `run`, this process reads the topic as bare consumers would, one
//! thread per worker with the run's own partition assignment and reader
//! (`KafkaReader`, which copies each payload out of librdkafka as the
//! run's does), and only parses and validates each record (as the source;
//! [`cryptoflow_bench::consumer_ceiling`], shared with the throughput
//! bench). It prints a `"bench": "consumer"` line, and the run's line
//! carries `of_ceiling`, its ticks/s over the consumer's. The consumer's
//! figure has no process start, warehouse opening or final commit in it;
//! the run's has all three, as a user's backtest does.
//!
//! Layouts: `--layouts 1x2,2x1` runs each prefix once per layout, P
//! processes of W workers each; P > 1 goes through `cryptoflow cluster`
//! (the launcher a user runs, on loopback ports), which starts P `run`
//! processes; the launcher gives every process but the first `--no-http`
//! itself, so the first serves HTTP on a free loopback port (a single
//! process runs with `--no-http`; serving costs nothing measurable when
//! nobody asks, see the README's dashboard throughput). A cluster's
//! peak memory is the sum of each process's own peak (launcher
//! included), an upper bound on what they held at once.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use cryptoflow::broker::{free_port, Broker};

#[derive(Parser)]
struct Args {
    /// JSONL ticks (the README's wire format), at least as many lines as
    /// the largest prefix.
    #[arg(long)]
    input: PathBuf,
    /// Prefix lengths to replay, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "250000,1000000")]
    ticks: Vec<usize>,
    /// Layouts to run, comma separated: PxW is P processes of W workers
    /// (1x2: one process, two workers; 2x1: a two-process cluster).
    #[arg(long, value_delimiter = ',', default_value = "1x2", value_parser = layout)]
    layouts: Vec<(usize, usize)>,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
}

/// "PxW" as (processes, workers per process).
fn layout(s: &str) -> Result<(usize, usize), String> {
    let parse = |v: Option<&str>| v.and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
    let mut parts = s.split('x');
    match (parse(parts.next()), parse(parts.next()), parts.next()) {
        (Some(p), Some(w), None) => Ok((p, w)),
        _ => Err(format!("{s:?} is not PxW (e.g. 1x2 or 2x1)")),
    }
}

/// A loopback port with the next one free too, nothing listening on either
/// right now (a cluster's timely ports are base, base + 1, …).
fn free_ports(count: u16) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let base = free_port()?;
        if base < 65_000
            && (1..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return Ok(base);
        }
    }
    bail!("no {count} consecutive free loopback ports")
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
    cryptoflow_bench::status_mb(&pid.to_string(), "VmHWM:")
}

/// Samples the peak resident memory of `pid` and its live descendants
/// into `peaks` (by pid, so a process's peak counts once however often it
/// is seen).
fn sample_tree(pid: u32, peaks: &mut std::collections::BTreeMap<u32, f64>) {
    if let Some(mb) = peak_rss_mb(pid) {
        let peak = peaks.entry(pid).or_insert(0.0);
        *peak = peak.max(mb);
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    for child in children.unwrap_or_default().split_whitespace() {
        if let Ok(child) = child.parse() {
            sample_tree(child, peaks);
        }
    }
}

/// One layout over one loaded prefix: the bare consumers' ceiling, then
/// the run, each printed as a JSON line.
#[allow(clippy::too_many_arguments)]
fn replay_once(
    args: &Args,
    bin: &Path,
    brokers: &str,
    dir: &Path,
    topic: &str,
    n: usize,
    processes: usize,
    workers: usize,
) -> anyhow::Result<()> {
    let total = processes * workers;
    let (records, rejects, secs) =
        cryptoflow_bench::consumer_ceiling(brokers, topic, args.partitions, total)?;
    if records != n as u64 {
        bail!("the consumers read {records} of {n} records");
    }
    let ceiling = n as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "bench": "consumer",
            "input": args.input.display().to_string(),
            "ticks": n,
            "accepted": records - rejects,
            "workers": total,
            "seconds": (secs * 1e3).round() / 1e3,
            "ticks_per_sec": ceiling.round(),
        })
    );
    let warehouse = dir.join(format!("warehouse-{n}-{processes}x{workers}"));
    let mut cmd = Command::new(bin);
    if processes == 1 {
        cmd.arg("run")
            .args(["--workers", &workers.to_string()])
            .arg("--no-http");
    } else {
        cmd.args(["cluster", "--processes", &processes.to_string()])
            .args(["--workers", &workers.to_string()])
            .args(["--base-port", &free_ports(processes as u16)?.to_string()])
            .args([
                "--health-base-port",
                &free_ports(processes as u16)?.to_string(),
            ])
            .arg("--")
            .args(["--http", &format!("127.0.0.1:{}", free_port()?)]);
    }
    cmd.args(["--brokers", brokers, "--topic", topic])
        .args(["--until-end", "--data-dir"])
        .arg(&warehouse);
    let start = Instant::now();
    let mut run = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let mut peaks = std::collections::BTreeMap::new();
    let status = loop {
        sample_tree(run.id(), &mut peaks);
        if let Some(status) = run.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("run over {n} ticks as {processes}x{workers} failed ({status})");
    }
    std::fs::remove_dir_all(&warehouse)?;
    println!(
        "{}",
        serde_json::json!({
            "bench": "replay",
            "input": args.input.display().to_string(),
            "ticks": n,
            "processes": processes,
            "workers": workers,
            "seconds": (seconds * 1e3).round() / 1e3,
            "ticks_per_sec": (n as f64 / seconds).round(),
            "of_ceiling": ((n as f64 / seconds) / ceiling * 1e3).round() / 1e3,
            "rss_peak_mb": peaks.values().sum::<f64>().round(),
        })
    );
    Ok(())
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
        for &(processes, workers) in &args.layouts {
            replay_once(&args, &bin, &brokers, &dir, &topic, n, processes, workers)?;
        }
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
