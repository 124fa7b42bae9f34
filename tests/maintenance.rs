//! Table maintenance on real Delta tables on disk, written by the
//! warehouse from simulated pipeline output and read back by Python's
//! `deltalake`: `cryptoflow tables compact` leaves every table's rows and
//! committed epoch (`txn`) as they were with fewer files, and automatic
//! checkpoints appear every N versions and carry the whole table state.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cryptoflow::warehouse::{catalog, read, Warehouse};
use dataflows::harness::simulated_epochs;
use serde_json::Value;

/// Four minutes before 2025-11-25 00:00 UTC: eight simulated minutes span
/// two date partitions.
const START: u64 = 1_764_028_800_000 - 240_000;

/// Eight minutes of simulated pipeline output committed as `epochs` epochs;
/// with `clean_stop`, closed as a run that stops cleanly closes it.
fn write_warehouse(dir: &Path, epochs: usize, checkpoint_every: u64, clean_stop: bool) {
    let epochs = simulated_epochs(7, START, 480_000, 3.0, epochs).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut wh = Warehouse::open(dir)
            .await
            .unwrap()
            .with_checkpoint_every(checkpoint_every);
        for epoch in &epochs {
            wh.commit(epoch).await.unwrap();
        }
        if clean_stop {
            wh.checkpoint_written().await;
        }
    });
}

/// Every row of `name` as canonical JSON, sorted (a multiset).
fn row_set(root: &Path, name: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(read::row_set(root, name)).unwrap()
}

fn committed_epochs(root: &Path) -> Vec<(String, Option<i64>)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(read::list(root))
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.committed_epoch))
        .collect()
}

