//! `cryptoflow simulate` through the real binary into a real broker: a
//! million ticks at full speed all land on the topic it creates, and the
//! symbols asked for are the ones on the topic (read by kafka-python).

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use cryptoflow::kafka;

fn simulate(brokers: &str, topic: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(common::BIN)
        .args(["simulate", "--brokers", brokers, "--topic", topic])
        .args(["--max-speed", "--start-ms", "1700000000000"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    common::assert_ok(&out, "simulate");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_million_ticks_at_max_speed_all_reach_the_topic() {
    let dir = common::temp_dir("cryptoflow-simulate");
    let (_broker, brokers) = common::broker(&dir);
    let topic = common::unique("ticks");
    let summary = simulate(
        &brokers,
        &topic,
        &["--ticks", "1000000", "--symbol-count", "12"],
    );
    assert_eq!(summary["produced"], 1_000_000, "{summary}");
    assert_eq!(summary["delivered"], 1_000_000, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    // Created with the default 8 partitions; every record there once.
    assert_eq!(kafka::partition_count(&brokers, &topic).unwrap(), 8);
    assert_eq!(
        kafka::topic_size(&brokers, &topic, Duration::from_secs(120)).unwrap(),
        1_000_000
    );
}

#[test]
fn the_symbols_asked_for_are_the_symbols_on_the_topic() {
    let dir = common::temp_dir("cryptoflow-simulate-symbols");
    let (_broker, brokers) = common::broker(&dir);
    let topic = common::unique("ticks");
    let summary = simulate(
        &brokers,
        &topic,
        &[
            "--ticks",
            "3000",
            "--symbols",
            "AAA-USD,BBB-EUR,CCC-BTC",
            "--partitions",
            "2",
        ],
    );
    assert_eq!(summary["delivered"], 3_000, "{summary}");
    let lines = common::run_python("read_topic.py", &[&brokers, &topic, "3000"]);
    let mut keys = BTreeSet::new();
    let mut count = 0;
    for l in lines.lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        let tick: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(tick["symbol"], r["key"]);
        keys.insert(r["key"].as_str().unwrap().to_string());
        count += 1;
    }
    assert_eq!(count, 3_000);
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        ["AAA-USD", "BBB-EUR", "CCC-BTC"]
    );
}
