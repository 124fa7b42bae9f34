//! `cryptoflow demo`: the whole system on embedded defaults, with nothing to
//! set up. It starts a Kafka-protocol broker on a free loopback port, creates
//! the `ticks` topic, replays simulated history since the start of yesterday
//! (UTC) at full speed, so the daily evaluation has a complete day to judge
//! and champions exist within the first minute, then continues the simulated
//! feed in real time; `run` works on two workers (10 s bars) with the HTTP
//! server, until Ctrl-C. Everything it writes goes under
//! `--data-dir` (the broker's log too).

use std::net::SocketAddr;
use std::path::PathBuf;

use tracing::{error, info};

use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::feed::{run_sim_feed, FeedOptions};
use crate::kafka;
use crate::pipeline::{run, RunOptions, RunSummary, SnapshotOptions};
use crate::shutdown::Stop;
use crate::state::FromSnapshot;

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// HTTP address.
    pub http: SocketAddr,
    /// Warehouse root.
    pub data_dir: PathBuf,
    /// Worker threads.
    pub workers: usize,
    /// Simulator seed.
    pub seed: u64,
    /// Use this broker instead of starting one.
    pub brokers: Option<String>,
    /// Replay simulated history since the start of yesterday (UTC) first.
    pub history: bool,
    /// Table versions between automatic Delta checkpoints (0: never).
    pub checkpoint_every: u64,
    /// The orchestrator's settings.
    pub jobs: crate::jobs::JobsOptions,
    /// The HTTP server's access controls (the admin token among them).
    pub access: crate::http::guard::Access,
}

/// Bar length of the demo: 10 s, so that a day and a half of history
/// replays in seconds and live predictions still move every few seconds.
pub const DEMO_BAR_MS: u64 = 10_000;
/// Event time one commit spans in the demo: an hour, so the day and a half
/// of replayed history lands in a few dozen commits.
pub const DEMO_EPOCH_MS: u64 = 3_600_000;
/// Trade rate per symbol during the replayed history (live: 10/s).
pub const HISTORY_TRADES_PER_SEC: f64 = 0.5;

/// History to replay so that at least one whole UTC day (yesterday) is
/// evaluated: from the start of yesterday to now.
pub fn history_ms(now: u64) -> u64 {
    now % dataflows::num::DAY_MS + dataflows::num::DAY_MS
}

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Could not start the broker.
    #[error(transparent)]
    Broker(#[from] crate::broker::Error),
    /// Kafka.
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
    /// The pipeline.
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::Error),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Runs the demo until Ctrl-C (or `stop`).
pub fn demo(opts: DemoOptions, stop: Stop) -> Result<RunSummary, Error> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let broker = match &opts.brokers {
        Some(_) => None,
        None => Some(Broker::start(&opts.data_dir.join("broker.log"))?),
    };
    let brokers = opts
        .brokers
        .clone()
        .unwrap_or_else(|| broker.as_ref().expect("started").bootstrap());
    info!(brokers = %brokers, "kafka broker ready");
    kafka::prepare_topic(&brokers, "ticks", 8)?;

    let feed_opts = FeedOptions {
        brokers: brokers.clone(),
        topic: "ticks".into(),
        seed: opts.seed,
        symbols: Vec::new(),
        correlation: dataflows::sim::MARKET_CORRELATION,
        seasonality: dataflows::sim::MARKET_SEASONALITY,
        trades_per_sec: 10.0,
        max_ticks: None,
        max_speed: false,
        start_ms: None,
        history_ms: if opts.history {
            history_ms(crate::now_ms())
        } else {
            0
        },
        history_trades_per_sec: HISTORY_TRADES_PER_SEC,
        producer: kafka::ProducerOptions::default(),
    };
    // The feed outlives the run's stop: on a signal the run goes on to a
    // stop snapshot, which needs data (or the idle lag) to move event time.
    let feed_stop = Stop::new();
    let stop_feed = feed_stop.clone();
    let feed = std::thread::spawn(move || {
        if let Err(e) = run_sim_feed(&feed_opts, &feed_stop) {
            error!(error = %e, "simulated feed stopped");
        }
    });
    info!(url = %format!("http://{}/api/predictions", opts.http), "serving predictions (Ctrl-C to stop)");
    let result = run(
        RunOptions {
            cluster: Cluster::local(opts.workers),
            http: Some(opts.http),
            bar_ms: DEMO_BAR_MS,
            epoch_ms: DEMO_EPOCH_MS,
            checkpoint_every: opts.checkpoint_every,
            jobs: opts.jobs.clone(),
            access: opts.access.clone(),
            // The demo's broker keeps its topic in memory: a restarted demo
            // reads a new topic, which no snapshot of the last one describes.
            snapshots: SnapshotOptions {
                from: if opts.brokers.is_none() {
                    FromSnapshot::None
                } else {
                    FromSnapshot::Latest
                },
                ..SnapshotOptions::default()
            },
            ..RunOptions::new(brokers, "ticks", opts.data_dir.clone())
        },
        stop.clone(),
    );
    stop.trigger();
    stop_feed.trigger();
    let _ = feed.join();
    drop(broker);
    Ok(result?)
}
