//! `cryptoflow run`: the timely cluster reading Kafka, and on process 0 the
//! delivery router that feeds the HTTP view and the Delta warehouse.
//!
//! Worker `index` of `peers` (global across processes) reads partitions
//! `p % peers == index`. All outputs reach worker 0 of process 0 as complete
//! per-time deliveries (see `dataflows::graph`); the router applies them to
//! the live view at once and commits them to Delta in epochs, when
//! [`crate::commit::CommitPolicy`] says so (event-time epochs, at least every
//! `commit_interval` of wall time). Stopping (Ctrl-C / SIGTERM, see
//! [`crate::shutdown`]) lets workers leave their loop, the router commits
//! what it holds and the HTTP server drains. The router must never drop a
//! delivery whose commit failed: it stays pending and is retried; a commit
//! that still cannot be made (see [`crate::commit`]: five failures in a row
//! over ten seconds, or a last commit failing five times) stops the run
//! with [`Error::Commit`], so `run` exits non-zero. Nothing is half-written
//! then: each table holds whole epochs up to its `txn` version, and the
//! next start resumes from there.
//!
//! Backpressure: worker 0 hands deliveries to the router through a queue of
//! [`DELIVERY_QUEUE`] messages and waits while it is full, so a replay runs
//! at the pace of the Delta commits and its memory stays bounded (the
//! pending deliveries, at most about [`crate::commit::MAX_PENDING_OUTPUTS`]
//! outputs before a commit is forced, plus the queue). While commits fail
//! with such a backlog the router takes nothing more, so a failing store
//! stops the intake rather than queueing without bound, until a commit
//! succeeds or the run gives up. This cannot deadlock: the router never
//! waits for the dataflow to take a delivery, and when a replay holds at a
//! scheduled retrain (the Deploy operator waits for models trained from
//! committed data) everything before the hold has been delivered, the
//! router keeps draining and committing it, and the orchestrator's flush
//! requests are served between deliveries.
//!
//! Every commit attempt (and checkpoint) is recorded in the shared
//! [`Telemetry`], which also gets the source's per-partition progress and a
//! broker probe's answers every [`BROKER_PROBE_EVERY`]; `/api/health` and
//! `/metrics` read it. None of this feeds back into the dataflow.
//!
//! Process 0 also runs the orchestrator (`crate::jobs`): the router tells
//! it how far the warehouse is complete ([`Progress`]) and commits at once
//! when it asks (its sensors wait on committed data, and a replay waits at
//! each scheduled retrain for the models trained from that data). At the
//! end of a bounded run the orchestrator finishes the jobs the last data
//! made due before `run` returns.
//!
//! Snapshots (issue 14; `docs/design/snapshots.md`). Every
//! `--snapshot-every-ms` of event time the dataflow hands worker 0 a cut
//! (see `dataflows::snapshot`); the router writes it to `--state-dir` only
//! after the commit that made every delivery before the cut durable, so a
//! snapshot never holds state the warehouse lacks. The order, and why a
//! crash at any step loses or doubles nothing:
//! 1. the dataflow delivers every time before the cut T, then the cut;
//! 2. the router commits what it holds (a later delivery may ride along:
//!    the warehouse ahead of a snapshot is harmless, its epochs are skipped
//!    per table on restart as without snapshots);
//! 3. with nothing pending, it reads each table's committed epoch into the
//!    header and writes the file atomically (tmp, fsync, rename, fsync of
//!    the directory), keeping the newest `--keep-snapshots`.
//!
//! A crash before 3 completes leaves the previous snapshot; a restart from
//! it re-produces the deliveries after its cut identically, and the tables
//! skip the epochs they hold. On start, process 0 takes the newest snapshot
//! that is intact, written under the same settings and not ahead of the
//! warehouse, checks that Kafka still holds every offset it resumes at, and
//! starts the dataflow from it; the changes before the cut it re-creates
//! (current predictions, champions, best predictions) reach only the live
//! view, never the warehouse.
//!
//! Stop snapshot. On Ctrl-C or SIGTERM a single-process run does not stop
//! at once: it asks every operator for cuts every second of event time
//! (`dataflows::snapshot::Cuts`), goes on reading, and stops as soon as
//! the router has written a snapshot whose cut is after every delivery it
//! had seen when the signal came (so the snapshot holds everything the run
//! had delivered), at most `--stop-grace-ms` later (default 20 s). A
//! restart then replays about a second of event time, not up to a whole
//! interval. If the dataflow waits for a retrain decision (which the
//! stopping orchestrator will not make) or the grace runs out (a stalled
//! broker), the run stops with a warning and the newest interval snapshot
//! stands. A cluster stops at once: its processes get their
//! signals independently, and one that left while another waited for its
//! cut would end the other with a lost peer. The end of a bounded run
//! (`--until-end`) takes no stop snapshot either: its sources have ended,
//! so no operator's frontier can reach a cut after them; its restart
//! resumes from its newest interval snapshot.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataflows::bars::BarConfig;
use dataflows::champion::ChampionConfig;
use dataflows::deploy::{DeployLink, DeploySetup};
use dataflows::graph::check_restore;
use dataflows::predict::PredictConfig;
use dataflows::snapshot::{Assembled, Key, Op, Restore, StopCuts};
use dataflows::source::{system_clock, SourceConfig};
use dataflows::{Delivery, OutputSink, PipelineConfig};
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

