//! The dashboard's live path, measured.
//!
//! `latency`: the real dataflow's deliveries (five simulated symbols, 1 s
//! bars) are applied to the live view one per `--pace-ms`, as the delivery
//! router does, while the HTTP server runs on a socket. One SSE client
//! records when each bar's delivery becomes visible on `/api/stream` (its
//! first `bar` event); one client polls `/api/predictions` back to back and
//! records when each delivery's best predictions (`made_at_ms`) first
//! appear. Latency = visible − the instant the router started applying the
//! delivery. Prints p50/p90/p99/max per channel.
//!
//! `throughput`: the whole dataflow over `--ticks` simulated ticks, its
//! export applying every delivery to the live view on the dataflow's own
//! worker (stricter than the router, which runs beside it), first with no
//! SSE client, then with 100 reading clients plus one that never reads.
//! Prints ticks/s of both and their ratio.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use cryptoflow::http::LiveView;
use dataflows::sim::{SimConfig, Simulator};
use dataflows::source::{partition_records, SourceConfig, VecReader};
use dataflows::{Delivery, Output, OutputSink, PipelineConfig};

#[derive(Parser)]
struct Args {
    /// Which measurements (latency, throughput).
    #[arg(long, value_delimiter = ',', default_value = "latency,throughput")]
    runs: Vec<String>,
    /// Minutes of simulated market for the latency run.
    #[arg(long, default_value_t = 20)]
    minutes: u64,
    /// Wall time between two deliveries in the latency run (ms).
    #[arg(long, default_value_t = 20)]
    pace_ms: u64,
    /// Ticks for the throughput run.
    #[arg(long, default_value_t = 1_000_000)]
    ticks: u64,
    /// Reading SSE clients in the throughput run.
    #[arg(long, default_value_t = 100)]
    clients: usize,
}

const START: u64 = 1_700_000_000_000;

fn serve(view: Arc<LiveView>) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(cryptoflow::http::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // No per-client rate limit: the bench's clients share one address.
    let access = cryptoflow::http::guard::Access {
        rate_limit: None,
        ..Default::default()
    };
    rt.spawn(async move {
        cryptoflow::http::serve_with(listener, view, &access, std::future::pending()).await
    });
    (addr, rt)
}

fn sse(addr: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/stream HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    BufReader::new(s)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    (v[i] * 1000.0).round() / 1000.0
}

fn stats(name: &str, mut v: Vec<f64>) -> serde_json::Value {
    serde_json::json!({
        "channel": name, "samples": v.len(),
        "p50_ms": pct(&mut v, 0.5), "p90_ms": pct(&mut v, 0.9),
        "p99_ms": pct(&mut v, 0.99), "max_ms": pct(&mut v, 1.0),
    })
}

fn latency(args: &Args) {
    let ds =
        dataflows::harness::simulated_deliveries(3, START, args.minutes * 60_000, 2.0).unwrap();
    let view = Arc::new(LiveView::new());
    let (addr, _rt) = serve(view.clone());
    // When the router started applying the delivery at each event time.
    let applied: Arc<Mutex<std::collections::BTreeMap<u64, Instant>>> = Arc::default();
    let sse_seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let poll_seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut reader = sse(&addr);
    let sse_thread = {
        let seen = sse_seen.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut kind = String::new();
            let mut last = 0u64;
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                let l = line.trim_end();
                if let Some(k) = l.strip_prefix("event: ") {
                    kind = k.to_string();
                } else if let Some(d) = l.strip_prefix("data: ") {
                    if kind == "end" {
                        break;
                    }
                    if kind == "bar" {
                        let v: serde_json::Value = serde_json::from_str(d).unwrap();
                        let t = v["end_ms"].as_u64().unwrap();
                        if t > last {
                            last = t;
                            seen.lock().unwrap().push((t, Instant::now()));
                        }
                    }
                }
                line.clear();
            }
        })
    };
    let poll_thread = {
        let (seen, done, addr) = (poll_seen.clone(), done.clone(), addr.clone());
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut last = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                write!(s, "GET /api/predictions HTTP/1.1\r\nHost: b\r\n\r\n").unwrap();
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length: ") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let now = Instant::now();
                let preds: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                let t = preds
                    .iter()
                    .filter_map(|p| p["made_at_ms"].as_u64())
                    .max()
                    .unwrap_or(0);
                if t > last {
                    last = t;
                    seen.lock().unwrap().push((t, now));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut next = Instant::now();
    for d in &ds {
        next += Duration::from_millis(args.pace_ms);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        applied.lock().unwrap().insert(d.time, Instant::now());
        view.apply(d);
    }
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    view.hub().publish([("end", "{}".to_string())]);
    sse_thread.join().unwrap();
    poll_thread.join().unwrap();
    let applied = applied.lock().unwrap();
    let lat = |seen: &[(u64, Instant)]| -> Vec<f64> {
        seen.iter()
            .filter_map(|(t, at)| Some(at.duration_since(*applied.get(t)?).as_secs_f64() * 1e3))
            .collect()
    };
    let with_best: std::collections::BTreeSet<u64> = ds
        .iter()
        .filter(|d| d.changes.iter().any(|(o, _)| matches!(o, Output::Best(..))))
        .map(|d| d.time)
        .collect();
    let sse_lat = lat(&sse_seen.lock().unwrap());
    let poll: Vec<(u64, Instant)> = poll_seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| with_best.contains(t))
        .copied()
        .collect();
    let poll_lat = lat(&poll);
    println!(
        "{}",
        serde_json::json!({
            "bench": "dashboard_latency", "deliveries": ds.len(), "pace_ms": args.pace_ms,
            "symbols": 5, "bar_ms": 1000,
            "sse": stats("sse bar event", sse_lat),
            "poll": stats("/api/predictions", poll_lat),
        })
    );
}

