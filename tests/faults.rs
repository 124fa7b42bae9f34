//! Faults around the pipeline, each showing what happens and that nothing
//! accepted is lost (tables compared with a clean run's, or with bars
//! recomputed from the accepted ticks, by the independent Python reader):
//!
//! - a slow broker (latency injected by the test's proxy on every chunk in
//!   both directions): the run takes longer and writes exactly the tables
//!   of a run without latency;
//! - the broker disappearing mid-run, between commits: the run stays up,
//!   a stop while it is gone still commits what it holds (the commit needs
//!   no broker: offsets live in the warehouse), and a later run resumes to
//!   exactly the clean tables;
//! - clock skew in incoming ticks: a tick from beyond the future bound is
//!   rejected `future_timestamp`, one in seconds `implausible_timestamp`,
//!   one from far in the past `late` once its partition has moved on (but
//!   accepted as the partition's first record: a backfill is event time
//!   like any other); a tick from the future within the bound is accepted
//!   and moves its partition's watermark, so on-time ticks that follow it
//!   within the lateness are `late`. Every reject is in the rejects table
//!   with its payload; the bars are exactly those of the accepted ticks.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{temp_dir, wait_for};
use cryptoflow::kafka::TickProducer;
use dataflows::num::F64;
use dataflows::sim::{SimConfig, Simulator};
use dataflows::tick::{Position, Side, Tick};

/// `ticks` historical ticks of a five-symbol market, produced to `topic`.
fn produce_history(brokers: &str, topic: &str, ticks: usize) {
    let start = 1_790_000_000_000;
    let mut cfg = SimConfig::default_market(21, start);
    cfg.trades_per_sec = 25.0;
    let producer = TickProducer::new(brokers, topic).unwrap();
    for t in Simulator::new(cfg).take(ticks) {
        producer.send(&t.symbol, t.to_json().as_bytes()).unwrap();
    }
    producer.finish(Duration::from_secs(60)).unwrap();
}

