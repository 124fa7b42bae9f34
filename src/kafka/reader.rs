//! The reader of one worker's partitions, the dataflow source's
//! [`RecordReader`] over Kafka.
//!
//! Manual partition assignment (no consumer group, no rebalancing): worker
//! `index` of `peers` reads the partitions `p` with `p % peers == index`
//! ([`owns_partition`]). It hands records over with their position
//! (partition, offset) and reports end-of-partition as progress; event time
//! is the dataflow's business. It must never commit or store offsets:
//! restarts start at `--from`, and the warehouse's Delta `txn` versions say
//! what is already written.

use std::collections::BTreeSet;
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
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, offset)?;
        }
        consumer.assign(&tpl)?;
        Ok(KafkaReader {
            consumer: Some(consumer),
            partitions,
            at_end: BTreeSet::new(),
            until_end,
        })
    }
}

impl RecordReader for KafkaReader {
    fn partitions(&self) -> Vec<i32> {
        self.partitions.clone()
    }

    fn poll(&mut self, max: usize, out: &mut Vec<SourceEvent>) -> std::result::Result<(), String> {
        let Some(consumer) = self.consumer.as_ref() else {
            return Ok(());
        };
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