use crate::cluster::{self, Cluster, StdoutToStderr};
use crate::commit::{CommitPolicy, FINAL_COMMIT_ATTEMPTS, FINAL_COMMIT_RETRY_DELAY};
use crate::error_chain;
use crate::health::ProcessHealth;
use crate::http::guard::Access;
use crate::http::LiveView;
use crate::jobs::{History, JobsOptions, Orchestrator, Progress, Wiring};
use crate::kafka::{self, KafkaReader, StartFrom};
use crate::shutdown::{shutdown_signal, Stop};
use crate::state::{self, FromSnapshot};
use crate::telemetry::{JobRun, Telemetry};
use crate::warehouse::{self, catalog, Warehouse};

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Kafka.
    #[error(transparent)]
    Kafka(#[from] kafka::Error),
    /// The warehouse.
    #[error(transparent)]
    Warehouse(#[from] warehouse::Error),
    /// Timely could not start or a worker failed.
    #[error("dataflow: {0}")]
    Timely(String),
    /// Bad cluster settings.
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    /// HTTP server or runtime.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The warehouse could not commit an epoch: the run stopped.
    #[error(
        "warehouse commit of the epoch ending at {epoch} failed {attempts} times; the run stopped \
         (each table keeps whole epochs up to its committed one and the next start resumes there)"
    )]
    Commit {
        /// The event time (ms) of the newest pending delivery.
        epoch: u64,
        /// Failed attempts in a row.
        attempts: u32,
        /// The last failure.
        source: warehouse::Error,
    },
    /// Another process of the cluster went away (it died, or the network
    /// between them failed): timely cannot go on without it.
    #[error("lost another process of the cluster ({0}); restart the whole cluster, it resumes from the committed epochs")]
    PeerLost(String),
    /// The orchestrator's run history could not be read.
    #[error("job history")]
    Jobs(#[from] crate::jobs::HistoryError),
    /// A snapshot cannot be continued from, and replaying instead would
    /// hide it (see [`crate::state::select`]).
    #[error("snapshot: {0}")]
    Snapshot(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Wall time between warehouse commits unless configured, ms.
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 2_000;
/// Event time one commit (epoch) spans unless configured, ms.
pub const DEFAULT_EPOCH_MS: u64 = 5_000;
/// Worker threads per process unless configured.
pub const DEFAULT_WORKERS: usize = 2;
/// Where the HTTP server listens unless configured.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// Wall time between two broker probes.
pub const BROKER_PROBE_EVERY: Duration = Duration::from_secs(2);

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Tick topic.
    pub topic: String,
    /// Cluster layout.
    pub cluster: Cluster,
    /// Warehouse root.
    pub data_dir: PathBuf,
    /// HTTP address (None: no server).
    pub http: Option<SocketAddr>,
    /// Allowed lateness (ms).
    pub lateness_ms: u64,
    /// Allowed clock skew into the future (ms).
    pub max_future_ms: u64,
    /// Bar length (ms).
    pub bar_ms: u64,
    /// Horizons in bars.
    pub horizons: Vec<u32>,
    /// The online models run (names, [`dataflows::models::ModelParams::select`]).
    pub models: Vec<&'static str>,
    /// Where to start reading.
    pub from: StartFrom,
    /// Stop once every partition has been read to its end.
    pub until_end: bool,
    /// Wall time between warehouse commits, at the most.
    pub commit_interval: Duration,
    /// Event time an epoch spans: a commit is made as soon as the pending
    /// deliveries cover this much event time (so a replay commits in
    /// event-time epochs however fast it runs).
    pub epoch_ms: u64,
    /// Table versions between automatic Delta checkpoints (0: never).
    pub checkpoint_every: u64,
    /// The HTTP server's access controls (size limits, rate limit, CORS,
    /// the admin token).
    pub access: Access,
    /// Where a process other than 0 serves its own health (see
    /// [`crate::health`]); None: nowhere.
    pub health_addr: Option<SocketAddr>,
    /// On process 0: the health addresses of processes 1, 2, … to poll.
    pub peer_health: Vec<String>,
    /// Wall time without a tick after which `/api/health` says "degraded".
    pub stale_after: Duration,
    /// The orchestrator: retraining, evaluation, promotion, maintenance.
    pub jobs: JobsOptions,
    /// State snapshots: how often, where, and whether to start from one.
    pub snapshots: SnapshotOptions,
}

/// Event time between snapshots unless configured, ms.
pub const DEFAULT_SNAPSHOT_EVERY_MS: u64 = 60_000;

/// How long a run stopped by a signal may go on to end with a snapshot, ms.
pub const DEFAULT_STOP_GRACE_MS: u64 = 20_000;

/// When `run` snapshots its state and whether it starts from a snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// Event time between snapshots, ms (0: none are taken).
    pub every_ms: u64,
    /// Where they are kept (None: `<data-dir>/_state`).
    pub state_dir: Option<PathBuf>,
    /// How many are kept (at least one).
    pub keep: usize,
    /// Whether the run starts from the newest usable one.
    pub from: FromSnapshot,
    /// On a signal, how long the run may go on to end with a snapshot of
    /// its latest state (zero: stop at once). See "Stop snapshot" above.
    pub stop_grace: Duration,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            every_ms: DEFAULT_SNAPSHOT_EVERY_MS,
            state_dir: None,
            keep: state::DEFAULT_KEEP,
            from: FromSnapshot::Latest,
            stop_grace: Duration::from_millis(DEFAULT_STOP_GRACE_MS),
        }
    }
}

