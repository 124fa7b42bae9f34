//! The pipeline's operational state, shared by the delivery router, the
//! source, the broker probe and the HTTP server: what the source read per
//! partition, the warehouse's commit log (outcome, latency, maintenance),
//! whether the broker answers, HTTP and SSE counters, and a short history
//! of samples for the data-quality page.
//!
//! Time semantics: everything here is **wall time** (when a commit ran, when
//! a record arrived, when the broker last answered); event time stays in the
//! dataflow and the live view. Nothing here feeds back into the dataflow, so
//! it cannot change an output. It must never block the router: every method
//! takes a short lock, records, and returns. Memory is bounded: the commit
//! log keeps the last [`COMMIT_LOG`] records, the sample history the last
//! [`QUALITY_SAMPLES`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use dataflows::progress::SourceProgress;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde::Serialize;
use utoipa::ToSchema;

use crate::now_ms;

/// Commit records kept for the Jobs page.
pub const COMMIT_LOG: usize = 200;
/// Data-quality samples kept (one per [`SAMPLE_EVERY`]: 30 minutes).
pub const QUALITY_SAMPLES: usize = 900;
/// Wall time between data-quality samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Wall time without a tick after which `/api/health` reports "degraded",
/// unless configured (`run --stale-after-ms`).
pub const DEFAULT_STALE_AFTER_MS: u64 = 60_000;

/// One run of a warehouse job (an epoch commit or a checkpoint), as the
/// Jobs page lists them.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobRun {
    /// Which job: `warehouse.commit` or `warehouse.checkpoint`.
    pub job: String,
    /// `succeeded` or `failed`.
    pub state: String,
    /// Attempts so far for the same pending data (1 for a first try).
    pub attempt: u32,
    /// Wall time it started (epoch ms).
    pub started_ms: u64,
    /// How long it took (ms).
    pub duration_ms: f64,
    /// The epoch (event time, ms) it committed, if any.
    pub epoch_ms: Option<u64>,
    /// Rows written (commits).
    pub rows: u64,
    /// Table and version (checkpoints), or deliveries in the epoch (commits).
    pub detail: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Whether the broker answered the last probe.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct BrokerStatus {
    /// None until the first probe; then whether it answered.
    pub reachable: Option<bool>,
    /// Wall time of the last probe (epoch ms).
    pub checked_ms: Option<u64>,
    /// Since when the current state holds (epoch ms).
    pub since_ms: Option<u64>,
    /// The last error.
    pub error: Option<String>,
}

/// One data-quality sample (wall time `at_ms`).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct QualitySample {
    /// Wall time of the sample (epoch ms).
    pub at_ms: u64,
    /// Latest event time fully processed (ms).
    pub event_time_ms: Option<u64>,
    /// Records read from the topic (ticks and rejects).
    pub ticks_read: u64,
    /// Ticks accepted into closed bars.
    pub ticks: u64,
    /// Rejects by reason.
    pub rejects: BTreeMap<String, u64>,
    /// Bars closed.
    pub bars: u64,
    /// Of those, gap-filling flat bars.
    pub bars_filled: u64,
    /// Predictions made.
    pub predictions: u64,
    /// Epoch commits that succeeded.
    pub commits: u64,
    /// Epoch commits that failed.
    pub commit_failures: u64,
    /// The largest watermark lag behind the wall clock over partitions (ms).
    pub max_watermark_lag_ms: Option<u64>,
}

#[derive(Default)]
struct CommitState {
    log: VecDeque<JobRun>,
    ok: u64,
    failed: u64,
    /// Failures since the last success.
    consecutive_failures: u32,
    last_error: Option<String>,
    failing_since_ms: Option<u64>,
}

