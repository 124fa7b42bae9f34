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
//!
//! Client options: [`base_config`] is the one place every client (admin,
//! reader, producer) is configured, and it applies the process's
//! [`ClientOptions`] — librdkafka properties given with `--kafka-opt
//! key=value` or `--kafka-config FILE` (SASL, SSL and anything else
//! librdkafka takes) — set once by the command line through
//! [`set_client_options`], before any client exists. They are process-wide
//! on purpose: every command and every client in it talks to the same
//! cluster with the same credentials. Keys cryptoflow sets itself
//! ([`RESERVED_KEYS`]) cannot be overridden (each has its own flag or is
//! part of a guarantee, such as offsets never being committed), and a key
//! or value librdkafka refuses is an error before anything connects. Values
//! are never logged or shown in errors: they may be secrets.

mod admin;
mod producer;
mod reader;

pub use admin::{
    ensure_topic, low_watermarks, partition_count, prepare_topic, topic_size, BrokerProbe,
};
pub use producer::{Compression, DeliveryStats, ProducerOptions, TickProducer};
pub use reader::{KafkaReader, ReaderContext, StartFrom};

use std::collections::BTreeMap;
use std::sync::OnceLock;
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
    /// A `--kafka-opt` / `--kafka-config` entry that cannot be used (the
    /// value is left out: it may be a secret).
    #[error("kafka option `{key}`: {why}")]
    BadOption {
        /// The property name.
        key: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// How long metadata and admin calls wait before giving up.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(8);

/// librdkafka properties cryptoflow sets itself (with their aliases), which
/// `--kafka-opt` may not override: the broker list and the producer's
/// compression and idempotence have flags of their own; the rest are part
/// of a guarantee (offsets are never committed; the reader's end-of-partition
/// events; acks=all under idempotence) or of bounded waits.
pub const RESERVED_KEYS: [&str; 24] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "auto.offset.reset",
    "fetch.wait.max.ms",
    "queued.min.messages",
    "linger.ms",
    "queue.buffering.max.ms",
    "batch.num.messages",
    "batch.size",
    "queue.buffering.max.messages",
    "compression.codec",
    "compression.type",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "partitioner",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "reconnect.backoff.max.ms",
];

/// librdkafka properties every client of this process gets (`--kafka-opt`).
/// Its `Debug` shows the keys only: values may be secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientOptions(BTreeMap<String, String>);

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl ClientOptions {
    /// Parses `key=value` entries: first the lines of a properties file
    /// (`#` comments and blank lines skipped), then flags, a later entry
    /// of a key replacing an earlier one. Checks every key with librdkafka.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut map = BTreeMap::new();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let Some((key, value)) = entry.split_once('=') else {
                let key = entry.chars().take(60).collect::<String>();
                return Err(Error::BadOption {
                    key,
                    why: "expected key=value".into(),
                });
            };
            let key = key.trim();
            if RESERVED_KEYS.contains(&key) {
                return Err(Error::BadOption {
                    key: key.to_string(),
                    why: "set by cryptoflow itself (use the command's own flag, e.g. --brokers)"
                        .into(),
                });
            }
            map.insert(key.to_string(), value.trim().to_string());
        }
        let options = ClientOptions(map);
        // librdkafka checks names and values when a configuration is built.
        let mut probe = ClientConfig::new();
        options.apply(&mut probe);
        probe.create_native_config().map_err(|e| match e {
            KafkaError::ClientConfig(_, why, key, value) => Error::BadOption {
                key,
                // librdkafka quotes the value back: leave it out.
                why: if value.is_empty() {
                    why
                } else {
                    why.replace(&value, "…")
                },
            },
            other => Error::BadOption {
                key: "?".into(),
                why: other.to_string(),
            },
        })?;
        Ok(options)
    }

    /// The property names given.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Sets every option on `config`.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (k, v) in &self.0 {
            config.set(k, v);
        }
    }
}

static CLIENT_OPTIONS: OnceLock<ClientOptions> = OnceLock::new();

/// Sets the options every client of this process gets; once, before any
/// client is made. Setting the same options again is harmless; different
/// ones are an error (a client may already use the first).
pub fn set_client_options(options: ClientOptions) -> Result<()> {
    let set = CLIENT_OPTIONS.get_or_init(|| options.clone());
    if *set != options {
        return Err(Error::BadOption {
            key: options.keys().collect::<Vec<_>>().join(","),
            why: "client options were already set for this process".into(),
        });
    }
    Ok(())
}

/// The settings every client (admin, reader, producer) starts from: the
/// broker list, bounded connection waits, and the process's
/// [`ClientOptions`].
fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        // Fail fast on a dead address instead of retrying forever behind our back.
        .set("socket.connection.setup.timeout.ms", "5000")
        // Come back within ~2 s once a broker that went away returns.
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "3");
    if let Some(options) = CLIENT_OPTIONS.get() {
        options.apply(&mut c);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_and_ssl_settings_reach_librdkafka() {
        let opts = ClientOptions::parse([
            "security.protocol=sasl_plaintext",
            "sasl.mechanisms=PLAIN",
            "sasl.username = alice",
            "sasl.password=s3cr3t=with=equals",
            "client.id=cryptoflow-test",
        ])
        .unwrap();
        let mut config = base_config("127.0.0.1:1");
        opts.apply(&mut config);
        let native = config.create_native_config().unwrap();
        for (key, want) in [
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "alice"),
            ("sasl.password", "s3cr3t=with=equals"),
            ("client.id", "cryptoflow-test"),
            ("bootstrap.servers", "127.0.0.1:1"),
        ] {
            assert_eq!(native.get(key).unwrap(), want, "{key}");
        }
        let shown = format!("{opts:?}");
        assert!(
            shown.contains("sasl.password") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn the_process_options_reach_every_client_config() {
        set_client_options(ClientOptions::parse(["client.id=cryptoflow-unit"]).unwrap()).unwrap();
        let native = base_config("127.0.0.1:1").create_native_config().unwrap();
        assert_eq!(native.get("client.id").unwrap(), "cryptoflow-unit");
        let other = ClientOptions::parse(["client.id=other"]).unwrap();
        assert!(set_client_options(other).is_err());
    }

    #[test]
    fn bad_keys_values_and_reserved_keys_are_clear_errors_without_values() {
        let err = ClientOptions::parse(["no.such.property=1"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no.such.property") && err.contains("No such configuration property"),
            "{err}"
        );
        let err = ClientOptions::parse(["security.protocol=carrier-pigeon"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("security.protocol") && !err.contains("carrier-pigeon"),
            "{err}"
        );
        let err = ClientOptions::parse(["bootstrap.servers=elsewhere:9092"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("set by cryptoflow itself"), "{err}");
        let err = ClientOptions::parse(["sasl.password"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected key=value"), "{err}");
        assert!(ClientOptions::parse(["# a comment", "", "client.id=x"]).is_ok());
    }
}
