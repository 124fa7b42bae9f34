//! Where a connector's output goes: the [`Sink`] trait (ticks keyed by
//! symbol, rejects keyed by exchange) and its Kafka implementation, which
//! creates both topics if missing and sends through the one producer path
//! ([`TickProducer`]).
//!
//! No time semantics: payloads are sent as built. A sink must never drop a
//! record silently: a failed send is an error, and [`Sink::flush`] fails if
//! any record was not delivered.

use std::time::Duration;

use crate::kafka::{self, TickProducer};

/// Where ticks and rejects go.
pub trait Sink {
    /// One tick in the wire format, keyed by symbol.
    fn tick(&self, symbol: &str, payload: &[u8]) -> kafka::Result<()>;
    /// One reject record, keyed by exchange.
    fn reject(&self, exchange: &str, payload: &[u8]) -> kafka::Result<()>;
    /// Waits for delivery of everything sent.
    fn flush(&self) -> kafka::Result<()>;
}

/// The Kafka sink: the shared producer path for both topics.
pub struct KafkaSink {
    ticks: TickProducer,
    rejects: TickProducer,
}

impl KafkaSink {
    /// Creates both topics if needed and connects producers to them.
    pub async fn connect(opts: &SinkOptions) -> kafka::Result<Self> {
        let SinkOptions {
            brokers,
            topic,
            rejects_topic,
            partitions,
        } = opts;
        kafka::ensure_topic(brokers, topic, *partitions).await?;
        kafka::ensure_topic(brokers, rejects_topic, 1).await?;
        Ok(KafkaSink {
            ticks: TickProducer::new(brokers, topic)?,
            rejects: TickProducer::new(brokers, rejects_topic)?,
        })
    }
}

impl Sink for KafkaSink {
    fn tick(&self, symbol: &str, payload: &[u8]) -> kafka::Result<()> {
        self.ticks.send(symbol, payload)
    }
    fn reject(&self, exchange: &str, payload: &[u8]) -> kafka::Result<()> {
        self.rejects.send(exchange, payload)
    }
    fn flush(&self) -> kafka::Result<()> {
        self.ticks.finish(Duration::from_secs(30))?;
        self.rejects.finish(Duration::from_secs(30))?;
        Ok(())
    }
}

/// Where to produce.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Tick topic.
    pub topic: String,
    /// Rejects topic.
    pub rejects_topic: String,
    /// Partitions of the tick topic when it is created.
    pub partitions: i32,
}
