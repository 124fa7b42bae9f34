//! `/api/health` tells the truth about a real run (a local broker behind a
//! proxy the test can cut, the simulated feed, `cryptoflow run`): "degraded"
//! with a 503 and the reason when no tick arrived for longer than the
//! threshold, when the broker does not answer, and when warehouse commits
//! fail (a table's `_delta_log` replaced by a file); "ok" again once each
//! cause is gone. `/metrics` parses with the Prometheus client's own parser
//! (Python `prometheus_client`) and its counters agree with `/api/health`.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{http_get, temp_dir, wait_for};
use cryptoflow::broker::free_port;
use cryptoflow::feed::{run_sim_feed, FeedOptions};
use cryptoflow::shutdown::Stop;
use serde_json::Value;

fn health(addr: &str) -> Option<(u16, Value)> {
    let (status, body) = http_get(addr, "/api/health").ok()?;
    Some((status, serde_json::from_str(&body).ok()?))
}

fn reasons(h: &Value) -> String {
    h["reasons"].to_string()
}

fn metrics(addr: &str, dir: &std::path::Path) -> Value {
    let (status, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    let file = dir.join("metrics.txt");
    std::fs::write(&file, &body).unwrap();
    serde_json::from_str(&common::run_python(
        "parse_metrics.py",
        &[file.to_str().unwrap()],
    ))
    .unwrap()
}

/// A live feed of three symbols until the returned stop is triggered.
fn feed(
    brokers: &str,
    topic: &str,
    seed: u64,
    history_ms: u64,
) -> (Stop, std::thread::JoinHandle<()>) {
    let opts = FeedOptions {
        brokers: brokers.into(),
        topic: topic.into(),
        seed,
        symbols: vec!["BTC-USD".into(), "ETH-USD".into(), "SOL-USD".into()],
        correlation: 0.5,
        seasonality: 0.0,
        trades_per_sec: 5.0,
        max_ticks: None,
        max_speed: false,
        start_ms: None,
        history_ms,
        history_trades_per_sec: 2.0,
        producer: cryptoflow::kafka::ProducerOptions::default(),
    };
    let stop = Stop::new();
    let s = stop.clone();
    (
        stop,
        std::thread::spawn(move || {
            let _ = run_sim_feed(&opts, &s);
        }),
    )
}

#[test]
fn health_degrades_for_each_cause_and_metrics_agree_with_it() {
    let dir = temp_dir("health");
    let (broker, proxy, brokers, topic) = common::proxied_broker(&dir, 2);

    // Two bad records, so rejects by reason are counted too.
    let producer = cryptoflow::kafka::TickProducer::new(&brokers, &topic).unwrap();
    producer.send("x", b"not json").unwrap();
    producer
        .send("btc", br#"{"symbol":"btc-usd","exchange":"t","ts":1732492800123,"price":"1","size":"1","side":"buy"}"#)
        .unwrap();
    producer.finish(Duration::from_secs(30)).unwrap();
    let (feed_stop, feed_thread) = feed(&brokers, &topic, 3, 120_000);

    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let data = dir.join("data");
    let mut child = common::run_cmd(&brokers, &topic, "2", &data)
        .args([
            "--http",
            &addr,
            "--stale-after-ms",
            "4000",
            "--commit-interval-ms",
            "500",
            "--epoch-ms",
            "1000",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("run.log")).unwrap())
        .spawn()
        .unwrap();
    let ok = wait_for(Duration::from_secs(60), || {
        let (status, h) = health(&addr)?;
        (status == 200
            && h["stats"]["ticks"].as_u64()? > 0
            && h["checks"]["commits_ok"].as_u64()? > 0
            && h["stats"]["rejects"].as_object()?.len() == 2)
            .then_some(h)
    });
    assert!(
        ok.is_some(),
        "never healthy; see {}",
        dir.join("run.log").display()
    );

    // Metrics agree with health: health before <= metrics <= health after.
    let (_, before) = health(&addr).unwrap();
    let m = metrics(&addr, &dir);
    let (_, after) = health(&addr).unwrap();
    let one = |name: &str| {
        m[name][""]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} missing: {m}")) as u64
    };
    for (metric, path) in [
        ("cryptoflow_ticks_total", "/stats/ticks"),
        ("cryptoflow_bars_total", "/stats/bars"),
        ("cryptoflow_bars_filled_total", "/stats/bars_filled"),
        ("cryptoflow_predictions_total", "/stats/predictions"),
        ("cryptoflow_scores_total", "/stats/scores"),
        ("cryptoflow_ticks_read_total", "/checks/ticks_read"),
        ("cryptoflow_epoch_commits_total", "/checks/commits_ok"),
        (
            "cryptoflow_delta_commit_failures_total",
            "/checks/commits_failed",
        ),
    ] {
        let (lo, hi) = (
            before.pointer(path).unwrap().as_u64().unwrap(),
            after.pointer(path).unwrap().as_u64().unwrap(),
        );
        let v = one(metric);
        assert!(
            lo <= v && v <= hi,
            "{metric} = {v}, health says {lo}..={hi}"
        );
    }
    for (reason, n) in after["stats"]["rejects"].as_object().unwrap() {
        let v = m["cryptoflow_ticks_rejected_total"][format!("reason={reason}").as_str()]
            .as_f64()
            .unwrap();
        assert_eq!(v as u64, n.as_u64().unwrap(), "rejects {reason}");
    }
    assert!(
        m["cryptoflow_partition_offset"].as_object().unwrap().len() == 2,
        "{m}"
    );
    assert!(
        m["cryptoflow_partition_watermark_lag_seconds"]
            .as_object()
            .unwrap()
            .len()
            == 2
    );
    assert!(
        m["cryptoflow_http_requests_total"]["route=/api/health,status=200"]
            .as_f64()
            .unwrap()
            >= 2.0
    );
    assert!(m
        .get("cryptoflow_epoch_commit_duration_seconds_count")
        .is_some());
    assert!(m.get("cryptoflow_sse_clients").is_some());

    // 1. No tick for longer than the threshold.
    feed_stop.trigger();
    feed_thread.join().unwrap();
    let stale = wait_for(Duration::from_secs(30), || {
        let (status, h) = health(&addr)?;
        (status == 503 && reasons(&h).contains("no tick for")).then_some(h)
    });
    assert!(
        stale.is_some(),
        "no 'no tick' degradation: {:?}",
        health(&addr)
    );
    let (feed_stop, feed_thread) = feed(&brokers, &topic, 4, 0);
    assert!(
        wait_for(Duration::from_secs(30), || (health(&addr)?.0 == 200)
            .then_some(()))
        .is_some(),
        "{:?}",
        health(&addr)
    );

    // 2. Warehouse commits fail while a table's log is unusable.
    let log = data.join("bars/_delta_log");
    let aside = data.join("bars/_delta_log.aside");
    std::fs::rename(&log, &aside).unwrap();
    std::fs::write(&log, b"not a directory").unwrap();
    let failing = wait_for(Duration::from_secs(30), || {
        let (status, h) = health(&addr)?;
        (status == 503 && reasons(&h).contains("warehouse commits are failing")).then_some(h)
    });
    std::fs::remove_file(&log).unwrap();
    std::fs::rename(&aside, &log).unwrap();
    let failing = failing.expect("commit failures not reported");
    assert!(failing["checks"]["commits_failed"].as_u64().unwrap() >= 1);
    assert!(
        wait_for(Duration::from_secs(30), || (health(&addr)?.0 == 200)
            .then_some(()))
        .is_some(),
        "{:?}",
        health(&addr)
    );
    let m = metrics(&addr, &dir);
    assert!(
        m["cryptoflow_delta_commit_failures_total"][""]
            .as_f64()
            .unwrap()
            >= 1.0
    );

    // 3. The broker does not answer (the feed stops first: it cannot produce).
    feed_stop.trigger();
    feed_thread.join().unwrap();
    proxy.down();
    let down = wait_for(Duration::from_secs(30), || {
        let (status, h) = health(&addr)?;
        (status == 503 && reasons(&h).contains("broker does not answer")).then_some(h)
    });
    proxy.up();
    assert!(
        down.is_some(),
        "broker outage not reported: {:?}",
        health(&addr)
    );
    let (feed_stop, feed_thread) = feed(&brokers, &topic, 5, 0);
    assert!(
        wait_for(Duration::from_secs(45), || (health(&addr)?.0 == 200)
            .then_some(()))
        .is_some(),
        "not ok after the broker came back: {:?}",
        health(&addr)
    );

    feed_stop.trigger();
    feed_thread.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
