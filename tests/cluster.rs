//! The multi-process cluster: the same topic through one process of two
//! workers and through two processes of one worker each (timely's
//! `-n/-p/--hostfile`, workers talking over loopback TCP) writes the same
//! warehouse, row for row, read back by the independent Python reader.

mod common;

use std::process::{Output, Stdio};

#[test]
fn two_processes_write_what_one_process_writes() {
    let dir = common::temp_dir("cryptoflow-cluster");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    common::simulate_history(&brokers, &topic, 60_000);

    let bounded = |workers: &str, out_dir: &str| {
        let mut c = common::run_cmd(&brokers, &topic, workers, &dir.join(out_dir));
        c.args(["--until-end", "--no-http"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let single = common::finish(bounded("2", "single").spawn().unwrap(), "one process");

    let hostfile = common::two_process_hostfile(&dir);
    let member = |index: &str, out_dir: &str| {
        let mut c = bounded("1", out_dir);
        c.args(["-n", "2", "-p", index, "--hostfile"])
            .arg(&hostfile);
        c.spawn().unwrap()
    };
    let second = member("1", "process1");
    let first = common::finish(member("0", "cluster"), "process 0");
    let second = common::finish(second, "process 1");

    // Process 0 exports and writes everything; process 1 only computes.
    let summary = |o: &Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
    };
    assert_eq!(summary(&first), summary(&single));
    assert_eq!(summary(&second)["rows_written"], 0);
    assert!(!dir.join("process1/bars").exists());
    let report = common::run_python(
        "check_same_tables.py",
        &[
            dir.join("single").to_str().unwrap(),
            dir.join("cluster").to_str().unwrap(),
        ],
    );
    let tables: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    for (table, at_least) in [("bars", 1_000), ("predictions", 10_000), ("scores", 10_000)] {
        assert!(
            tables[table]["rows"].as_u64().unwrap() >= at_least,
            "{table}: {tables}"
        );
    }
}