impl RunOptions {
    /// `run` on its defaults, reading `topic` on `brokers` and writing the
    /// warehouse under `data_dir`: the one place the run defaults are put
    /// together (the dataflow's own come from `dataflows`); the CLI's flags
    /// and the demo start from the same constants.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>, data_dir: PathBuf) -> Self {
        RunOptions {
            brokers: brokers.into(),
            topic: topic.into(),
            cluster: Cluster::local(DEFAULT_WORKERS),
            data_dir,
            http: DEFAULT_HTTP.parse().ok(),
            lateness_ms: dataflows::source::DEFAULT_LATENESS_MS,
            max_future_ms: dataflows::source::DEFAULT_MAX_FUTURE_MS,
            bar_ms: dataflows::bars::DEFAULT_BAR_MS,
            horizons: dataflows::predict::DEFAULT_HORIZONS.to_vec(),
            models: dataflows::models::ModelParams::default().names(),
            from: StartFrom::Earliest,
            until_end: false,
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
            epoch_ms: DEFAULT_EPOCH_MS,
            checkpoint_every: warehouse::DEFAULT_CHECKPOINT_EVERY,
            access: Access::default(),
            health_addr: None,
            peer_health: Vec::new(),
            stale_after: Duration::from_millis(crate::telemetry::DEFAULT_STALE_AFTER_MS),
            jobs: JobsOptions::default(),
            snapshots: SnapshotOptions::default(),
        }
    }

    /// Where snapshots are kept.
    pub fn state_dir(&self) -> PathBuf {
        self.snapshots
            .state_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("_state"))
    }

    /// The settings that shape the dataflow's state: a snapshot is only
    /// continued under the same ones.
    fn state_settings(&self, partitions: i32) -> String {
        let list = |v: &[&str]| v.join(",");
        state::settings([
            ("topic", self.topic.clone()),
            ("partitions", partitions.to_string()),
            ("bar_ms", self.bar_ms.to_string()),
            ("lateness_ms", self.lateness_ms.to_string()),
            (
                "horizons",
                self.horizons
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("models", list(&self.models)),
            ("retrain_every_ms", self.jobs.retrain_every_ms.to_string()),
            ("max_future_ms", self.max_future_ms.to_string()),
            ("max_fill", BarConfig::default().max_fill.to_string()),
            ("champion", format!("{:?}", ChampionConfig::default())),
        ])
    }

    /// Batch models are trained and deployed.
    fn retraining(&self) -> bool {
        self.jobs.retrain_every_ms > 0
    }

    fn pipeline_config(&self, telemetry: &Telemetry, link: &DeployLink) -> PipelineConfig {
        let idle_lag = if self.until_end {
            None
        } else {
            Some(self.lateness_ms.max(1_000) * 5)
        };
        PipelineConfig {
            source: SourceConfig::new()
                .with_lateness_ms(self.lateness_ms)
                .with_max_future_ms(self.max_future_ms)
                .with_idle_lag_ms(idle_lag)
                .with_progress(telemetry.progress.clone()),
            bars: BarConfig {
                interval_ms: self.bar_ms,
                ..BarConfig::default()
            },
            predict: PredictConfig {
                horizons: self.horizons.clone(),
                models: self.models.clone(),
                batch_models: if self.retraining() {
                    crate::train::KINDS.iter().map(|k| k.name()).collect()
                } else {
                    Vec::new()
                },
                ..PredictConfig::default()
            },
            champion: ChampionConfig::default(),
            deploy: self.retraining().then(|| DeploySetup {
                every_ms: self.jobs.retrain_every_ms,
                stall_bound_ms: (!self.until_end).then_some(self.jobs.deploy_wait_ms),
                clock: system_clock(),
                link: link.clone(),
            }),
            snapshot: dataflows::SnapshotConfig {
                every_ms: (self.snapshots.every_ms > 0).then_some(self.snapshots.every_ms),
                stop: StopCuts::default(),
                restore: None,
            },
        }
    }
}

/// What a finished run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunSummary {
    /// Deliveries received (on process 0).
    pub deliveries: u64,
    /// Rows committed to the warehouse.
    pub rows_written: u64,
}

/// What worker 0 sends the router.
enum Routed {
    /// A complete delivery.
    Delivery(Delivery),
    /// Every delivery before this time was sent (None: all of them).
    Progress(Option<u64>),
    /// A complete cut, after every delivery before it.
    Snapshot(Assembled),
    /// The state a restored run re-created before its cut (view only).
    Restored(Delivery),
}

/// Messages worker 0 may have sent the router that it has not taken yet.
/// When the queue is full worker 0 waits, and with it the dataflow: a
/// replay runs at the pace the warehouse commits instead of queueing its
/// outputs in memory (see the module doc, "Backpressure").
pub const DELIVERY_QUEUE: usize = 64;

/// Threads tokio may start for blocking work (tokio's default is 512).
/// The warehouse's file I/O (object_store, delta-rs) runs every read and
/// write on the blocking pool, so a replay's commits had more than 100 such
/// threads alive at once, each with its own allocator heap holding freed
/// pages: 1.9 GB resident where 1.2 GB was in use.
const BLOCKING_THREADS: usize = 16;

/// Worker 0's end of the router's queue. It runs on a timely worker thread,
/// outside the tokio runtime, so it may block.
struct ChannelSink(Sender<Routed>);

