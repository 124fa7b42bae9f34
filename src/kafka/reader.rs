//! The reader of one worker's partitions, the dataflow source's
//! [`RecordReader`] over Kafka.
//!
//! Manual partition assignment (no consumer group, no rebalancing): worker
//! `index` of `peers` reads the partitions `p` with `p % peers == index`
//! ([`owns_partition`]). It hands records over with their position
//! (partition, offset) and reports end-of-partition as progress; event time
//! is the dataflow's business. It must never commit or store offsets:
//! restarts start at `--from`, or, from a snapshot, a little before each
//! partition's resume offset, checked (see [`KafkaReader::seek`]), the
//! source skipping what the snapshot holds; the warehouse's Delta `txn`
//! versions say what is already written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dataflows::source::{owns_partition, Record, RecordReader, SourceEvent};
use dataflows::tick::Position;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{base_config, Result};

/// Where a reader starts in each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The first offset still in the partition.
    Earliest,
    /// Only records produced after the reader starts.
    Latest,
}

/// Consumer context that logs client errors through `tracing`, except the
/// end-of-partition events we ask for (they are progress, not errors).
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::error!(error = %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// How far before a resume offset a restored partition is read from: the
/// most records a producer batch holds (`batch.num.messages` of ours and
/// librdkafka's default). See [`KafkaReader::seek`].
pub const RESUME_MARGIN: i64 = 10_000;

/// How long the check of the resume positions may take before a partition
/// it has not confirmed is read from its start.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// The reader of one worker's partitions.
pub struct KafkaReader {
    consumer: Option<BaseConsumer<ReaderContext>>,
    brokers: String,
    topic: String,
    /// Where each partition is read from.
    starts: BTreeMap<i32, Offset>,
    /// The resume offset of each restored partition, to check before the
    /// first fetch (see [`KafkaReader::seek`]).
    resume: BTreeMap<i32, i64>,
    /// Whether the partitions are assigned yet: not before the first poll,
    /// so a seek before it decides where the first fetch starts.
    assigned: bool,
    partitions: Vec<i32>,
    /// Partitions whose end was reached with nothing read since.
    at_end: BTreeSet<i32>,
    /// Stop once every partition reached its end (bounded replay).
    until_end: bool,
}

impl KafkaReader {
    /// Assigns worker `index` of `peers` its share of `num_partitions`.
    pub fn new(
        brokers: &str,
        topic: &str,
        num_partitions: i32,
        index: usize,
        peers: usize,
        from: StartFrom,
        until_end: bool,
    ) -> Result<Self> {
        let partitions: Vec<i32> = (0..num_partitions)
            .filter(|p| owns_partition(*p, index, peers))
            .collect();
        if partitions.is_empty() {
            return Ok(KafkaReader {
                consumer: None,
                brokers: brokers.to_string(),
                topic: topic.to_string(),
                starts: BTreeMap::new(),
                resume: BTreeMap::new(),
                assigned: false,
                partitions,
                at_end: BTreeSet::new(),
                until_end,
            });
        }
        let consumer = consumer(brokers, until_end)?;
        let offset = match from {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => Offset::End,
        };
        let starts: BTreeMap<i32, Offset> = partitions.iter().map(|p| (*p, offset)).collect();
        Ok(KafkaReader {
            consumer: Some(consumer),
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            starts,
            resume: BTreeMap::new(),
            assigned: false,
            partitions,
            at_end: BTreeSet::new(),
            until_end,
        })
    }
}

/// How long the broker may hold a fetch that finds no new record, ms, in
/// a live run. Kafka answers a waiting fetch as soon as a record arrives
/// (`fetch.min.bytes` 1), so there this only spaces out the fetches of an
/// idle consumer. tansu 0.6 holds such a fetch for the whole wait, so a
/// record produced meanwhile waits for it: at 50 ms a live bar's best
/// prediction reached `/api/stream` 105 ms (p50) after its frontier could
/// pass, at 10 ms 48 ms (`bench latency`, README "Live latency"). Below
/// 10 ms an idle run costs tansu more than it gains (5 ms: 7% of a core
/// against 3.6% at 10 and 1.7% at 50, with an empty topic of 8 partitions).
const LIVE_FETCH_WAIT_MS: &str = "10";

/// The same for a bounded run (`--until-end`, a backtest), which reads
/// what is already there: over 1M ticks from tansu it ran 11% faster with
/// 50 ms than with 10 (8.24 s against 9.13 s, four runs each).
const REPLAY_FETCH_WAIT_MS: &str = "50";

/// A consumer that reads where it is told, never commits and reports each
/// partition's end; `until_end`: a bounded run's.
fn consumer(brokers: &str, until_end: bool) -> Result<BaseConsumer<ReaderContext>> {
    let fetch_wait = if until_end {
        REPLAY_FETCH_WAIT_MS
    } else {
        LIVE_FETCH_WAIT_MS
    };
    Ok(base_config(brokers)
        .set("group.id", "cryptoflow")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", fetch_wait)
        .set("queued.min.messages", "200000")
        .create_with_context(ReaderContext)?)
}

/// Where to read each restored partition from: [`RESUME_MARGIN`] records
/// before its resume offset if a fetch there really starts at or before
/// it, else from its start. A second consumer fetches once at each such
/// position and looks at the first record (or the end) it gets.
fn checked_starts(
    brokers: &str,
    topic: &str,
    resume: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, Offset>> {
    let probe = consumer(brokers, false)?;
    let at = |offset: i64| (offset - RESUME_MARGIN).max(0);
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in resume {
        tpl.add_partition_offset(topic, *p, Offset::Offset(at(*offset)))?;
    }
    probe.assign(&tpl)?;
    let mut first: BTreeMap<i32, Option<i64>> = BTreeMap::new();
    let deadline = std::time::Instant::now() + PROBE_LIMIT;
    while first.len() < resume.len() && std::time::Instant::now() < deadline {
        match probe.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                first.entry(m.partition()).or_insert(Some(m.offset()));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                first.entry(p).or_insert(None);
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    Ok(resume
        .iter()
        .map(|(p, offset)| {
            let start = match first.get(p) {
                Some(Some(got)) if *got <= *offset => Offset::Offset(at(*offset)),
                got => {
                    tracing::info!(
                        partition = p,
                        resume = offset,
                        asked = at(*offset),
                        first = ?got.copied().flatten(),
                        "a fetch before the resume offset does not start at or before it; \
                         reading the partition from its start"
                    );
                    Offset::Beginning
                }
            };
            (*p, start)
        })
        .collect())
}

fn assign(
    consumer: &BaseConsumer<ReaderContext>,
    topic: &str,
    starts: &BTreeMap<i32, Offset>,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in starts {
        tpl.add_partition_offset(topic, *p, *offset)?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

impl RecordReader for KafkaReader {
    /// Reads the partition from [`RESUME_MARGIN`] records before `offset`
    /// (the source skips every record before `offset`), once a fetch there
    /// is seen to start at or before `offset`; otherwise from its first
    /// retained record. A fetch exactly at `offset` is not trusted: tansu
    /// 0.6 answers a fetch at an offset inside a record batch with the
    /// batch after it (measured: a fetch at 100 returned 6738 first, the
    /// next batch's base), which would silently drop the rest of the batch.
    /// Starting a batch's length earlier lands in or before the batch that
    /// holds `offset` on any broker; the check catches bigger batches.
    fn seek(&mut self, partition: i32, offset: i64) {
        if let Some(start) = self.starts.get_mut(&partition) {
            tracing::debug!(partition, offset, "resuming from a snapshot");
            *start = Offset::Beginning;
            if offset > 0 {
                self.resume.insert(partition, offset);
            }
        }
    }

    fn partitions(&self) -> Vec<i32> {
        self.partitions.clone()
    }

    fn poll(&mut self, max: usize, out: &mut Vec<SourceEvent>) -> std::result::Result<(), String> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(());
        };
        if !self.assigned {
            if !self.resume.is_empty() {
                let checked = checked_starts(&self.brokers, &self.topic, &self.resume)
                    .map_err(|e| format!("checking where to resume: {}", crate::error_chain(&e)))?;
                self.starts.extend(checked);
            }
            assign(consumer, &self.topic, &self.starts).map_err(|e| e.to_string())?;
            self.assigned = true;
        }
        for _ in 0..max {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    self.at_end.remove(&m.partition());
                    out.push(SourceEvent::Record(Record {
                        pos: Position {
                            partition: m.partition(),
                            offset: m.offset(),
                        },
                        payload: m.payload().unwrap_or_default().to_vec(),
                    }));
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    tracing::debug!(partition = p, "partition eof");
                    self.at_end.insert(p);
                    out.push(SourceEvent::PartitionEof(p));
                }
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.until_end && self.at_end.len() == self.partitions.len()
    }
}
