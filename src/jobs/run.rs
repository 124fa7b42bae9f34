//! One attempt of one job run, as the `job_runs` table and the API show it.
//!
//! A run is identified by its job and data interval (`retrain@<T>`,
//! `evaluate@<day end>`; wall-clock jobs by their start), so the same
//! scheduled work has the same id in every process and after a restart.
//! Each attempt is written twice: `running` when it starts and its end
//! state when it ends; an attempt whose last row is `running` was cut off
//! by a crash.

use serde::Serialize;

use crate::warehouse::date::iso_ms;

/// Where an attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Started, not ended.
    Running,
    /// Ended well.
    Success,
    /// Failed; another attempt follows after a backoff.
    Retrying,
    /// Failed for good (out of attempts, or not retryable).
    Failed,
}

impl RunState {
    /// The name stored in `job_runs`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Retrying => "retrying",
            RunState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            RunState::Running,
            RunState::Success,
            RunState::Retrying,
            RunState::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// An end state of the whole run (no attempt follows).
    pub fn is_final(self) -> bool {
        matches!(self, RunState::Success | RunState::Failed)
    }
}

/// One row of `job_runs`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRun {
    /// `<job>@<interval end>` (or `<job>@<start>` for wall-clock jobs).
    pub run_id: String,
    /// Job name.
    pub job: String,
    /// Data interval start (event time, ms).
    pub interval_start_ms: Option<u64>,
    /// Data interval end, exclusive (event time, ms).
    pub interval_end_ms: Option<u64>,
    /// 1, 2, 3, …
    pub attempt: u32,
    /// Where it stands.
    pub state: RunState,
    /// `schedule`, `manual` or `recovery`.
    pub trigger: String,
    /// Wall-clock start, ms.
    pub started_at_ms: u64,
    /// Wall-clock end, ms.
    pub ended_at_ms: Option<u64>,
    /// What it produced, JSON.
    pub outputs: String,
    /// Why it failed.
    pub error: Option<String>,
}

impl JobRun {
    /// Duration in ms, once ended.
    pub fn duration_ms(&self) -> Option<u64> {
        self.ended_at_ms
            .map(|e| e.saturating_sub(self.started_at_ms))
    }
}

/// The id of the run of `job` for the data interval ending at `end_ms`.
pub fn run_id(job: &str, end_ms: u64) -> String {
    format!("{job}@{}", iso_ms(end_ms))
}