impl OutputSink for ChannelSink {
    fn deliver(&mut self, delivery: Delivery) {
        // The receiver only goes away at shutdown or when the router has
        // stopped the run with an error; nothing to do then.
        let _ = self.0.blocking_send(Routed::Delivery(delivery));
    }

    fn progress(&mut self, frontier: Option<u64>) {
        let _ = self.0.blocking_send(Routed::Progress(frontier));
    }

    fn snapshot(&mut self, snapshot: Assembled) {
        let _ = self.0.blocking_send(Routed::Snapshot(snapshot));
    }

    fn restored(&mut self, delivery: Delivery) {
        let _ = self.0.blocking_send(Routed::Restored(delivery));
    }
}

/// The router's snapshot side: the newest cut waiting for its commit, and
/// where it goes.
struct SnapshotWriter {
    dir: PathBuf,
    keep: usize,
    settings: String,
    waiting: Option<Assembled>,
    telemetry: Arc<Telemetry>,
    /// The first delivery's time over the run's history (carried over
    /// from the snapshot a run starts from): where the orchestrator's
    /// daily jobs begin.
    first_ms: Option<u64>,
    /// Asked on a signal: the run ends with a stop snapshot.
    stop_cuts: StopCuts,
    /// The newest delivery's time when the stop snapshot was asked for: a
    /// snapshot whose cut is after it holds everything delivered by then.
    stop_floor: Option<u64>,
    /// The newest delivery's time so far.
    last_delivered: u64,
    /// Set once the stop snapshot is written: the workers may stop.
    stop_written: Arc<AtomicBool>,
}

impl SnapshotWriter {
    /// Notes a delivery's time, and when the stop snapshot is first asked
    /// for, the newest delivery's time then.
    fn note(&mut self, delivered: Option<u64>) {
        if let Some(t) = delivered {
            self.last_delivered = self.last_delivered.max(t);
        }
        if self.stop_floor.is_none() && self.stop_cuts.asked() {
            self.stop_floor = Some(self.last_delivered);
        }
    }

    /// Writes the waiting cut if every delivery before it is committed
    /// (`pending` is empty). A failed write is logged and recorded; it
    /// costs restart time, never data.
    async fn write_if_committed(&mut self, pending: &[Delivery], wh: &Warehouse) {
        if !pending.is_empty() {
            return;
        }
        let Some(cut) = self.waiting.take() else {
            return;
        };
        let committed = catalog::names()
            .into_iter()
            .map(|t| (t.to_string(), wh.committed(t)))
            .collect();
        let started_ms = crate::now_ms();
        let start = Instant::now();
        let stop = self.stop_floor.is_some_and(|floor| cut.cut > floor);
        let kind = if stop {
            state::Kind::Stop
        } else {
            state::Kind::Cadence
        };
        let mut snap = state::of_cut(&cut, kind, &self.settings, committed, started_ms);
        snap.header.first_delivery_ms = self.first_ms;
        let (dir, keep) = (self.dir.clone(), self.keep);
        let bytes = snap.payload.len() as u64;
        let written = tokio::task::spawn_blocking(move || state::write(&dir, &snap, keep))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| error_chain(&e)));
        let mut run = JobRun {
            job: "state.snapshot".into(),
            state: "succeeded".into(),
            attempt: 1,
            started_ms,
            duration_ms: start.elapsed().as_secs_f64() * 1e3,
            epoch_ms: Some(cut.cut),
            rows: 0,
            detail: format!("{bytes} bytes"),
            error: None,
        };
        match written {
            Ok(path) if stop => {
                info!(epoch = cut.cut, path = %path.display(), bytes, "stop snapshot written");
                self.stop_written.store(true, Ordering::SeqCst);
            }
            Ok(path) => {
                tracing::debug!(epoch = cut.cut, path = %path.display(), bytes, "snapshot written")
            }
            Err(e) => {
                error!(epoch = cut.cut, error = %e, "snapshot not written; a restart uses the previous one");
                run.state = "failed".into();
                run.error = Some(e);
            }
        }
        self.telemetry.commit_done(run);
    }
}

/// The router's warehouse side: the open warehouse, what is pending, and
/// where commit attempts are recorded.
struct Committer {
    wh: Warehouse,
    telemetry: Arc<Telemetry>,
    /// Failed attempts in a row for the data pending now.
    attempt: u32,
}

impl Committer {
    /// Commits the pending deliveries as one epoch; keeps them on failure
    /// and returns the error. Every attempt (and checkpoint) is recorded in
    /// the telemetry.
    async fn flush(
        &mut self,
        pending: &mut Vec<Delivery>,
        written: &mut u64,
    ) -> std::result::Result<(), warehouse::Error> {
        if pending.is_empty() {
            return Ok(());
        }
        let started_ms = crate::now_ms();
        let start = Instant::now();
        let epoch_ms = pending.last().map(|d| d.time);
        let result = self.wh.commit(pending).await;
        let duration_ms = start.elapsed().as_secs_f64() * 1e3;
        self.attempt += 1;
        let mut run = JobRun {
            job: "warehouse.commit".into(),
            state: "succeeded".into(),
            attempt: self.attempt,
            started_ms,
            duration_ms,
            epoch_ms,
            rows: 0,
            detail: format!("{} deliveries", pending.len()),
            error: None,
        };
        let result = match result {
            Ok(rows) => {
                *written += rows as u64;
                pending.clear();
                run.rows = rows as u64;
                self.attempt = 0;
                Ok(())
            }
            Err(e) => {
                error!(error = %error_chain(&e), deliveries = pending.len(), "warehouse commit failed; will retry");
                run.state = "failed".into();
                run.error = Some(error_chain(&e));
                Err(e)
            }
        };
        self.telemetry.commit_done(run);
        self.record_checkpoints(epoch_ms);
        result
    }

