//! Helpers shared by the integration tests: unique names, a minimal HTTP/1.1
//! client over a real socket, bounded polling, and the Python venv with the
//! independent readers (set up by `scripts/setup.sh --with-python`).
#![allow(dead_code)]

pub mod fake_exchange;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `cryptoflow` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cryptoflow");

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// GET `path` from `addr`; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, &[], "")
}

/// Sends `method path` with extra `headers` and `body` to `addr`; returns
/// (status, body).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `f` every 200 ms until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// The Python interpreter of the test venv.
pub fn python() -> PathBuf {
    let cache = std::env::var_os("CRYPTOFLOW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cryptoflow"));
    let p = cache.join("venv/bin/python");
    assert!(
        p.is_file(),
        "{} missing: run scripts/setup.sh --with-python",
        p.display()
    );
    p
}

/// Runs a Python script from tests/py with arguments; returns stdout, panics with stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = std::process::Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts a finished command succeeded, with its stderr in the message.
pub fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A local broker (in-memory storage, log in `dir`): (broker, bootstrap address).
pub fn broker(dir: &std::path::Path) -> (cryptoflow::broker::Broker, String) {
    let broker = cryptoflow::broker::Broker::start(&dir.join("broker.log")).expect("broker starts");
    let brokers = broker.bootstrap();
    (broker, brokers)
}

/// A local broker with a fresh topic of `partitions` partitions:
/// (broker, bootstrap address, topic).
pub fn broker_with_topic(
    dir: &std::path::Path,
    partitions: i32,
) -> (cryptoflow::broker::Broker, String, String) {
    let (broker, brokers) = broker(dir);
    let topic = unique("ticks");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(cryptoflow::kafka::ensure_topic(
        &brokers, &topic, partitions,
    ))
    .unwrap();
    (broker, brokers, topic)
}

/// A local broker reached only through a [`Proxy`] the test controls (the
/// broker advertises the proxy's address), with a fresh topic of
/// `partitions` partitions: (broker, proxy, bootstrap address, topic).
pub fn proxied_broker(
    dir: &std::path::Path,
    partitions: i32,
) -> (cryptoflow::broker::Broker, Proxy, String, String) {
    let port = cryptoflow::broker::free_port().unwrap();
    let proxy_addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let broker =
        cryptoflow::broker::Broker::start_advertising(&dir.join("broker.log"), Some(proxy_addr))
            .unwrap();
    let proxy = Proxy::start_at(proxy_addr, broker.bootstrap().parse().unwrap());
    let brokers = proxy.addr().to_string();
    let topic = unique("ticks");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(cryptoflow::kafka::ensure_topic(
        &brokers, &topic, partitions,
    ))
    .unwrap();
    (broker, proxy, brokers, topic)
}

/// `ticks` simulated ticks (the default market, from a fixed start in
/// 2026) produced to `topic` by `cryptoflow simulate`, at full speed.
pub fn simulate_history(brokers: &str, topic: &str, ticks: u64) {
    let out = std::process::Command::new(BIN)
        .args(["simulate", "--brokers", brokers, "--topic", topic])
        .args(["--ticks", &ticks.to_string()])
        .args(["--max-speed", "--start-ms", "1795400000000"])
        .output()
        .unwrap();
    assert_ok(&out, "simulate");
}

