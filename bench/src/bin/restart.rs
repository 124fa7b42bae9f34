//! Restart time: how long a restarted `cryptoflow run` takes to serve
//! predictions again, from its newest snapshot and, for comparison, by
//! replaying the topic (`--from-snapshot none`), after growing lengths of
//! simulated history (10 min, 1 h and 6 h by default). Also the snapshot's
//! size per symbol, the longest stall taking it caused in the dataflow and
//! the time writing it to disk takes. Prints one JSON line per history
//! length.
//!
//! For each length, on a local tansu broker:
//! 1. a topic of simulated ticks (intraday seasonality off, so `minutes` ×
//!    60 × rate × symbols ticks span `minutes` of event time);
//! 2. one bounded `run --until-end` over it (not part of the restart
//!    figures): the warehouse and a snapshot every minute of event time;
//! 3. two restarts of the live `run` (HTTP on, no `--until-end`) on that
//!    warehouse, each timed from its spawn by polling `/api/predictions`
//!    every 10 ms:
//!    - `first_s`: the first answer with any prediction in it;
//!    - `settled_s`: when the newest served prediction (`made_at_ms`) last
//!      changed, once it has stayed the same for `--settle-ms`: the
//!      restarted run has caught up with the history.
//!
//!    The replay runs first, with snapshots off, so it leaves the state
//!    directory as the history run left it. Both restarts must settle on
//!    the same newest prediction, or the bench fails.
//!
//! `write_ms` rewrites the newest snapshot with `cryptoflow::state::write`
//! (temporary file, fsync, rename, directory fsync), as the router does,
//! into a scratch directory: the median of five. Needs the release binary
//! next to this one: `cargo build --release` first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use cryptoflow::broker::Broker;

#[derive(Parser)]
struct Args {
    /// History lengths in minutes of event time, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "10,60,360")]
    minutes: Vec<u64>,
    /// Symbols of the simulated market.
    #[arg(long, default_value_t = 5)]
    symbols: u32,
    /// Mean trades per second per symbol.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Worker threads of every run.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Partitions of each topic (at most `--symbols`: a partition without
    /// ticks holds a bounded run's cuts back until its end, so it would
    /// write no snapshot).
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// How long the newest served prediction must stay unchanged before a
    /// restart counts as caught up, ms.
    #[arg(long, default_value_t = 3000)]
    settle_ms: u64,
    /// Keep every run's log (stderr) in this directory, named by history
    /// length and run; by default they go to the scratch directory, which
    /// is removed at the end.
    #[arg(long)]
    logs: Option<PathBuf>,
}

/// First event time of every history (2023-11-14T22:13:20Z).
const START_MS: u64 = 1_700_000_000_000;

/// Runs `cmd` to its end; an error with its stderr if it fails.
fn run_to_end(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).output()?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The served predictions: how many, and the newest `made_at_ms` (None
/// while the server is not up or serves none).
fn served(addr: &str) -> Option<(usize, u64)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /api/predictions HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(body).ok()?;
    let newest = list.iter().filter_map(|p| p["made_at_ms"].as_u64()).max()?;
    Some((list.len(), newest))
}

/// What one restart measured.
struct Restart {
    first_s: f64,
    settled_s: f64,
    newest_ms: u64,
    predictions: usize,
}

