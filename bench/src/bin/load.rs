//! HTTP load while the pipeline ingests at full speed: a local broker holds
//! a backlog of simulated ticks; `run` (in-process, 2 workers, HTTP on a
//! loopback port, rate limit off so the server itself is measured)
//! consumes it as fast as it can while `wrk` (loopback only, bounded
//! windows) loads one endpoint at a time. Windows alternate — quiet, load
//! endpoint 1, quiet, load endpoint 2, … — so the ingest rate with and
//! without load is measured over the same stretch of the run. The ingest
//! rate of a window is the records the sources read during it (from
//! `/api/health`, polled every 250 ms). Prints one JSON line per endpoint
//! (requests/s, p50/p99 latency, errors, ingest with and without load) and
//! a summary line. Needs `wrk` (`scripts/setup.sh --with-bench`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use cryptoflow::broker::{free_port, Broker};
use cryptoflow::http::guard::Access;
use cryptoflow::kafka::{self, TickProducer};
use cryptoflow::pipeline::{run, RunOptions};
use cryptoflow::shutdown::Stop;
use dataflows::sim::{SimConfig, Simulator};

#[derive(Parser)]
struct Args {
    /// Ticks in the backlog (enough to keep ingest busy for every window).
    #[arg(long, default_value_t = 3_000_000)]
    ticks: u64,
    /// Seconds per window (each endpoint gets one loaded and one quiet window).
    #[arg(long, default_value_t = 2)]
    window_s: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Endpoints to load, comma separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "/api/health,/api/predictions,/api/predictions/BTC-USD,/api/models,/api/evaluations,/"
    )]
    endpoints: Vec<String>,
}

const START: u64 = 1_700_000_000_000;

/// Records read by the sources so far, from `/api/health`.
fn records_read(addr: &str) -> Option<u64> {
    let body = get(addr, "/api/health")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(
        v["process"]["partitions"]
            .as_array()?
            .iter()
            .filter_map(|p| p["records"].as_u64())
            .sum(),
    )
}

fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Ingest rate over `window`, polling every 250 ms; `during` runs meanwhile.
fn ingest_over<T>(addr: &str, during: impl FnOnce() -> T) -> anyhow::Result<(f64, T, u64)> {
    let t0 = Instant::now();
    let r0 = records_read(addr).context("health")?;
    let out = during();
    let r1 = records_read(addr).context("health")?;
    Ok(((r1 - r0) as f64 / t0.elapsed().as_secs_f64(), out, r1))
}

/// wrk's numbers for one window.
#[derive(Default)]
struct Wrk {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

fn ms(text: &str) -> f64 {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(addr: &str, path: &str, seconds: u64, connections: u32) -> anyhow::Result<Wrk> {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--latency", "--timeout", "5s"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .context("running wrk (install it with scripts/setup.sh --with-bench)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut w = Wrk::default();
    for line in text.lines().map(str::trim) {
        let mut f = line.split_whitespace();
        match (f.next(), f.next()) {
            (Some("50%"), Some(v)) => w.p50_ms = ms(v),
            (Some("99%"), Some(v)) => w.p99_ms = ms(v),
            (Some("Requests/sec:"), Some(v)) => w.requests_per_sec = v.parse().unwrap_or(0.0),
            _ => {}
        }
        if let Some(n) = line
            .split(" requests in ")
            .next()
            .filter(|_| line.contains(" requests in "))
        {
            w.requests = n.trim().parse().unwrap_or(0);
        }
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            w.errors += n.trim().parse::<u64>().unwrap_or(0);
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            w.errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(w)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("cryptoflow-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let broker = Broker::start(&dir.join("broker.log"))?;
    let brokers = broker.bootstrap();
    let topic = "ticks";
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(kafka::ensure_topic(&brokers, topic, 8))?;
    let mut cfg = SimConfig::default_market(7, START);
    cfg.trades_per_sec = 50.0;
    let producer = TickProducer::new(&brokers, topic)?;
    for t in Simulator::new(cfg).take(args.ticks as usize) {
        producer.send(&t.symbol, t.to_json().as_bytes())?;
    }
    producer.finish(Duration::from_secs(120))?;

    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut opts = RunOptions::new(brokers.clone(), topic, PathBuf::from(&dir).join("wh"));
    opts.http = Some(addr.parse()?);
    opts.access = Access {
        rate_limit: None,
        ..Access::default()
    };
    let stop = Stop::new();
    let pipeline = {
        let stop = stop.clone();
        std::thread::spawn(move || run(opts, stop))
    };
    // Wait until predictions are served, so every endpoint has something to say.
    let t0 = Instant::now();
    while get(&addr, "/api/predictions/BTC-USD").is_none() {
        if t0.elapsed() > Duration::from_secs(120) || pipeline.is_finished() {
            stop.trigger();
            bail!("no predictions served within two minutes");
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let window = Duration::from_secs(args.window_s);
    let (mut quiet_rates, mut loaded_rates, mut errors) = (Vec::new(), Vec::new(), 0);
    let mut lines = Vec::new();
    for path in &args.endpoints {
        let (quiet, (), _) = ingest_over(&addr, || std::thread::sleep(window))?;
        let (loaded, w, read) =
            ingest_over(&addr, || wrk(&addr, path, args.window_s, args.connections))?;
        let w = w?;
        if read >= args.ticks {
            stop.trigger();
            bail!("the backlog ran out during the windows: use more --ticks");
        }
        quiet_rates.push(quiet);
        loaded_rates.push(loaded);
        errors += w.errors;
        lines.push(serde_json::json!({
            "bench": "load",
            "endpoint": path,
            "connections": args.connections,
            "seconds": args.window_s,
            "requests": w.requests,
            "requests_per_sec": w.requests_per_sec.round(),
            "p50_ms": (w.p50_ms * 100.0).round() / 100.0,
            "p99_ms": (w.p99_ms * 100.0).round() / 100.0,
            "errors": w.errors,
            "ingest_ticks_per_sec_quiet": quiet.round(),
            "ingest_ticks_per_sec_loaded": loaded.round(),
        }));
    }
    stop.trigger();
    let summary = pipeline
        .join()
        .map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
    for l in &lines {
        println!("{l}");
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "bench": "load",
            "backlog_ticks": args.ticks,
            "workers": cryptoflow::pipeline::DEFAULT_WORKERS,
            "ingest_ticks_per_sec_without_load": mean(&quiet_rates).round(),
            "ingest_ticks_per_sec_with_load": mean(&loaded_rates).round(),
            "errors": errors,
            "deliveries": summary.deliveries,
        })
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}