struct Apply(Arc<LiveView>);

impl OutputSink for Apply {
    fn deliver(&mut self, d: Delivery) {
        self.0.apply(&d);
    }
}

fn run_dataflow(records: Arc<Vec<dataflows::source::Record>>, view: Arc<LiveView>) -> f64 {
    let config = PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(|| u64::MAX / 2)),
        ..PipelineConfig::default()
    };
    let start = Instant::now();
    let guards = timely::execute(timely::Config::process(1), move |worker| {
        let reader = VecReader::for_worker(&records, 8, worker.index(), worker.peers());
        let sink = Apply(view.clone());
        let config = config.clone();
        let probe = worker.dataflow(|scope| dataflows::build(scope, reader, config, sink));
        worker.step_while(|| !probe.done());
    })
    .unwrap();
    drop(guards);
    start.elapsed().as_secs_f64()
}

fn throughput(args: &Args) {
    let mut cfg = SimConfig::default_market(7, START);
    cfg.trades_per_sec = 50.0;
    let payloads = Simulator::new(cfg)
        .take(args.ticks as usize)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    let records = Arc::new(partition_records(payloads, 8));
    let mut results = Vec::new();
    for clients in [0, args.clients] {
        let view = Arc::new(LiveView::new());
        let (addr, _rt) = serve(view.clone());
        let mut readers = Vec::new();
        let mut slow = None;
        if clients > 0 {
            // One that never reads, and `clients` that read everything.
            let mut s = TcpStream::connect(&addr).unwrap();
            write!(s, "GET /api/stream HTTP/1.1\r\nHost: b\r\n\r\n").unwrap();
            slow = Some(s);
            for _ in 0..clients {
                let mut r = sse(&addr);
                readers.push(std::thread::spawn(move || {
                    let mut buf = vec![0; 64 * 1024];
                    let mut n = 0u64;
                    while let Ok(k) = r.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        n += k as u64;
                    }
                    n
                }));
            }
            while view.hub().meters.clients.get() < clients as i64 + 1 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let secs = run_dataflow(records.clone(), view.clone());
        let m = &view.hub().meters;
        let (events, dropped) = (m.events.get(), m.dropped.get());
        drop(slow);
        drop(_rt);
        let bytes: u64 = readers.into_iter().map(|r| r.join().unwrap_or(0)).sum();
        let row = serde_json::json!({
            "bench": "dashboard_throughput", "ticks": args.ticks, "workers": 1,
            "sse_clients": clients, "never_reading_clients": u8::from(clients > 0),
            "seconds": (secs * 1000.0).round() / 1000.0,
            "ticks_per_sec": (args.ticks as f64 / secs).round(),
            "events_published": events, "clients_dropped": dropped, "bytes_streamed": bytes,
        });
        println!("{row}");
        results.push(args.ticks as f64 / secs);
    }
    println!(
        "{}",
        serde_json::json!({"bench": "dashboard_throughput_ratio",
            "with_clients_over_without": ((results[1] / results[0]) * 1000.0).round() / 1000.0})
    );
}

fn main() {
    let args = Args::parse();
    if args.runs.iter().any(|r| r == "latency") {
        latency(&args);
    }
    if args.runs.iter().any(|r| r == "throughput") {
        throughput(&args);
    }
}
