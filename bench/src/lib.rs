//! What several benchmarks share.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use cryptoflow::kafka::{KafkaReader, StartFrom};

/// The `cryptoflow` binary built next to the running benchmark (the
/// benchmarks that drive the real program run it as a user would).
pub fn cryptoflow_bin() -> anyhow::Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name("cryptoflow");
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release` first",
            bin.display()
        );
    }
    Ok(bin)
}

/// The bare consumer ceiling on `workers` threads: each reads its share
/// of the partitions to their end with the pipeline's reader and decodes
/// every record as the run's source does: the borrowed scanner
/// (`decode_fast_ref`), and the reference decoder for what it declines
/// (historical times: nothing is in the future).
/// (records read, rejects, seconds). A reader that has not reached the
/// end of its partitions in ten minutes is an error, not a hang.
pub fn consumer_ceiling(
    brokers: &str,
    topic: &str,
    parts: i32,
    workers: usize,
) -> anyhow::Result<(u64, u64, f64)> {
    let start = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|i| {
            let (brokers, topic) = (brokers.to_string(), topic.to_string());
            std::thread::spawn(move || -> anyhow::Result<(u64, u64)> {
                use dataflows::source::{RecordReader, SourceEvent};
                let mut reader = KafkaReader::new(
                    &brokers,
                    &topic,
                    parts,
                    i,
                    workers,
                    StartFrom::Earliest,
                    true,
                )?;
                let limits = dataflows::tick::ValidationLimits {
                    now_ms: u64::MAX / 2,
                    max_future_ms: 0,
                };
                let (mut records, mut rejects) = (0, 0);
                let mut events = Vec::with_capacity(4096);
                let deadline = Instant::now() + std::time::Duration::from_secs(600);
                while !reader.finished() {
                    if Instant::now() > deadline {
                        bail!("consumer {i} did not reach the end of its partitions in 10 min");
                    }
                    events.clear();
                    reader.poll(4096, &mut events).map_err(anyhow::Error::msg)?;
                    if events.is_empty() {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    for e in &events {
                        if let SourceEvent::Record(r) = e {
                            records += 1;
                            use dataflows::tick::{decode_fast_ref, decode_reference};
                            let rejected = match decode_fast_ref(&r.payload, r.pos, limits) {
                                Some(tick) => {
                                    std::hint::black_box(tick);
                                    false
                                }
                                None => decode_reference(&r.payload, r.pos, limits).is_err(),
                            };
                            rejects += u64::from(rejected);
                        }
                    }
                }
                Ok((records, rejects))
            })
        })
        .collect();
    let (mut records, mut rejects) = (0, 0);
    for t in threads {
        let (r, j) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a consumer thread panicked"))??;
        records += r;
        rejects += j;
    }
    Ok((records, rejects, start.elapsed().as_secs_f64()))
}

/// A `kB` field of `/proc/<pid>/status` in MB (`pid` "self" for this
/// process), e.g. `VmHWM:` (peak resident) or `VmRSS:`. None when the
/// process is gone or the field is missing.
pub fn status_mb(pid: &str, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
