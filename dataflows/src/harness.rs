//! Runs the pipeline to completion on `n` worker threads of this process and
//! returns every delivery (or, for long benchmark runs, a [`Tally`] of them). Used by the tests (worker-count determinism,
//! look-ahead) and the benchmarks; it is the same graph `cryptoflow run`
//! builds, with any [`RecordReader`] (records in memory, a file, Kafka).

use std::sync::{Arc, Mutex};

use crate::graph::{
    build, build_bars, check_restore, Delivery, Output, OutputSink, PipelineConfig,
};
use crate::snapshot::Assembled;
use crate::source::{Record, RecordReader, VecReader};

/// What a run exported.
#[derive(Debug, Default)]
pub struct Exported {
    /// Its deliveries, in time order.
    pub deliveries: Vec<Delivery>,
    /// The snapshots it took, in the order they completed.
    pub snapshots: Vec<Assembled>,
    /// Restored from a snapshot: the changes before its cut, in time order
    /// ([`OutputSink::restored`]).
    pub restored: Vec<Delivery>,
}

struct Collect(Arc<Mutex<Exported>>);

impl OutputSink for Collect {
    fn restored(&mut self, delivery: Delivery) {
        self.0
            .lock()
            .expect("collector lock")
            .restored
            .push(delivery);
    }

    fn deliver(&mut self, delivery: Delivery) {
        self.0
            .lock()
            .expect("collector lock")
            .deliveries
            .push(delivery);
    }

    fn snapshot(&mut self, snapshot: Assembled) {
        self.0
            .lock()
            .expect("collector lock")
            .snapshots
            .push(snapshot);
    }
}

/// Which part of the graph a run builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stages {
    /// The whole pipeline ([`build`]).
    #[default]
    All,
    /// Source, validation and bars only ([`build_bars`]): the tick path.
    Bars,
}

/// Runs the graph's `stages` on `workers` threads, each reading with the
/// reader `make_reader(index, peers)` builds, until every reader is
/// finished; worker 0 exports to the sink `make_sink()` builds (the other
/// workers' sinks are never called). A snapshot to restore is checked
/// first ([`check_restore`]).
pub fn run_with<R, F, S, G>(
    workers: usize,
    make_reader: F,
    config: PipelineConfig,
    stages: Stages,
    make_sink: G,
) -> Result<(), String>
where
    R: RecordReader,
    F: Fn(usize, usize) -> Result<R, String> + Send + Sync + 'static,
    S: OutputSink,
    G: Fn() -> S + Send + Sync + 'static,
{
    if let Some(restore) = &config.snapshot.restore {
        check_restore(restore, &config).map_err(|e| format!("snapshot: {e}"))?;
    }
    let guards = timely::execute(
        timely::Config::process(workers),
        move |worker| -> Result<(), String> {
            let reader = make_reader(worker.index(), worker.peers())?;
            let sink = make_sink();
            let config = config.clone();
            let probe = worker.dataflow(|scope| match stages {
                Stages::All => build(scope, reader, config, sink),
                Stages::Bars => build_bars(scope, reader, config, sink),
            });
            worker.step_while(|| !probe.done());
            Ok(())
        },
    )?;
    for r in guards.join() {
        r??;
    }
    Ok(())
}

/// Runs the pipeline on `workers` threads, each reading with the reader
/// `make_reader(index, peers)` builds, until every reader is finished.
/// Returns the deliveries in time order.
pub fn run_collect<R, F>(
    workers: usize,
    make_reader: F,
    config: PipelineConfig,
) -> Result<Vec<Delivery>, String>
where
    R: RecordReader,
    F: Fn(usize, usize) -> Result<R, String> + Send + Sync + 'static,
{
    Ok(run_collect_all(workers, make_reader, config)?.deliveries)
}

/// [`run_collect`] that also returns the snapshots the run took and what
/// it restored (see [`crate::graph::SnapshotConfig`]).
pub fn run_collect_all<R, F>(
    workers: usize,
    make_reader: F,
    config: PipelineConfig,
) -> Result<Exported, String>
where
    R: RecordReader,
    F: Fn(usize, usize) -> Result<R, String> + Send + Sync + 'static,
{
    let collected = Arc::new(Mutex::new(Exported::default()));
    let sink_target = collected.clone();
    run_with(workers, make_reader, config, Stages::All, move || {
        Collect(sink_target.clone())
    })?;
    let mut exported = std::mem::take(&mut *collected.lock().map_err(|e| e.to_string())?);
    exported.deliveries.sort_by_key(|d| d.time);
    exported.restored.sort_by_key(|d| d.time);
    Ok(exported)
}