fn compact_json(root: &Path) -> Vec<Value> {
    let out = Command::new(common::BIN)
        .args([
            "tables",
            "compact",
            "--min-files",
            "2",
            "--json",
            "--data-dir",
        ])
        .arg(root)
        .output()
        .unwrap();
    common::assert_ok(&out, "tables compact");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn compaction_keeps_every_row_and_epoch_with_fewer_files() {
    let dir = common::temp_dir("cryptoflow-compact");
    let (before, after) = (dir.join("before"), dir.join("after"));
    write_warehouse(&before, 24, 0, false);
    common::copy_dir(&before, &after);

    let reports = compact_json(&after);
    assert_eq!(reports.len(), catalog::names().len(), "{reports:?}");
    let report = |name: &str| {
        reports
            .iter()
            .find(|r| r["table"] == name)
            .unwrap_or_else(|| panic!("no report for {name}"))
            .clone()
    };
    let bars = report("bars");
    assert_eq!(bars["partitions"], 2, "{bars}");
    assert_eq!(bars["files_after"], 2, "{bars}");
    assert!(bars["files_before"].as_u64().unwrap() >= 24, "{bars}");
    for name in ["bars", "features", "predictions", "scores"] {
        let r = report(name);
        assert!(
            r["files_after"].as_u64() < r["files_before"].as_u64(),
            "{r}"
        );
    }

    // Rust side: the same rows and the same committed epochs.
    for name in catalog::names() {
        assert_eq!(row_set(&before, name), row_set(&after, name), "{name}");
    }
    assert_eq!(committed_epochs(&before), committed_epochs(&after));

    // Independent side: Python's deltalake sees the same rows and txn
    // versions, in fewer files, after an OPTIMIZE commit.
    let py: Value = serde_json::from_str(
        common::run_python(
            "check_same_tables.py",
            &[before.to_str().unwrap(), after.to_str().unwrap()],
        )
        .trim(),
    )
    .unwrap();
    // job_runs holds wall-clock times; the Python checker leaves it out.
    for name in catalog::names().into_iter().filter(|n| *n != "job_runs") {
        let (r, t) = (report(name), &py[name]);
        assert_eq!(t["files_a"], r["files_before"], "{name}: {t} {r}");
        assert_eq!(t["files_b"], r["files_after"], "{name}: {t} {r}");
        if r["partitions"].as_u64() > Some(0) {
            assert_eq!(t["last_operation_b"], "OPTIMIZE", "{name}: {t}");
        }
    }
    assert!(py["bars"]["txn"].as_i64().is_some(), "{py}");
    assert!(py["bars"]["rows"].as_u64().unwrap() > 2_000, "{py}");

    // Nothing is due any more: a second run changes nothing.
    for r in compact_json(&after) {
        let first = report(r["table"].as_str().unwrap());
        assert_eq!(r["partitions"], 0, "{r}");
        assert_eq!(r["version"], first["version"], "{r}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn checkpoint_files(log: &Path) -> BTreeSet<String> {
    std::fs::read_dir(log)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect()
}

#[test]
fn checkpoints_every_n_versions_carry_the_whole_table() {
    let dir = common::temp_dir("cryptoflow-checkpoint");
    let (plain, checkpointed) = (dir.join("plain"), dir.join("checkpointed"));
    write_warehouse(&plain, 10, 0, false);
    write_warehouse(&checkpointed, 10, 5, false);

    let log = checkpointed.join("bars/_delta_log");
    assert_eq!(
        checkpoint_files(&log),
        BTreeSet::from([
            "00000000000000000005.checkpoint.parquet".to_string(),
            "00000000000000000010.checkpoint.parquet".to_string(),
        ])
    );
    let last = std::fs::read_to_string(log.join("_last_checkpoint")).unwrap();
    assert!(last.contains("\"version\":10"), "{last}");
    assert!(checkpoint_files(&plain.join("bars/_delta_log")).is_empty());
    common::run_python(
        "check_same_tables.py",
        &[plain.to_str().unwrap(), checkpointed.to_str().unwrap()],
    );

    // The checkpoint alone carries the files and the txn: without the
    // commits it covers, both readers still see the same table.
    for v in 0..=10 {
        std::fs::remove_file(log.join(format!("{v:020}.json"))).unwrap();
    }
    common::run_python(
        "check_same_tables.py",
        &[plain.to_str().unwrap(), checkpointed.to_str().unwrap()],
    );
    assert_eq!(row_set(&plain, "bars"), row_set(&checkpointed, "bars"));
    assert_eq!(committed_epochs(&plain), committed_epochs(&checkpointed));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_clean_stop_checkpoints_every_table_it_wrote_to() {
    let dir = common::temp_dir("cryptoflow-stop-checkpoint");
    let (plain, stopped) = (dir.join("plain"), dir.join("stopped"));
    write_warehouse(&plain, 7, 0, true);
    write_warehouse(&stopped, 7, 5, true);

    // `--checkpoint-every 0` means never, at a stop too.
    assert!(checkpoint_files(&plain.join("bars/_delta_log")).is_empty());
    // Version 5 by the schedule, version 7 (the last commit) by the stop.
    let log = stopped.join("bars/_delta_log");
    assert_eq!(
        checkpoint_files(&log),
        BTreeSet::from([
            "00000000000000000005.checkpoint.parquet".to_string(),
            "00000000000000000007.checkpoint.parquet".to_string(),
        ])
    );
    // A table the run never wrote to gets none.
    assert!(checkpoint_files(&stopped.join("rejects/_delta_log")).is_empty());
    // The next start needs no commit the stop's checkpoint covers.
    for v in 0..=7 {
        std::fs::remove_file(log.join(format!("{v:020}.json"))).unwrap();
    }
    common::run_python(
        "check_same_tables.py",
        &[plain.to_str().unwrap(), stopped.to_str().unwrap()],
    );
    assert_eq!(row_set(&plain, "bars"), row_set(&stopped, "bars"));
    assert_eq!(committed_epochs(&plain), committed_epochs(&stopped));
    let _ = std::fs::remove_dir_all(&dir);
}
