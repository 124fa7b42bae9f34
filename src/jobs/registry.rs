//! Reading the model registry (`models`) back: rows to [`ModelRecord`]s,
//! each version's status as of an event time, and the decision a past
//! retrain made (which is how a restarted run re-decides a scheduled time
//! without training again). A row that cannot be decoded is skipped with an
//! error, never a crash.

use std::collections::BTreeMap;
use std::path::Path;

use dataflows::deploy::{Decision, LinearForecast, ModelRecord, ModelStatus};
use dataflows::num::F64;
use tracing::error;

use crate::warehouse::columns::{self, Columns};
use crate::warehouse::read;

fn decode(c: &Columns<'_>, i: usize) -> Result<ModelRecord, String> {
    let e = |e: columns::Error| e.to_string();
    let need = |name: &str| format!("`{name}` is null");
    let text = |name: &str| -> Result<String, String> {
        c.str(name, i)
            .map_err(e)?
            .map(str::to_string)
            .ok_or_else(|| need(name))
    };
    let ms =
        |name: &str| -> Result<u64, String> { c.ms(name, i).map_err(e)?.ok_or_else(|| need(name)) };
    let long = |name: &str| -> Result<i64, String> {
        c.i64(name, i).map_err(e)?.ok_or_else(|| need(name))
    };
    let opt_f64 =
        |name: &str| -> Result<Option<F64>, String> { Ok(c.f64(name, i).map_err(e)?.map(F64)) };
    let status_name = text("status")?;
    let status = ModelStatus::parse(&status_name)
        .ok_or_else(|| format!("unknown status `{status_name}`"))?;
    let model: Option<LinearForecast> = match c.str("fitted", i).map_err(e)? {
        None => None,
        Some(json) => Some(
            serde_json::from_str(json).map_err(|err| format!("`fitted` is not a model: {err}"))?,
        ),
    };
    Ok(ModelRecord {
        id: text("id")?,
        kind: text("model")?,
        symbol: text("symbol")?,
        horizon_bars: u32::try_from(
            c.i32("horizon_bars", i)
                .map_err(e)?
                .ok_or_else(|| need("horizon_bars"))?,
        )
        .map_err(|_| "negative horizon".to_string())?,
        version: u64::try_from(long("version")?).map_err(|_| "negative version".to_string())?,
        status,
        status_at_ms: ms("status_at")?,
        deployed_at_ms: c.ms("deployed_at", i).map_err(e)?,
        train_start_ms: ms("train_start")?,
        train_end_ms: ms("train_end")?,
        validation_start_ms: ms("validation_start")?,
        fit_samples: u64::try_from(long("fit_samples")?).unwrap_or(0),
        validation_samples: u64::try_from(long("validation_samples")?).unwrap_or(0),
        fit_skill: opt_f64("fit_skill")?,
        validation_skill: opt_f64("validation_skill")?,
        validation_hit_rate: opt_f64("validation_hit_rate")?,
        hyperparams: text("hyperparams")?,
        model,
        feature_schema: text("feature_schema")?,
        reason: text("reason")?,
    })
}

/// Every readable registry row under `root`, in (status time, id, rank)
/// order; unreadable rows are logged and skipped.
pub async fn read_registry(root: &Path) -> Result<Vec<ModelRecord>, read::Error> {
    let mut out = Vec::new();
    for batch in read::batches(root, "models", None).await? {
        let c = Columns::new(&batch);
        for i in 0..c.rows() {
            match decode(&c, i) {
                Ok(r) => out.push(r),
                Err(reason) => error!(row = i, %reason, "corrupt model registry row skipped"),
            }
        }
    }
    out.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.cmp(b)));
    Ok(out)
}

fn order(r: &ModelRecord) -> (u64, u8, &str) {
    (r.status_at_ms, r.status.rank(), &r.id)
}

/// Each version's latest row with a status time at or before `as_of_ms`.
pub fn current(records: &[ModelRecord], as_of_ms: u64) -> BTreeMap<String, ModelRecord> {
    let mut out: BTreeMap<String, ModelRecord> = BTreeMap::new();
    for r in records.iter().filter(|r| r.status_at_ms <= as_of_ms) {
        match out.get(&r.id) {
            Some(old)
                if (old.status_at_ms, old.status.rank()) > (r.status_at_ms, r.status.rank()) => {}
            _ => {
                out.insert(r.id.clone(), r.clone());
            }
        }
    }
    out
}

/// The decision a retrain scheduled at `scheduled_ms` made, from its
/// registry rows (each version's first row: its deployment or rejection),
/// as it was handed to the dataflow; None if the registry has no row of
/// it.
pub fn past_decision(records: &[ModelRecord], scheduled_ms: u64) -> Option<Decision> {
    let mut first: BTreeMap<&str, &ModelRecord> = BTreeMap::new();
    for r in records.iter().filter(|r| r.version == scheduled_ms) {
        match first.get(r.id.as_str()) {
            Some(f) if order(f) <= order(r) => {}
            _ => {
                first.insert(&r.id, r);
            }
        }
    }
    if first.is_empty() {
        return None;
    }
    let mut records: Vec<ModelRecord> = first
        .into_values()
        .filter(|r| matches!(r.status, ModelStatus::Candidate | ModelStatus::Rejected))
        .map(|r| ModelRecord {
            status_at_ms: scheduled_ms,
            deployed_at_ms: None,
            ..r.clone()
        })
        .collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    Some(Decision {
        scheduled_ms,
        records,
    })
}