fn bounded(brokers: &str, topic: &str, dir: &Path) -> Command {
    let mut c = common::run_cmd(brokers, topic, "2", dir);
    c.args(["--until-end", "--no-http", "--commit-interval-ms", "40"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn succeed(mut c: Command, what: &str) -> std::process::Output {
    let child = c.spawn().unwrap();
    finish(child, what, Duration::from_secs(120))
}

fn finish(mut child: Child, what: &str, limit: Duration) -> std::process::Output {
    let done = wait_for(limit, || child.try_wait().unwrap());
    if done.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        done.is_some() && out.status.success(),
        "{what} failed or hung ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn same_tables(a: &Path, b: &Path) -> serde_json::Value {
    let report = common::run_python(
        "check_same_tables.py",
        &[a.to_str().unwrap(), b.to_str().unwrap()],
    );
    serde_json::from_str(report.trim()).unwrap()
}

#[test]
fn a_slow_broker_delays_the_run_but_loses_nothing() {
    let dir = temp_dir("cryptoflow-slow");
    let (broker, proxy, brokers, topic) = common::proxied_broker(&dir, 4);
    produce_history(&brokers, &topic, 30_000);
    let t0 = Instant::now();
    succeed(bounded(&brokers, &topic, &dir.join("clean")), "clean run");
    let fast = t0.elapsed();

    proxy.set_latency(Duration::from_millis(40));
    let t0 = Instant::now();
    succeed(bounded(&brokers, &topic, &dir.join("slow")), "slow run");
    let slow = t0.elapsed();
    eprintln!("run without latency {fast:?}, with 40 ms per chunk {slow:?}");
    let report = same_tables(&dir.join("clean"), &dir.join("slow"));
    assert!(report["bars"]["rows"].as_u64().unwrap() > 500, "{report}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_broker_disappearing_between_commits_loses_nothing() {
    let dir = temp_dir("cryptoflow-gone");
    let (broker, proxy, brokers, topic) = common::proxied_broker(&dir, 4);
    produce_history(&brokers, &topic, 60_000);
    succeed(bounded(&brokers, &topic, &dir.join("clean")), "clean run");

    // Slow enough that the broker can be cut while the run is mid-way.
    proxy.set_latency(Duration::from_millis(30));
    let victim = dir.join("victim");
    let child = bounded(&brokers, &topic, &victim).spawn().unwrap();
    let first_commit = victim.join("bars/_delta_log/00000000000000000001.json");
    assert!(
        wait_for(Duration::from_secs(60), || first_commit
            .exists()
            .then_some(()))
        .is_some(),
        "no commit within a minute"
    );
    proxy.down();
    let mut child = child;
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run exited while the broker was gone"
    );
    // A stop while the broker is gone: what is held is committed anyway.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = finish(
        child,
        "stopping while the broker is gone",
        Duration::from_secs(60),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["rows_written"].as_u64().unwrap() > 0, "{summary}");
    proxy.up();
    proxy.set_latency(Duration::ZERO);
    succeed(
        bounded(&brokers, &topic, &victim),
        "the run after the outage",
    );
    let report = same_tables(&dir.join("clean"), &victim);
    assert!(
        report["predictions"]["rows"].as_u64().unwrap() > 1_000,
        "{report}"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tick(ts_ms: u64, price: f64, id: &str) -> Tick {
    Tick {
        symbol: "BTC-USD".into(),
        exchange: "skewed".into(),
        ts_ms,
        price: F64(price),
        size: F64(0.5),
        side: if id.len().is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        trade_id: Some(id.into()),
        pos: Position::default(),
    }
}

#[test]
fn clock_skew_is_rejected_with_reasons_and_every_accepted_tick_is_in_a_bar() {
    let dir = temp_dir("cryptoflow-skew");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 1);
    let now = cryptoflow::now_ms() / 1000 * 1000;
    let day = 86_400_000;
    // (tick, accepted?) in partition order.
    let mut records: Vec<(Tick, bool)> = Vec::new();
    records.push((tick(now - 30 * day, 90.0, "past-first"), true));
    for i in 0..600 {
        records.push((
            tick(
                now - 120_000 + i * 100,
                100.0 + i as f64 / 100.0,
                &format!("a{i}"),
            ),
            true,
        ));
    }
    records.push((tick(now - 365 * day, 50.0, "past-late"), false));
    records.push((tick(now / 1000, 100.0, "seconds"), false));
    records.push((tick(now + 600_000, 100.0, "future-far"), false));
    records.push((tick(now + 30_000, 107.0, "future-near"), true));
    for i in 0..100 {
        // On time by the wall clock, but behind the watermark "future-near" set.
        records.push((tick(now - 59_900 + i * 100, 106.0, &format!("b{i}")), false));
    }
    let accepted_path = dir.join("accepted.jsonl");
    let mut accepted = std::io::BufWriter::new(std::fs::File::create(&accepted_path).unwrap());
    let producer = TickProducer::new(&brokers, &topic).unwrap();
    for (t, ok) in &records {
        producer.send(&t.symbol, t.to_json().as_bytes()).unwrap();
        if *ok {
            writeln!(accepted, "{}", t.to_json()).unwrap();
        }
    }
    accepted.flush().unwrap();
    producer.finish(Duration::from_secs(30)).unwrap();

    let wh = dir.join("wh");
    succeed(bounded(&brokers, &topic, &wh), "run");
    // Bars are exactly those of the accepted ticks (recomputed in Python).
    let report = common::run_python(
        "check_tables.py",
        &[
            wh.to_str().unwrap(),
            wh.to_str().unwrap(),
            accepted_path.to_str().unwrap(),
        ],
    );
    let counts: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(counts["traded_bars"], 62, "{counts}");
    // Every other record is a reject, with its reason and its payload.
    let dump = common::run_python("dump_table.py", &[wh.to_str().unwrap(), "rejects"]);
    let dump: serde_json::Value = serde_json::from_str(dump.trim()).unwrap();
    let mut got: Vec<(String, String)> = dump["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let payload: serde_json::Value =
                serde_json::from_str(r["payload"].as_str().unwrap()).unwrap();
            (
                payload["trade_id"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = vec![
        ("past-late".into(), "late".into()),
        ("seconds".into(), "implausible_timestamp".into()),
        ("future-far".into(), "future_timestamp".into()),
    ];
    want.extend((0..100).map(|i| (format!("b{i}"), "late".to_string())));
    want.sort();
    assert_eq!(got, want);
}
