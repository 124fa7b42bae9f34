//! The registry and run-history tables: `models` (batch model versions,
//! from the dataflow's deployments and the orchestrator's promotions) and
//! `job_runs` (written by the orchestrator only).

use dataflows::deploy::ModelRecord;
use dataflows::Output;

use super::date;
use super::DATE;
use crate::jobs::JobRun;
use crate::warehouse::schema::{Cell, Column, Kind, TableDef};

pub(super) fn models() -> TableDef<ModelRecord> {
    use Kind::*;
    TableDef {
        name: "models",
        doc: "the model registry: one row per status a batch model version entered (its current status is its latest row)",
        columns: vec![
            Column::new("id", Utf8, "`<model>.<symbol>.h<horizon>.<version>`, unique per version", |m: &ModelRecord| {
                Cell::Str(&m.id)
            }),
            Column::new("model", Utf8, "model name, as in `predictions` and `scores`", |m: &ModelRecord| {
                Cell::Str(&m.kind)
            }),
            Column::new("symbol", Utf8, "canonical BASE-QUOTE", |m: &ModelRecord| Cell::Str(&m.symbol)),
            Column::new("horizon_bars", Int32, "horizon in bars", |m: &ModelRecord| {
                Cell::I32(m.horizon_bars as i32)
            }),
            Column::new("version", Int64, "the scheduled training time T, epoch ms (later versions are larger)", |m: &ModelRecord| {
                Cell::I64(m.version as i64)
            }),
            Column::new("status", Utf8, "candidate (deployed, competing), active (promoted champion), rejected, retired", |m: &ModelRecord| {
                Cell::Str(m.status.as_str())
            }),
            Column::new("status_at", Timestamp, "event time the status took effect", |m: &ModelRecord| {
                Cell::Ms(m.status_at_ms)
            }),
            Column::nullable("deployed_at", Timestamp, "event time it entered the dataflow (null: never deployed)", |m: &ModelRecord| {
                Cell::opt(m.deployed_at_ms, Cell::Ms)
            }),
            Column::new("train_start", Timestamp, "first feature row of the training window", |m: &ModelRecord| {
                Cell::Ms(m.train_start_ms)
            }),
            Column::new("train_end", Timestamp, "every training outcome is known before this (T − embargo)", |m: &ModelRecord| {
                Cell::Ms(m.train_end_ms)
            }),
            Column::new("validation_start", Timestamp, "first feature row of the validation part", |m: &ModelRecord| {
                Cell::Ms(m.validation_start_ms)
            }),
            Column::new("fit_samples", Int64, "examples fitted on", |m: &ModelRecord| {
                Cell::I64(m.fit_samples as i64)
            }),
            Column::new("validation_samples", Int64, "examples validated on", |m: &ModelRecord| {
                Cell::I64(m.validation_samples as i64)
            }),
            Column::nullable("fit_skill", Float64, "in-sample skill, 1 − MSE / MSE(persistence)", |m: &ModelRecord| {
                Cell::opt(m.fit_skill, |v| Cell::F64(v.0))
            }),
            Column::nullable("validation_skill", Float64, "out-of-sample skill on the validation part", |m: &ModelRecord| {
                Cell::opt(m.validation_skill, |v| Cell::F64(v.0))
            }),
            Column::nullable("validation_hit_rate", Float64, "directional hit rate on the validation part", |m: &ModelRecord| {
                Cell::opt(m.validation_hit_rate, |v| Cell::F64(v.0))
            }),
            Column::new("hyperparams", Utf8, "hyper-parameters, JSON", |m: &ModelRecord| {
                Cell::Str(&m.hyperparams)
            }),
            Column::nullable("fitted", Utf8, "the fitted model, JSON (standardisation, weights, link)", |m: &ModelRecord| {
                Cell::opt(m.model.as_ref(), |f| {
                    Cell::Text(serde_json::to_string(f).unwrap_or_default())
                })
            }),
            Column::new("feature_schema", Utf8, "hash of the feature columns it reads", |m: &ModelRecord| {
                Cell::Str(&m.feature_schema)
            }),
            Column::new("reason", Utf8, "why it has this status", |m: &ModelRecord| Cell::Str(&m.reason)),
            date("UTC date of `status_at`", |m: &ModelRecord| m.status_at_ms),
        ],
        partition: DATE,
        select: |o| match o {
            Output::Model(m) => Some(m),
            _ => None,
        },
    }
}

pub(super) fn job_runs() -> TableDef<JobRun> {
    use Kind::*;
    TableDef {
        name: "job_runs",
        doc: "the orchestrator's run history: one row per attempt when it starts and one when it ends (written by the orchestrator, not the dataflow)",
        columns: vec![
            Column::new("run_id", Utf8, "`<job>@<data interval end>` (wall-clock jobs: start time)", |r: &JobRun| {
                Cell::Str(&r.run_id)
            }),
            Column::new("job", Utf8, "retrain, evaluate, promote or maintain", |r: &JobRun| Cell::Str(&r.job)),
            Column::nullable("interval_start", Timestamp, "start of the data interval (event time)", |r: &JobRun| {
                Cell::opt(r.interval_start_ms, Cell::Ms)
            }),
            Column::nullable("interval_end", Timestamp, "end of the data interval, exclusive (event time)", |r: &JobRun| {
                Cell::opt(r.interval_end_ms, Cell::Ms)
            }),
            Column::new("attempt", Int32, "1 for the first try, then 2, 3, …", |r: &JobRun| {
                Cell::I32(r.attempt as i32)
            }),
            Column::new("state", Utf8, "running, success, retrying (this attempt failed, another follows) or failed (final)", |r: &JobRun| {
                Cell::Str(r.state.as_str())
            }),
            Column::new("trigger", Utf8, "schedule, manual (POST /api/jobs/…/run) or recovery (after a crash)", |r: &JobRun| {
                Cell::Str(&r.trigger)
            }),
            Column::new("started_at", Timestamp, "wall-clock start of the attempt", |r: &JobRun| {
                Cell::Ms(r.started_at_ms)
            }),
            Column::nullable("ended_at", Timestamp, "wall-clock end (null while running)", |r: &JobRun| {
                Cell::opt(r.ended_at_ms, Cell::Ms)
            }),
            Column::nullable("duration_ms", Int64, "ended_at − started_at", |r: &JobRun| {
                Cell::opt(r.ended_at_ms, |e| Cell::I64(e.saturating_sub(r.started_at_ms) as i64))
            }),
            Column::new("outputs", Utf8, "what it produced, JSON", |r: &JobRun| Cell::Str(&r.outputs)),
            Column::nullable("error", Utf8, "why the attempt failed", |r: &JobRun| {
                Cell::opt(r.error.as_deref(), Cell::Str)
            }),
            date("UTC date of `started_at`", |r: &JobRun| r.started_at_ms),
        ],
        partition: DATE,
        select: |_| None,
    }
}

/// The registry table's definition, typed (the orchestrator writes
/// promotion rows with it).
pub fn models_table() -> TableDef<ModelRecord> {
    models()
}

/// The run-history table's definition, typed (the orchestrator writes it).
pub fn job_runs_table() -> TableDef<JobRun> {
    job_runs()
}
