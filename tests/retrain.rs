//! Periodic retraining end to end: the real binary replays simulated days
//! from a real broker, the orchestrator trains batch models from the Delta
//! warehouse it writes, the dataflow swaps them in at event-time schedule
//! points, and Python `deltalake` reads the registry, the run history and
//! the predictions back.
//!
//! - a five-day replay runs exactly the scheduled retrains (every 6 h of
//!   event time from the first bar: 20) and daily evaluations/promotions
//!   (one per day of data: 6), and `models`, `predictions` and `scores`
//!   are identical on 1 and 2 workers and after SIGKILLs and a restart;
//! - no leakage: ticks changed after a deploy time leave every model
//!   trained up to it bit-identical (and change later ones);
//! - an injected failure is retried with backoff, ends failed in
//!   `job_runs` and `/api/jobs`, and the pipeline keeps serving; the admin
//!   token is required to run a job.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{temp_dir, wait_for};
use cryptoflow::broker::free_port;
use dataflows::sim::{Rng, SimConfig, Simulator};
use dataflows::Tick;
use serde_json::Value;

/// 2023-11-15 00:00 UTC: the data starts at a day boundary.
const START: u64 = 1_700_006_400_000;
const HOUR: u64 = 3_600_000;

fn ticks(seed: u64, duration_ms: u64) -> Vec<Tick> {
    let mut cfg = SimConfig::default_market(seed, START).with_symbols(&["BTC-USD", "ETH-USD"]);
    cfg.trades_per_sec = 0.1;
    Simulator::new(cfg)
        .take_while(|t| t.ts_ms < START + duration_ms)
        .collect()
}

fn produce(brokers: &str, topic: &str, ticks: &[Tick], dir: &Path) {
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{topic}.jsonl"))).unwrap());
    common::produce_logged(brokers, topic, ticks, &mut file);
}

