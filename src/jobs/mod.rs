//! The embedded orchestrator (the Airflow part): scheduled jobs with
//! dependencies, retries and a run history, visible over HTTP.
//!
//! | job | schedule | waits for (sensor) | does |
//! | --- | --- | --- | --- |
//! | `retrain` | every `--retrain-every-h` (6 h) of **event time**: the times the dataflow holds at (see `dataflows::deploy`) | the warehouse holds every row before `T − embargo` (the router's committed progress); in a bounded replay also that `T` is due | trains every batch model per (symbol, horizon) from `features` and `bars` (`crate::train`), hands the decision to the dataflow, which deploys the candidates at `T` |
//! | `evaluate` | every UTC day of data, in order | every delivery up to the day's end is committed | reads the day's `evaluations` (computed by the dataflow) and records the winners and the batch models' skills |
//! | `promote` | after `evaluate` of the same day | `evaluate` succeeded | marks the version of each series' winning batch model `active` in the registry (and a previously active one that lost `candidate` again), at the day's end |
//! | `maintain` | every `--maintain-every-min` (60) of **wall-clock** time | — | `tables checkpoint`, `tables compact`, `tables vacuum` on every table |
//!
//! Every run has an id (`<job>@<data interval end>`); each attempt is
//! recorded in `job_runs` when it starts and when it ends. A failed attempt
//! is retried after a jittered exponential backoff (`--job-backoff-ms`
//! doubling up to `--job-backoff-max-ms`), at most `--job-attempts` times in
//! all, each bounded by `--job-timeout-s`; the last failure is final: the
//! run is `failed`, logged at error level, counted in `/api/health` and
//! shown by `/api/jobs`, and the pipeline goes on (a failed retrain is an
//! explicit "no new model" decision: the previous versions keep serving).
//! A failed run stays failed until it is run again by hand
//! (`POST /api/jobs/{name}/run`). At most one run per job is active at a
//! time. Catch-up: `evaluate` and `promote` run for every missed day, in
//! order; `retrain` runs once per hold of the dataflow (schedule points
//! passed while a live swap was late are skipped); `maintain` runs once
//! when overdue, however many periods were missed.
//!
//! Restart: an attempt the history shows `running` was cut off by a crash;
//! it is closed as failed and retried (trigger `recovery`). A retrain that
//! already ended is not trained again: its decision is read back from the
//! registry (or is "no model" if it failed), so a restarted replay gives
//! the dataflow the same decisions at the same event times.
//!
//! Never: it never writes the dataflow's tables, never decides a scheduled
//! time twice, and never lets a training failure stop the pipeline.

mod attempt;
mod history;
mod orchestrator;
pub mod registry;
mod run;
mod work;

use std::sync::{Arc, RwLock};

pub use history::{Error as HistoryError, History, JOBS_APP_ID};
pub use orchestrator::{JobStatus, Orchestrator, TriggerError, Wiring};
pub use run::{run_id, JobRun, RunState};
pub use work::PROMOTE_APP_ID;

use crate::train::TrainConfig;

/// The jobs, in the order the API lists them.
pub const JOBS: [&str; 4] = ["retrain", "evaluate", "promote", "maintain"];

/// Wall time between maintenance runs unless configured, ms.
pub const DEFAULT_MAINTAIN_EVERY_MS: u64 = 3_600_000;
/// Attempts per run unless configured.
pub const DEFAULT_JOB_ATTEMPTS: u32 = 3;
/// First retry delay bound unless configured, ms.
pub const DEFAULT_JOB_BACKOFF_MS: u64 = 2_000;
/// Largest retry delay unless configured, ms.
pub const DEFAULT_JOB_BACKOFF_MAX_MS: u64 = 60_000;
/// Longest an attempt may take unless configured, ms.
pub const DEFAULT_JOB_TIMEOUT_MS: u64 = 600_000;
/// Longest live data waits at a scheduled retrain for its decision
/// unless configured, ms.
pub const DEFAULT_DEPLOY_WAIT_MS: u64 = 30_000;
/// The environment variable naming a job whose every attempt fails (fault
/// injection, for tests and drills).
pub const INJECT_FAILURE_ENV: &str = "CRYPTOFLOW_INJECT_JOB_FAILURE";

/// The orchestrator's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct JobsOptions {
    /// Event time between scheduled retrains, ms (0: no batch models).
    pub retrain_every_ms: u64,
    /// Training window, embargo, validation floor and hyper-parameters.
    pub train: TrainConfig,
    /// Live mode: longest wall time data waits at a scheduled retrain, ms.
    pub deploy_wait_ms: u64,
    /// Wall time between maintenance runs, ms (0: never).
    pub maintain_every_ms: u64,
    /// Attempts per run (≥ 1).
    pub attempts: u32,
    /// First retry delay bound, ms.
    pub backoff_ms: u64,
    /// Largest retry delay, ms.
    pub backoff_max_ms: u64,
    /// Longest an attempt may take, ms.
    pub timeout_ms: u64,
    /// A job whose every attempt fails (from [`INJECT_FAILURE_ENV`]).
    pub inject_failure: Option<String>,
}

impl Default for JobsOptions {
    fn default() -> Self {
        JobsOptions {
            retrain_every_ms: crate::train::DEFAULT_RETRAIN_EVERY_MS,
            train: TrainConfig::default(),
            deploy_wait_ms: DEFAULT_DEPLOY_WAIT_MS,
            maintain_every_ms: DEFAULT_MAINTAIN_EVERY_MS,
            attempts: DEFAULT_JOB_ATTEMPTS,
            backoff_ms: DEFAULT_JOB_BACKOFF_MS,
            backoff_max_ms: DEFAULT_JOB_BACKOFF_MAX_MS,
            timeout_ms: DEFAULT_JOB_TIMEOUT_MS,
            inject_failure: std::env::var(INJECT_FAILURE_ENV)
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

/// How far the warehouse is, as the delivery router reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Time of the first delivery seen (event time).
    pub first_ms: Option<u64>,
    /// Time of the latest delivery seen.
    pub last_ms: Option<u64>,
    /// Every delivery before this time has reached the router.
    pub delivered_below: u64,
    /// Every delivery before this time is committed to the warehouse.
    pub complete_below: u64,
    /// The dataflow has ended (bounded input, or stop).
    pub finished: bool,
}

/// What the HTTP API and the CLI see of the orchestrator: job states and
/// the run history, and a way to trigger runs.
#[derive(Clone)]
pub struct JobsHandle {
    status: Arc<RwLock<Vec<JobStatus>>>,
    history: Arc<RwLock<Vec<JobRun>>>,
    commands: tokio::sync::mpsc::UnboundedSender<orchestrator::Command>,
}

impl JobsHandle {
    /// Every job's state.
    pub fn jobs(&self) -> Vec<JobStatus> {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The rows of `job`'s runs, newest first, at most `limit`; None for an
    /// unknown job.
    pub fn runs(&self, job: &str, limit: usize) -> Option<Vec<JobRun>> {
        if !JOBS.contains(&job) {
            return None;
        }
        let h = self.history.read().unwrap_or_else(|e| e.into_inner());
        Some(
            h.iter()
                .rev()
                .filter(|r| r.job == job)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    /// Queues a manual run of `job`, optionally for the data interval
    /// [`start`, `end`) (a backfill); returns the run id it will have.
    pub fn trigger(&self, job: &str, interval: Option<(u64, u64)>) -> Result<String, TriggerError> {
        orchestrator::trigger(&self.commands, job, interval)
    }
}
