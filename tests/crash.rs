//! Exactly-once across crashes: a fixed topic of ticks is processed by a run
//! that is killed with SIGKILL at random moments (at least five times) and
//! restarted, then by nothing else; every Delta table must equal, as a
//! multiset of rows, the tables of one clean uninterrupted run (checked from
//! Python `deltalake`, with bars also checked against the ticks). Runs
//! snapshot their state (every minute of event time, the default), and
//! every restart that finds a snapshot must continue from it rather than
//! replay the topic.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::temp_dir;
use cryptoflow::kafka::TickProducer;
use dataflows::sim::Rng;

fn run_args(brokers: &str, topic: &str, dir: &std::path::Path) -> Command {
    let mut c = common::bounded_run(brokers, topic, dir, "300000");
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

#[test]
fn sigkill_at_random_moments_then_restart_writes_every_row_exactly_once() {
    let dir = temp_dir("cryptoflow-crash");
    let (broker, brokers, topic) = common::broker_with_topic(&dir, 4);

    // About 40 minutes of a five-symbol market, historical, plus bad records.
    let ticks = common::simulated_ticks(5, 1_700_000_000_000, 40, 20.0);
    let producer = TickProducer::new(&brokers, &topic).unwrap();
    let ticks_path = dir.join("ticks.jsonl");
    let mut bad = 0;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ticks_path).unwrap());
    for (i, t) in ticks.iter().enumerate() {
        let json = t.to_json();
        producer.send(&t.symbol, json.as_bytes()).unwrap();
        writeln!(file, "{json}").unwrap();
        if i % 50_000 == 7 {
            producer.send(&t.symbol, b"{\"broken\":").unwrap();
            bad += 1;
        }
    }
    file.flush().unwrap();
    producer.finish(Duration::from_secs(60)).unwrap();

    // The reference: one clean run.
    let clean = dir.join("clean");
    assert!(run_args(&brokers, &topic, &clean)
        .status()
        .unwrap()
        .success());
    let clean_commits = common::commits(&clean);

    // The victim: killed at random moments, each a random number of new
    // Delta commits (none: during start-up), up to a sixth of those still to
    // come, plus up to two commit intervals, so every kill lands mid-way
    // however fast the machine is (a fixed share of the clean run's commits
    // plus half a second let a fast machine finish most runs before their
    // moment).
    let crashed = dir.join("crashed");
    let mut rng = Rng::new(std::process::id() as u64);
    let mut kills = 0;
    let mut attempts = 0;
    let mut restored = 0;
    // A restarted run skips what is committed; one that finishes before
    // its moment is not counted. No run is killed before a snapshot exists,
    // so every restart has one to find; one killed at its start (a moment
    // of no new commits) may die before it restores, so attempts go on
    // until three restarts have restored (how many die that early is a
    // matter of timing).
    while (kills < 5 || restored < 3) && attempts < 14 {
        attempts += 1;
        let done = common::commits(&crashed);
        let left = clean_commits.saturating_sub(done);
        let at = done + (rng.uniform() * left as f64 / 6.0) as usize;
        let snapshot = !common::snapshots(&crashed).is_empty();
        let log_path = dir.join(format!("attempt-{attempts}.log"));
        let mut child = run_args(&brokers, &topic, &crashed)
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        common::wait_for(Duration::from_secs(120), || {
            let done = child.try_wait().unwrap().is_some();
            let due = common::commits(&crashed) >= at && !common::snapshots(&crashed).is_empty();
            (done || due).then_some(())
        });
        std::thread::sleep(Duration::from_secs_f64(rng.uniform() * 0.08));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let log = std::fs::read_to_string(&log_path).unwrap();
        if snapshot {
            // A run that committed anything had restored first (killed
            // during start-up, one may not have got that far).
            assert!(
                common::commits(&crashed) == done || log.contains("restored from snapshot"),
                "attempt {attempts} found a snapshot but did not start from it:\n{log}"
            );
            assert!(
                !log.contains("no usable snapshot"),
                "attempt {attempts}: {log}"
            );
            restored += usize::from(log.contains("restored from snapshot"));
        }
    }
    assert!(
        restored >= 3,
        "only {restored} of {attempts} runs started from a snapshot"
    );
    assert!(
        kills >= 5,
        "only {kills} of {attempts} runs were still running when killed ({clean_commits} commits in a clean run)"
    );
    assert!(run_args(&brokers, &topic, &crashed)
        .status()
        .unwrap()
        .success());

    let counts = common::check_tables(&clean, &[crashed], &ticks_path);
    assert!(counts["bars"].as_u64().unwrap() > 10_000, "{counts}");
    assert!(
        counts["predictions"].as_u64().unwrap() > 100_000,
        "{counts}"
    );
    assert_eq!(counts["rejects"], bad, "{counts}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
