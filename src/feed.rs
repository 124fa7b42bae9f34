//! The simulated market feed: the seeded simulator's ticks, serialised in the
//! wire format and produced to Kafka keyed by symbol. Paced against the wall
//! clock (event time = now) for live use, or as fast as the broker takes
//! them for loads and benchmarks.

use std::time::{Duration, Instant};

use dataflows::sim::{SimConfig, Simulator};
use tracing::info;

use crate::kafka::{self, ProducerOptions, TickProducer};
use crate::shutdown::Stop;

/// Feed settings.
#[derive(Clone, Debug)]
pub struct FeedOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Simulator seed.
    pub seed: u64,
    /// Symbols (empty: the simulator's five default ones).
    pub symbols: Vec<String>,
    /// Correlation of the symbols' shocks.
    pub correlation: f64,
    /// Amplitude of the intraday trade-rate cycle.
    pub seasonality: f64,
    /// Mean trades per second per symbol.
    pub trades_per_sec: f64,
    /// Stop after this many ticks (None: until stopped).
    pub max_ticks: Option<u64>,
    /// Produce as fast as possible with event times starting at `start_ms`,
    /// instead of pacing to the wall clock.
    pub max_speed: bool,
    /// First event time (default: now).
    pub start_ms: Option<u64>,
    /// Replay this much simulated history first, as fast as the broker
    /// takes it, at `history_trades_per_sec`, then continue live.
    pub history_ms: u64,
    /// Trade rate during the history.
    pub history_trades_per_sec: f64,
    /// Producer settings.
    pub producer: ProducerOptions,
}

impl FeedOptions {
    /// The simulator these options describe, starting at `start_ms`.
    pub fn sim_config(&self, start_ms: u64) -> SimConfig {
        let cfg = SimConfig::default_market(self.seed, start_ms)
            .with_correlation(self.correlation)
            .with_seasonality(self.seasonality);
        if self.symbols.is_empty() {
            cfg
        } else {
            cfg.with_symbols(&self.symbols)
        }
    }
}

/// What a feed run produced.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FeedSummary {
    /// Ticks handed to the producer.
    pub produced: u64,
    /// Ticks acknowledged by the broker.
    pub delivered: u64,
    /// Ticks that failed.
    pub failed: u64,
    /// Wall seconds.
    pub seconds: f64,
}

/// Runs the feed until `max_ticks` or `stop`; flushes before returning.
pub fn run_sim_feed(opts: &FeedOptions, stop: &Stop) -> kafka::Result<FeedSummary> {
    let producer = TickProducer::with_options(&opts.brokers, &opts.topic, opts.producer)?;
    let live_start = opts.start_ms.unwrap_or_else(crate::now_ms);
    let start = live_start.saturating_sub(opts.history_ms);
    let mut cfg = opts.sim_config(start);
    let in_history = opts.history_ms > 0;
    cfg.trades_per_sec = if in_history {
        opts.history_trades_per_sec
    } else {
        opts.trades_per_sec
    };
    let mut sim = Simulator::new(cfg);
    let mut live = !in_history;
    let clock0 = Instant::now();
    let mut produced = 0u64;
    while let Some(tick) = sim.next() {
        if !live && tick.ts_ms >= live_start {
            live = true;
            sim.set_rate(opts.trades_per_sec);
            info!(produced, "history produced; continuing live");
        }
        if stop.is_set() || opts.max_ticks.is_some_and(|m| produced >= m) {
            break;
        }
        if live && !opts.max_speed {
            // Wait until the tick's event time has come (checking stop).
            loop {
                let now = crate::now_ms();
                if tick.ts_ms <= now || stop.is_set() {
                    break;
                }
                std::thread::sleep(Duration::from_millis((tick.ts_ms - now).min(100)));
            }
        }
        producer.send(&tick.symbol, tick.to_json().as_bytes())?;
        produced += 1;
        if produced.is_multiple_of(1_000_000) {
            info!(produced, "feed progress");
        }
    }
    producer.flush(Duration::from_secs(30))?;
    let stats = producer.stats();
    Ok(FeedSummary {
        produced,
        delivered: stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        failed: stats.failed.load(std::sync::atomic::Ordering::Relaxed),
        seconds: clock0.elapsed().as_secs_f64(),
    })
}