    /// The last step of a run that stopped cleanly: checkpoints the tables
    /// this run wrote to (see [`Warehouse::checkpoint_written`]).
    async fn close(&mut self) {
        let start = Instant::now();
        self.wh.checkpoint_written().await;
        let epoch_ms = self.wh.newest_committed();
        let tables = self.record_checkpoints(epoch_ms);
        if tables > 0 {
            info!(
                tables,
                ms = start.elapsed().as_millis() as u64,
                "checkpointed the tables written to, for a fast next start"
            );
        }
    }

    /// Records the checkpoints written since the last call; returns how many.
    fn record_checkpoints(&mut self, epoch_ms: Option<u64>) -> usize {
        let checkpoints = self.wh.take_checkpoints();
        let count = checkpoints.len();
        for c in checkpoints {
            self.telemetry.commit_done(JobRun {
                job: "warehouse.checkpoint".into(),
                state: if c.error.is_none() {
                    "succeeded"
                } else {
                    "failed"
                }
                .into(),
                attempt: 1,
                started_ms: c.started_ms,
                duration_ms: c.duration_ms,
                epoch_ms,
                rows: 0,
                detail: format!("{} version {}", c.table, c.version),
                error: c.error,
            });
        }
        count
    }
}

/// The error that stops a run whose commits keep failing.
fn commit_failed(pending: &[Delivery], attempts: u32, source: warehouse::Error) -> Error {
    Error::Commit {
        epoch: pending.last().map_or(0, |d| d.time),
        attempts,
        source,
    }
}

/// The router's side of the orchestrator's sensors.
struct Sensors {
    progress: watch::Sender<Progress>,
    flush: Arc<Notify>,
}

impl Sensors {
    fn update(&self, f: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(f);
    }

    /// After a commit attempt: with nothing pending, everything delivered
    /// so far is committed.
    fn committed(&self, pending: &[Delivery]) {
        if pending.is_empty() {
            self.update(|p| p.complete_below = p.delivered_below);
        }
    }
}

async fn route(
    mut rx: Receiver<Routed>,
    state: Arc<LiveView>,
    mut committer: Committer,
    mut snapshots: SnapshotWriter,
    every: Duration,
    epoch_ms: u64,
    sensors: Sensors,
) -> Result<RunSummary> {
    let mut pending: Vec<Delivery> = Vec::new();
    let mut policy = CommitPolicy::new(every, epoch_ms, Instant::now());
    let mut summary = RunSummary::default();
    let mut ticker = policy.ticker();
    let resume = catalog::names()
        .into_iter()
        .filter_map(|t| committer.wh.committed(t))
        .min();
    if let Some(epoch) = resume {
        info!(
            epoch,
            "resuming: deliveries up to each table's committed epoch are not written again"
        );
    }
    if let Some(first) = snapshots.first_ms {
        // Restored: the daily jobs still start at the history's first day.
        sensors.update(|p| p.first_ms = Some(first));
    }
    let flush_now = sensors.flush.clone();
    loop {
        let attempt = tokio::select! {
            // While commits fail with a full backlog, take nothing more:
            // the queue fills and the dataflow waits (backpressure).
            msg = rx.recv(), if policy.accepting() => match msg {
                Some(Routed::Delivery(d)) => {
                    summary.deliveries += 1;
                    state.apply(&d);
                    let t = d.time;
                    snapshots.note(Some(t));
                    snapshots.first_ms.get_or_insert(t);
                    sensors.update(|p| {
                        p.first_ms.get_or_insert(t);
                        p.last_ms = Some(p.last_ms.map_or(t, |l| l.max(t)));
                    });
                    let due = policy.deliver(d.time, d.changes.len(), Instant::now());
                    pending.push(d);
                    due
                }
                Some(Routed::Progress(f)) => {
                    sensors.update(|p| p.delivered_below = f.unwrap_or(u64::MAX));
                    sensors.committed(&pending);
                    false
                }
                Some(Routed::Snapshot(cut)) => {
                    snapshots.note(None);
                    snapshots.waiting = Some(cut);
                    // While stopping, commit at once: the workers wait for
                    // this snapshot to be written.
                    snapshots.stop_floor.is_some()
                }
                Some(Routed::Restored(d)) => {
                    state.apply(&d);
                    false
                }
                None => break,
            },
            _ = ticker.tick() => true,
            _ = flush_now.notified() => true,
        };
        if !attempt {
            snapshots.write_if_committed(&pending, &committer.wh).await;
            continue;
        }
        let result = committer
            .flush(&mut pending, &mut summary.rows_written)
            .await;
        let now = Instant::now();
        policy.attempted(pending.is_empty(), now);
        sensors.committed(&pending);
        snapshots.write_if_committed(&pending, &committer.wh).await;
        if let Err(e) = result {
            if policy.give_up(now) {
                return Err(commit_failed(&pending, policy.failures(), e));
            }
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match committer
            .flush(&mut pending, &mut summary.rows_written)
            .await
        {
            Ok(()) => break,
            Err(e) if attempt >= FINAL_COMMIT_ATTEMPTS => {
                return Err(commit_failed(&pending, attempt, e))
            }
            Err(_) => {
                warn!(attempt, "final warehouse commit failed; retrying");
                tokio::time::sleep(FINAL_COMMIT_RETRY_DELAY).await;
            }
        }
    }
    sensors.committed(&pending);
    snapshots.write_if_committed(&pending, &committer.wh).await;
    committer.close().await;
    sensors.update(|p| p.finished = true);
    Ok(summary)
}

/// The first panic of this process, as its hook printed it: timely hands
/// `run` only an opaque payload for a worker that panicked.
static FIRST_PANIC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Keeps the first panic message, then prints it as before, except a lost
/// peer's. Timely's networking panics when another process of the cluster
/// goes away, and unwinding a worker then panics again in its channels'
/// destructors, which aborts the process (and resolving the backtraces of
/// this binary can take many seconds first). The cluster cannot go on
/// without the peer, so the process leaves at once with the error `run`
/// would have returned and exit code 1. Nothing is half-written: a Delta
/// commit is one atomic log entry, and a restart resumes from the last
/// committed epoch, as after any crash.
fn record_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.to_string().replace('\n', " ");
            let _ = FIRST_PANIC.set(message.clone());
            if is_peer_lost(&message) {
                eprintln!("Error: {}", Error::PeerLost(message));
                // SAFETY: `_exit` ends the process at once, running no
                // destructors or atexit handlers, which is what a process
                // whose other threads are still running needs.
                unsafe { libc::_exit(1) };
            }
            previous(info);
        }));
    });
}

