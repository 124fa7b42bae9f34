//! What each job does, given that its sensor said the data is there. Each
//! returns its outputs as JSON (recorded in `job_runs`) or an error message;
//! none of them panics, and the CPU-bound training runs on a blocking thread.

use std::collections::BTreeMap;
use std::path::Path;

use dataflows::deploy::{Decision, ModelRecord, ModelStatus};
use dataflows::num::DAY_MS;
use serde_json::{json, Value};

use super::registry::{current, read_registry};
use crate::http::LiveView;
use crate::train::{train_record, TrainConfig, TrainRows, KINDS};
use crate::warehouse::catalog::models_table;
use crate::warehouse::columns::Columns;
use crate::warehouse::date::{day_string, iso_ms};
use crate::warehouse::side::SideWriter;
use crate::warehouse::{compact, maintain, read};

/// The `txn` application id of promotion rows in `models` (version: the
/// end of the day promoted on, so each day is promoted at most once).
pub const PROMOTE_APP_ID: &str = "cryptoflow-promote";

/// Retention of `vacuum` in the maintenance job, hours.
pub const MAINTAIN_VACUUM_RETENTION_H: u64 = 168;

/// Trains every batch model of every symbol and horizon on the examples
/// whose outcome is known in [`start`, `end`) and returns the decision for
/// `scheduled_ms` with a summary. A window without any feature row (the
/// start of the data) decides "no models" and says so; that is not a
/// failure.
pub async fn retrain(
    root: &Path,
    train: &TrainConfig,
    horizons: &[u32],
    scheduled_ms: u64,
    (start, end): (u64, u64),
) -> Result<(Decision, Value), String> {
    let rows = TrainRows::read(root, start, end)
        .await
        .map_err(|e| format!("reading the training window: {e}"))?;
    let train = TrainConfig {
        window_ms: end.saturating_sub(start),
        embargo_ms: scheduled_ms.saturating_sub(end),
        ..train.clone()
    };
    let feature_rows = rows.len();
    let series: Vec<(String, u32)> = rows
        .symbols()
        .into_iter()
        .flat_map(|s| horizons.iter().map(move |h| (s.clone(), *h)))
        .collect();
    // Series are independent: fit them on every core, then order the
    // records by id (the result does not depend on the split).
    let records = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = series.len().div_ceil(threads).max(1);
        let mut records: Vec<ModelRecord> = std::thread::scope(|scope| {
            let handles: Vec<_> = series
                .chunks(chunk)
                .map(|part| {
                    let (rows, train) = (&rows, &train);
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for (symbol, h) in part {
                            let ex = rows.examples(symbol, *h, start, end);
                            for kind in KINDS {
                                out.push(train_record(kind, &ex, scheduled_ms, train));
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        records.sort_by(|a, b| a.id.cmp(&b.id));
        records
    })
    .await
    .map_err(|e| format!("training thread failed: {e}"))?;
    let outputs = summary(&records, feature_rows, start, end);
    Ok((
        Decision {
            scheduled_ms,
            records,
        },
        outputs,
    ))
}

fn summary(records: &[ModelRecord], feature_rows: usize, start: u64, end: u64) -> Value {
    let candidates: Vec<&ModelRecord> = records
        .iter()
        .filter(|r| r.status == ModelStatus::Candidate)
        .collect();
    let mut rejections: BTreeMap<String, u64> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status == ModelStatus::Rejected) {
        let why = r.reason.split(':').next().unwrap_or("").trim();
        let why = why.split(" below").next().unwrap_or(why).to_string();
        *rejections.entry(why).or_default() += 1;
    }
    let best = candidates
        .iter()
        .max_by(|a, b| a.validation_skill.cmp(&b.validation_skill))
        .map(|r| json!({"id": r.id, "validation_skill": r.validation_skill.map(|s| s.0)}));
    json!({
        "train_window": [iso_ms(start), iso_ms(end)],
        "feature_rows": feature_rows,
        "note": (feature_rows == 0).then_some("no feature rows in the window yet: nothing to train"),
        "models_trained": records.len(),
        "candidates": candidates.len(),
        "rejected": records.len() - candidates.len(),
        "rejections": rejections,
        "best_candidate": best,
    })
}

/// One evaluation row as the jobs read it.
struct EvalRow {
    symbol: String,
    horizon_bars: u32,
    model: String,
    samples: i64,
    skill: f64,
    winner: bool,
    reason: String,
}

async fn evaluation_rows(root: &Path, day: i32) -> Result<Vec<EvalRow>, String> {
    let batches = read::batches(root, "evaluations", Some(day..=day))
        .await
        .map_err(|e| format!("reading evaluations: {e}"))?;
    let mut rows: BTreeMap<(String, u32, String), EvalRow> = BTreeMap::new();
    for batch in &batches {
        let c = Columns::new(batch);
        for i in 0..c.rows() {
            let e = |e: crate::warehouse::columns::Error| format!("evaluations: {e}");
            let (Some(symbol), Some(h), Some(model), Some(samples), Some(skill), Some(winner)) = (
                c.str("symbol", i).map_err(e)?,
                c.i32("horizon_bars", i).map_err(e)?,
                c.str("model", i).map_err(e)?,
                c.i64("samples", i).map_err(e)?,
                c.f64("skill", i).map_err(e)?,
                c.bool("winner", i).map_err(e)?,
            ) else {
                continue;
            };
            let row = EvalRow {
                symbol: symbol.to_string(),
                horizon_bars: u32::try_from(h).unwrap_or(0),
                model: model.to_string(),
                samples,
                skill,
                winner,
                reason: c.str("reason", i).map_err(e)?.unwrap_or("").to_string(),
            };
            // A day revised by late scores has several rows per model: the
            // revision with the most samples is the latest.
            let key = (row.symbol.clone(), row.horizon_bars, row.model.clone());
            if rows.get(&key).is_none_or(|old| row.samples >= old.samples) {
                rows.insert(key, row);
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// Records the daily evaluation of `day` the dataflow wrote.
pub async fn evaluate(root: &Path, day: i32) -> Result<Value, String> {
    let rows = evaluation_rows(root, day).await?;
    if rows.is_empty() {
        // The sensor waited for the day's deliveries to be committed: no
        // rows means no prediction was scored that day (no data, or the
        // models still warming up). Nothing to evaluate is not a failure.
        return Ok(json!({
            "day": day_string(day),
            "rows": 0,
            "note": "no scored predictions this day",
        }));
    }
    let winners: BTreeMap<String, &str> = rows
        .iter()
        .filter(|r| r.winner)
        .map(|r| {
            (
                format!("{}/h{}", r.symbol, r.horizon_bars),
                r.model.as_str(),
            )
        })
        .collect();
    let batch: Vec<&EvalRow> = rows
        .iter()
        .filter(|r| r.model.starts_with("batch_"))
        .collect();
    let mut batch_skill: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    for r in &batch {
        let e = batch_skill.entry(&r.model).or_default();
        e.0 += r.skill * r.samples as f64;
        e.1 += r.samples;
    }
    let batch_skill: BTreeMap<&str, f64> = batch_skill
        .into_iter()
        .map(|(m, (s, n))| (m, if n > 0 { s / n as f64 } else { 0.0 }))
        .collect();
    Ok(json!({
        "day": day_string(day),
        "rows": rows.len(),
        "series": winners.len(),
        "winners": winners,
        "batch_models_evaluated": batch.len(),
        "batch_mean_skill": batch_skill,
    }))
}

/// Marks, at the end of `day`, the registry version of every series'
/// winning batch model `active`, and an `active` version whose series was
/// won by another model `candidate` again. Written once per day (`txn`
/// [`PROMOTE_APP_ID`] = the day's end), and applied to the live view.
pub async fn promote(root: &Path, day: i32, view: &LiveView) -> Result<Value, String> {
    let day_end = (day as u64 + 1) * DAY_MS;
    let rows = evaluation_rows(root, day).await?;
    let winners: BTreeMap<(String, u32), (&str, &str)> = rows
        .iter()
        .filter(|r| r.winner)
        .map(|r| {
            (
                (r.symbol.clone(), r.horizon_bars),
                (r.model.as_str(), r.reason.as_str()),
            )
        })
        .collect();
    let registry = read_registry(root)
        .await
        .map_err(|e| format!("reading the registry: {e}"))?;
    let now = current(&registry, day_end);
    let mut changes = Vec::new();
    for r in now.values() {
        let live = matches!(r.status, ModelStatus::Candidate | ModelStatus::Active);
        if !live {
            continue;
        }
        let won = winners
            .get(&(r.symbol.clone(), r.horizon_bars))
            .filter(|(m, _)| *m == r.kind);
        match (won, r.status) {
            (Some((_, why)), ModelStatus::Candidate) => changes.push(r.with_status(
                ModelStatus::Active,
                day_end,
                format!("won the daily evaluation of {}: {why}", day_string(day)),
            )),
            (None, ModelStatus::Active) => {
                let by = winners
                    .get(&(r.symbol.clone(), r.horizon_bars))
                    .map_or("no model", |(m, _)| m);
                changes.push(r.with_status(
                    ModelStatus::Candidate,
                    day_end,
                    format!("lost the daily evaluation of {} to {by}", day_string(day)),
                ))
            }
            _ => {}
        }
    }
    let promoted: Vec<&str> = changes
        .iter()
        .filter(|r| r.status == ModelStatus::Active)
        .map(|r| r.id.as_str())
        .collect();
    let demoted: Vec<&str> = changes
        .iter()
        .filter(|r| r.status == ModelStatus::Candidate)
        .map(|r| r.id.as_str())
        .collect();
    let mut written = false;
    if !changes.is_empty() {
        let mut writer = SideWriter::open(root, "models", PROMOTE_APP_ID)
            .await
            .map_err(|e| format!("opening the registry: {e}"))?;
        let refs: Vec<&ModelRecord> = changes.iter().collect();
        let batch = models_table()
            .batch_of(&refs)
            .map_err(|e| format!("building promotion rows: {e}"))?;
        written = writer
            .append_once(batch, day_end as i64)
            .await
            .map_err(|e| format!("writing promotion rows: {e}"))?;
        view.apply_registry(&changes);
    }
    Ok(json!({
        "day": day_string(day),
        "promoted": promoted,
        "demoted": demoted,
        "already_recorded": !changes.is_empty() && !written,
    }))
}

/// Checkpoints, compacts and vacuums every table.
pub async fn maintain(root: &Path) -> Result<Value, String> {
    let checkpoints = maintain::checkpoint_all(root)
        .await
        .map_err(|e| format!("checkpoint: {e}"))?;
    let compacted = compact::compact(root, &[], &compact::CompactOptions::default())
        .await
        .map_err(|e| format!("compact: {e}"))?;
    let vacuumed = maintain::vacuum(root, MAINTAIN_VACUUM_RETENTION_H)
        .await
        .map_err(|e| format!("vacuum: {e}"))?;
    Ok(json!({
        "checkpointed": checkpoints.len(),
        "compacted": compacted.iter().filter(|r| r.partitions > 0).map(|r| json!({"table": r.table, "files_before": r.files_before, "files_after": r.files_after})).collect::<Vec<_>>(),
        "vacuumed_files": vacuumed.iter().map(|(_, n)| n).sum::<usize>(),
    }))
}
