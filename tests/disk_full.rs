//! A commit that cannot be made stops the run: the warehouse lives on a
//! small tmpfs (mounted by the test; the machines run tests as root), so
//! the disk fills up part-way through a bounded run. The run must exit
//! non-zero with a clear error naming the cause, leave every table readable
//! by the independent Python reader with nothing a clean run would not
//! have written (no half epoch, no row twice), and — once there is space
//! again — a restart must resume and end with tables equal to a clean
//! run's, row for row.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A tmpfs mounted at a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (as on the dev and CI machines): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, bytes: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remounting {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn du(dir: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_full_disk_stops_the_run_with_a_clear_error_and_a_restart_resumes_exactly() {
    let dir = common::temp_dir("cryptoflow-diskfull");
    let (_broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    common::simulate_history(&brokers, &topic, 60_000);
    let run = |wh: &Path| {
        common::bounded_run(&brokers, &topic, wh, "60000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let clean = dir.join("clean");
    common::assert_ok(&run(&clean), "clean run");
    let full_size = du(&clean);

    // A third of what the clean run needs: enough to create the tables and
    // commit a few epochs, not enough to finish.
    let wh = dir.join("wh");
    let tmpfs = Tmpfs::mount(&wh, (full_size / 3).max(1 << 20));
    let out = run(&wh);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.starts_with("Error: warehouse commit of the epoch ending at")
            && error.contains("No space left on device"),
        "the error should say which commit failed and why: {error}"
    );
    let partial = common::run_python(
        "check_subset_tables.py",
        &[clean.to_str().unwrap(), wh.to_str().unwrap()],
    );
    let partial: serde_json::Value = serde_json::from_str(partial.trim()).unwrap();
    let written: u64 = partial
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["rows"].as_u64().unwrap())
        .sum();
    let total: u64 = partial
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["clean_rows"].as_u64().unwrap())
        .sum();
    assert!(
        written > 0 && written < total,
        "some epochs, not all: {partial}"
    );

    // Space is back: the next start resumes where each table stopped.
    tmpfs.resize(4 * full_size + (64 << 20));
    let out = run(&wh);
    common::assert_ok(&out, "the run after space came back");
    let report = common::run_python(
        "check_same_tables.py",
        &[clean.to_str().unwrap(), wh.to_str().unwrap()],
    );
    let tables: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(tables["bars"]["rows"].as_u64().unwrap() > 1_000, "{tables}");
    drop(tmpfs);
    std::thread::sleep(Duration::from_millis(50));
    let _ = std::fs::remove_dir_all(&dir);
}