/// Timely's networking panics (and poisons the queues the workers read)
/// when a peer process goes away.
fn is_peer_lost(panic: &str) -> bool {
    panic.contains("timely communication error") || panic.contains("MergeQueue poisoned")
}

/// A worker that panicked, named by the first panic of the process (a lost
/// peer never gets here: the hook has ended the process).
fn worker_failure(payload: String) -> Error {
    Error::Timely(FIRST_PANIC.get().cloned().unwrap_or(payload))
}

/// Asks the broker for the topic's metadata every [`BROKER_PROBE_EVERY`]
/// and records whether it answered (in a blocking thread: the client call
/// waits up to its timeout).
async fn probe_broker(brokers: String, topic: String, telemetry: Arc<Telemetry>) {
    let probe = match kafka::BrokerProbe::new(&brokers) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            telemetry.broker_probed(Err(error_chain(&e)));
            return;
        }
    };
    let mut every = tokio::time::interval(BROKER_PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let (p, t) = (probe.clone(), topic.clone());
        let result = tokio::task::spawn_blocking(move || p.check(&t, BROKER_PROBE_EVERY))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| error_chain(&e)));
        telemetry.broker_probed(result);
    }
}

/// The snapshot a run on process 0 starts from (see the module doc), if
/// any, with the time of its history's first delivery: None with
/// `--from-snapshot none` or when there is no usable one (the topic is
/// then replayed from `--from`).
fn restore_from(
    opts: &RunOptions,
    wh: &Warehouse,
    settings: &str,
    pipeline: &PipelineConfig,
    partitions: i32,
) -> Result<Option<(Arc<Restore>, Option<u64>)>> {
    let dir = opts.state_dir();
    if opts.snapshots.from == FromSnapshot::None {
        info!(dir = %dir.display(), "--from-snapshot none: rebuilding state from the topic");
        return Ok(None);
    }
    match state::clean(&dir) {
        Ok(0) => {}
        Ok(n) => info!(
            files = n,
            "removed temporary files of an interrupted snapshot write"
        ),
        Err(e) => warn!(error = %e, "could not clean the state directory"),
    }
    let check = |r: &Restore| {
        let sources: Vec<i32> = r
            .entries
            .iter()
            .filter_map(|e| match (&e.op, &e.key) {
                (Op::Source, Key::Partition(p)) => Some(*p),
                _ => None,
            })
            .collect();
        if sources != (0..partitions).collect::<Vec<_>>() {
            return Err(format!(
                "its source state covers partitions {sources:?}, the topic has {partitions}"
            ));
        }
        check_restore(r, pipeline).map_err(|e| e.to_string())
    };
    let chosen = state::select(&dir, settings, |t| wh.committed(t), check)
        .map_err(|e| Error::Snapshot(error_chain(&e)))?;
    let Some(chosen) = chosen else {
        info!(dir = %dir.display(), "no usable snapshot; replaying the topic from its start");
        return Ok(None);
    };
    let offsets = &chosen.header.offsets;
    match kafka::low_watermarks(&opts.brokers, &opts.topic, offsets.keys().copied()) {
        Ok(low) => {
            for (p, o) in offsets {
                let l = low.get(p).copied().unwrap_or(0);
                if *o < l {
                    return Err(Error::Snapshot(format!(
                        "{}: partition {p} resumes at offset {o}, but the topic starts at {l}                          (the records between were deleted before the snapshot reflected them);                          start with --from-snapshot none to rebuild state from what the topic holds",
                        chosen.path.display()
                    )));
                }
            }
        }
        Err(e) => {
            warn!(error = %error_chain(&e), "could not check the topic still holds the snapshot's offsets")
        }
    }
    if opts.from != StartFrom::Earliest {
        info!("--from is ignored: reading resumes where the snapshot's state ends");
    }
    info!(
        epoch = chosen.header.epoch,
        path = %chosen.path.display(),
        partitions = offsets.len(),
        symbols = chosen.header.symbols.len(),
        offsets = ?offsets,
        "restored from snapshot"
    );
    Ok(Some((
        Arc::new(chosen.restore),
        chosen.header.first_delivery_ms,
    )))
}

