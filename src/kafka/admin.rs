//! Topic administration: partition counts, creating a topic if missing
//! (from async and from synchronous code), and counting a topic's records.
//!
//! No time semantics. Every call is bounded by [`METADATA_TIMEOUT`] (or the
//! caller's timeout) and must never wait on the broker forever.

use std::time::Duration;

use dataflows::source::{RecordReader, SourceEvent};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use super::{base_config, Error, KafkaReader, Result, StartFrom, METADATA_TIMEOUT};

/// Number of partitions of `topic`.
pub fn partition_count(brokers: &str, topic: &str) -> Result<i32> {
    let consumer: BaseConsumer = base_config(brokers).create()?;
    let md = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|source| Error::Unreachable {
            brokers: brokers.to_string(),
            source,
        })?;
    let t = md.topics().iter().find(|t| t.name() == topic);
    match t {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(Error::NoTopic {
            topic: topic.to_string(),
            brokers: brokers.to_string(),
        }),
    }
}

/// The first offset still held in each of `partitions` of `topic` (its low
/// watermark): a restart from a snapshot must not need anything before it.
pub fn low_watermarks(
    brokers: &str,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
) -> Result<std::collections::BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = base_config(brokers).create()?;
    partitions
        .into_iter()
        .map(|p| {
            let (low, _) = consumer
                .fetch_watermarks(topic, p, METADATA_TIMEOUT)
                .map_err(|source| Error::Unreachable {
                    brokers: brokers.to_string(),
                    source,
                })?;
            Ok((p, low))
        })
        .collect()
}

/// A long-lived client that checks the broker answers (for health).
pub struct BrokerProbe {
    consumer: BaseConsumer,
    brokers: String,
}

impl BrokerProbe {
    /// A probe of `brokers` (no connection is made until [`BrokerProbe::check`]).
    pub fn new(brokers: &str) -> Result<Self> {
        Ok(BrokerProbe {
            consumer: base_config(brokers).create()?,
            brokers: brokers.to_string(),
        })
    }

    /// Asks for `topic`'s metadata, waiting at most `timeout`.
    pub fn check(&self, topic: &str, timeout: Duration) -> Result<()> {
        self.consumer
            .fetch_metadata(Some(topic), timeout)
            .map(|_| ())
            .map_err(|source| Error::Unreachable {
                brokers: self.brokers.clone(),
                source,
            })
    }
}

/// Creates `topic` with `partitions` partitions unless it exists already.
pub async fn ensure_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(brokers).create()?;
    let opts = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results =
        admin
            .create_topics([&new], &opts)
            .await
            .map_err(|source| Error::Unreachable {
                brokers: brokers.to_string(),
                source,
            })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Creates `topic` with `partitions` partitions unless it exists, from
/// synchronous code: the one topic set-up every producing command runs.
pub fn prepare_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(ensure_topic(brokers, topic, partitions))
}

/// Records on `topic`, counted by reading every partition to its end.
///
/// Not the sum of the partitions' high watermarks from ListOffsets: tansu
/// 0.6 answers "latest" with the base offset of the newest batch + 1, which
/// falls short of the log's end by that batch's size less one. The end of
/// partition seen while fetching is right, so this reads up to it.
pub fn topic_size(brokers: &str, topic: &str, timeout: Duration) -> Result<u64> {
    let partitions = partition_count(brokers, topic)?;
    let mut reader = KafkaReader::new(brokers, topic, partitions, 0, 1, StartFrom::Earliest, true)?;
    let deadline = std::time::Instant::now() + timeout;
    let (mut records, mut events) = (0u64, Vec::new());
    while !reader.finished() {
        events.clear();
        reader
            .poll(10_000, &mut events)
            .map_err(|what| Error::Read {
                topic: topic.to_string(),
                what,
            })?;
        records += events
            .iter()
            .filter(|e| matches!(e, SourceEvent::Record(_)))
            .count() as u64;
        if events.is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(Error::Read {
                    topic: topic.to_string(),
                    what: format!("not at the end of every partition after {timeout:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(records)
}
