//! The dashboard in a real browser, against the real system: a local
//! broker, the simulated feed producing history and then live ticks, and
//! `cryptoflow run` serving HTTP. Headless Chromium driven by Playwright
//! (`tests/js/dashboard.js`) opens every page and checks: no console error,
//! page error or failed request; every symbol appears; the price chart
//! grows while ticks flow; the champion and prediction shown equal
//! `/api/predictions` at that moment. Screenshots of each page are written
//! under the target directory (the path is printed).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use cryptoflow::feed::{run_sim_feed, FeedOptions};
use cryptoflow::shutdown::Stop;

const SYMBOLS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];

/// Where the test tools live (scripts/setup.sh --with-python).
fn cache() -> PathBuf {
    std::env::var_os("CRYPTOFLOW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cryptoflow"))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped, so a failed assertion leaves nothing running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_page_works_in_a_real_browser_against_a_live_run() {
    let node_modules = cache().join("node/node_modules");
    assert!(
        node_modules.join("playwright-core").is_dir(),
        "playwright-core missing: run scripts/setup.sh --with-python"
    );
    let dir = common::temp_dir("dashboard");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 4);

    // Ten minutes of history at once (models need 121 bars), then live ticks.
    let stop = Stop::new();
    let feed = {
        let opts = FeedOptions {
            brokers: brokers.clone(),
            topic: topic.clone(),
            seed: 7,
            symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
            correlation: dataflows::sim::MARKET_CORRELATION,
            seasonality: 0.0,
            trades_per_sec: 4.0,
            max_ticks: None,
            max_speed: false,
            start_ms: None,
            history_ms: 600_000,
            history_trades_per_sec: 2.0,
            producer: cryptoflow::kafka::ProducerOptions::default(),
        };
        let stop = stop.clone();
        std::thread::spawn(move || run_sim_feed(&opts, &stop))
    };

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _run = Running(
        common::run_cmd(&brokers, &topic, "2", &dir.join("data"))
            .args(["--http", &addr, "--bar-ms", "1000", "--epoch-ms", "2000"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("run.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let ready = common::wait_for(Duration::from_secs(120), || {
        let (status, body) = common::http_get(&addr, "/api/predictions").ok()?;
        let preds: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        (status == 200
            && SYMBOLS
                .iter()
                .all(|s| preds.iter().any(|p| p["symbol"] == *s)))
        .then_some(())
    });
    assert!(
        ready.is_some(),
        "no predictions for every symbol within 120 s; see {}",
        dir.join("run.log").display()
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js/dashboard.js");
    let mut driver = Command::new("node")
        .arg(&script)
        .arg(format!("http://{addr}"))
        .arg(&shots)
        .arg(SYMBOLS.join(","))
        .env("NODE_PATH", &node_modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed by scripts/setup.sh");
    // The script bounds each wait itself; this bounds the whole.
    let done = common::wait_for(Duration::from_secs(240), || {
        driver.try_wait().ok().flatten()
    });
    if done.is_none() {
        let _ = driver.kill();
    }
    let out = driver.wait_with_output().unwrap();
    stop.trigger();
    let _ = feed.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    println!("screenshots: {}", shots.display());
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["overview", "symbol", "models", "jobs", "quality"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "{page}.png");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
