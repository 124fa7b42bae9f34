//! End to end through the real binary: seeded ticks are produced to a real
//! Kafka-protocol broker started here; `cryptoflow run` consumes them on a
//! timely cluster, serves predictions over HTTP and writes Delta tables;
//! the tables are read back with Python's `deltalake` and checked against
//! bars recomputed independently from the same ticks, and runs on 1 and 4
//! workers must write identical tables.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{http_get, temp_dir, wait_for};
use cryptoflow::broker::free_port;
use cryptoflow::kafka::TickProducer;
use cryptoflow::now_ms;
use dataflows::sim::{SimConfig, Simulator};

#[test]
fn ticks_through_a_real_broker_to_http_and_delta() {
    let dir = temp_dir("cryptoflow-e2e");
    let (broker, brokers, topic) = common::broker_with_topic(&dir, 4);

    // Five minutes of seeded market, ending a little before now; plus bad records.
    let start = now_ms() - 6 * 60_000;
    let mut cfg = SimConfig::default_market(99, start);
    cfg.trades_per_sec = 4.0;
    let ticks: Vec<_> = Simulator::new(cfg)
        .take_while(|t| t.ts_ms < start + 5 * 60_000)
        .collect();
    let ticks_path = dir.join("ticks.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ticks_path).unwrap());
    common::produce_logged(&brokers, &topic, &ticks, &mut file);
    file.flush().unwrap();
    let producer = TickProducer::new(&brokers, &topic).unwrap();
    for bad in [
        "not json",
        r#"{"symbol":"BTC-USD","exchange":"x","ts":1,"price":1,"size":1,"side":"buy"}"#,
    ] {
        producer.send("BTC-USD", bad.as_bytes()).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(
        producer
            .stats()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // 1. Live run: predictions appear over HTTP, SIGTERM stops it cleanly.
    let port = free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let live_dir = dir.join("live");
    let mut child = common::run_cmd(&brokers, &topic, "2", &live_dir)
        .args(["--http", &addr])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("live.log")).unwrap())
        .spawn()
        .unwrap();
    let preds = wait_for(Duration::from_secs(90), || {
        let (status, body) = http_get(&addr, "/api/predictions").ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v.as_array().is_some_and(|a| a.len() >= 5)).then_some(v)
    });
    let log = || {
        let text = std::fs::read_to_string(dir.join("live.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let preds = preds.unwrap_or_else(|| panic!("no predictions over HTTP; log:\n{}", log()));
    let first = &preds.as_array().unwrap()[0];
    for field in [
        "symbol",
        "horizon_ms",
        "model",
        "predicted_return",
        "predicted_price",
        "made_at_ms",
        "target_at_ms",
    ] {
        assert!(!first[field].is_null(), "missing {field} in {first}");
    }
    let symbols: std::collections::BTreeSet<&str> = preds
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["symbol"].as_str())
        .collect();
    assert_eq!(symbols.len(), 5, "{symbols:?}");
    let (status, body) = http_get(&addr, "/api/predictions/BTC-USD").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(&addr, "/api/predictions/NOPE-USD").unwrap();
    assert_eq!(status, 404);
    // The bad records end BTC-USD's partition: the source reads them once
    // the dataflow has caught up to within its read-ahead bound.
    let rejected = |health: &serde_json::Value, reason: &str| {
        health["stats"]["rejects"][reason].as_u64() == Some(1)
    };
    let mut health = serde_json::Value::Null;
    wait_for(Duration::from_secs(60), || {
        let (status, body) = http_get(&addr, "/api/health").ok()?;
        assert_eq!(status, 200, "{body}");
        health = serde_json::from_str(&body).unwrap();
        (rejected(&health, "malformed_json") && rejected(&health, "implausible_timestamp"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("rejects not counted: {health}"));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status =
        wait_for(Duration::from_secs(30), || child.try_wait().unwrap()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("run did not stop on SIGTERM; log:\n{}", log())
        });
    assert!(status.success(), "exit {status}; log:\n{}", log());
    assert!(
        live_dir.join("bars/_delta_log").is_dir(),
        "no bars table after a clean stop"
    );

    // 2. Bounded runs on 1 and 4 workers write identical tables, checked from
    // Python; the second checkpoints after every commit.
    let mut dirs = Vec::new();
    for (workers, checkpoint_every) in [("1", "0"), ("4", "1")] {
        let out_dir = dir.join(format!("w{workers}"));
        let out = common::run_cmd(&brokers, &topic, workers, &out_dir)
            .args([
                "--until-end",
                "--no-http",
                "--checkpoint-every",
                checkpoint_every,
            ])
            .output()
            .unwrap();
        common::assert_ok(&out, &format!("run -w {workers}"));
        let summary: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("summary JSON on stdout");
        assert!(
            summary["rows_written"].as_u64().unwrap() > 1_000,
            "{summary}"
        );
        dirs.push(out_dir);
    }
    assert!(!dirs[0].join("bars/_delta_log/_last_checkpoint").exists());
    assert!(dirs[1].join("bars/_delta_log/_last_checkpoint").is_file());
    let report = common::run_python(
        "check_tables.py",
        &[
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            ticks_path.to_str().unwrap(),
        ],
    );
    let counts: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(counts["traded_bars"].as_u64().unwrap() > 1_000, "{counts}");
    assert_eq!(counts["rejects"], 2, "{counts}");
    assert!(counts["predictions"].as_u64().unwrap() > 1_000, "{counts}");
    assert!(counts["scores"].as_u64().unwrap() > 1_000, "{counts}");

    // `cryptoflow tables` agrees with the independent reader.
    let out = Command::new(common::BIN)
        .args(["tables", "list", "--json", "--data-dir"])
        .arg(&dirs[0])
        .output()
        .unwrap();
    common::assert_ok(&out, "tables list");
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = t["name"].as_str().unwrap();
        if name == "job_runs" {
            // The orchestrator's wall-clock history: tests/retrain.rs checks it.
            continue;
        }
        assert_eq!(t["rows"], counts[name], "{name}: {t}");
        if t["rows"].as_u64().unwrap() > 0 {
            assert!(
                t["committed_epoch"].as_i64().is_some(),
                "{name}: no txn version: {t}"
            );
        }
    }
    let out = Command::new(common::BIN)
        .args([
            "tables",
            "show",
            "bars",
            "--symbol",
            "ETH-USD",
            "--limit",
            "3",
            "--json",
            "--data-dir",
        ])
        .arg(&dirs[0])
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|r| r["symbol"] == "ETH-USD" && r["date"].is_string()));
    let out = Command::new(common::BIN)
        .args(["tables", "show", "nope", "--data-dir"])
        .arg(&dirs[0])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown table `nope`"));
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
