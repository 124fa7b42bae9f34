//! `cryptoflow cluster` run like an operator would: a local 2-process
//! cluster (one worker each) consumes a topic; process 0's `/api/health`
//! shows both processes' partitions, offsets and watermarks; a stopped
//! (SIGSTOP) process 1 is reported unreachable within seconds and healthy
//! again after SIGCONT; a killed (SIGKILL) process 1 makes the launcher
//! exit non-zero naming it within seconds, process 0 saying it lost a peer;
//! and restarting the cluster resumes so that every table equals a clean
//! single-process run's, row for row (independent Python reader).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{http_get, wait_for};
use cryptoflow::broker::free_port;

/// A port p with p + 1 also free.
fn two_free_ports() -> u16 {
    loop {
        let p = free_port().unwrap();
        if p < 65_000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn health(addr: &str) -> Option<(u16, serde_json::Value)> {
    let (status, body) = http_get(addr, "/api/health").ok()?;
    Some((status, serde_json::from_str(&body).ok()?))
}

fn signal(pid: u64, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn a_dead_cluster_process_is_reported_within_seconds_and_a_restart_resumes_exactly() {
    let dir = common::temp_dir("cryptoflow-cluster-ops");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    common::simulate_history(&brokers, &topic, 80_000);
    let clean = dir.join("clean");
    let out = common::run_cmd(&brokers, &topic, "2", &clean)
        .args(["--until-end", "--no-http"])
        .output()
        .unwrap();
    common::assert_ok(&out, "clean run");

    let wh = dir.join("cluster");
    let http = format!("127.0.0.1:{}", free_port().unwrap());
    // `commit_ms`: the first cluster commits every 40 ms, so the kill lands
    // between commits of a run in progress; the restart commits at the
    // default pace (each epoch is a commit to eight tables: at 40 ms the
    // replay would wait for its commits).
    let cluster = |commit_ms: &str, extra: &[&str]| {
        let mut c = Command::new(common::BIN);
        c.args(["cluster", "--processes", "2", "--workers", "1"])
            .args(["--base-port", &two_free_ports().to_string()])
            .args(["--health-base-port", &two_free_ports().to_string()])
            .args([
                "--",
                "--brokers",
                &brokers,
                "--topic",
                &topic,
                "--http",
                &http,
            ])
            .arg("--data-dir")
            .arg(&wh)
            .args(["--commit-interval-ms", commit_ms])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let mut launcher = cluster("40", &[]);

    // Both processes report, each with its own partitions.
    let report = wait_for(Duration::from_secs(60), || {
        let (status, h) = health(&http)?;
        let peer = &h["cluster"][0];
        let read: u64 = h["process"]["partitions"]
            .as_array()?
            .iter()
            .chain(peer["report"]["partitions"].as_array()?)
            .map(|p| p["records"].as_u64().unwrap_or(0))
            .sum();
        (status == 200 && peer["status"] == "ok" && read > 0).then_some(h)
    })
    .expect("process 0's health shows both processes reading");
    let partitions = |v: &serde_json::Value| -> BTreeSet<i64> {
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["partition"].as_i64().unwrap())
            .collect()
    };
    let (own, peer) = (
        partitions(&report["process"]),
        partitions(&report["cluster"][0]["report"]),
    );
    assert_eq!(own, BTreeSet::from([0, 2]), "{report}");
    assert_eq!(peer, BTreeSet::from([1, 3]), "{report}");
    assert_eq!(report["cluster"][0]["report"]["process"], 1);
    let pid = report["cluster"][0]["report"]["pid"].as_u64().unwrap();
    for p in report["process"]["partitions"].as_array().unwrap() {
        assert!(
            p.get("watermark_ms").is_some() && p.get("next_offset").is_some(),
            "{p}"
        );
    }

    // A stopped process answers nothing: reported within seconds.
    signal(pid, "-STOP");
    let t0 = Instant::now();
    let down = wait_for(Duration::from_secs(10), || {
        let (status, h) = health(&http)?;
        (status == 503 && h["cluster"][0]["status"] == "unreachable").then_some(h)
    });
    let noticed = t0.elapsed();
    signal(pid, "-CONT");
    let down = down.expect("a stopped process is reported unreachable");
    assert_eq!(down["status"], "degraded", "{down}");
    assert!(down["cluster"][0]["error"].as_str().is_some(), "{down}");
    eprintln!("a stopped process was reported after {noticed:?}");
    assert!(
        wait_for(Duration::from_secs(10), || {
            let (status, h) = health(&http)?;
            (status == 200 && h["cluster"][0]["status"] == "ok").then_some(())
        })
        .is_some(),
        "healthy again after SIGCONT"
    );

    // A killed process: the launcher names it and exits non-zero, within
    // its own bound (the grace for the peers to notice, then the stop
    // timeout before it kills what still runs).
    signal(pid, "-KILL");
    let t0 = Instant::now();
    let bound = cryptoflow::supervise::GRACE + cryptoflow::supervise::STOP_TIMEOUT;
    let exited = wait_for(bound + Duration::from_secs(10), || {
        launcher.try_wait().unwrap()
    });
    let took = t0.elapsed();
    let mut log = String::new();
    launcher
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let status = exited.unwrap_or_else(|| panic!("the launcher did not exit:\n{log}"));
    eprintln!("the launcher exited {took:?} after the kill");
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("Error: cluster:"))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        error.contains(&format!("process 1 (pid {pid}) was killed by signal 9")),
        "{error}"
    );
    assert!(
        log.contains("p0: Error: lost another process of the cluster"),
        "process 0 says why it stopped:\n{log}"
    );

    // Restart: the cluster resumes from the committed epochs.
    let launcher = cluster("2000", &["--until-end"]);
    let t0 = Instant::now();
    let out = {
        let mut l = launcher;
        let done = wait_for(Duration::from_secs(120), || l.try_wait().unwrap());
        if done.is_none() {
            let _ = l.kill();
        }
        l.wait_with_output().unwrap()
    };
    eprintln!("the restarted cluster finished after {:?}", t0.elapsed());
    common::assert_ok(&out, "the restarted cluster");
    let report = common::run_python(
        "check_same_tables.py",
        &[clean.to_str().unwrap(), wh.to_str().unwrap()],
    );
    let tables: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    for (table, at_least) in [("bars", 1_000), ("predictions", 10_000)] {
        assert!(
            tables[table]["rows"].as_u64().unwrap() >= at_least,
            "{table}: {tables}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
