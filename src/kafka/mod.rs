//! Kafka I/O: topic metadata and creation (`admin.rs`), the per-worker
//! partition reader the dataflow's source consumes (`reader.rs`), and the
//! tick producer every feed uses (`producer.rs`). This module holds what
//! they share: the error type and the client settings every connection
//! starts from.
//!
//! Offsets: the reader commits none, neither to Kafka nor anywhere else.
//! Where reading starts is our decision (`--from`); what a restarted `run`
//! does not write again is decided by the warehouse, whose Delta `txn`
//! versions record the last epoch committed to each table (see
//! [`crate::warehouse`]). No time semantics here: event time is read from
//! the records by the dataflow, never from Kafka timestamps. Nothing here
//! blocks for long: metadata calls take a timeout and report the broker
//! address in their errors.

mod admin;
mod producer;
mod reader;

pub use admin::{ensure_topic, partition_count, prepare_topic, topic_size, BrokerProbe};
pub use producer::{Compression, DeliveryStats, ProducerOptions, TickProducer};
pub use reader::{KafkaReader, ReaderContext, StartFrom};

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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

/// The settings every client (admin, reader, producer) starts from.
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
