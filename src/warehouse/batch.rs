//! The warehouse's row layout: each table's Arrow schema (the single
//! definition of its columns), the rows of one epoch grouped by table, and
//! the record batch built from them. Pure data, no I/O.

use std::sync::Arc;

use dataflows::bars::Bar;
use dataflows::champion::{Evaluation, SeriesKey};
use dataflows::num::{utc_day, DAY_MS};
use dataflows::predict::{FeatureRow, Prediction, Score, FEATURE_COLUMNS};
use dataflows::tick::Reject;
use dataflows::{Delivery, Output};
use deltalake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::Result;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

/// The Arrow schema of a table (the single definition of its columns).
pub fn schema(table: &str) -> SchemaRef {
    use DataType::{Boolean, Date32, Float64, Int32, Int64, Utf8};
    let f = match table {
        "bars" => vec![
            field("symbol", Utf8, false),
            field("interval_ms", Int64, false),
            field("start", ts(), false),
            field("end", ts(), false),
            field("open", Float64, false),
            field("high", Float64, false),
            field("low", Float64, false),
            field("close", Float64, false),
            field("volume", Float64, false),
            field("buy_volume", Float64, false),
            field("vwap", Float64, false),
            field("trades", Int32, false),
            field("filled", Boolean, false),
            field("date", Date32, false),
        ],
        "features" => {
            let mut f = vec![field("symbol", Utf8, false), field("end", ts(), false)];
            f.extend(FEATURE_COLUMNS.iter().map(|c| field(c, Float64, false)));
            f.push(field("bars_since_trade", Int32, false));
            f.push(field("date", Date32, false));
            f
        }
        "predictions" => vec![
            field("symbol", Utf8, false),
            field("model", Utf8, false),
            field("horizon_bars", Int32, false),
            field("horizon_ms", Int64, false),
            field("made_at", ts(), false),
            field("target_at", ts(), false),
            field("base_price", Float64, false),
            field("predicted_return", Float64, false),
            field("predicted_price", Float64, false),
            field("direction_prob", Float64, true),
            field("interval_low", Float64, true),
            field("interval_high", Float64, true),
            field("date", Date32, false),
        ],
        "scores" => vec![
            field("symbol", Utf8, false),
            field("model", Utf8, false),
            field("horizon_bars", Int32, false),
            field("made_at", ts(), false),
            field("target_at", ts(), false),
            field("predicted_return", Float64, false),
            field("realized_return", Float64, false),
            field("error", Float64, false),
            field("hit", Boolean, false),
            field("covered", Boolean, true),
            field("date", Date32, false),
        ],
        "evaluations" => vec![
            field("symbol", Utf8, false),
            field("horizon_bars", Int32, false),
            field("model", Utf8, false),
            field("samples", Int64, false),
            field("mae", Float64, false),
            field("rmse", Float64, false),
            field("hit_rate", Float64, false),
            field("skill", Float64, false),
            field("coverage", Float64, true),
            field("winner", Boolean, false),
            field("reason", Utf8, false),
            field("evaluated_at", ts(), false),
            field("date", Date32, false),
        ],
        "rejects" => vec![
            field("reason", Utf8, false),
            field("detail", Utf8, false),
            field("payload", Utf8, false),
            field("partition", Int32, false),
            field("offset", Int64, false),
            field("symbol", Utf8, true),
            field("event_time", ts(), true),
            field("watermark_at", ts(), false),
            field("date", Date32, false),
        ],
        other => panic!("unknown table {other}"),
    };
    Arc::new(Schema::new(f))
}

/// Rows waiting to be committed.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Bars.
    pub bars: Vec<Bar>,
    /// Feature rows.
    pub features: Vec<FeatureRow>,
    /// Predictions.
    pub predictions: Vec<Prediction>,
    /// Scores.
    pub scores: Vec<Score>,
    /// Daily evaluation rows: (series, UTC day, row).
    pub evaluations: Vec<(SeriesKey, i32, Evaluation)>,
    /// Rejects.
    pub rejects: Vec<Reject>,
}

