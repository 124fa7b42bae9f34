//! `cryptoflow replay` through the real binary into a real broker, read back
//! with an independent client (Python kafka-python): a Binance klines dump
//! (with a 2025 microsecond row and an empty bar), a generic OHLCV CSV and
//! JSONL ticks; bad rows; the progress bar on a terminal and not in a pipe.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const KLINES: &str = "\
1704067200000,42283.58000000,42298.62000000,42261.02000000,42266.00000000,35.92724000,1704067259999,1518765.92,1396,16.2,684936.8,0
1704067260000,42266.00000000,42266.00000000,42266.00000000,42266.00000000,0.00000000,1704067319999,0,0,0,0,0
1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.92000000,8.21827000,1735689659999999,769139.5,1322,5.2,486500.3,0
";

const OHLCV: &str = "\
Timestamp,Symbol,Open,High,Low,Close,Volume,Trades
2024-03-01T00:00:00Z,ETHUSDT,3340.10,3360.00,3330.55,3355.20,120.5,900
2024-03-01T01:00:00Z,ETHUSDT,3355.20,3356.00,3301.00,3310.75,98.25,800
";

const JSONL: [&str; 3] = [
    r#"{"symbol":"SOL-USD","exchange":"coinbase","ts":1732492800123,"price":"231.07","size":"1.5","side":"buy","trade_id":"9001"}"#,
    r#"{"symbol":"SOL-USD","exchange":"coinbase","ts":1732492800456,"price":231.08,"size":0.25,"side":"sell"}"#,
    r#"{"symbol":"XRP-USD","exchange":"kraken","ts":1732492801000,"price":"1.4321","size":"100","side":"buy","trade_id":77}"#,
];

fn replay(brokers: &str, topic: &str, args: &[&str], files: &[&Path]) -> Output {
    Command::new(common::BIN)
        .args(["replay", "--brokers", brokers, "--topic", topic])
        .args(args)
        .args(files)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every record on the topic, read by kafka-python: (key, partition, value).
fn read_back(brokers: &str, topic: &str, expected: usize) -> Vec<(String, i64, Value)> {
    common::run_python("read_topic.py", &[brokers, topic, &expected.to_string()])
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            let value = r["value"].as_str().unwrap().to_string();
            (
                r["key"].as_str().unwrap().to_string(),
                r["partition"].as_i64().unwrap(),
                Value::String(value),
            )
        })
        .collect()
}

/// A decimal string as an integer count of 1e-10 units (exact for these fixtures).
fn units(s: &str) -> u128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<10}");
    int.parse::<u128>().unwrap() * 10_000_000_000 + frac[..10].parse::<u128>().unwrap()
}

