//! Restarting from state snapshots when the newest one cannot be used: a
//! corrupt or truncated newest snapshot is reported and the previous one
//! is continued from, with every table still equal to a clean run's; an
//! intact snapshot of an unknown format stops the run with an error that
//! says what to do, writing nothing; `--from-snapshot none` replays the
//! topic instead; `cryptoflow state list` shows each file's status. A run
//! stopped by SIGTERM ends with a stop snapshot later than its interval
//! ones, and continues from it like a run that never stopped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::temp_dir;
use sha2::{Digest, Sha256};

fn run_args(brokers: &str, topic: &str, dir: &Path) -> Command {
    let mut c = common::bounded_run(brokers, topic, dir, "120000");
    c.stdout(Stdio::null());
    c
}

/// The epoch in a snapshot file's name.
fn epoch_of(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_string_lossy();
    name.trim_start_matches("snapshot-")
        .trim_end_matches(".cfstate")
        .parse()
        .unwrap()
}

/// Runs to the end on `dir`; returns stderr, asserting success.
fn finish(brokers: &str, topic: &str, dir: &Path, extra: &[&str]) -> String {
    let out = run_args(brokers, topic, dir).args(extra).output().unwrap();
    common::assert_ok(&out, "run");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `cryptoflow state list --json` of `data`: one object per snapshot,
/// newest first.
fn state_list(data: &Path) -> Vec<serde_json::Value> {
    let listed = Command::new(common::BIN)
        .args(["state", "list", "--json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    common::assert_ok(&listed, "state list");
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_and_an_unknown_format_stops_the_run() {
    let dir = temp_dir("cryptoflow-restart");
    let (broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    let ticks = common::simulated_ticks(9, 1_700_000_000_000, 30, 10.0);
    let ticks_path = dir.join("ticks.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ticks_path).unwrap());
    common::produce_logged(&brokers, &topic, &ticks, &mut file);
    drop(file);

    let clean = dir.join("clean");
    finish(&brokers, &topic, &clean, &[]);
    let clean_commits = common::commits(&clean);

    // Killed once a third of the commits and two snapshots are written.
    let victim = dir.join("victim");
    let mut child = run_args(&brokers, &topic, &victim)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(Duration::from_secs(120), || {
        let done = child.try_wait().unwrap().is_some();
        let far =
            common::commits(&victim) * 3 >= clean_commits && common::snapshots(&victim).len() >= 2;
        (done || far).then_some(())
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be killed mid-way"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let files = common::snapshots(&victim);
    assert!(files.len() >= 2, "{files:?}");
    let newest = files.last().unwrap().file_name().unwrap().to_owned();
    let previous = epoch_of(&files[files.len() - 2]);
    // Finished copies, compared with the clean run at the end in one
    // reading of it.
    let mut finished: Vec<PathBuf> = Vec::new();

    // A flipped byte and a truncation: reported, and the previous one used.
    for (name, damage) in [
        (
            "flipped",
            &(|b: &mut Vec<u8>| {
                let middle = b.len() / 2;
                b[middle] ^= 0x40;
            }) as &dyn Fn(&mut Vec<u8>),
        ),
        ("truncated", &|b: &mut Vec<u8>| b.truncate(b.len() - 100)),
    ] {
        let copy = dir.join(name);
        common::copy_dir(&victim, &copy);
        let path = copy.join("_state").join(&newest);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        let lines = state_list(&copy);
        assert!(
            lines[0]["status"].as_str().unwrap().starts_with("corrupt"),
            "{lines:?}"
        );
        assert_eq!(lines[1]["status"], "ok", "{lines:?}");
        assert_eq!(lines[1]["epoch_ms"], previous, "{lines:?}");

        let log = finish(&brokers, &topic, &copy, &[]);
        // Kept with the data for a failure's post-mortem.
        std::fs::write(dir.join(format!("{name}.log")), &log).unwrap();
        assert!(log.contains("corrupt"), "{name}: {log}");
        let restored = log
            .lines()
            .find(|l| l.contains("restored from snapshot"))
            .unwrap_or_else(|| panic!("{name}: no restore in\n{log}"));
        assert!(
            restored.contains(&format!("epoch={previous}")),
            "{name}: {restored}"
        );
        finished.push(copy);
    }

    // Intact, but a format this build does not know: an error, nothing written.
    let future = dir.join("future");
    common::copy_dir(&victim, &future);
    let path = future.join("_state").join(&newest);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&999u32.to_le_bytes());
    let body = bytes.len() - 32;
    let sum = Sha256::digest(&bytes[..body]);
    bytes[body..].copy_from_slice(&sum);
    std::fs::write(&path, bytes).unwrap();
    let before = common::commits(&future);
    let out = run_args(&brokers, &topic, &future).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a format 999 snapshot was accepted:\n{err}"
    );
    assert!(
        err.contains("format 999") && err.contains("--from-snapshot none"),
        "{err}"
    );
    assert_eq!(common::commits(&future), before, "a refused run wrote");

    // Told to, it rebuilds from the topic instead.
    let log = finish(&brokers, &topic, &future, &["--from-snapshot", "none"]);
    assert!(!log.contains("restored from snapshot"), "{log}");
    finished.push(future);

    // SIGTERM mid-way: the run goes on to a stop snapshot of its latest
    // state (a cut between the interval's), exits cleanly, and a restart
    // continues from that snapshot.
    let stopped = dir.join("stopped");
    let stop_log = dir.join("stopped.log");
    let mut child = run_args(&brokers, &topic, &stopped)
        .stderr(std::fs::File::create(&stop_log).unwrap())
        .spawn()
        .unwrap();
    common::wait_for(Duration::from_secs(120), || {
        let done = child.try_wait().unwrap().is_some();
        let far = common::commits(&stopped) * 3 >= clean_commits
            && !common::snapshots(&stopped).is_empty();
        (done || far).then_some(())
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be stopped mid-way"
    );
    let cadence = common::snapshots(&stopped)
        .iter()
        .map(|p| epoch_of(p))
        .max();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = common::finish(child, "the stopped run");
    let log = std::fs::read_to_string(&stop_log).unwrap();
    assert!(
        log.contains("stop snapshot written"),
        "{:?}\n{log}",
        out.status
    );
    let newest = state_list(&stopped).remove(0);
    assert_eq!(newest["kind"], "stop", "{newest}");
    let stop_epoch = newest["epoch_ms"].as_u64().unwrap();
    assert!(
        cadence.is_none_or(|c| stop_epoch > c),
        "the stop snapshot at {stop_epoch} is not after the interval's at {cadence:?}"
    );
    let log = finish(&brokers, &topic, &stopped, &[]);
    assert!(
        log.lines()
            .any(|l| l.contains("restored from snapshot")
                && l.contains(&format!("epoch={stop_epoch}"))),
        "not restored from the stop snapshot at {stop_epoch}:\n{log}"
    );
    finished.push(stopped);
    common::check_tables(&clean, &finished, &ticks_path);

    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