/// How many outputs of each kind a run inserted: what a benchmark needs to
/// know, without keeping a long run's deliveries in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Deliveries (completed times with changes).
    pub deliveries: u64,
    /// Bars.
    pub bars: u64,
    /// Predictions (the predictions log).
    pub predictions: u64,
    /// Scored predictions.
    pub scores: u64,
    /// Rejected records.
    pub rejects: u64,
    /// Every change, of any kind and sign.
    pub changes: u64,
    /// Snapshots completed.
    pub snapshots: u64,
    /// Bytes of the last snapshot's entries.
    pub snapshot_bytes_last: u64,
    /// The longest stall one operator had making its part of a snapshot, ns.
    pub snapshot_stall_max_ns: u64,
}

impl Tally {
    fn add(&mut self, d: &Delivery) {
        self.deliveries += 1;
        self.changes += d.changes.len() as u64;
        for o in d.inserted() {
            match o {
                Output::Bar(_) => self.bars += 1,
                Output::Prediction(_) => self.predictions += 1,
                Output::Score(_) => self.scores += 1,
                Output::Reject(_) => self.rejects += 1,
                _ => {}
            }
        }
    }
}

struct Count(Arc<Mutex<Tally>>);

impl OutputSink for Count {
    fn deliver(&mut self, delivery: Delivery) {
        self.0.lock().expect("tally lock").add(&delivery);
    }

    fn snapshot(&mut self, snapshot: Assembled) {
        let mut t = self.0.lock().expect("tally lock");
        t.snapshots += 1;
        t.snapshot_bytes_last = snapshot.entries.iter().map(|e| e.bytes.len() as u64).sum();
        t.snapshot_stall_max_ns = t.snapshot_stall_max_ns.max(snapshot.stall_max_ns);
    }
}

/// [`run_with`] counting what worker 0 exports (see [`Tally`]).
pub fn run_tally<R, F>(
    workers: usize,
    make_reader: F,
    config: PipelineConfig,
    stages: Stages,
) -> Result<Tally, String>
where
    R: RecordReader,
    F: Fn(usize, usize) -> Result<R, String> + Send + Sync + 'static,
{
    let tally = Arc::new(Mutex::new(Tally::default()));
    let target = tally.clone();
    run_with(workers, make_reader, config, stages, move || {
        Count(target.clone())
    })?;
    let t = *tally.lock().map_err(|e| e.to_string())?;
    Ok(t)
}

/// Runs `records` (spread over `num_partitions`) through the pipeline on
/// `workers` threads; returns the deliveries in time order.
pub fn run_in_memory(
    records: Arc<Vec<Record>>,
    num_partitions: i32,
    workers: usize,
    config: PipelineConfig,
) -> Result<Vec<Delivery>, String> {
    run_collect(
        workers,
        move |index, peers| {
            Ok(VecReader::for_worker(
                &records,
                num_partitions,
                index,
                peers,
            ))
        },
        config,
    )
}

/// Every delivery of the pipeline (default configuration, 4 partitions, one
/// worker) over a seeded simulated market of `duration_ms` event time from
/// `start_ms`: realistic warehouse rows for tests and benchmarks. The clock
/// is put far ahead so historical event times are never "in the future".
pub fn simulated_deliveries(
    seed: u64,
    start_ms: u64,
    duration_ms: u64,
    trades_per_sec: f64,
) -> Result<Vec<Delivery>, String> {
    use crate::sim::{SimConfig, Simulator};
    use crate::source::{partition_records, SourceConfig};
    let mut sim = SimConfig::default_market(seed, start_ms);
    sim.trades_per_sec = trades_per_sec;
    let payloads = Simulator::new(sim)
        .take_while(|t| t.ts_ms < start_ms + duration_ms)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    let records = Arc::new(partition_records(payloads, 4));
    let far_ahead = start_ms
        .saturating_add(duration_ms)
        .saturating_add(86_400_000);
    let config = PipelineConfig {
        source: SourceConfig::new()
            .with_idle_lag_ms(None)
            .with_clock(Arc::new(move || far_ahead)),
        ..PipelineConfig::default()
    };
    run_in_memory(records, 4, 1, config)
}

/// [`simulated_deliveries`] grouped into `epochs` runs of consecutive
/// deliveries (of about equal count): a warehouse's worth of commits for
/// tests and benchmarks of the warehouse.
pub fn simulated_epochs(
    seed: u64,
    start_ms: u64,
    duration_ms: u64,
    trades_per_sec: f64,
    epochs: usize,
) -> Result<Vec<Vec<Delivery>>, String> {
    let deliveries = simulated_deliveries(seed, start_ms, duration_ms, trades_per_sec)?;
    Ok(deliveries
        .chunks(deliveries.len().div_ceil(epochs.max(1)).max(1))
        .map(<[Delivery]>::to_vec)
        .collect())
}