#[test]
fn klines_ohlcv_and_jsonl_files_become_the_right_ticks() {
    let dir = common::temp_dir("cryptoflow-replay");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    let klines = dir.join("BTCUSDT-1m-2024-01-01.csv");
    std::fs::write(&klines, KLINES).unwrap();
    let ohlcv = dir.join("eth-hourly.csv");
    std::fs::write(&ohlcv, OHLCV).unwrap();
    let jsonl = dir.join("ticks.jsonl");
    std::fs::write(
        &jsonl,
        format!("{}\n{}\n\n{}\n", JSONL[0], JSONL[1], JSONL[2]),
    )
    .unwrap();

    let out = replay(&brokers, &topic, &[], &[&klines, &ohlcv, &jsonl]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Piped stderr: no progress bar.
    assert!(!stderr.contains("rows/s"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], 3 + 2 + 3, "{summary}");
    assert_eq!(summary["ticks"], 2 * 4 + 2 * 4 + 3, "{summary}");
    assert_eq!(summary["empty_bars"], 1, "{summary}");
    assert_eq!(summary["delivered"], 19, "{summary}");

    let records = read_back(&brokers, &topic, 19);
    assert_eq!(records.len(), 19);
    let mut partition_of: BTreeMap<&str, i64> = BTreeMap::new();
    let mut ticks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut raw = Vec::new();
    for (key, partition, value) in &records {
        // Keyed by symbol: one partition per symbol.
        assert_eq!(*partition_of.entry(key).or_insert(*partition), *partition);
        let text = value.as_str().unwrap();
        raw.push(text.to_string());
        let tick: Value = serde_json::from_str(text).unwrap();
        assert_eq!(tick["symbol"].as_str(), Some(key.as_str()));
        ticks.entry(key.clone()).or_default().push(tick);
    }
    // JSONL lines go through byte for byte.
    for line in JSONL {
        assert_eq!(raw.iter().filter(|r| *r == line).count(), 1, "{line}");
    }

    // Binance: a down bar as open, high, low, close at fixed times in the bar,
    // the volume split exactly, the empty bar gone, the µs row read as ms.
    let btc = &ticks["BTC-USDT"];
    assert_eq!(btc.len(), 8);
    let bar = |v: &[Value], open_ms: u64| -> Vec<Value> {
        let mut b: Vec<Value> = v
            .iter()
            .filter(|t| {
                t["trade_id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{open_ms}-"))
            })
            .cloned()
            .collect();
        b.sort_by_key(|t| t["ts"].as_u64());
        b
    };
    let first = bar(btc, 1_704_067_200_000);
    let field = |b: &[Value], f: &str| -> Vec<String> {
        b.iter()
            .map(|t| match &t[f] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    };
    assert_eq!(
        field(&first, "price"),
        ["42283.58", "42298.62", "42261.02", "42266"]
    );
    assert_eq!(
        field(&first, "ts"),
        [
            "1704067200000",
            "1704067220000",
            "1704067240000",
            "1704067259999"
        ]
    );
    assert_eq!(field(&first, "side"), ["sell", "buy", "sell", "buy"]);
    assert_eq!(field(&first, "exchange"), ["binance"; 4]);
    let volume: u128 = field(&first, "size").iter().map(|s| units(s)).sum();
    assert_eq!(volume, units("35.92724000"));
    let micros = bar(btc, 1_735_689_600_000);
    assert_eq!(micros.len(), 4);
    assert_eq!(micros[3]["ts"], 1_735_689_659_999u64);
    assert_eq!(
        field(&micros, "price"),
        ["93576", "93537.5", "93610.93", "93610.92"]
    );

    // Generic OHLCV: symbol column mapped to BTC-USDT style, 1 h inferred.
    let eth = &ticks["ETH-USDT"];
    assert_eq!(eth.len(), 8);
    let second = bar(eth, 1_709_254_800_000);
    assert_eq!(
        field(&second, "price"),
        ["3355.2", "3356", "3301", "3310.75"]
    );
    assert_eq!(second[3]["ts"], 1_709_254_800_000u64 + 3_600_000 - 1);
    assert_eq!(field(&second, "exchange"), ["replay"; 4]);
    let volume: u128 = field(&second, "size").iter().map(|s| units(s)).sum();
    assert_eq!(volume, units("98.25"));
}

#[test]
fn a_bad_row_names_file_and_line_and_can_be_skipped() {
    let dir = common::temp_dir("cryptoflow-replay-bad");
    let (_broker, brokers, _) = common::broker_with_topic(&dir, 1);
    // A topic replay creates itself, with --partitions.
    let topic = common::unique("replayed");
    let bad = dir.join("ETHBTC-1m-2024-01-01.csv");
    std::fs::write(
        &bad,
        "1704067200000,0.05300,0.05310,0.05290,0.05305,120.5,1704067259999,0,0,0,0,0\n\
         1704067260000,0.05305,abc,0.05290,0.05300,80,1704067319999,0,0,0,0,0\n\
         1704067320000,0.05300,0.05301,0.05280,0.05281,99,1704067379999,0,0,0,0,0\n",
    )
    .unwrap();

    let out = replay(&brokers, &topic, &["--partitions", "3"], &[&bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(
        errors,
        [format!(
            "Error: {}:2: high: `abc` is not a non-negative decimal number",
            bad.display()
        )],
        "{stderr}"
    );
    assert_eq!(
        cryptoflow::kafka::partition_count(&brokers, &topic).unwrap(),
        3
    );

    let out = replay(&brokers, &topic, &["--skip-bad-rows"], &[&bad]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 bad row(s) skipped"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(summary["ticks"], 8, "{summary}");
    // The first run delivered the row before the bad one; the second, both good rows.
    let records = read_back(&brokers, &topic, 4 + 8);
    assert_eq!(records.len(), 12);
    assert!(records.iter().all(|(k, _, _)| k == "ETH-BTC"));

    let jsonl = dir.join("bad.jsonl");
    std::fs::write(
        &jsonl,
        format!("{}\n{}\n", JSONL[0], JSONL[1].replace("SOL-USD", "sol-usd")),
    )
    .unwrap();
    let out = replay(&brokers, &topic, &[], &[&jsonl]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Error: {}:2: bad_symbol:", jsonl.display())),
        "{stderr}"
    );

    // A file that cannot be replayed at all fails before anything is sent.
    let out = replay(&brokers, &topic, &[], &[&dir.join("prices.csv")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prices.csv"));
}

#[test]
fn progress_bar_only_on_a_terminal() {
    // `script` (util-linux, in every Debian base system) provides the pty.
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "`script` from util-linux is needed for the pseudo-terminal check"
    );
    let dir = common::temp_dir("cryptoflow-replay-pty");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 2);
    let klines = dir.join("BTCUSDT-1m-2024-01-01.csv");
    std::fs::write(&klines, KLINES).unwrap();
    let cmd = format!(
        "{} replay --brokers {brokers} --topic {topic} {}",
        common::BIN,
        klines.display()
    );
    // `script` runs the command on a pseudo-terminal and copies what it drew.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("3/3 rows"), "{screen}");
    assert!(
        screen.contains("rows/s") && screen.contains("ETA"),
        "{screen}"
    );

    let piped = replay(&brokers, &topic, &[], &[&klines]);
    assert!(piped.status.success());
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("rows/s"));
}

#[test]
fn a_paced_replay_stops_on_sigterm_and_delivers_what_it_sent() {
    let dir = common::temp_dir("cryptoflow-replay-stop");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 2);
    // Two ticks an hour apart at real-time speed: the second is never due.
    let file = dir.join("slow.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            JSONL[0],
            JSONL[0].replace("1732492800123", "1732496400123")
        ),
    )
    .unwrap();
    let child = Command::new(common::BIN)
        .args([
            "replay",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--speed",
            "1",
        ])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first tick is on the topic, ask the replay to stop.
    read_back(&brokers, &topic, 1);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    common::assert_ok(&out, "replay");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert_eq!(summary["ticks"], 1, "{summary}");
    assert_eq!(summary["delivered"], 1, "{summary}");
}
