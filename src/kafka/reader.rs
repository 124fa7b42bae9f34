//! The reader of one worker's partitions, the dataflow source's
//! [`RecordReader`] over Kafka.
//!
//! Manual partition assignment (no consumer group, no rebalancing): worker
//! `index` of `peers` reads the partitions `p` with `p % peers == index`
//! ([`owns_partition`]). It hands records over with their position
//! (partition, offset) and reports end-of-partition as progress; event time
//! is the dataflow's business. It must never commit or store offsets:
//! restarts start at `--from`, or, from a snapshot, at each partition's
//! start, the source skipping what the snapshot holds (see
//! [`KafkaReader::seek`]); the warehouse's Delta `txn` versions say what
//! is already written.

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

/// The reader of one worker's partitions.
pub struct KafkaReader {
    consumer: Option<BaseConsumer<ReaderContext>>,
    topic: String,
    /// Where each partition is read from.
    starts: BTreeMap<i32, Offset>,
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
                topic: topic.to_string(),
                starts: BTreeMap::new(),
                assigned: false,
                partitions,
                at_end: BTreeSet::new(),
                until_end,
            });
        }
        let consumer: BaseConsumer<ReaderContext> = base_config(brokers)
            .set("group.id", "cryptoflow")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            .set("queued.min.messages", "200000")
            .create_with_context(ReaderContext)?;
        let offset = match from {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => Offset::End,
        };
        let starts: BTreeMap<i32, Offset> = partitions.iter().map(|p| (*p, offset)).collect();
        Ok(KafkaReader {
            consumer: Some(consumer),
            topic: topic.to_string(),
            starts,
            assigned: false,
            partitions,
            at_end: BTreeSet::new(),
            until_end,
        })
    }
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
    /// Reads the partition from its first retained record instead of
    /// fetching from `offset`: the source skips every record before it.
    /// tansu 0.6 answers a fetch at an offset inside a record batch with
    /// the batch after it (measured: a fetch at 100 returned 6738 first,
    /// the next batch's base), which would silently drop the rest of the
    /// batch; re-reading costs reading, not processing, the partition once
    /// per restart.
    fn seek(&mut self, partition: i32, offset: i64) {
        if let Some(start) = self.starts.get_mut(&partition) {
            tracing::debug!(
                partition,
                offset,
                "resuming: reading from the start, skipping what the snapshot holds"
            );
            *start = Offset::Beginning;
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
