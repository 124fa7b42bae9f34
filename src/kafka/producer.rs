//! The one producer path: every feed (simulator, replay, `produce`, the live
//! connectors) goes through [`TickProducer`], after
//! [`prepare_topic`](super::prepare_topic) has created the topic if it was
//! missing.
//!
//! Records are keyed by symbol (murmur2, like the Java client), batched
//! (`linger.ms` 5, up to 1 MiB or 10,000 records per batch), compressed with
//! LZ4 and written by an idempotent producer (`enable.idempotence`, hence
//! `acks=all`): a retry after a lost acknowledgement never duplicates or
//! reorders a partition's records. Delivery failures are counted in
//! [`DeliveryStats`] and the first is logged; callers turn a non-zero count
//! into an error (never drop one silently). The settings are
//! [`ProducerOptions`]; the README's "Performance" section has the measured
//! cost of each against the local broker. No time semantics: the payload
//! carries its own event time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::{base_config, Error, Result};

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