/// A bounded replay with two-minute bars, horizons 1 and 5.
fn replay(brokers: &str, topic: &str, workers: &str, dir: &Path) -> Command {
    let mut c = common::run_cmd(brokers, topic, workers, dir);
    c.args([
        "--until-end",
        "--no-http",
        "--bar-ms",
        "120000",
        "--horizons",
        "1,5",
        "--commit-interval-ms",
        "200",
        "--epoch-ms",
        "21600000",
        "--maintain-every-min",
        "0",
        "--job-backoff-ms",
        "100",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    c
}

fn log_to<'a>(c: &'a mut Command, path: &Path) -> &'a mut Command {
    c.stderr(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

fn run_ok(c: &mut Command, log: &Path) {
    let status = log_to(c, log).status().unwrap();
    assert!(
        status.success(),
        "run failed ({status}); log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn counts(dir: &Path) -> Value {
    serde_json::from_str(
        common::run_python("check_retrain.py", &["counts", dir.to_str().unwrap()]).trim(),
    )
    .unwrap()
}

fn job(c: &Value, name: &str, state: &str) -> u64 {
    c["jobs"][name][state].as_u64().unwrap_or(0)
}

#[test]
fn five_days_replay_runs_the_schedule_and_gives_the_same_registry_on_any_workers_and_after_sigkill()
{
    let dir = temp_dir("cryptoflow-retrain");
    let (broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    // Five days and half an hour: the last schedule point (day 5, 00:00)
    // has data after it, the next (06:00) has none.
    produce(&brokers, &topic, &ticks(7, 5 * 24 * HOUR + HOUR / 2), &dir);

    let one = dir.join("one");
    run_ok(
        &mut replay(&brokers, &topic, "1", &one),
        &dir.join("one.log"),
    );
    let clean_commits = common::commits(&one);
    let c = counts(&one);
    assert_eq!(job(&c, "retrain", "success"), 20, "{c}");
    assert_eq!(job(&c, "evaluate", "success"), 6, "{c}");
    assert_eq!(job(&c, "promote", "success"), 6, "{c}");
    for j in ["retrain", "evaluate", "promote"] {
        assert_eq!(job(&c, j, "failed") + job(&c, j, "other"), 0, "{j}: {c}");
    }
    // Four models per (symbol, horizon) at every retrain; at the first,
    // six hours in, two of them warm-up, every one is rejected.
    assert_eq!(c["model_versions"], 20 * 2 * 2 * 4, "{c}");
    assert!(c["models"]["rejected"].as_u64().unwrap() >= 16, "{c}");
    assert!(c["deployed_versions"].as_u64().unwrap() > 0, "{c}");
    assert!(c["batch_predictions"].as_u64().unwrap() > 10_000, "{c}");
    assert_eq!(c["batch_predictions_named"], true, "{c}");
    assert!(c["batch_scores"].as_u64().unwrap() > 10_000, "{c}");
    assert!(c["models"]["retired"].as_u64().unwrap() > 0, "{c}");

    let two = dir.join("two");
    run_ok(
        &mut replay(&brokers, &topic, "2", &two),
        &dir.join("two.log"),
    );
    let tables = ["models", "predictions", "scores"];
    let same = |other: &Path| {
        let mut args = vec!["same", one.to_str().unwrap(), other.to_str().unwrap()];
        args.extend(tables);
        common::run_python("check_retrain.py", &args)
    };
    same(&two);
    let c2 = counts(&two);
    assert_eq!(c2["jobs"]["retrain"]["success"], 20, "{c2}");

    // Killed at random moments, then run to the end. A moment is a random
    // number of new Delta commits (none: during start-up) plus up to half
    // a second, so each kill lands mid-way however fast the machine is:
    // a wall-clock guess can outlast a resumed run, which never needs
    // killing again once it has finished.
    let crashed = dir.join("crashed");
    let log = dir.join("crashed.log");
    let mut rng = Rng::new(std::process::id() as u64);
    let (mut kills, mut attempts) = (0, 0);
    while kills < 3 && attempts < 6 {
        attempts += 1;
        let at = common::commits(&crashed) + (rng.uniform() * clean_commits as f64 / 8.0) as usize;
        let mut child = log_to(&mut replay(&brokers, &topic, "2", &crashed), &log)
            .spawn()
            .unwrap();
        wait_for(Duration::from_secs(120), || {
            let done = child.try_wait().unwrap().is_some();
            (done || common::commits(&crashed) >= at).then_some(())
        });
        std::thread::sleep(Duration::from_secs_f64(rng.uniform() * 0.5));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills >= 3,
        "only {kills} of {attempts} runs were killed mid-way"
    );
    run_ok(&mut replay(&brokers, &topic, "2", &crashed), &log);
    same(&crashed);
    let c3 = counts(&crashed);
    for j in ["retrain", "evaluate", "promote"] {
        assert_eq!(
            c3["jobs"][j]["success"], c["jobs"][j]["success"],
            "{j}: {c3}"
        );
        assert_eq!(c3["jobs"][j]["failed"], 0, "{j}: {c3}");
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn models_deployed_at_t_are_bit_identical_whatever_happens_after_t() {
    let dir = temp_dir("cryptoflow-leak");
    let (broker, brokers) = common::broker(&dir);
    let original = ticks(9, 42 * HOUR);
    // T = one day in (a schedule point): every tick at or after it changes.
    let cut = START + 24 * HOUR;
    let mut rng = Rng::new(1);
    let changed: Vec<Tick> = original
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if t.ts_ms >= cut {
                t.price =
                    dataflows::num::F64(t.price.0 * (1.0 + 0.02 * rng.normal()).abs().max(0.5));
                t.size = dataflows::num::F64(t.size.0 * 3.0);
            }
            t
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut dirs = Vec::new();
    for (name, data) in [("original", &original), ("changed", &changed)] {
        let topic = common::unique(name);
        rt.block_on(cryptoflow::kafka::ensure_topic(&brokers, &topic, 4))
            .unwrap();
        produce(&brokers, &topic, data, &dir);
        let out = dir.join(name);
        run_ok(
            &mut replay(&brokers, &topic, "1", &out),
            &dir.join(format!("{name}.log")),
        );
        dirs.push(out);
    }
    let report = common::run_python(
        "check_retrain.py",
        &[
            "models",
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            &cut.to_string(),
        ],
    );
    let r: Value = serde_json::from_str(report.trim()).unwrap();
    // 4 retrains (6, 12, 18, 24 h) × 2 symbols × 2 horizons × 4 models, one row each at least.
    assert!(r["same_upto"].as_u64().unwrap() >= 64, "{r}");
    assert_eq!(
        r["later_differ"], true,
        "the changed ticks changed no later model: {r}"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_job_is_retried_with_backoff_ends_failed_and_the_pipeline_keeps_serving() {
    let dir = temp_dir("cryptoflow-jobfail");
    let (broker, brokers, topic) = common::broker_with_topic(&dir, 2);
    produce(&brokers, &topic, &ticks(3, 14 * HOUR), &dir);
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let token = "test-token-12345678";
    let log = dir.join("run.log");
    let mut c = common::run_cmd(&brokers, &topic, "2", &dir.join("wh"));
    c.args([
        "--http",
        &addr,
        "--bar-ms",
        "120000",
        "--horizons",
        "1,5",
        "--commit-interval-ms",
        "200",
        // The history is produced up front: no tick arrives after it, which
        // must not turn /api/health (read below) to "degraded".
        "--stale-after-ms",
        "600000",
        "--retrain-every-min",
        "240",
        "--job-attempts",
        "3",
        "--job-backoff-ms",
        "300",
        "--maintain-every-min",
        "0",
    ])
    .env("CRYPTOFLOW_INJECT_JOB_FAILURE", "retrain")
    .env("CRYPTOFLOW_ADMIN_TOKEN", token)
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let mut child = log_to(&mut c, &log).spawn().unwrap();

    let get = |path: &str| -> Option<Value> {
        let (status, body) = common::http_get(&addr, path).ok()?;
        (status == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    };
    // Both schedule points (4 h, 8 h) fail for good; the data goes on to 14 h.
    let jobs = wait_for(Duration::from_secs(120), || {
        let jobs = get("/api/jobs")?;
        let retrain = jobs
            .as_array()?
            .iter()
            .find(|j| j["name"] == "retrain")?
            .clone();
        (retrain["failed"].as_u64()? >= 2).then_some(retrain)
    });
    let Some(retrain) = jobs else {
        let _ = child.kill();
        panic!(
            "retrain never failed twice; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    assert_eq!(retrain["failing"], true, "{retrain}");
    let runs = get("/api/jobs/retrain/runs?limit=100").unwrap();
    let first: Vec<&Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["run_id"] == "retrain@2023-11-15T04:00:00Z")
        .collect();
    // Newest first: failed (3), retrying (2), running (2), retrying (1), running (1) …
    let ends: Vec<(&str, u64)> = first
        .iter()
        .filter(|r| r["state"] != "running")
        .map(|r| (r["state"].as_str().unwrap(), r["attempt"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        ends,
        [("failed", 3), ("retrying", 2), ("retrying", 1)],
        "{runs}"
    );
    for r in first.iter().filter(|r| r["state"] != "running") {
        assert!(
            r["error"].as_str().unwrap().contains("injected failure"),
            "{r}"
        );
    }
    // Backoff: each attempt starts at least half the (doubling) base delay after the last ended.
    let started = |n: u64| {
        first
            .iter()
            .find(|r| r["state"] == "running" && r["attempt"] == n)
            .unwrap()["started_at_ms"]
            .as_u64()
            .unwrap()
    };
    let ended = |n: u64| {
        first
            .iter()
            .find(|r| r["state"] == "retrying" && r["attempt"] == n)
            .unwrap()["ended_at_ms"]
            .as_u64()
            .unwrap()
    };
    assert!(started(2) >= ended(1) + 150, "{runs}");
    assert!(started(3) >= ended(2) + 300, "{runs}");

    // Still serving, past the failed schedule points, with the failures counted.
    let health = wait_for(Duration::from_secs(60), || {
        let h = get("/api/health")?;
        (h["stats"]["event_time_ms"].as_u64()? > START + 9 * HOUR).then_some(h)
    })
    .expect("event time never passed the failed retrains");
    assert!(
        health["stats"]["job_failures"].as_u64().unwrap() >= 2,
        "{health}"
    );
    assert_eq!(
        health["stats"]["jobs_failing"],
        serde_json::json!(["retrain"]),
        "{health}"
    );
    let preds = get("/api/predictions").unwrap();
    assert!(!preds.as_array().unwrap().is_empty());

    // The admin token guards manual runs.
    let post = |auth: Option<&str>| {
        let header = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("Authorization", h.as_str()))
            .collect();
        common::http_request(&addr, "POST", "/api/jobs/evaluate/run", &headers, "").unwrap()
    };
    assert_eq!(post(None).0, 401);
    assert_eq!(post(Some("wrong-token")).0, 401);
    let (status, body) = post(Some(token));
    assert_eq!(status, 200, "{body}");
    let done = wait_for(Duration::from_secs(60), || {
        let runs = get("/api/jobs/evaluate/runs")?;
        runs.as_array()?
            .iter()
            .find(|r| r["trigger"] == "manual" && r["state"] == "success")
            .cloned()
    });
    assert!(done.is_some(), "the manual evaluate never succeeded");

    terminate(&mut child);
    let c = counts(&dir.join("wh"));
    assert!(job(&c, "retrain", "failed") >= 2, "{c}");
    let errors = c["jobs"]["retrain"]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e.as_str().unwrap().contains("injected failure")),
        "{c}"
    );
    assert_eq!(c["model_versions"], 0, "{c}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM, then wait for the clean stop.
fn terminate(child: &mut std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped = wait_for(Duration::from_secs(60), || child.try_wait().ok().flatten());
    assert!(
        stopped.is_some_and(|s| s.success()),
        "the run did not stop cleanly on SIGTERM"
    );
}