/// A TCP forwarder a test can cut and restore, to simulate the broker going
/// away and coming back at the same address (std listeners re-bind at once,
/// unlike a freshly restarted broker whose old sockets linger in TIME_WAIT),
/// and slow down: with a latency set, every chunk read from either side is
/// held that long before it is passed on (a slow or distant broker).
pub struct Proxy {
    addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    latency_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Copies `from` to `to` until either closes, holding each chunk `latency_ms`.
fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    latency_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = latency_ms.load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Proxy {
    /// Forwards `addr` to `target`.
    pub fn start_at(addr: std::net::SocketAddr, target: std::net::SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::<std::net::TcpStream>::new()));
        let latency_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (up2, conns2, latency2) = (up.clone(), conns.clone(), latency_ms.clone());
        std::thread::spawn(move || loop {
            if !up2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let Ok(listener) = std::net::TcpListener::bind(addr) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            listener.set_nonblocking(true).unwrap();
            while up2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(target) else {
                            continue;
                        };
                        let mut c = conns2.lock().unwrap();
                        c.push(client.try_clone().unwrap());
                        c.push(server.try_clone().unwrap());
                        for (from, to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            let latency = latency2.clone();
                            std::thread::spawn(move || forward(from, to, latency));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            addr,
            up,
            conns,
            latency_ms,
        }
    }

    /// Holds every chunk this long in each direction from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            latency.as_millis() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// The address clients should use.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Cuts every connection and stops accepting.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Accepts connections again, at the same address.
    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `cryptoflow run` against `brokers`/`topic` on `workers` workers writing
/// to `dir`; callers add the rest of the flags.
pub fn run_cmd(
    brokers: &str,
    topic: &str,
    workers: &str,
    dir: &std::path::Path,
) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.args(["run", "--brokers", brokers, "--topic", topic, "-w", workers])
        .arg("--data-dir")
        .arg(dir);
    c
}

/// `cryptoflow run` replaying `topic` to its end on 2 workers into `dir`,
/// without HTTP, committing every 40 ms of wall time or `epoch_ms` of
/// event time: the bounded run the restart tests compare; callers set
/// its output streams.
pub fn bounded_run(
    brokers: &str,
    topic: &str,
    dir: &Path,
    epoch_ms: &str,
) -> std::process::Command {
    bounded_run_on(brokers, topic, "2", dir, epoch_ms)
}

/// [`bounded_run`] on `workers` workers.
pub fn bounded_run_on(
    brokers: &str,
    topic: &str,
    workers: &str,
    dir: &Path,
    epoch_ms: &str,
) -> std::process::Command {
    let mut c = run_cmd(brokers, topic, workers, dir);
    c.args([
        "--until-end",
        "--no-http",
        "--commit-interval-ms",
        "40",
        "--epoch-ms",
        epoch_ms,
    ])
    .stdin(std::process::Stdio::null());
    c
}

/// `minutes` of a seeded simulated market (the default symbols) from
/// `start_ms`, at `trades_per_sec` per symbol.
pub fn simulated_ticks(
    seed: u64,
    start_ms: u64,
    minutes: u64,
    trades_per_sec: f64,
) -> Vec<dataflows::Tick> {
    let mut cfg = dataflows::sim::SimConfig::default_market(seed, start_ms);
    cfg.trades_per_sec = trades_per_sec;
    dataflows::sim::Simulator::new(cfg)
        .take_while(|t| t.ts_ms < start_ms + minutes * 60_000)
        .collect()
}

/// Produces `ticks` (keyed by symbol, wire format) and appends each to
/// `file` as a JSONL line; waits for every delivery and checks none failed.
pub fn produce_logged(brokers: &str, topic: &str, ticks: &[dataflows::Tick], file: &mut dyn Write) {
    let producer = cryptoflow::kafka::TickProducer::new(brokers, topic).unwrap();
    for t in ticks {
        let json = t.to_json();
        producer.send(&t.symbol, json.as_bytes()).unwrap();
        writeln!(file, "{json}").unwrap();
    }
    producer.finish(Duration::from_secs(60)).unwrap();
}

/// Delta commits written so far under a warehouse, over all its tables.
pub fn commits(warehouse: &Path) -> usize {
    std::fs::read_dir(warehouse)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|table| std::fs::read_dir(table.path().join("_delta_log")).ok())
        .flat_map(|log| log.flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
        .count()
}

/// The snapshot files under `data`, oldest first.
pub fn snapshots(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("_state"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfstate"))
        .collect();
    files.sort();
    files
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Checks with `tests/py/check_tables.py` that every warehouse in `others`
/// holds the same rows as `clean`, and `clean`'s bars match `ticks`;
/// returns its row counts per table.
pub fn check_tables(clean: &Path, others: &[PathBuf], ticks: &Path) -> serde_json::Value {
    let mut args = vec![clean, others[0].as_path(), ticks];
    args.extend(others[1..].iter().map(PathBuf::as_path));
    let args: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
    serde_json::from_str(run_python("check_tables.py", &args).trim()).unwrap()
}

/// Waits for `child` (at most two minutes) and returns its output,
/// asserting it exited successfully.
pub fn finish(mut child: std::process::Child, what: &str) -> std::process::Output {
    let done = wait_for(Duration::from_secs(120), || child.try_wait().unwrap());
    if done.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        done.is_some() && out.status.success(),
        "{what} failed or hung:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A timely hostfile for a cluster of two processes on loopback, in `dir`.
pub fn two_process_hostfile(dir: &Path) -> PathBuf {
    let ports: Vec<u16> = (0..2)
        .map(|_| cryptoflow::broker::free_port().unwrap())
        .collect();
    let hostfile = dir.join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    hostfile
}
