//! History older than the live view's in-memory windows, read from the
//! Delta tables (`bars`, `scores`) without a query engine: the active files
//! of date partitions on or after the asked-for day, decoded column by
//! column and filtered by symbol (and horizon, model) and event time.
//! Read-only; a table not written yet reads as empty; any other failure is
//! a 503 that says the warehouse could not be read.

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};

use super::history::{BarPoint, ScorePoint};
use super::ApiError;

fn warehouse_error(e: crate::warehouse::read::Error) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        format!("reading the warehouse failed: {e}"),
    )
}

/// Columns of a batch, cast to the types asked for.
struct Cols<'a>(&'a RecordBatch);

impl Cols<'_> {
    fn get(&self, name: &str, ty: &DataType) -> Option<std::sync::Arc<dyn Array>> {
        cast(self.0.column_by_name(name)?, ty).ok()
    }
}

async fn table_batches(
    root: &std::path::Path,
    table: &str,
    since_ms: u64,
) -> Result<Vec<RecordBatch>, ApiError> {
    let days = dataflows::num::utc_day(since_ms)..=i32::MAX;
    match crate::warehouse::read::batches(root, table, Some(days)).await {
        Ok(b) => Ok(b),
        Err(crate::warehouse::read::Error::Missing(_)) => Ok(Vec::new()),
        Err(e) => Err(warehouse_error(e)),
    }
}

/// Bars of `symbol` ending in (since, before] from the Delta table.
pub async fn warehouse_bars(
    root: &std::path::Path,
    symbol: &str,
    since: u64,
    before: u64,
) -> Result<Vec<BarPoint>, ApiError> {
    let mut out = Vec::new();
    for b in table_batches(root, "bars", since).await? {
        let c = Cols(&b);
        let (
            Some(sym),
            Some(start),
            Some(end),
            Some(o),
            Some(h),
            Some(l),
            Some(cl),
            Some(v),
            Some(n),
            Some(f),
        ) = (
            c.get("symbol", &DataType::Utf8),
            c.get("start", &DataType::Int64),
            c.get("end", &DataType::Int64),
            c.get("open", &DataType::Float64),
            c.get("high", &DataType::Float64),
            c.get("low", &DataType::Float64),
            c.get("close", &DataType::Float64),
            c.get("volume", &DataType::Float64),
            c.get("trades", &DataType::Int32),
            c.get("filled", &DataType::Boolean),
        )
        else {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the bars table lacks a column this server reads",
            ));
        };
        let f64s = |a: &std::sync::Arc<dyn Array>, i| a.as_primitive::<Float64Type>().value(i);
        for i in 0..b.num_rows() {
            let end_ms = (end.as_primitive::<Int64Type>().value(i) / 1_000) as u64;
            if sym.as_string::<i32>().value(i) != symbol || end_ms <= since || end_ms > before {
                continue;
            }
            out.push(BarPoint {
                start_ms: (start.as_primitive::<Int64Type>().value(i) / 1_000) as u64,
                end_ms,
                open: f64s(&o, i),
                high: f64s(&h, i),
                low: f64s(&l, i),
                close: f64s(&cl, i),
                volume: f64s(&v, i),
                trades: n.as_primitive::<Int32Type>().value(i) as u32,
                filled: f.as_boolean().value(i),
            });
        }
    }
    out.sort_by_key(|b| b.end_ms);
    Ok(out)
}

/// Scores of (symbol, horizon[, model]) with outcomes in (since, before).
pub async fn warehouse_scores(
    root: &std::path::Path,
    symbol: &str,
    horizon: u32,
    model: Option<&str>,
    since: u64,
    before: u64,
) -> Result<Vec<ScorePoint>, ApiError> {
    let mut out = Vec::new();
    for b in table_batches(root, "scores", since).await? {
        let c = Cols(&b);
        let (Some(sym), Some(m), Some(h), Some(made), Some(target), Some(p), Some(r), Some(cov)) = (
            c.get("symbol", &DataType::Utf8),
            c.get("model", &DataType::Utf8),
            c.get("horizon_bars", &DataType::Int32),
            c.get("made_at", &DataType::Int64),
            c.get("target_at", &DataType::Int64),
            c.get("predicted_return", &DataType::Float64),
            c.get("realized_return", &DataType::Float64),
            c.get("covered", &DataType::Boolean),
        ) else {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the scores table lacks a column this server reads",
            ));
        };
        for i in 0..b.num_rows() {
            let target_at_ms = (target.as_primitive::<Int64Type>().value(i) / 1_000) as u64;
            let name = m.as_string::<i32>().value(i);
            if sym.as_string::<i32>().value(i) != symbol
                || h.as_primitive::<Int32Type>().value(i) as u32 != horizon
                || model.is_some_and(|x| x != name)
                || target_at_ms <= since
                || target_at_ms >= before
            {
                continue;
            }
            out.push(ScorePoint {
                model: name.to_string(),
                made_at_ms: (made.as_primitive::<Int64Type>().value(i) / 1_000) as u64,
                target_at_ms,
                predicted_return: p.as_primitive::<Float64Type>().value(i),
                realized_return: r.as_primitive::<Float64Type>().value(i),
                covered: (!cov.is_null(i)).then(|| cov.as_boolean().value(i)),
            });
        }
    }
    out.sort_by(|a, b| (a.target_at_ms, &a.model).cmp(&(b.target_at_ms, &b.model)));
    Ok(out)
}
