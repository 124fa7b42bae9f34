//! The operator's endpoints: job runs (today the warehouse's epoch commits
//! and checkpoints; the scheduler's runs join the same list when it
//! exists) and data quality (per-partition progress and watermark lag,
//! rejects, bars filled, and a sampled history for the charts).
//!
//! Time semantics: job runs and samples are wall time; watermarks are
//! event time, and their lag is the wall clock minus the watermark. The
//! sampler takes one sample every [`SAMPLE_EVERY`] while the server runs.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::api::{instant, query};
use super::types::ErrorBody;
use super::{ApiError, AppState};
use crate::telemetry::{JobRun, QualitySample, SAMPLE_EVERY};

/// Recent job runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsPage {
    /// Runs, newest first (the last 200).
    pub runs: Vec<JobRun>,
    /// Jobs this process runs on a schedule, with what triggers them.
    pub scheduled: Vec<ScheduledJob>,
}

/// A job that runs on its own.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledJob {
    /// Job name.
    pub job: String,
    /// When it runs.
    pub trigger: String,
}

/// Scheduled jobs and recent runs with state, attempt, duration and error.
#[utoipa::path(get, path = "/api/commits", tag = "ops",
    responses((status = 200, description = "scheduled jobs and recent runs", body = JobsPage)))]
pub async fn jobs(State(state): State<AppState>) -> Json<JobsPage> {
    Json(JobsPage {
        runs: state.telemetry.job_runs(),
        scheduled: vec![
            ScheduledJob {
                job: "warehouse.commit".into(),
                trigger:
                    "every epoch of event time, and at least every commit interval of wall time"
                        .into(),
            },
            ScheduledJob {
                job: "warehouse.checkpoint".into(),
                trigger: "at every table version that is a multiple of --checkpoint-every".into(),
            },
        ],
    })
}

/// Filters of `/api/quality`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QualityQuery {
    /// Only samples taken at or after this wall time (epoch ms).
    #[param(minimum = 0)]
    pub since: Option<u64>,
}

/// One source partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionView {
    /// Partition.
    pub partition: i32,
    /// Records read.
    pub records: u64,
    /// The offset after the last record read.
    pub next_offset: Option<i64>,
    /// The watermark (event ms).
    pub watermark_ms: Option<u64>,
    /// Wall clock minus the watermark (ms).
    pub watermark_lag_ms: Option<u64>,
    /// Wall-clock age of the last record (ms).
    pub last_record_age_ms: Option<u64>,
}

/// Data quality now, and sampled over the last 30 minutes.
#[derive(Debug, Serialize, ToSchema)]
pub struct QualityPage {
    /// Wall time of this answer (epoch ms).
    pub now_ms: u64,
    /// Per partition, now.
    pub partitions: Vec<PartitionView>,
    /// Samples, oldest first (one every 2 s of wall time).
    pub samples: Vec<QualitySample>,
}

/// Ticks in, rejects by reason, bars filled, per-partition watermark lag,
/// commits and throughput (from the samples).
#[utoipa::path(get, path = "/api/quality", tag = "ops", params(QualityQuery),
    responses(
        (status = 200, description = "data quality", body = QualityPage),
        (status = 400, description = "bad query", body = ErrorBody),
    ))]
pub async fn quality(
    State(state): State<AppState>,
    q: Result<Query<QualityQuery>, QueryRejection>,
) -> Result<Json<QualityPage>, ApiError> {
    let since = instant(query(q)?.since, "since")?;
    let now = crate::now_ms();
    let partitions = state
        .telemetry
        .progress
        .snapshot()
        .into_iter()
        .map(|(partition, p)| PartitionView {
            partition,
            records: p.records,
            next_offset: p.next_offset,
            watermark_ms: p.watermark_ms,
            watermark_lag_ms: p.watermark_ms.map(|w| now.saturating_sub(w)),
            last_record_age_ms: p.last_record_at_ms.map(|t| now.saturating_sub(t)),
        })
        .collect();
    Ok(Json(QualityPage {
        now_ms: now,
        partitions,
        samples: state.telemetry.samples(since.unwrap_or(0)),
    }))
}

/// One sample of the counters now.
pub fn sample(state: &AppState) -> QualitySample {
    let now = crate::now_ms();
    let stats = state.view.stats();
    let progress = state.telemetry.progress.snapshot();
    let (commits, commit_failures) = state.telemetry.commit_counts();
    QualitySample {
        at_ms: now,
        event_time_ms: stats.event_time_ms,
        ticks_read: progress.values().map(|p| p.records).sum(),
        ticks: stats.ticks,
        rejects: stats
            .rejects
            .clone()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        bars: stats.bars,
        bars_filled: stats.bars_filled,
        predictions: stats.predictions,
        commits,
        commit_failures,
        max_watermark_lag_ms: progress
            .values()
            .filter_map(|p| p.watermark_ms)
            .map(|w| now.saturating_sub(w))
            .max(),
    }
}

/// Samples the counters every [`SAMPLE_EVERY`] until aborted.
pub async fn sample_quality(state: AppState) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        state.telemetry.push_sample(sample(&state));
    }
}