/// Spawns `cmd` (a live `run` serving HTTP on `addr`) and times it until
/// its newest served prediction has not changed for `settle`.
/// Its log (stderr) goes to `log`: a pipe nobody reads while it runs could
/// fill and stall the run being timed.
fn time_restart(
    mut cmd: Command,
    addr: &str,
    settle: Duration,
    log: &Path,
) -> anyhow::Result<Restart> {
    let start = Instant::now();
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let mut first = None;
    let mut last: Option<(usize, u64)> = None;
    let mut changed = start.elapsed();
    let limit = Duration::from_secs(1800);
    let result = loop {
        if let Some(status) = child.try_wait()? {
            let err = std::fs::read_to_string(log).unwrap_or_default();
            break Err(anyhow::anyhow!(
                "the restarted run exited ({status}): {err}"
            ));
        }
        let now = served(addr);
        let at = start.elapsed();
        if now.is_some() && first.is_none() {
            first = Some(at);
        }
        if now.map(|n| n.1) != last.map(|l| l.1) {
            last = now;
            changed = at;
        } else if let (Some(first), Some((predictions, newest_ms))) = (first, last) {
            if at - changed >= settle {
                break Ok(Restart {
                    first_s: first.as_secs_f64(),
                    settled_s: changed.as_secs_f64(),
                    newest_ms,
                    predictions,
                });
            }
        }
        if at > limit {
            break Err(anyhow::anyhow!("no settled predictions after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// The newest snapshot in `state_dir`, and the median time to write it
/// again (ms) into a scratch directory the way the router does.
fn newest_snapshot(
    state_dir: &Path,
    scratch: &Path,
) -> anyhow::Result<(cryptoflow::state::Snapshot, u64, f64)> {
    let listed = cryptoflow::state::list(state_dir)?;
    let newest = listed.first().with_context(|| {
        format!(
            "the history run wrote no snapshot in {}",
            state_dir.display()
        )
    })?;
    let snapshot = cryptoflow::state::read(&newest.path)?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        cryptoflow::state::write(scratch, &snapshot, 1)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((snapshot, newest.bytes, times[times.len() / 2]))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.partitions > args.symbols {
        bail!(
            "--partitions must be at most --symbols (a partition without ticks takes no snapshot)"
        );
    }
    let bin = cryptoflow_bench::cryptoflow_bin()?;
    let dir = std::env::temp_dir().join(format!("cryptoflow-bench-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let broker = Broker::start(&dir.join("broker.log"))?;
    let logs = args.logs.clone().unwrap_or_else(|| dir.clone());
    std::fs::create_dir_all(&logs)?;
    let brokers = broker.bootstrap();
    let workers = args.workers.to_string();
    for &minutes in &args.minutes {
        let topic = format!("restart-{minutes}");
        let ticks = (minutes as f64 * 60.0 * args.rate * f64::from(args.symbols)).round() as u64;
        run_to_end(
            Command::new(&bin)
                .args(["topic", "create", &topic, "--brokers", &brokers])
                .args(["--partitions", &args.partitions.to_string()]),
            "creating the topic",
        )?;
        run_to_end(
            Command::new(&bin)
                .args(["simulate", "--brokers", &brokers, "--topic", &topic])
                .args(["--max-speed", "--seasonality", "0"])
                .args(["--ticks", &ticks.to_string()])
                .args(["--rate", &args.rate.to_string()])
                .args(["--symbol-count", &args.symbols.to_string()])
                .args(["--start-ms", &START_MS.to_string()]),
            "simulating the history",
        )?;
        let data = dir.join(format!("data-{minutes}"));
        let run = |extra: &[&str]| {
            let mut c = Command::new(&bin);
            c.args(["run", "--brokers", &brokers, "--topic", &topic])
                .args(["--workers", &workers, "--data-dir"])
                .arg(&data)
                .args(extra);
            c
        };
        let start = Instant::now();
        run_to_end(&mut run(&["--until-end", "--no-http"]), "the history run")?;
        let history_s = start.elapsed().as_secs_f64();
        let (snapshot, bytes, write_ms) =
            newest_snapshot(&data.join("_state"), &dir.join("scratch"))?;

        let settle = Duration::from_millis(args.settle_ms);
        let port = free_port()?.to_string();
        let addr = format!("127.0.0.1:{port}");
        let http = ["--http", &addr, "--api-rate-limit", "0"];
        let replay = time_restart(
            run(&[
                &http[..],
                &["--from-snapshot", "none", "--snapshot-every-ms", "0"],
            ]
            .concat()),
            &addr,
            settle,
            &logs.join(format!("{minutes}-replay.log")),
        )?;
        let restored = time_restart(
            run(&http),
            &addr,
            settle,
            &logs.join(format!("{minutes}-snapshot.log")),
        )?;
        if (restored.newest_ms, restored.predictions) != (replay.newest_ms, replay.predictions) {
            bail!(
                "after {minutes} min the restored run settled on {} predictions made at {}, \
                 the replay on {} made at {}",
                restored.predictions,
                restored.newest_ms,
                replay.predictions,
                replay.newest_ms
            );
        }
        let symbols = snapshot.header.symbols.len().max(1);
        let round = |x: f64| (x * 1e3).round() / 1e3;
        println!(
            "{}",
            serde_json::json!({
                "bench": "restart",
                "history_minutes": minutes,
                "ticks": ticks,
                "symbols": args.symbols,
                "workers": args.workers,
                "partitions": args.partitions,
                "history_run_s": round(history_s),
                "snapshot_epoch_ms": snapshot.header.epoch,
                "snapshot_bytes": bytes,
                "snapshot_bytes_per_symbol": bytes / symbols as u64,
                "snapshot_stall_ms": round(snapshot.header.stall_max_ns as f64 / 1e6),
                "snapshot_write_ms": round(write_ms),
                "with_snapshot": {
                    "first_prediction_s": round(restored.first_s),
                    "caught_up_s": round(restored.settled_s),
                },
                "replay": {
                    "first_prediction_s": round(replay.first_s),
                    "caught_up_s": round(replay.settled_s),
                },
                "settle_ms": args.settle_ms,
            })
        );
        std::fs::remove_dir_all(&data)?;
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