/// Runs the pipeline until `stop` (or, with `until_end`, the end of the topic).
pub fn run(opts: RunOptions, stop: Stop) -> Result<RunSummary> {
    record_panics();
    let num_partitions = kafka::partition_count(&opts.brokers, &opts.topic)?;
    let config = opts.cluster.timely_config()?;
    let leader = opts.cluster.process == 0;
    info!(
        brokers = %opts.brokers, topic = %opts.topic, partitions = num_partitions,
        workers = opts.cluster.workers, processes = opts.cluster.processes, "starting dataflow"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()?;
    let telemetry = Arc::new(Telemetry::new(Some(opts.stale_after)));
    let peers = if leader {
        opts.peer_health.clone()
    } else {
        Vec::new()
    };
    let health = Arc::new(ProcessHealth::new(
        opts.cluster.process,
        &peers,
        telemetry.progress.clone(),
    ));
    let state = Arc::new(LiveView::new());
    let started = Instant::now();
    let warehouse = if leader {
        let wh = runtime.block_on(Warehouse::open(&opts.data_dir))?;
        info!(
            ms = started.elapsed().as_millis() as u64,
            "opened the warehouse"
        );
        Some(wh.with_checkpoint_every(opts.checkpoint_every))
    } else {
        None
    };
    // Bind before starting anything, so a busy port is a clear error up front.
    let listener = match (leader, opts.http) {
        (true, Some(addr)) => {
            if !addr.ip().is_loopback() && opts.access.admin_token.is_none() {
                warn!(
                    addr = %addr,
                    "http listens on a non-loopback address without an admin token: the read-only \
                     API is open to that network and state-changing endpoints stay disabled; set \
                     --admin-token (or CRYPTOFLOW_ADMIN_TOKEN) and limit who can reach the port"
                );
            }
            Some(runtime.block_on(crate::http::bind(addr))?)
        }
        _ => None,
    };
    let health_listener = match (leader, opts.health_addr) {
        (false, Some(addr)) => Some(runtime.block_on(crate::http::bind(addr))?),
        _ => None,
    };

    let link = DeployLink::new();
    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    let flush_request = Arc::new(Notify::new());
    // Process 0 runs the orchestrator over the warehouse it writes.
    let orchestrator = match &warehouse {
        Some(wh) => {
            let opening = Instant::now();
            let history = runtime.block_on(History::open(wh.root()))?;
            info!(
                ms = opening.elapsed().as_millis() as u64,
                "read the job history"
            );
            let wiring = Wiring {
                link: opts.retraining().then(|| link.clone()),
                live: !opts.until_end,
                progress: progress_rx,
                flush: flush_request.clone(),
                view: state.clone(),
            };
            Some(Orchestrator::new(
                opts.jobs.clone(),
                opts.horizons.clone(),
                wh.root().to_path_buf(),
                history,
                wiring,
            ))
        }
        None => None,
    };
    let (orchestrator, jobs) = match orchestrator {
        Some((o, h)) => (Some(o), Some(h)),
        None => (None, None),
    };

    let (tx, rx) = channel::<Routed>(DELIVERY_QUEUE);
    let mut pipeline = opts.pipeline_config(&telemetry, &link);
    let settings = opts.state_settings(num_partitions);
    let mut first_ms = None;
    if let Some(wh) = &warehouse {
        if let Some((restore, first)) =
            restore_from(&opts, wh, &settings, &pipeline, num_partitions)?
        {
            pipeline.snapshot.restore = Some(restore);
            first_ms = first;
        }
    }
    // The stop snapshot (see the module doc): single process only.
    let stop_cuts = pipeline.snapshot.stop.clone();
    let stop_written = Arc::new(AtomicBool::new(false));
    let stop_grace = opts.snapshots.stop_grace;
    let stop_snapshot = opts.cluster.processes == 1
        && pipeline.snapshot.every_ms.is_some()
        && !stop_grace.is_zero();
    let (worker_cuts, worker_written) = (stop_cuts.clone(), stop_written.clone());
    let worker_link = link.clone();
    let worker_stop = stop.clone();
    let (brokers, topic, from, until_end) = (
        opts.brokers.clone(),
        opts.topic.clone(),
        opts.from,
        opts.until_end,
    );
    // timely prints its connection progress to stdout; keep stdout for the summary.
    let quiet = StdoutToStderr::during_cluster_start(opts.cluster.processes > 1);
    let guards = timely::execute(config, move |worker| -> std::result::Result<(), String> {
        let (index, peers) = (worker.index(), worker.peers());
        let reader = KafkaReader::new(
            &brokers,
            &topic,
            num_partitions,
            index,
            peers,
            from,
            until_end,
        )
        .map_err(|e| e.to_string())?;
        let sink = ChannelSink(tx.clone());
        let config = pipeline.clone();
        let probe = worker.dataflow(|scope| dataflows::build(scope, reader, config, sink));
        let mut stopping: Option<Instant> = None;
        while !probe.done() {
            if worker_stop.is_set() {
                // Asked for a stop snapshot: on until it is written.
                if !worker_cuts.asked() || worker_written.load(Ordering::SeqCst) {
                    break;
                }
                if stopping.get_or_insert_with(Instant::now).elapsed() >= stop_grace {
                    break;
                }
                // Waiting for a retrain decision the stopping orchestrator
                // will not make: no cut after the hold can complete.
                if worker_link
                    .hold()
                    .is_some_and(|h| h.due && h.released_at_ms.is_none())
                {
                    break;
                }
            }
            worker.step_or_park(Some(Duration::from_millis(20)));
        }
        // On stop, abandon the dataflow rather than let timely run it to
        // completion: open bars are incomplete and must not be emitted. At the
        // end of a bounded run timely finishes it (the export still drains).
        if worker_stop.is_set() {
            for id in worker.installed_dataflows() {
                worker.drop_dataflow(id);
            }
        }
        Ok(())
    })
    .map_err(Error::Timely)?;
    drop(quiet);

    // Workers finish on stop or at the end of a bounded run; the channel
    // closes when their closure (holding the sender) is dropped.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let joiner = std::thread::spawn(move || {
        let results = guards.join();
        let _ = done_tx.send(());
        results
    });

    let summary = runtime.block_on(async {
        let signal_stop = stop.clone();
        let signal_cuts = stop_cuts.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown_signal() => {
                    if stop_snapshot {
                        info!(
                            grace_ms = stop_grace.as_millis() as u64,
                            "shutting down after a stop snapshot"
                        );
                        signal_cuts.ask();
                    } else {
                        info!("shutting down");
                    }
                    signal_stop.trigger();
                }
                _ = signal_stop.wait() => {}
            }
        });
        let http_stop = stop.clone();
        let app = crate::http::AppState::new(state.clone(), telemetry.clone())
            .with_warehouse(opts.data_dir.clone())
            .with_cluster(health.clone());
        let app = match jobs {
            Some(jobs) => app.with_jobs(jobs),
            None => app,
        };
        let access = opts.access.clone();
        let http = listener.map(|listener| {
            tokio::spawn(async move {
                let shutdown = async move { http_stop.wait().await };
                crate::http::serve_with(listener, app, &access, shutdown).await
            })
        });
        if let Some(listener) = health_listener {
            let (health_stop, router) = (stop.clone(), crate::health::router(health.clone()));
            tokio::spawn(async move {
                let shutdown = async move { health_stop.wait().await };
                if let Err(e) = crate::http::serve_app(listener, router, shutdown).await {
                    error!(error = %e, "health endpoint failed");
                }
            });
        }
        tokio::spawn(crate::health::poll_peers(health.clone(), stop.clone()));
        let probe = tokio::spawn(probe_broker(
            opts.brokers.clone(),
            opts.topic.clone(),
            telemetry.clone(),
        ));
        // A crashed orchestrator would leave a replay waiting for models
        // forever: stop the run loudly instead.
        let jobs_done = orchestrator.map(|o| {
            let jobs_stop = stop.clone();
            tokio::spawn(async move {
                if let Err(e) = tokio::spawn(o.run(jobs_stop.clone())).await {
                    error!(error = %e, "the orchestrator crashed; stopping");
                    jobs_stop.trigger();
                }
            })
        });
        let routed = match warehouse {
            Some(wh) => {
                let committer = Committer {
                    wh,
                    telemetry: telemetry.clone(),
                    attempt: 0,
                };
                let sensors = Sensors {
                    progress: progress_tx,
                    flush: flush_request,
                };
                let snapshots = SnapshotWriter {
                    dir: opts.state_dir(),
                    keep: opts.snapshots.keep,
                    settings,
                    waiting: None,
                    telemetry: telemetry.clone(),
                    first_ms,
                    stop_cuts: stop_cuts.clone(),
                    stop_floor: None,
                    last_delivered: 0,
                    stop_written: stop_written.clone(),
                };
                route(
                    rx,
                    state.clone(),
                    committer,
                    snapshots,
                    opts.commit_interval,
                    opts.epoch_ms,
                    sensors,
                )
                .await
            }
            None => {
                let _ = done_rx.await;
                Ok(RunSummary::default())
            }
        };
        // The dataflow is done (stopped, or the bounded input ended): the
        // orchestrator finishes what the last data made due, then stops. A
        // router that gave up on a commit stops everything at once.
        if routed.is_err() {
            // No snapshot comes from a router that gave up: nobody waits.
            stop_written.store(true, Ordering::SeqCst);
            stop.trigger();
        } else if stop_cuts.asked() && !stop_written.load(Ordering::SeqCst) {
            warn!(
                grace_ms = stop_grace.as_millis() as u64,
                "no stop snapshot (the dataflow waited for a retrain, or nothing moved within the \
                 grace); a restart resumes from the newest interval snapshot"
            );
        }
        if let Some(done) = jobs_done {
            let _ = done.await;
        }
        stop.trigger();
        probe.abort();
        let summary = routed?;
        if let Some(h) = http {
            match h.await {
                Ok(Err(e)) => return Err(Error::Io(e)),
                Err(e) => return Err(Error::Io(std::io::Error::other(e.to_string()))),
                Ok(Ok(())) => {}
            }
        }
        Ok(summary)
    })?;
    // Timely's guards panic on drop when one of its threads died: name the
    // first panic, as for a worker's.
    let results = joiner
        .join()
        .map_err(|_| worker_failure("a worker thread panicked".into()))?;
    for r in results {
        r.map_err(worker_failure)?.map_err(Error::Timely)?;
    }
    info!(
        deliveries = summary.deliveries,
        rows = summary.rows_written,
        "stopped"
    );
    Ok(summary)
}
