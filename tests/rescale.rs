//! A snapshot outlives the shape of the run that wrote it and the records
//! before it. A run on 2 workers is killed (SIGKILL) once it has written a
//! snapshot; copies of its warehouse and state are then finished by
//! - 1 worker, 4 workers, and 2 processes of 1 worker each (rescaling);
//! - 2 workers reading a topic on another broker whose records before the
//!   snapshot's offsets are junk (wrong prices, broken JSON) and the rest
//!   the same records at the same offsets (retention: what the snapshot
//!   covers was never available to the restarted process; tansu 0.6
//!   cannot delete records, and junk would show in the tables if read).
//!
//! Each restart must start from the snapshot, and every table must equal,
//! as a multiset of rows, a clean uninterrupted run's (Python
//! `deltalake`, bars also checked against the ticks).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use cryptoflow::state::Status;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const EPOCH_MS: &str = "300000";

/// A bounded run on `workers` into `dir` with its stderr captured.
fn bounded(brokers: &str, topic: &str, workers: &str, dir: &Path) -> std::process::Command {
    let mut c = common::bounded_run_on(brokers, topic, workers, dir, EPOCH_MS);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// One record of a topic as `tests/py/read_topic.py` prints it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<String>,
    value: String,
}

fn read_topic(brokers: &str, topic: &str, expected: usize) -> Vec<Record> {
    common::run_python("read_topic.py", &[brokers, topic, &expected.to_string()])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What stands in for a record the restarted run must never read: the
/// same tick at half again its price, or broken JSON.
fn junk(r: &Record) -> String {
    match serde_json::from_str::<serde_json::Value>(&r.value) {
        Ok(mut v) if r.offset % 97 != 0 && v["price"].is_number() => {
            v["price"] = serde_json::json!(v["price"].as_f64().unwrap() * 1.5);
            v.to_string()
        }
        _ => "{\"junk\":".into(),
    }
}

/// Writes `records` to `topic` on `brokers`, each into its own partition,
/// in order.
fn produce_to_partitions(brokers: &str, topic: &str, records: &[(i32, Option<String>, String)]) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for (partition, key, value) in records {
        let mut record = BaseRecord::<str, str>::to(topic)
            .partition(*partition)
            .payload(value.as_str());
        if let Some(k) = key {
            record = record.key(k.as_str());
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

#[test]
fn a_two_worker_snapshot_resumes_on_other_worker_and_process_counts_and_without_the_topic_start() {
    let dir = common::temp_dir("cryptoflow-rescale");
    let (broker, brokers, topic) = common::broker_with_topic(&dir, 4);
    let start_ms = 1_700_000_000_000;
    let ticks = common::simulated_ticks(13, start_ms, 30, 20.0);
    let ticks_path = dir.join("ticks.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&ticks_path).unwrap());
    common::produce_logged(&brokers, &topic, &ticks, &mut file);
    drop(file);
    let producer = cryptoflow::kafka::TickProducer::new(&brokers, &topic).unwrap();
    for symbol in ["BTC-USD", "SOL-USD", "DOGE-USD"] {
        producer.send(symbol, b"{\"broken\":").unwrap();
    }
    producer.finish(Duration::from_secs(60)).unwrap();
    let records = ticks.len() + 3;

    let clean = dir.join("clean");
    common::finish(
        bounded(&brokers, &topic, "2", &clean).spawn().unwrap(),
        "the clean run",
    );
    let clean_commits = common::commits(&clean);

    // The victim: killed on 2 workers once it has a snapshot of at least
    // 12 minutes of history, so that every partition resumes more than a
    // producer batch (10,000 records) from its start.
    let victim = dir.join("victim");
    let mut child = bounded(&brokers, &topic, "2", &victim)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(Duration::from_secs(120), || {
        let done = child.try_wait().unwrap().is_some();
        let far = cryptoflow::state::list(&victim.join("_state"))
            .is_ok_and(|l| l.first().is_some_and(|s| s.epoch >= start_ms + 12 * 60_000));
        (done || far).then_some(())
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it wrote a snapshot"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = common::commits(&victim);
    assert!(killed_at < clean_commits, "{killed_at} of {clean_commits}");
    let newest = cryptoflow::state::list(&victim.join("_state")).unwrap();
    let Status::Ok(header) = &newest[0].status else {
        panic!("{newest:?}")
    };
    let offsets = header.offsets.clone();
    assert!(
        offsets.values().all(|o| *o > 10_000),
        "every partition more than a batch in: {offsets:?}"
    );

    // `logs[0]` is process 0's. The tables are compared at the end, all
    // against the clean run's in one reading of it.
    let mut finished = Vec::new();
    let mut check = |name: &str, logs: &[&Output], data: &Path| {
        let first = String::from_utf8_lossy(&logs[0].stderr);
        assert!(
            first.contains("restored from snapshot"),
            "{name} did not start from the snapshot:\n{first}"
        );
        for log in logs {
            let log = String::from_utf8_lossy(&log.stderr);
            assert!(
                !log.contains("reading the partition from its start")
                    && !log.contains("never delivered"),
                "{name} did not resume at the snapshot's offsets:\n{log}"
            );
        }
        assert!(common::commits(data) > killed_at, "{name} wrote nothing");
        finished.push(data.to_path_buf());
    };

    // Rescaling: 1 and 4 workers, then 2 processes of 1 worker.
    for workers in ["1", "4"] {
        let data = dir.join(format!("w{workers}"));
        common::copy_dir(&victim, &data);
        let out = common::finish(
            bounded(&brokers, &topic, workers, &data).spawn().unwrap(),
            &format!("the restart on {workers} workers"),
        );
        check(&format!("{workers} workers"), &[&out], &data);
    }
    let data = dir.join("p2");
    common::copy_dir(&victim, &data);
    let hostfile = common::two_process_hostfile(&dir);
    let member = |index: &str, data: &Path| {
        let mut c = bounded(&brokers, &topic, "1", data);
        c.args(["-n", "2", "-p", index, "--hostfile"])
            .arg(&hostfile);
        c.spawn().unwrap()
    };
    let second = member("1", &dir.join("p2-process1"));
    let first = common::finish(member("0", &data), "process 0 of the restart");
    let second = common::finish(second, "process 1 of the restart");
    check("2 processes", &[&first, &second], &data);

    // Retention: the same topic name on another broker, junk before the
    // snapshot's offsets and the same records from them on.
    let original = read_topic(&brokers, &topic, records);
    assert_eq!(original.len(), records);
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    for r in original {
        by_partition.entry(r.partition).or_default().push(r);
    }
    // (partition, key, value) in offset order per partition.
    let mut rewritten = Vec::new();
    for (p, mut list) in by_partition {
        list.sort_by_key(|r| r.offset);
        assert!(
            list.iter().enumerate().all(|(i, r)| r.offset == i as i64),
            "partition {p}: offsets are not 0, 1, 2, …"
        );
        for r in list {
            let value = if r.offset < offsets[&p] {
                junk(&r)
            } else {
                r.value.clone()
            };
            rewritten.push((p, r.key, value));
        }
    }
    let other_dir = dir.join("other-broker");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (other, other_brokers) = common::broker(&other_dir);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(cryptoflow::kafka::ensure_topic(&other_brokers, &topic, 4))
        .unwrap();
    produce_to_partitions(&other_brokers, &topic, &rewritten);
    // Every record at the offset it had (tansu's high watermark is not
    // the end of the partition, so the topic is read back).
    let mut got = read_topic(&other_brokers, &topic, records);
    got.sort_by_key(|r| (r.partition, r.offset));
    let written: Vec<(i32, i64, &str)> = got
        .iter()
        .map(|r| (r.partition, r.offset, r.value.as_str()))
        .collect();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let want: Vec<(i32, i64, &str)> = rewritten
        .iter()
        .map(|(p, _, value)| {
            let offset = next.entry(*p).or_default();
            *offset += 1;
            (*p, *offset - 1, value.as_str())
        })
        .collect();
    assert!(written == want, "the rewritten topic is not as written");

    let data = dir.join("retention");
    common::copy_dir(&victim, &data);
    let out = common::finish(
        bounded(&other_brokers, &topic, "2", &data).spawn().unwrap(),
        "the restart on the topic without its start",
    );
    check("the topic without its start", &[&out], &data);

    common::check_tables(&clean, &finished, &ticks_path);

    drop(other);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