impl Rows {
    /// The rows of `table` in `deliveries` (only that table's vector is filled).
    pub fn of_table<'a>(table: &str, deliveries: impl IntoIterator<Item = &'a Delivery>) -> Rows {
        let mut rows = Rows::default();
        for o in deliveries.into_iter().flat_map(|d| d.outputs.iter()) {
            match (table, o) {
                ("bars", Output::Bar(b)) => rows.bars.push(b.clone()),
                ("features", Output::Features(f)) => rows.features.push(f.clone()),
                ("predictions", Output::Prediction(p)) => rows.predictions.push(p.clone()),
                ("scores", Output::Score(s)) => rows.scores.push(s.clone()),
                ("evaluations", Output::Evaluation(k, day, e, diff)) if *diff > 0 => {
                    rows.evaluations.push((k.clone(), *day, e.clone()))
                }
                ("rejects", Output::Reject(r)) => rows.rejects.push(r.clone()),
                _ => {}
            }
        }
        rows
    }
}

impl Rows {
    /// Total rows.
    pub fn len(&self) -> usize {
        self.bars.len()
            + self.features.len()
            + self.predictions.len()
            + self.scores.len()
            + self.evaluations.len()
            + self.rejects.len()
    }
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn us(ms: u64) -> i64 {
    (ms as i64).saturating_mul(1_000)
}

fn tsa(v: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(v).with_timezone("UTC"))
}

fn tsa_opt(v: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(v).with_timezone("UTC"))
}

fn f64a(v: impl IntoIterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

fn f64opt(v: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(v))
}

fn date(v: impl IntoIterator<Item = u64>) -> ArrayRef {
    Arc::new(Date32Array::from_iter_values(v.into_iter().map(utc_day)))
}

fn strs<'a>(v: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

