//! Bad input at the command line: clear errors, quickly, never a hang.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn unreachable_broker_is_a_one_line_error_naming_the_address() {
    let dir = common::temp_dir("cryptoflow-cli");
    let port = cryptoflow::broker::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let out = Command::new(common::BIN)
        .args(["run", "--brokers", &addr, "--no-http"])
        .arg("--data-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(error_lines[0].contains(&addr), "{stderr}");
}

#[test]
fn bad_flags_get_usage() {
    for args in [
        vec!["run", "--brokers", "x:1", "--workers", "0"],
        vec!["run", "--brokers", "x:1", "--horizons", "1,zero"],
        vec!["run", "--brokers", "x:1", "--http", "not-an-address"],
        vec!["run", "--brokers", "x:1", "--checkpoint-every", "-3"],
        vec!["run", "--brokers", "x:1", "--stop-grace-ms", "700000"],
        vec!["run", "--brokers", "x:1", "--stop-grace-ms", "soon"],
        vec!["run"],
        vec!["tables", "compact", "--target-file-mb", "0"],
        vec!["tables", "compact", "--min-files", "1"],
        vec!["launch-rockets"],
        vec!["simulate", "--brokers", "x:1", "--correlation", "1.5"],
        vec!["simulate", "--brokers", "x:1", "--symbols", "btc-usd"],
        vec!["simulate", "--brokers", "x:1", "--rate", "-3"],
        vec!["simulate", "--brokers", "x:1", "--symbol-count", "0"],
        vec!["replay", "--brokers", "x:1"],
        vec!["replay", "--brokers", "x:1", "--speed", "0", "f.csv"],
        vec![
            "replay",
            "--brokers",
            "x:1",
            "--speed",
            "2",
            "--max-speed",
            "f.csv",
        ],
        vec!["replay", "--brokers", "x:1", "--interval", "1mo", "f.csv"],
        vec!["replay", "--brokers", "x:1", "--format", "parquet", "f.csv"],
    ] {
        let out = Command::new(common::BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // clap's error names the problem and points at the usage.
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Usage") || stderr.contains("--help"),
            "{args:?}: {stderr}"
        );
    }
    let out = Command::new(common::BIN)
        .args(["run", "--brokers", "x:1", "-n", "2", "-p", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--process 2 must be below --processes 2")
    );
}

#[test]
fn compacting_an_unknown_table_is_a_one_line_error() {
    let dir = common::temp_dir("cryptoflow-cli-compact");
    let out = Command::new(common::BIN)
        .args(["tables", "compact", "bars", "nope", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: unknown table `nope` (tables: bars,"),
        "{stderr}"
    );
}
