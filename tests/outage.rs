//! The broker goes away while `run` is consuming and comes back at the same
//! address: every connection to it is cut and refused for a while (through a
//! proxy the broker advertises), then restored. The pipeline keeps running,
//! resumes consuming, and after a bounded catch-up run on the same warehouse
//! every table equals a clean run's (nothing lost, nothing duplicated).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{http_get, temp_dir, wait_for};
use cryptoflow::broker::free_port;
use cryptoflow::now_ms;
use dataflows::sim::{SimConfig, Simulator};

fn ticks_seen(addr: &str) -> Option<u64> {
    let (status, body) = http_get(addr, "/api/health").ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    (status == 200)
        .then(|| v["stats"]["ticks"].as_u64())
        .flatten()
}

#[test]
fn broker_outage_then_recovery_loses_nothing() {
    let dir = temp_dir("cryptoflow-outage");
    // Clients reach the broker only through a proxy the test can cut.
    let (broker, proxy, brokers, topic) = common::proxied_broker(&dir, 2);

    // Recent event times: a live run lets time follow the wall clock when its
    // partitions go quiet, so history from 2023 would (rightly) be late here.
    let market = |seed: u64, from: u64, to: u64| -> Vec<dataflows::Tick> {
        let mut cfg = SimConfig::default_market(seed, from);
        cfg.symbols.truncate(3);
        cfg.trades_per_sec = 5.0;
        Simulator::new(cfg).take_while(|t| t.ts_ms < to).collect()
    };
    let t0 = now_ms();
    let first = market(8, t0 - 5 * 60_000, t0 - 60_000);
    let ticks_path = dir.join("ticks.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ticks_path).unwrap());
    common::produce_logged(&brokers, &topic, &first, &mut file);

    // A live run consumes the first half.
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let live = dir.join("live");
    let mut child = common::run_cmd(&brokers, &topic, "2", &live)
        .args(["--http", &addr])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("live.log")).unwrap())
        .spawn()
        .unwrap();
    let before = wait_for(Duration::from_secs(60), || {
        ticks_seen(&addr).filter(|n| *n > 0)
    })
    .expect("live run consumes");

    // The broker goes away for a while; the pipeline must stay up.
    proxy.down();
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        child.try_wait().unwrap().is_none(),
        "run exited during the broker outage"
    );
    proxy.up();
    // After the outage: a burst of ticks stamped just ahead of the clock
    // (within the allowed skew), so a slow reconnect cannot make them late.
    let t1 = now_ms();
    let second = market(9, t1 + 5_000, t1 + 35_000);
    common::produce_logged(&brokers, &topic, &second, &mut file);
    file.flush().unwrap();
    let after = wait_for(Duration::from_secs(60), || {
        ticks_seen(&addr).filter(|n| *n > before)
    });
    assert!(after.is_some(), "no progress after the broker came back");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    // Finish the live warehouse with a bounded run; compare with a clean one.
    for d in [&live, &dir.join("clean")] {
        let ok = common::run_cmd(&brokers, &topic, "2", d)
            .args(["--until-end", "--no-http"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let report = common::run_python(
        "check_tables.py",
        &[
            dir.join("clean").to_str().unwrap(),
            live.to_str().unwrap(),
            ticks_path.to_str().unwrap(),
        ],
    );
    let counts: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(counts["traded_bars"].as_u64().unwrap() > 500, "{counts}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