/// Builds the record batch of `table` from `rows`.
pub fn batch(table: &str, rows: &Rows, interval_ms: u64) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = match table {
        "bars" => {
            let b = &rows.bars;
            vec![
                strs(b.iter().map(|x| x.symbol.as_str())),
                Arc::new(Int64Array::from_iter_values(
                    b.iter().map(|_| interval_ms as i64),
                )),
                tsa(b.iter().map(|x| us(x.start_ms))),
                tsa(b.iter().map(|x| us(x.end_ms))),
                f64a(b.iter().map(|x| x.open.0)),
                f64a(b.iter().map(|x| x.high.0)),
                f64a(b.iter().map(|x| x.low.0)),
                f64a(b.iter().map(|x| x.close.0)),
                f64a(b.iter().map(|x| x.volume.0)),
                f64a(b.iter().map(|x| x.buy_volume.0)),
                f64a(b.iter().map(|x| x.vwap.0)),
                Arc::new(Int32Array::from_iter_values(
                    b.iter().map(|x| x.trades as i32),
                )),
                Arc::new(BooleanArray::from(
                    b.iter().map(|x| x.filled).collect::<Vec<_>>(),
                )),
                date(b.iter().map(|x| x.start_ms)),
            ]
        }
        "features" => {
            let f = &rows.features;
            let mut cols = vec![
                strs(f.iter().map(|x| x.symbol.as_str())),
                tsa(f.iter().map(|x| us(x.end_ms))),
            ];
            cols.extend(
                (0..FEATURE_COLUMNS.len()).map(|k| f64a(f.iter().map(move |x| x.values[k].0))),
            );
            cols.push(Arc::new(Int32Array::from_iter_values(
                f.iter().map(|x| x.bars_since_trade as i32),
            )));
            cols.push(date(f.iter().map(|x| x.end_ms - 1)));
            cols
        }
        "predictions" => {
            let p = &rows.predictions;
            vec![
                strs(p.iter().map(|x| x.symbol.as_str())),
                strs(p.iter().map(|x| x.model.as_str())),
                Arc::new(Int32Array::from_iter_values(
                    p.iter().map(|x| x.horizon_bars as i32),
                )),
                Arc::new(Int64Array::from_iter_values(
                    p.iter().map(|x| x.horizon_ms as i64),
                )),
                tsa(p.iter().map(|x| us(x.made_at_ms))),
                tsa(p.iter().map(|x| us(x.target_at_ms))),
                f64a(p.iter().map(|x| x.base_price.0)),
                f64a(p.iter().map(|x| x.predicted_return.0)),
                f64a(p.iter().map(|x| x.predicted_price.0)),
                f64opt(p.iter().map(|x| x.direction_prob.map(|v| v.0))),
                f64opt(p.iter().map(|x| x.interval_low.map(|v| v.0))),
                f64opt(p.iter().map(|x| x.interval_high.map(|v| v.0))),
                date(p.iter().map(|x| x.made_at_ms)),
            ]
        }
        "scores" => {
            let s = &rows.scores;
            vec![
                strs(s.iter().map(|x| x.symbol.as_str())),
                strs(s.iter().map(|x| x.model.as_str())),
                Arc::new(Int32Array::from_iter_values(
                    s.iter().map(|x| x.horizon_bars as i32),
                )),
                tsa(s.iter().map(|x| us(x.made_at_ms))),
                tsa(s.iter().map(|x| us(x.target_at_ms))),
                f64a(s.iter().map(|x| x.predicted_return.0)),
                f64a(s.iter().map(|x| x.realized_return.0)),
                f64a(s.iter().map(|x| x.error())),
                Arc::new(BooleanArray::from(
                    s.iter().map(|x| x.hit()).collect::<Vec<_>>(),
                )),
                Arc::new(BooleanArray::from(
                    s.iter().map(|x| x.covered).collect::<Vec<_>>(),
                )),
                date(s.iter().map(|x| x.target_at_ms)),
            ]
        }
        "evaluations" => {
            let e = &rows.evaluations;
            let day_start = |d: i32| (d.max(0) as u64) * DAY_MS;
            vec![
                strs(e.iter().map(|((s, _), _, _)| s.as_str())),
                Arc::new(Int32Array::from_iter_values(
                    e.iter().map(|((_, h), _, _)| *h as i32),
                )),
                strs(e.iter().map(|(_, _, x)| x.model.as_str())),
                Arc::new(Int64Array::from_iter_values(
                    e.iter().map(|(_, _, x)| x.samples),
                )),
                f64a(e.iter().map(|(_, _, x)| x.mae.0)),
                f64a(e.iter().map(|(_, _, x)| x.rmse.0)),
                f64a(e.iter().map(|(_, _, x)| x.hit_rate.0)),
                f64a(e.iter().map(|(_, _, x)| x.skill.0)),
                f64opt(e.iter().map(|(_, _, x)| x.coverage.map(|v| v.0))),
                Arc::new(BooleanArray::from(
                    e.iter().map(|(_, _, x)| x.winner).collect::<Vec<_>>(),
                )),
                strs(e.iter().map(|(_, _, x)| x.reason.as_str())),
                tsa(e.iter().map(|(_, d, _)| us(day_start(*d + 1)))),
                date(e.iter().map(|(_, d, _)| day_start(*d))),
            ]
        }
        "rejects" => {
            let r = &rows.rejects;
            vec![
                strs(r.iter().map(|x| x.reason.code())),
                strs(r.iter().map(|x| x.detail.as_str())),
                strs(r.iter().map(|x| x.payload.as_str())),
                Arc::new(Int32Array::from_iter_values(
                    r.iter().map(|x| x.pos.partition),
                )),
                Arc::new(Int64Array::from_iter_values(r.iter().map(|x| x.pos.offset))),
                Arc::new(StringArray::from_iter(
                    r.iter().map(|x| x.symbol.as_deref()),
                )),
                tsa_opt(r.iter().map(|x| x.ts_ms.map(us))),
                tsa(r.iter().map(|x| us(x.at_ms))),
                date(r.iter().map(|x| x.at_ms)),
            ]
        }
        other => panic!("unknown table {other}"),
    };
    Ok(RecordBatch::try_new(schema(table), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::TABLES;

    #[test]
    fn empty_batches_match_their_schemas() {
        for t in TABLES {
            let b = batch(t, &Rows::default(), 1_000).unwrap();
            assert_eq!(b.num_rows(), 0);
            assert_eq!(b.schema(), schema(t));
            assert_eq!(b.schema().fields().last().unwrap().name(), "date");
        }
    }
}