/// Labels of the HTTP request metrics.
pub type RouteStatus = [(&'static str, String); 2];
/// Labels of the HTTP latency histogram.
pub type Route = [(&'static str, String); 1];
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 0.5 ms … ~33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Metric handles updated where things happen (the others are read from
/// the view and the source at scrape time, see `http::metrics`).
#[derive(Clone, Debug)]
pub struct Meters {
    /// `cryptoflow_epoch_commit_duration_seconds`.
    pub commit_seconds: Histogram,
    /// `cryptoflow_delta_commit_failures_total`.
    pub commit_failures: Counter,
    /// `cryptoflow_http_requests_total{route,status}`.
    pub http_requests: Family<RouteStatus, Counter>,
    /// `cryptoflow_http_request_duration_seconds{route}`.
    pub http_seconds: HistogramFamily<Route>,
}

impl Default for Meters {
    fn default() -> Self {
        Meters {
            commit_seconds: latency_buckets(),
            commit_failures: Counter::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(latency_buckets),
        }
    }
}

/// The shared operational state.
#[derive(Debug)]
pub struct Telemetry {
    /// What the source read, per partition.
    pub progress: SourceProgress,
    /// Metric handles.
    pub meters: Meters,
    /// No tick for this long (wall time) is "degraded"; None: not watched
    /// (no source attached, e.g. a server of a fixed view).
    pub stale_after: Option<Duration>,
    /// When this process started (epoch ms).
    pub started_ms: u64,
    commits: Mutex<CommitState>,
    broker: Mutex<BrokerStatus>,
    samples: Mutex<VecDeque<QualitySample>>,
}

impl std::fmt::Debug for CommitState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitState")
            .field("ok", &self.ok)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new(None)
    }
}

impl Telemetry {
    /// Telemetry watching for ticks older than `stale_after` (None: not watched).
    pub fn new(stale_after: Option<Duration>) -> Self {
        Telemetry {
            progress: SourceProgress::new(),
            meters: Meters::default(),
            stale_after,
            started_ms: now_ms(),
            commits: Mutex::default(),
            broker: Mutex::default(),
            samples: Mutex::default(),
        }
    }

    /// Records one commit attempt of `deliveries` deliveries up to `epoch`.
    pub fn commit_done(&self, run: JobRun) {
        let mut c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        if run.job == "warehouse.commit" {
            self.meters.commit_seconds.observe(run.duration_ms / 1e3);
            if run.error.is_some() {
                self.meters.commit_failures.inc();
                c.failed += 1;
                c.consecutive_failures += 1;
                c.last_error = run.error.clone();
                c.failing_since_ms.get_or_insert(run.started_ms);
            } else {
                c.ok += 1;
                c.consecutive_failures = 0;
                c.last_error = None;
                c.failing_since_ms = None;
            }
        }
        if c.log.len() == COMMIT_LOG {
            c.log.pop_front();
        }
        c.log.push_back(run);
    }

    /// Failed commit attempts in a row since the last success, the last
    /// error and since when.
    pub fn commit_failing(&self) -> Option<(u32, String, u64)> {
        let c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        (c.consecutive_failures > 0).then(|| {
            (
                c.consecutive_failures,
                c.last_error.clone().unwrap_or_default(),
                c.failing_since_ms.unwrap_or(0),
            )
        })
    }

    /// (succeeded, failed) commits so far.
    pub fn commit_counts(&self) -> (u64, u64) {
        let c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        (c.ok, c.failed)
    }

    /// The recent job runs, newest first.
    pub fn job_runs(&self) -> Vec<JobRun> {
        let c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        c.log.iter().rev().cloned().collect()
    }

    /// Records a broker probe's outcome.
    pub fn broker_probed(&self, result: Result<(), String>) {
        let now = now_ms();
        let mut b = self.broker.lock().unwrap_or_else(|e| e.into_inner());
        let ok = result.is_ok();
        if b.reachable != Some(ok) {
            b.since_ms = Some(now);
        }
        b.reachable = Some(ok);
        b.checked_ms = Some(now);
        b.error = result.err();
    }

    /// The broker's status.
    pub fn broker(&self) -> BrokerStatus {
        self.broker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds a data-quality sample.
    pub fn push_sample(&self, s: QualitySample) {
        let mut q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == QUALITY_SAMPLES {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// Samples taken at or after `since_ms` (wall time), oldest first.
    pub fn samples(&self, since_ms: u64) -> Vec<QualitySample> {
        let q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().filter(|s| s.at_ms >= since_ms).cloned().collect()
    }

    /// Wall time (epoch ms) the newest record arrived on any partition.
    pub fn last_record_ms(&self) -> Option<u64> {
        self.progress
            .snapshot()
            .values()
            .filter_map(|p| p.last_record_at_ms)
            .max()
    }
}
