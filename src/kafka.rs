//! Kafka I/O: topic metadata and creation, the per-worker partition reader
//! the dataflow's source consumes, and the tick producer every feed uses.
//!
//! The reader uses manual partition assignment (no consumer group, no
//! rebalancing): worker `index` of `peers` reads the partitions `p` with
//! `p % peers == index`. Offsets are not committed to Kafka; where reading
//! starts is our decision (`--from`), and the warehouse issue stores them
//! with our own output. Nothing here blocks for long: metadata calls take a
//! timeout and report the broker address in their errors.
//!
//! Producing: every feed (simulator, replay, `produce`, the live connectors)
//! goes through [`TickProducer`], after [`prepare_topic`] has created the
//! topic if it was missing. Records are keyed by symbol (murmur2, like the
//! Java client), batched (`linger.ms` 5, up to 1 MiB or 10,000 records per
//! batch), compressed with LZ4 and written by an idempotent producer
//! (`enable.idempotence`, hence `acks=all`): a retry after a lost
//! acknowledgement never duplicates or reorders a partition's records.
//! Delivery failures are counted in [`DeliveryStats`] and the first is
//! logged; callers turn a non-zero count into an error. The settings are
//! [`ProducerOptions`]; the README's "Performance" section has the measured
//! cost of each against the local broker.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataflows::source::{owns_partition, Record, RecordReader, SourceEvent};
use dataflows::tick::Position;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Errors talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker did not answer a metadata request in time.
    #[error("cannot reach Kafka broker at {brokers}")]
    Unreachable {
        /// The bootstrap address.
        brokers: String,
        /// The client's error.
        source: KafkaError,
    },
    /// The topic does not exist.
    #[error("topic `{topic}` does not exist on {brokers} (create it with `cryptoflow topic create {topic}`)")]
    NoTopic {
        /// Topic name.
        topic: String,
        /// Bootstrap address.
        brokers: String,
    },
    /// Any other client error.
    #[error("kafka client error")]
    Client(#[from] KafkaError),
    /// The runtime for an admin call could not start.
    #[error("starting the admin client's runtime failed")]
    Runtime(#[from] std::io::Error),
    /// Records the broker never acknowledged (the first failure is logged).
    #[error("{failed} record(s) were not delivered to `{topic}`")]
    Undelivered {
        /// How many failed.
        failed: u64,
        /// Topic.
        topic: String,
    },
    /// Reading a topic failed.
    #[error("reading `{topic}` failed: {what}")]
    Read {
        /// Topic.
        topic: String,
        /// What went wrong.
        what: String,
    },
    /// Topic creation failed.
    #[error("creating topic `{topic}` failed: {code}")]
    CreateTopic {
        /// Topic name.
        topic: String,
        /// Broker error code.
        code: RDKafkaErrorCode,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// How long metadata and admin calls wait before giving up.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(8);

fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        // Fail fast on a dead address instead of retrying forever behind our back.
        .set("socket.connection.setup.timeout.ms", "5000")
        // Come back within ~2 s once a broker that went away returns.
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "3");
    c
}

/// Where a reader starts in each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The first offset still in the partition.
    Earliest,
    /// Only records produced after the reader starts.
    Latest,
}

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

/// Counts delivery failures so producers can surface them.
#[derive(Clone, Default)]
pub struct DeliveryStats {
    /// Messages acknowledged by the broker.
    pub delivered: Arc<AtomicU64>,
    /// Messages that failed for good.
    pub failed: Arc<AtomicU64>,
}

impl ClientContext for DeliveryStats {}

impl ProducerContext for DeliveryStats {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(error = %e, "kafka delivery failed");
                }
                0
            }
        };
    }
}

/// Compression codec of produced batches (all built into librdkafka).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed.
    None,
    /// gzip: smallest, slowest.
    Gzip,
    /// LZ4: the default; fast, and ticks compress about 4:1 in a batch.
    Lz4,
}

impl Compression {
    fn codec(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
        }
    }
}

/// How a [`TickProducer`] batches, compresses and acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProducerOptions {
    /// Batch compression.
    pub compression: Compression,
    /// Idempotent producer (`enable.idempotence`, `acks=all`).
    pub idempotent: bool,
    /// How long a batch may wait to fill, ms.
    pub linger_ms: u32,
    /// Largest batch, bytes.
    pub batch_bytes: u32,
}

impl Default for ProducerOptions {
    fn default() -> Self {
        ProducerOptions {
            compression: Compression::Lz4,
            idempotent: true,
            linger_ms: 5,
            batch_bytes: 1 << 20,
        }
    }
}

impl ProducerOptions {
    /// Sets the batch compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Turns the idempotent producer on or off.
    pub fn with_idempotence(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Sets how long a batch may wait to fill, ms.
    pub fn with_linger_ms(mut self, linger_ms: u32) -> Self {
        self.linger_ms = linger_ms;
        self
    }

    /// Sets the largest batch, bytes.
    pub fn with_batch_bytes(mut self, batch_bytes: u32) -> Self {
        self.batch_bytes = batch_bytes;
        self
    }
}

/// The one producer path: keyed by symbol, batched, compressed, idempotent,
/// delivery errors counted.
pub struct TickProducer {
    inner: ThreadedProducer<DeliveryStats>,
    topic: String,
    stats: DeliveryStats,
}

impl TickProducer {
    /// A producer for `topic` on `brokers` with the default [`ProducerOptions`].
    pub fn new(brokers: &str, topic: &str) -> Result<Self> {
        Self::with_options(brokers, topic, ProducerOptions::default())
    }

    /// A producer for `topic` on `brokers` with `options`.
    pub fn with_options(brokers: &str, topic: &str, options: ProducerOptions) -> Result<Self> {
        let ProducerOptions {
            compression,
            idempotent,
            linger_ms,
            batch_bytes,
        } = options;
        let stats = DeliveryStats::default();
        let inner = base_config(brokers)
            .set("linger.ms", linger_ms.to_string())
            .set("batch.num.messages", "10000")
            .set("batch.size", batch_bytes.to_string())
            .set("queue.buffering.max.messages", "1000000")
            .set("compression.codec", compression.codec())
            // Implies acks=all, bounded in-flight requests and sequence
            // numbers, so the broker drops a retried batch it already has.
            .set("enable.idempotence", idempotent.to_string())
            // Same partitioner as the Java client, so keys land where other tools expect.
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "30000")
            .create_with_context(stats.clone())?;
        Ok(TickProducer {
            inner,
            topic: topic.to_string(),
            stats,
        })
    }
    /// Enqueues one record, waiting while the local queue is full.
    pub fn send(&self, key: &str, payload: &[u8]) -> Result<()> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Waits until everything enqueued is acknowledged (or `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout)?;
        Ok(())
    }

    /// Delivery counters.
    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    /// Flushes, then fails if any record was not delivered; returns how
    /// many were.
    pub fn finish(&self, timeout: Duration) -> Result<u64> {
        self.flush(timeout)?;
        let failed = self.stats.failed.load(Ordering::Relaxed);
        let delivered = self.stats.delivered.load(Ordering::Relaxed);
        if failed > 0 {
            return Err(Error::Undelivered {
                failed,
                topic: self.topic.clone(),
            });
        }
        Ok(delivered)
    }
}
